"""Dataset: validation at construction, seeded validation splits, seeded batches."""

import numpy as np
import pytest

from nncore.data import Dataset
from nncore.errors import DataError

DIGITS = tuple(str(digit) for digit in range(10))


def make_dataset(count=50, pixels=784):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(count, pixels), dtype=np.uint8)
    labels = (np.arange(count) % 10).astype(np.uint8)
    return Dataset(images, labels, DIGITS, name="digits")


def test_a_valid_dataset_exposes_its_parts():
    dataset = make_dataset(20)
    assert len(dataset) == 20
    assert dataset.images.shape == (20, 784) and dataset.images.dtype == np.uint8
    assert dataset.labels.dtype == np.uint8
    assert dataset.class_names == DIGITS and dataset.n_classes == 10
    assert dataset.n_features == 784
    assert dataset.name == "digits"
    assert "digits" in repr(dataset)


def test_integer_labels_in_range_are_stored_as_uint8():
    dataset = Dataset(np.zeros((3, 4), np.uint8), np.array([0, 1, 2], np.int64), ("a", "b", "c"))
    assert dataset.labels.dtype == np.uint8


@pytest.mark.parametrize("images, labels, class_names, problem", [
    (np.zeros((3, 784), np.float32), np.zeros(3, np.uint8), DIGITS, "images must be uint8"),
    (np.zeros((3, 28, 28), np.uint8), np.zeros(3, np.uint8), DIGITS, r"shape \(N, pixels\)"),
    (np.zeros((3, 0), np.uint8), np.zeros(3, np.uint8), DIGITS, r"shape \(N, pixels\)"),
    ([[0] * 784] * 3, np.zeros(3, np.uint8), DIGITS, "must be a NumPy array"),
    (np.zeros((3, 784), np.uint8), np.zeros(3, np.float64), DIGITS, "labels must be integers"),
    (np.zeros((3, 784), np.uint8), np.zeros((3, 1), np.uint8), DIGITS, r"labels must have shape \(N,\)"),
    (np.zeros((3, 784), np.uint8), np.zeros(4, np.uint8), DIGITS, "3 images but 4 labels"),
    (np.zeros((3, 784), np.uint8), np.array([0, 10, 1], np.uint8), DIGITS, r"label 10 is outside 0..9"),
    (np.zeros((3, 784), np.uint8), np.array([0, -1, 1], np.int8), DIGITS, r"label -1 is outside"),
    (np.zeros((3, 784), np.uint8), np.zeros(3, np.uint8), (), "class_names is empty"),
])
def test_invalid_contents_raise_data_error(images, labels, class_names, problem):
    with pytest.raises(DataError, match=problem):
        Dataset(images, labels, class_names, name="checked")


def test_split_sizes_and_disjoint_cover():
    dataset = Dataset(np.arange(100, dtype=np.uint8).reshape(100, 1),
                      (np.arange(100) % 10).astype(np.uint8), DIGITS)
    train_part, validation_part = dataset.split(0.2, seed=3)
    assert (len(train_part), len(validation_part)) == (80, 20)
    together = np.sort(np.concatenate([train_part.images[:, 0], validation_part.images[:, 0]]))
    np.testing.assert_array_equal(together, np.arange(100))
    # Labels travel with their images.
    np.testing.assert_array_equal(validation_part.labels, validation_part.images[:, 0] % 10)
    assert train_part.class_names == DIGITS


def test_split_is_deterministic_for_a_seed_and_varies_across_seeds():
    dataset = make_dataset(200)
    first = dataset.split(0.25, seed=7)[1].images
    again = dataset.split(0.25, seed=7)[1].images
    other = dataset.split(0.25, seed=8)[1].images
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, 0.001])
def test_split_rejects_fractions_that_leave_a_part_empty(fraction):
    with pytest.raises(ValueError):
        make_dataset(50).split(fraction, seed=0)


def test_batches_cover_every_example_once_with_a_smaller_last_batch():
    dataset = Dataset(np.arange(23, dtype=np.uint8).reshape(23, 1),
                      (np.arange(23) % 10).astype(np.uint8), DIGITS)
    batches = list(dataset.batches(5, seed=0))
    assert [len(labels) for _, labels in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([images[:, 0] for images, _ in batches])
    np.testing.assert_array_equal(np.sort(seen), np.arange(23))
    for images, labels in batches:
        assert images.dtype == np.uint8
        np.testing.assert_array_equal(labels, images[:, 0] % 10)
    assert not np.array_equal(seen, np.arange(23))  # shuffled


def test_batches_with_a_seed_repeat_and_without_shuffle_keep_order():
    dataset = make_dataset(30)
    first = [labels for _, labels in dataset.batches(8, seed=11)]
    again = [labels for _, labels in dataset.batches(8, seed=11)]
    for one, other in zip(first, again, strict=True):
        np.testing.assert_array_equal(one, other)
    in_order = np.concatenate([labels for _, labels in dataset.batches(8, shuffle=False)])
    np.testing.assert_array_equal(in_order, dataset.labels)


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_batches_rejects_a_bad_batch_size(batch_size):
    with pytest.raises(ValueError):
        next(make_dataset(10).batches(batch_size))


# --- images without labels, and where data came from -----------------------------------------

def test_an_image_set_holds_images_without_labels_and_converts_to_its_array():
    from nncore.data import ImageSet
    images = np.arange(12, dtype=np.uint8).reshape(3, 4)
    image_set = ImageSet(images, DIGITS, name="kaggle test", source="test.csv")
    assert len(image_set) == 3 and image_set.n_features == 4 and not image_set.labeled
    assert not hasattr(image_set, "labels")
    assert np.asarray(image_set) is images
    assert np.asarray(image_set, dtype=np.float32).dtype == np.float32
    assert image_set.summary == "kaggle test: 3 unlabeled images from test.csv"
    assert ImageSet(np.zeros((2, 3), np.float32)).images.dtype == np.float32  # floats used as they are
    with pytest.raises(DataError, match="uint8 or floats"):
        ImageSet(np.zeros((2, 3), np.int64))


def test_a_dataset_keeps_its_source_through_a_split():
    dataset = Dataset(np.zeros((10, 2), np.uint8), np.arange(10) % 10, DIGITS, name="d", source="the cache")
    train_part, validation_part = dataset.split(0.2)
    assert train_part.source == validation_part.source == "the cache"
    assert dataset.labeled and dataset.summary == "d: 10 labeled images from the cache"
