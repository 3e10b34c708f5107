"""Read and write MNIST-style CSV files: Kaggle's digit-recognizer files and "mnist in csv".

Which column holds the label is read from the header when there is one, never assumed:

- a header with a ``label`` column (first, last or anywhere): the labels come from it and
  every other column is a pixel, in order;
- a header without one, with exactly as many columns as pixels (Kaggle's ``test.csv``:
  ``pixel0..pixel783``): unlabeled images;
- a header without one and one column more than pixels: refused, since nothing says which
  column is the label;
- no header: one column more than pixels means the label comes first (the "mnist in csv"
  layout, ``label,p1..p784``); exactly as many columns as pixels means unlabeled images.

A first row is a header when it names a ``label`` column, holds no integer at all, or numbers
the columns past 255 (``0,1,...,783``, as pandas writes integer column names). The
result says which column was used (``CsvImages.layout``). Cells are integers 0..255; a UTF-8
byte-order mark, UTF-16 text, Windows line endings, blank lines and quoted numbers are
accepted. Every line is read with a length limit, so a file without line breaks cannot
fill the memory. The parsing is NumPy's own (``np.loadtxt``): about 1.2 s for MNIST's
60,000 training rows, paid once, since the cache keeps a binary copy afterwards.

``write_submission`` writes predictions in Kaggle's submission format, ``ImageId,Label``.
"""

from __future__ import annotations

import io
import itertools
import os
import re
import warnings
from pathlib import Path

import numpy as np

from nncore._atomic import atomic_open
from nncore._reading import open_regular_file
from nncore.errors import DataError
from nncore._types import ArrayLike, PathLike

PIXELS_PER_IMAGE = 784
LABEL_COLUMN_NAME = "label"
_MAXIMUM_PIXEL_VALUE = 255
# A line holds at most pixels + 1 cells; 32 characters per cell allows padding and quotes
# with room to spare, and the constant covers long header names.
_MAXIMUM_CHARACTERS_PER_CELL = 32
_MAXIMUM_EXTRA_LINE_CHARACTERS = 1 << 16
_BYTE_ORDER_MARK = "\ufeff"
_INTEGER_CELL = re.compile(r"\s*[+-]?\d+\s*")
_NUMBERS_IN_NAME = re.compile(r"\d+")


class CsvImages(tuple):
    """What ``read_csv`` returns: the pair ``(images, labels)``, and how the columns were read.

    It unpacks like the pair (``images, labels = read_csv(path)``). ``labels`` is None for an
    unlabeled file; ``label_column`` is the label's 0-based column (None when unlabeled) and
    ``layout`` says in words which column was used and why, for logs and messages.
    """

    label_column: int | None
    layout: str

    def __new__(cls, images, labels, label_column, layout):
        contents = super().__new__(cls, (images, labels))
        contents.label_column = label_column
        contents.layout = layout
        return contents

    def __reduce__(self):
        return CsvImages, (self[0], self[1], self.label_column, self.layout)

    @property
    def images(self) -> np.ndarray:
        return self[0]

    @property
    def labels(self) -> np.ndarray | None:
        return self[1]


def read_csv(source: PathLike | io.TextIOBase, name: str | None = None, *, pixels: int = PIXELS_PER_IMAGE,
             require_labels: bool = False) -> CsvImages:
    """Read an MNIST-style CSV file into ``(images, labels)``: a ``CsvImages``.

    ``source`` is a path or an open text stream (for example a member of a zip file wrapped
    by ``open_text``); ``name`` is what messages call it (default: the path). Images are
    uint8 of shape (N, ``pixels``); labels are uint8 of shape (N,), or None when the file
    has no label column (see the module docstring for how that is decided), unless
    ``require_labels``, which refuses unlabeled files.

    Raises ``DataError`` naming the file for: an empty file or one without data rows, a
    header naming no label column beside ``pixels + 1`` columns, a number of columns that
    fits no layout, a cell that is not an integer, a value outside 0..255, a line longer
    than any valid one, or a path that is not a regular file.
    """
    if isinstance(source, (str, os.PathLike)):
        name = name or str(source)
        # The text wrapper is closed too: left to the collector, it is a ResourceWarning per read.
        with open_regular_file(source, DataError) as binary, _decoded(binary) as text:
            return _read_csv_stream(text, name, pixels, require_labels)
    return _read_csv_stream(source, name or getattr(source, "name", "<stream>"), pixels, require_labels)


def open_text(binary_stream):
    """Wrap a binary stream (e.g. ``zipfile.ZipFile.open``) for ``read_csv``."""
    return io.TextIOWrapper(binary_stream, encoding="utf-8-sig", errors="replace", newline="")


def write_submission(path: PathLike, predictions: ArrayLike, *, header: tuple[str, str] = ("ImageId", "Label"),
                     first_id: int = 1) -> Path:
    """Write ``predictions`` as a Kaggle submission CSV, atomically; return the path.

    One row ``<id>,<prediction>`` per image, ids counting from ``first_id`` (Kaggle's
    digit recognizer: ``ImageId,Label`` from 1). ``predictions`` is a 1-D sequence of
    integer class indices, e.g. ``model.predict(images)``.
    """
    predictions = np.asarray(predictions)
    if predictions.ndim != 1 or (predictions.size and predictions.dtype.kind not in "iu"):
        raise ValueError(f"predictions must be a 1-D array of integer classes, got "
                         f"{predictions.dtype} of shape {predictions.shape}")
    ids = np.arange(first_id, first_id + len(predictions))
    lines = [",".join(header)] + [f"{image_id},{label}" for image_id, label in zip(ids, predictions.tolist())]
    with atomic_open(path, streams=True) as stream:
        stream.write(("\n".join(lines) + "\n").encode("ascii"))
    return Path(path)


# ---------------------------------------------------------------- reading

def _decoded(binary):
    """Text from a binary stream: UTF-16 when it starts with a UTF-16 byte-order mark, else UTF-8."""
    start = binary.peek(2)[:2]
    encoding = "utf-16" if start in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    # Undecodable bytes become U+FFFD, which no number contains: they are reported as bad cells.
    return io.TextIOWrapper(binary, encoding=encoding, errors="replace", newline="")


def _read_csv_stream(stream, name, pixels, require_labels):
    line_limit = _MAXIMUM_CHARACTERS_PER_CELL * (pixels + 1) + _MAXIMUM_EXTRA_LINE_CHARACTERS
    lines = _bounded_lines(stream, line_limit, name)
    # A byte-order mark left in the text (a stream the caller decoded) belongs to no cell.
    first_line = next((line for line in lines if line.lstrip(_BYTE_ORDER_MARK).strip()), None)
    if first_line is None:
        raise DataError(f"{name}: empty file, expected CSV rows 'label,p1,...,p{pixels}'")
    first_line = first_line.lstrip(_BYTE_ORDER_MARK)
    header = _header_cells(first_line)
    if header is not None:
        # The header alone decides the layout, before a row is parsed.
        label_column, layout = _label_column(header, len(header), pixels, name)
    table = _parse_rows(lines if header is not None else itertools.chain([first_line], lines), name)
    n_columns = table.shape[1]
    if header is None:
        label_column, layout = _label_column(None, n_columns, pixels, name)
    elif len(header) != n_columns:
        raise DataError(f"{name}: the header has {len(header)} columns but the rows have {n_columns}")
    if label_column is None and require_labels:
        raise DataError(f"{name}: has no label column ({layout}); expected a '{LABEL_COLUMN_NAME}' column")
    _check_pixel_range(table, name)
    if label_column is None:
        return CsvImages(table.astype(np.uint8), None, None, layout)
    if header is None:
        _warn_if_the_label_looks_last(table, name)
    labels = table[:, label_column].astype(np.uint8)
    images = np.empty((len(table), n_columns - 1), dtype=np.uint8)
    images[:, :label_column] = table[:, :label_column]
    images[:, label_column:] = table[:, label_column + 1:]
    return CsvImages(images, labels, label_column, layout)


def _bounded_lines(stream, limit, name):
    """The stream's lines, each read with a length limit (a file with no line breaks ends here)."""
    for number in itertools.count(1):
        line = stream.readline(limit + 1)
        if not line:
            return
        if len(line) > limit and not line.endswith(("\n", "\r")):
            raise DataError(f"{name}: line {number} is longer than {limit} characters, "
                            "more than any row of this CSV layout can be")
        yield line


def _header_cells(line):
    """The column names if ``line`` is a header: it names a label column, holds no integer,
    or numbers its columns 0..N-1 or 1..N (pandas writes integer column names that way)."""
    cells = [cell.strip().strip('"').strip() for cell in line.rstrip("\r\n").split(",")]
    if any(cell.lower() == LABEL_COLUMN_NAME for cell in cells):
        return cells
    integers = [int(cell) for cell in cells if _INTEGER_CELL.fullmatch(cell)]
    if not integers:
        return cells
    if len(integers) == len(cells) > _MAXIMUM_PIXEL_VALUE + 1 and integers in (
            list(range(len(cells))), list(range(1, len(cells) + 1))):
        return cells  # a data row cannot count past 255
    return None


def _parse_rows(rows, name):
    try:
        # int16 holds every valid value and the out-of-range ones we must report, at half
        # the memory of int32 (60,000 x 785 cells); bigger numbers fail to convert.
        with warnings.catch_warnings():
            # A header without rows is reported below as a DataError, not as a warning.
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
            table = np.loadtxt(rows, delimiter=",", dtype=np.int16, ndmin=2, quotechar='"')
    except ValueError as error:
        # np.loadtxt names the row and column; the first data row is row 1 after a header.
        raise DataError(f"{name}: malformed CSV: {error}") from error
    except MemoryError:
        raise DataError(f"{name}: too large to read into memory") from None
    if table.shape[0] == 0:
        raise DataError(f"{name}: no data rows after the header")
    return table


def _label_column(header, n_columns, pixels, name):
    """The label's 0-based column (None: unlabeled) and a sentence saying how it was chosen."""
    expected = f"expected {pixels} pixel columns, with or without a '{LABEL_COLUMN_NAME}' column"
    if header is None:
        if n_columns == pixels + 1:
            return 0, (f"no header; {n_columns} columns: column 1 taken as the label "
                       "(the 'mnist in csv' layout)")
        if n_columns == pixels:
            return None, f"no header; {pixels} pixel columns, no labels"
        raise DataError(f"{name}: rows have {n_columns} columns, {expected}{_separator_hint(n_columns)}")
    label_columns = [index for index, cell in enumerate(header) if cell.lower() == LABEL_COLUMN_NAME]
    if len(label_columns) > 1:
        raise DataError(f"{name}: the header names columns {', '.join(str(i + 1) for i in label_columns)} "
                        f"'{LABEL_COLUMN_NAME}': which one is the label?")
    pixel_names = [cell for index, cell in enumerate(header) if index not in label_columns]
    if len(pixel_names) != pixels:
        if not label_columns and len(pixel_names) == pixels + 1:
            raise DataError(
                f"{name}: the header names no '{LABEL_COLUMN_NAME}' column but there are {n_columns} "
                f"columns, one more than the {pixels} pixels: which column is the label? "
                f"Name it '{LABEL_COLUMN_NAME}' in the header")
        empty = " (an empty column name: a trailing comma?)" if "" in header else ""
        found = f"{len(pixel_names)} pixel columns" + (" and a label column" if label_columns else "")
        raise DataError(f"{name}: the header has {found}, {expected}{empty}{_separator_hint(n_columns)}")
    _check_pixel_column_order(pixel_names, name)
    if not label_columns:
        return None, f"header without a '{LABEL_COLUMN_NAME}' column; {pixels} pixel columns, no labels"
    column = label_columns[0]
    return column, f"header; label in column {column + 1} ({header[column]!r}); {pixels} pixel columns"


def _check_pixel_column_order(pixel_names, name):
    """Numbered pixel columns (pixel0.., 1x1..) must be in order: shuffled ones scramble images."""
    numbers = [tuple(int(n) for n in _NUMBERS_IN_NAME.findall(cell)) for cell in pixel_names]
    if not numbers[0] or any(len(n) != len(numbers[0]) for n in numbers):
        return  # not a numbered scheme: nothing to check
    for index in range(1, len(numbers)):
        if numbers[index] <= numbers[index - 1]:
            raise DataError(
                f"{name}: pixel column {pixel_names[index]!r} comes after {pixel_names[index - 1]!r}: "
                "the pixel columns are out of order, which would scramble the images")


def _check_pixel_range(table, name):
    if table.min() < 0 or table.max() > _MAXIMUM_PIXEL_VALUE:
        out_of_range = (table < 0) | (table > _MAXIMUM_PIXEL_VALUE)
        row, column = np.argwhere(out_of_range)[0]
        raise DataError(
            f"{name}: value {table[row, column]} at data row {row + 1}, column {column + 1} "
            f"is outside 0..{_MAXIMUM_PIXEL_VALUE}")


def _warn_if_the_label_looks_last(table, name):
    # Without a header the label is taken from column 1. A file written label-last gives a
    # constant column 1 (MNIST's corner pixel is always 0) while the real labels vary in the
    # last column: trained on, that is a model that always answers 0, with 100% "accuracy".
    first, last = table[:, 0], table[:, -1]
    if len(table) >= 10 and first.min() == first.max() and last.min() != last.max():
        warnings.warn(f"{name}: no header, and column 1, taken as the label, holds {first[0]} in every "
                      f"row while the last column varies: if the label is the last column, add a "
                      f"header naming it '{LABEL_COLUMN_NAME}'", UserWarning, stacklevel=4)


def _separator_hint(n_columns):
    return " (is the separator a comma?)" if n_columns == 1 else ""
