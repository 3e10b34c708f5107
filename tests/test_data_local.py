"""A folder the user names is "my data, as it is" (issue 15 items 1 and 2).

``load_mnist(data_dir=DIR)``, ``load_dataset(..., data_dir=DIR)``, ``read_folder`` and the
CLI's ``--data-dir`` all read the folder through ``nncore.data.local``: whatever it holds
(official IDX names raw or gzip, or CSV files, Kaggle's unlabeled test.csv included) is what
is used, never the cache and never a download, and the result says where it came from.
"""
import hashlib
import logging
import os
import socket

import numpy as np
import pytest

import nncore
from nncore.data import (
    Dataset, DatasetSpec, ImageSet, encode_idx, fetch, load_dataset, load_mnist, read_folder, read_images,
    write_idx)
from nncore.data.fetch import MNIST_CLASS_NAMES
from nncore.data.local import TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from nncore.errors import DataError


def tiny(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_official(directory, suffix="", names=(TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)):
    arrays = dict(zip((TRAIN_IMAGES, TRAIN_LABELS), tiny(6, 0))) | dict(zip((TEST_IMAGES, TEST_LABELS), tiny(4, 1)))
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        write_idx(directory / f"{name}{suffix}", arrays[name])
    return arrays


def csv_lines(images, labels=None, header=True):
    names = ([] if labels is None else ["label"]) + [f"pixel{index}" for index in range(784)]
    rows = [",".join(map(str, ([] if labels is None else [labels[i]]) + images[i].ravel().tolist()))
            for i in range(len(images))]
    return "\n".join(([",".join(names)] if header else []) + rows) + "\n"


def write_kaggle_pair(directory):
    directory.mkdir(exist_ok=True)
    train_images, train_labels = tiny(8, 2)
    test_images, _ = tiny(3, 3)
    (directory / "train.csv").write_text(csv_lines(train_images, train_labels))
    (directory / "test.csv").write_text(csv_lines(test_images))
    return train_images, train_labels, test_images


class NoSource:
    """A cache source that must never be used: a folder the user names is not a cache source."""

    description = "a download"

    def fetch(self, spec, work_directory, progress):
        raise AssertionError("the user's folder was bypassed for a download")


@pytest.fixture
def fake_mnist(monkeypatch):
    """MNIST whose cache sources fail loudly, so a load from the cache or a download shows."""
    spec = DatasetSpec("mnist", MNIST_CLASS_NAMES, fetch.MNIST.sha256, (NoSource(),))
    monkeypatch.setitem(fetch.DATASETS, "mnist", spec)
    return spec


# --- one meaning for data_dir --------------------------------------------------------------

def test_load_mnist_data_dir_reads_the_folder_even_when_the_cache_is_full(tmp_path, monkeypatch):
    # Before, data_dir was ignored whenever the cache was full.
    cache = tmp_path / "cache"
    cached = write_official(cache / "mnist")
    checksums = {name: hashlib.sha256(encode_idx(array)).hexdigest() for name, array in cached.items()}
    monkeypatch.setitem(fetch.DATASETS, "mnist", DatasetSpec("mnist", MNIST_CLASS_NAMES, checksums, (NoSource(),)))
    assert len(load_mnist("test", cache_dir=cache)) == 4  # the cache is full and valid
    mine = tmp_path / "mine"
    mine.mkdir()
    images, labels = tiny(7, 9)
    (mine / "mnist_test.csv").write_text(csv_lines(images, labels))
    dataset = load_mnist("test", data_dir=mine, cache_dir=cache)
    assert len(dataset) == 7
    np.testing.assert_array_equal(dataset.images, images.reshape(7, -1))
    assert dataset.source.startswith(str(mine / "mnist_test.csv"))


def test_a_folder_that_is_not_the_official_data_is_used_as_it_is_without_a_download(tmp_path, fake_mnist):
    # Before, files that failed the official checksum made load_mnist download MNIST instead.
    arrays = write_official(tmp_path / "mine")
    dataset = load_mnist("train", data_dir=tmp_path / "mine", cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(dataset.images, arrays[TRAIN_IMAGES].reshape(6, -1))
    np.testing.assert_array_equal(dataset.labels, arrays[TRAIN_LABELS])
    assert not (tmp_path / "cache").exists()


def test_a_folder_without_the_split_is_an_error_not_a_download(tmp_path, fake_mnist):
    write_official(tmp_path / "mine", names=(TRAIN_IMAGES, TRAIN_LABELS))
    with pytest.raises(DataError, match=r"holds neither t10k-images-idx3-ubyte\[\.gz\]"):
        load_mnist("test", data_dir=tmp_path / "mine", cache_dir=tmp_path / "cache")


def test_every_load_says_what_was_loaded_from_where(tmp_path, fake_mnist, caplog):
    write_official(tmp_path / "mine", suffix=".gz")
    with caplog.at_level(logging.INFO, logger="nncore.data"):
        dataset = load_mnist("train", data_dir=tmp_path / "mine")
    images_path, labels_path = (tmp_path / "mine" / f"{TRAIN_IMAGES}.gz", tmp_path / "mine" / f"{TRAIN_LABELS}.gz")
    assert dataset.source == f"{images_path} and {labels_path}"
    assert dataset.summary == f"mnist/train: 6 labeled images from {images_path} and {labels_path}"
    assert caplog.messages == [dataset.summary]


# --- what a folder may hold ------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["raw", "gzip", "dotted names", "upper case"])
def test_official_idx_files_under_their_usual_names(tmp_path, layout):
    arrays = write_official(tmp_path / "d", suffix=".gz" if layout == "gzip" else "")
    for name in arrays:
        new_name = {"raw": name, "gzip": f"{name}.gz", "dotted names": name.replace("-idx", ".idx"),
                    "upper case": name.upper()}[layout]
        if layout != "gzip":
            os.rename(tmp_path / "d" / name, tmp_path / "d" / new_name)
    splits = read_folder(tmp_path / "d")
    assert set(splits) == {"train", "test"}
    np.testing.assert_array_equal(splits["test"].labels, arrays[TEST_LABELS])


def test_kaggles_pair_gives_a_labeled_train_split_and_an_unlabeled_test_split(tmp_path):
    train_images, train_labels, test_images = write_kaggle_pair(tmp_path / "kaggle")
    splits = read_folder(tmp_path / "kaggle")
    assert isinstance(splits["train"], Dataset) and not isinstance(splits["test"], Dataset)
    assert isinstance(splits["test"], ImageSet) and not splits["test"].labeled
    np.testing.assert_array_equal(splits["train"].labels, train_labels)
    np.testing.assert_array_equal(splits["test"].images, test_images.reshape(3, -1))
    assert "label in column 1 ('label')" in splits["train"].source
    assert splits["test"].summary.startswith("mnist/test: 3 unlabeled images from ")
    assert isinstance(load_dataset("mnist", "test", data_dir=tmp_path / "kaggle"), ImageSet)


def test_an_unlabeled_split_can_be_predicted_but_not_trained_on_or_scored(tmp_path):
    write_kaggle_pair(tmp_path / "kaggle")
    splits = read_folder(tmp_path / "kaggle")
    model = nncore.MLP([784, 8, 10], seed=0)
    model.fit(splits["train"], epochs=1, backend="numpy")
    assert model.predict(splits["test"], backend="numpy").shape == (3,)
    with pytest.raises(TypeError, match="needs labels"):
        model.evaluate(splits["test"], backend="numpy")
    with pytest.raises(TypeError, match="needs labels"):
        model.fit(splits["test"], epochs=1, backend="numpy")
    with pytest.raises(DataError, match="labels are None.*ImageSet"):
        Dataset(splits["test"].images, None, MNIST_CLASS_NAMES)


def test_the_datasets_own_csv_names_are_read_and_other_datasets_files_are_pointed_out(tmp_path):
    images, labels = tiny(5, 4)
    (tmp_path / "fashion-mnist_train.csv").write_text(csv_lines(images, labels))
    fashion = read_folder(tmp_path, "fashion-mnist", splits=("train",))["train"]
    assert fashion.class_names[0] == "T-shirt/top" and len(fashion) == 5
    with pytest.raises(DataError, match=r"its CSV files: fashion-mnist_train\.csv"):
        load_dataset("mnist", "train", data_dir=tmp_path)


def test_idx_files_are_read_before_a_csv_file_of_the_same_split(tmp_path):
    arrays = write_official(tmp_path)
    (tmp_path / "train.csv").write_text("not read\n")
    dataset = load_dataset("mnist", "train", data_dir=tmp_path)
    np.testing.assert_array_equal(dataset.labels, arrays[TRAIN_LABELS])


@pytest.mark.parametrize("make, problem", [
    (lambda d: [(d / "mnist_train.csv").write_text("1\n"), (d / "train.csv").write_text("1\n")],
     "holds mnist_train.csv and train.csv: which one is the train split"),
    (lambda d: [(d / "train.csv").write_text("1\n"), (d / "TRAIN.csv").write_text("1\n")],
     "holds TRAIN.csv and train.csv: which one is meant"),
    (lambda d: write_idx(d / TRAIN_LABELS, np.zeros(3, np.uint8)), "labels without their images file"),
    (lambda d: (d / "train.csv").mkdir(), "train.csv: is a directory, not a regular file"),
    (lambda d: os.mkfifo(d / "train.csv"), "train.csv: is a FIFO"),
    (lambda d: os.symlink(d / "gone.csv", d / "train.csv"), "train.csv: a symbolic link to .*gone.csv, which does not exist"),
    (lambda d: [write_idx(d / TRAIN_IMAGES, np.zeros((3, 28, 28), np.uint8)),
                write_idx(d / TRAIN_LABELS, np.zeros(4, np.uint8))], f"{TRAIN_LABELS}: .*3 images but 4 labels"),
    (lambda d: [write_idx(d / TRAIN_IMAGES, np.zeros(3, np.uint8)),
                write_idx(d / TRAIN_LABELS, np.zeros(3, np.uint8))], "holds a 1-D array"),
    (lambda d: (d / "train.csv").write_text(csv_lines(*tiny(2, 0)).replace("\n", "\n", 1)[:-1] + ",\n"),
     "train.csv: malformed CSV"),
])
def test_odd_folders_are_refused_naming_the_file_and_the_problem(tmp_path, make, problem):
    if "FIFO" in problem and not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    make(tmp_path)
    with pytest.raises(DataError, match=problem):
        load_dataset("mnist", "train", data_dir=tmp_path)


def test_a_missing_folder_or_a_file_named_as_the_folder_is_refused(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such directory"):
        read_folder(tmp_path / "nowhere")
    (tmp_path / "file").write_text("")
    with pytest.raises(DataError, match="file: not a directory"):
        load_mnist("train", data_dir=tmp_path / "file")
    with pytest.raises(DataError, match="holds no mnist data"):
        read_folder(tmp_path)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs Unix sockets")
def test_a_socket_named_as_a_data_file_is_refused(tmp_path):
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "train.csv"))
        with pytest.raises(DataError, match="is a socket"):
            load_dataset("mnist", "train", data_dir=tmp_path)
    finally:
        server.close()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads unreadable files")
def test_an_unreadable_file_is_a_permission_error_naming_it(tmp_path):
    write_official(tmp_path)
    (tmp_path / TRAIN_IMAGES).chmod(0)
    with pytest.raises(PermissionError) as raised:
        load_dataset("mnist", "train", data_dir=tmp_path)
    assert TRAIN_IMAGES in str(raised.value)


# --- one file of images, for prediction (issue 11 item 7) ------------------------------------

def test_an_empty_idx_file_holds_no_images(tmp_path):
    write_idx(tmp_path / "empty.idx", np.zeros((0, 28, 28), np.uint8))
    with pytest.raises(DataError, match="empty.idx: holds no images"):
        read_images(tmp_path / "empty.idx")


@pytest.mark.parametrize("array, problem", [
    (np.zeros(5, np.uint8), "holds a 1-D array of shape"),
    (np.zeros((2, 0, 28), np.uint8), "have no pixels"),
    (np.zeros((2, 784), np.int32), "holds int32 values"),
])
def test_an_idx_file_that_is_not_images_says_so(tmp_path, array, problem):
    write_idx(tmp_path / "x.idx", array)
    with pytest.raises(DataError, match=problem):
        read_images(tmp_path / "x.idx")


def test_read_images_takes_idx_and_csv_files(tmp_path):
    images, labels = tiny(3, 6)
    write_idx(tmp_path / "digits.idx", images)
    (tmp_path / "labeled.csv").write_text(csv_lines(images, labels))
    from_idx, from_csv = read_images(tmp_path / "digits.idx"), read_images(tmp_path / "labeled.csv")
    np.testing.assert_array_equal(from_idx.images, images.reshape(3, -1))
    np.testing.assert_array_equal(from_csv.images, images.reshape(3, -1))
    assert from_csv.source.endswith("labels not used)")
    with pytest.raises(DataError, match="absent.idx: no such file"):
        read_images(tmp_path / "absent.idx")
