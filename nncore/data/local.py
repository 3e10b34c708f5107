"""The user's own data, read as it is: a folder of IDX or CSV files, or one file of images.

A folder the user names (``load_mnist(data_dir=DIR)``, ``nncore train --data-dir DIR``)
means "my data, as it is": it is read here, with no checksum and no download, and what it
holds is what is used. For each split ("train", "test") it may hold

- the official IDX files, raw or gzip: ``train-images-idx3-ubyte[.gz]`` and
  ``train-labels-idx1-ubyte[.gz]`` (``t10k-...`` for the test split), or the dotted names
  some re-uploads use (``train-images.idx3-ubyte``); an images file without its labels
  file is an unlabeled split;
- or one CSV file, named as the dataset's spec says (``csv_names``): for MNIST
  ``mnist_train.csv`` or Kaggle's ``train.csv``, whose partner ``test.csv`` has no labels.

Names are matched regardless of case. A split with labels becomes a ``Dataset``, one without
an ``ImageSet``; ``source`` says which files were read and how (for a CSV, which column was
the label). Anything ambiguous (two CSV files for one split) or odd (a directory, FIFO or
broken link under a data file's name) is refused with a ``DataError`` naming it.

``spec`` arguments are anything with ``name``, ``class_names`` and ``csv_names`` (a
``nncore.data.DatasetSpec``). The verified cache reads a local source folder (``nncore
fetch``, Debian's Fashion-MNIST package) through ``read_folder_split`` too, then checks the
SHA-256 of what it read.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from nncore.data.csv import read_csv
from nncore.data.dataset import Dataset, ImageSet
from nncore.data.idx import read_idx
from nncore.errors import DataError
from nncore._types import PathLike

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
#: (images file, labels file) of each split, by their official names.
FILES_BY_SPLIT = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}
SPLITS = tuple(FILES_BY_SPLIT)
_LISTED_NAMES = 5


def read_folder_split(directory, split, spec, *, require_labels=False):
    """The ``split`` ("train" or "test") of the data in ``directory``, read as it is.

    Returns a ``Dataset``, or an ``ImageSet`` when the split has no labels (refused with
    ``require_labels``). Raises ``DataError`` when the folder does not hold the split,
    naming the files it looked for.
    """
    folder = _Folder(directory)
    dataset = _read_split(folder, split, spec, require_labels)
    if dataset is None:
        raise DataError(f"{folder.path} holds neither {_idx_pair_text(split)} nor a CSV file named "
                        f"{' or '.join(spec.csv_names[split])}{folder.csv_files_hint()}")
    return dataset


def read_folder(directory, spec, splits=SPLITS):
    """Every split of ``splits`` that ``directory`` holds: {split: Dataset or ImageSet}.

    Raises ``DataError`` when it holds none of them.
    """
    folder = _Folder(directory)
    found = {}
    for split in splits:
        dataset = _read_split(folder, split, spec, require_labels=False)
        if dataset is not None:
            found[split] = dataset
    if not found:
        looked_for = "; ".join(f"{_idx_pair_text(split)} or {' or '.join(spec.csv_names[split])}"
                               for split in splits)
        raise DataError(f"{folder.path} holds no {spec.name} data: looked for {looked_for}"
                        f"{folder.csv_files_hint()}")
    return found


def read_images(path: PathLike, class_names: Sequence[str] = (), name: str | None = None,
                kind: str | None = None) -> ImageSet:
    """The images in one IDX file (raw or gzip) or CSV file: an ``ImageSet``.

    ``kind`` is "idx" or "csv"; by default a ``.csv`` suffix means CSV, anything else IDX.

    For prediction: N x rows x columns or N x pixels, uint8 pixels (IDX may also hold
    floats); a CSV file's label column, if it has one, is set aside (``source`` says so).
    Raises ``DataError`` naming the file when it is missing, not images, or empty.
    """
    path = Path(path)
    if kind not in (None, "idx", "csv"):
        raise ValueError(f"kind must be None, 'idx' or 'csv', got {kind!r}")
    if not os.path.lexists(path):
        raise DataError(f"{path}: no such file")
    if kind == "csv" or (kind is None and path.suffix.lower() == ".csv"):
        contents = read_csv(path)
        source = f"{path} ({contents.layout}" + (", labels not used)" if contents.labels is not None else ")")
        images, image_shape = contents.images, None
    else:
        array = read_idx(path)
        images, image_shape = image_rows(array, path), array.shape[1:]
        if images.dtype.kind not in "uf" or (images.dtype.kind == "u" and images.dtype.itemsize != 1):
            raise DataError(f"{path}: holds {images.dtype} values; images are uint8 pixels or floats")
        source = str(path)
    if len(images) == 0:
        raise DataError(f"{path}: holds no images")
    return ImageSet(images, class_names, name=name or path.name, source=source, image_shape=image_shape)


def image_rows(array, path):
    """``array`` (N x ... from an IDX file) as N rows of pixels; DataError if it is not images."""
    if array.ndim < 2:
        raise DataError(f"{path}: holds a {array.ndim}-D array of shape {array.shape}, not images "
                        "(N x rows x columns, or N x pixels)")
    pixels = math.prod(array.shape[1:])
    if pixels == 0:
        raise DataError(f"{path}: its images of shape {array.shape[1:]} have no pixels")
    return array.reshape(len(array), pixels)


# ---------------------------------------------------------------- one split

def _read_split(folder, split, spec, require_labels):
    """The split as a Dataset or ImageSet, or None when the folder holds none of its files."""
    images_name, labels_name = FILES_BY_SPLIT[split]
    images_path, labels_path = folder.find_idx(images_name), folder.find_idx(labels_name)
    csv_paths = [path for path in map(folder.find, spec.csv_names[split]) if path is not None]
    name = f"{spec.name}/{split}"
    if images_path is not None:
        return _read_idx_split(images_path, labels_path, spec, name, require_labels)
    if labels_path is not None:
        raise DataError(f"{labels_path}: labels without their images file {images_name}[.gz]")
    if len(csv_paths) > 1:
        raise DataError(f"{folder.path} holds {' and '.join(path.name for path in csv_paths)}: "
                        f"which one is the {split} split? Keep one")
    if csv_paths:
        return _read_csv_split(csv_paths[0], spec, name, require_labels)
    return None


def _read_idx_split(images_path, labels_path, spec, name, require_labels):
    array = read_idx(images_path)
    images, image_shape = image_rows(array, images_path), array.shape[1:]
    if labels_path is None:
        if require_labels:
            raise DataError(f"{images_path}: images without their labels file")
        return ImageSet(images, spec.class_names, name=name, source=f"{images_path} (no labels file)",
                        image_shape=image_shape)
    source = f"{images_path} and {labels_path}"
    try:
        return Dataset(images, read_idx(labels_path), spec.class_names, name=name, source=source,
                       image_shape=image_shape)
    except DataError as error:
        raise DataError(f"{source}: {error}") from None


def _read_csv_split(path, spec, name, require_labels):
    contents = read_csv(path, require_labels=require_labels)
    source = f"{path} ({contents.layout})"
    if contents.labels is None:
        return ImageSet(contents.images, spec.class_names, name=name, source=source)
    try:
        return Dataset(contents.images, contents.labels, spec.class_names, name=name, source=source)
    except DataError as error:
        raise DataError(f"{path}: {error}") from None


def _idx_pair_text(split):
    images_name, labels_name = FILES_BY_SPLIT[split]
    return f"{images_name}[.gz] and {labels_name}[.gz]"


class _Folder:
    """A directory's entries by lower-cased name, listed once."""

    def __init__(self, directory):
        self.path = Path(directory).expanduser()
        if not self.path.exists():
            raise DataError(f"{self.path}: no such directory")
        if not self.path.is_dir():
            raise DataError(f"{self.path}: not a directory")
        self.names = {}
        with os.scandir(self.path) as entries:
            for entry in entries:
                self.names.setdefault(entry.name.lower(), []).append(entry.name)

    def find(self, name):
        """The path of the entry called ``name`` (any case), or None; whatever kind of entry it is.

        A directory or FIFO under a data file's name is returned too: the reader refuses it
        with a message saying what it is, which "not found" would hide.
        """
        matches = self.names.get(name.lower(), [])
        if len(matches) > 1:
            raise DataError(f"{self.path} holds {' and '.join(sorted(matches))}: which one is meant?")
        if not matches:
            return None
        path = self.path / matches[0]
        if path.is_symlink() and not path.exists():
            raise DataError(f"{path}: a symbolic link to {os.readlink(path)}, which does not exist")
        return path

    def find_idx(self, official_name):
        """The first present of the official name, its .gz, the dotted variant and its .gz."""
        dotted = official_name.replace("-idx", ".idx", 1)
        for candidate in (official_name, f"{official_name}.gz", dotted, f"{dotted}.gz"):
            path = self.find(candidate)
            if path is not None:
                return path
        return None

    def csv_files_hint(self):
        csv_names = sorted(name for names in self.names.values() for name in names
                           if name.lower().endswith(".csv"))
        if not csv_names:
            return ""
        listed = ", ".join(csv_names[:_LISTED_NAMES])
        more = f" and {len(csv_names) - _LISTED_NAMES} more" if len(csv_names) > _LISTED_NAMES else ""
        return f" (its CSV files: {listed}{more})"
