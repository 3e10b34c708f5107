"""Data for nncore: the IDX and CSV readers, the verified dataset cache, and ``Dataset``.

``load_mnist`` and ``load_fashion_mnist`` are what most code needs: from the verified
cache, or with ``data_dir=DIR`` from the user's own folder, read as it is. ``fetch_dataset``
fills the cache ahead of time (``nncore fetch``); ``read_folder`` reads every split a folder
holds; ``read_images`` one file of images to classify, ``write_submission`` a Kaggle
submission of the predictions.
"""

from nncore.data.csv import CsvImages, read_csv, write_submission
from nncore.data.dataset import Dataset, ImageSet
from nncore.data.fetch import (
    DATASETS,
    ChecksumError,
    DatasetSpec,
    FetchError,
    LocalDirectorySource,
    MirrorSource,
    PyPIWheelSource,
    default_cache_directory,
    fetch_dataset,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    read_folder,
)
from nncore.data.idx import decode_idx, encode_idx, read_idx, write_idx
from nncore.data.local import read_images
from nncore.errors import DataError

__all__ = [
    "DATASETS", "ChecksumError", "CsvImages", "DataError", "Dataset", "DatasetSpec", "FetchError",
    "ImageSet", "LocalDirectorySource", "MirrorSource", "PyPIWheelSource", "decode_idx",
    "default_cache_directory", "encode_idx", "fetch_dataset", "load_dataset",
    "load_fashion_mnist", "load_mnist", "read_csv", "read_folder", "read_idx", "read_images",
    "write_idx", "write_submission",
]
