"""Read MNIST-style CSV files: the Kaggle "mnist in csv" layout.

Each row is ``label,p1,...,p784`` with integers 0..255; an optional first row of column
names (``label,1x1,1x2,...``) is recognised because its first cell is not a number. The
parsing is NumPy's own (``np.loadtxt``): about 1.2 s for MNIST's 60,000 training rows,
paid once, since the cache keeps a binary copy afterwards.
"""

import io
import itertools
import warnings
from pathlib import Path

import numpy as np

from nncore.errors import DataError

PIXELS_PER_IMAGE = 784
_MAXIMUM_PIXEL_VALUE = 255


def read_csv(source, name=None):
    """Read a Kaggle-style MNIST CSV into ``(images, labels)``.

    ``source`` is a path or an open text stream (for example a member of a zip file
    wrapped in ``io.TextIOWrapper``); ``name`` is what error messages call it (default:
    the path). Returns uint8 images of shape (N, 784) and uint8 labels of shape (N,).

    Raises ``DataError`` naming the file for: an empty file or one without data rows, a
    row with a number of columns other than 785, a cell that is not an integer, or a
    value outside 0..255.
    """
    if isinstance(source, (str, Path)):
        name = name or str(source)
        with open(source, encoding="ascii", errors="replace", newline="") as stream:
            return _read_csv_stream(stream, name)
    return _read_csv_stream(source, name or getattr(source, "name", "<stream>"))


def _read_csv_stream(stream, name):
    first_line = stream.readline()
    if not first_line.strip():
        raise DataError(f"{name}: empty file, expected CSV rows 'label,p1,...,p{PIXELS_PER_IMAGE}'")
    first_cell = first_line.split(",", 1)[0].strip()
    has_header = not first_cell.lstrip("+-").isdigit()
    lines = stream if has_header else itertools.chain([first_line], stream)
    try:
        # int16 holds every valid value and the out-of-range ones we must report, at half
        # the memory of int32 (60,000 x 785 cells); bigger numbers fail to convert.
        with warnings.catch_warnings():
            # A header without rows is reported below as a DataError, not as a warning.
            warnings.filterwarnings("ignore", message="loadtxt: input contained no data")
            table = np.loadtxt(lines, delimiter=",", dtype=np.int16, ndmin=2)
    except ValueError as error:
        # np.loadtxt names the row and column; the first data row is row 1 after a header.
        raise DataError(f"{name}: malformed CSV: {error}") from error
    if table.shape[0] == 0:
        raise DataError(f"{name}: no data rows after the header")
    if table.shape[1] != 1 + PIXELS_PER_IMAGE:
        raise DataError(
            f"{name}: rows have {table.shape[1]} columns, expected {1 + PIXELS_PER_IMAGE} "
            f"(label, then {PIXELS_PER_IMAGE} pixels)")
    if table.min() < 0 or table.max() > _MAXIMUM_PIXEL_VALUE:
        out_of_range = (table < 0) | (table > _MAXIMUM_PIXEL_VALUE)
        row, column = np.argwhere(out_of_range)[0]
        raise DataError(
            f"{name}: value {table[row, column]} at data row {row + 1}, column {column + 1} "
            f"is outside 0..{_MAXIMUM_PIXEL_VALUE}")
    labels = table[:, 0].astype(np.uint8)
    images = table[:, 1:].astype(np.uint8)
    return images, labels


def open_text(binary_stream):
    """Wrap a binary stream (e.g. ``zipfile.ZipFile.open``) for ``read_csv``."""
    return io.TextIOWrapper(binary_stream, encoding="ascii", errors="replace", newline="")
