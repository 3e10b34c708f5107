"""Dataset: uint8 images with their labels and class names, checked once at construction;
ImageSet: images without labels (Kaggle's test.csv, an IDX file of digits to classify).

The images stay uint8 (MNIST's 60,000 x 784 training images are 47 MB, not 188 MB of
float32): the training kernels scale each batch while gathering it. ``split`` carves out a
validation set and ``batches`` iterates shuffled mini-batches for NumPy-side code.

Both say where they came from (``source``, one line, e.g. "the verified cache ..." or
"/data/train.csv (header; label in column 1 ('label'); 784 pixel columns)"), and
``summary`` says what and where in one line, for logs and banners. ``image_shape`` is the
shape of one image (28 x 28 for MNIST), which a model trained on them records. An ``ImageSet`` has no
``labels`` attribute at all, so ``fit`` and ``evaluate`` refuse it ("needs labels") while
``predict`` takes it (it converts to its images array).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nncore.errors import DataError


class ImageSet:
    """Images (N, D) without labels: uint8 pixels, or floats used as they are.

    ``class_names`` (optional) name the classes a model predicts for them; ``name`` and
    ``source`` say what they are and where they came from (the loaders name a split
    "<dataset>/<split>", e.g. "mnist/train"). ``image_shape`` is the shape of one image,
    whose pixels make up a row: by default square when the row length is a square number
    (784 pixels: 28 x 28), else the row itself. ``np.asarray(image_set)`` is
    ``image_set.images``, so ``model.predict(image_set)`` works.
    """

    labeled = False
    _float_images_allowed = True

    def __init__(self, images: ArrayLike, class_names: Sequence[str] = (), name: str = "images",
                 source: str | None = None, image_shape: Sequence[int] | None = None) -> None:
        self.name = str(name)
        self.source = None if source is None else str(source)
        self.class_names = tuple(str(class_name) for class_name in class_names)
        self.images = _checked_images(images, self.name, self._float_images_allowed)
        self.image_shape = _checked_image_shape(image_shape, self.images.shape[1], self.name)

    @property
    def dataset_name(self) -> str:
        """The dataset these images belong to: ``name`` up to its first "/" ("mnist" for "mnist/train")."""
        return self.name.split("/", 1)[0]

    @property
    def n_features(self) -> int:
        return self.images.shape[1]

    @property
    def summary(self) -> str:
        """One line: what these images are and where they came from."""
        what = f"{self.name}: {len(self):,} {'labeled' if self.labeled else 'unlabeled'} images"
        return what + (f" from {self.source}" if self.source else "")

    def __len__(self):
        return len(self.images)

    def __array__(self, dtype=None, copy=None):
        if dtype is None and not copy:
            return self.images
        return np.array(self.images, dtype=dtype, copy=True)

    def __repr__(self):
        return f"ImageSet(name={self.name!r}, images={self.images.shape} {self.images.dtype})"


class Dataset(ImageSet):
    """Images (N, D) uint8, labels (N,) uint8 in 0..len(class_names)-1, class names, a name.

    Construction checks shapes, dtypes, that there is one label per image and that every
    label names a class, raising ``DataError`` otherwise. Integer labels of another dtype
    are accepted when in range and stored as uint8; images must already be uint8, because
    converting them would require guessing a scale. ``source`` says where they came from.
    """

    labeled = True
    _float_images_allowed = False

    def __init__(self, images: ArrayLike, labels: ArrayLike, class_names: Sequence[str], name: str = "dataset",
                 source: str | None = None, image_shape: Sequence[int] | None = None) -> None:
        super().__init__(images, class_names, name, source, image_shape)
        self.labels = _checked_labels(labels, len(self.images), len(self.class_names), self.name)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self):
        return len(self.labels)

    def __repr__(self):
        return (f"Dataset(name={self.name!r}, images={self.images.shape} {self.images.dtype}, "
                f"classes={self.n_classes})")

    def split(self, fraction: float, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Split at random into ``(train_part, validation_part)``.

        ``validation_part`` holds ``round(fraction * len(self))`` examples; the same
        ``seed`` always gives the same split. Both parts must end up non-empty.
        """
        train_indices, validation_indices = split_indices(len(self), fraction, seed)
        return (self._subset(train_indices, f"{self.name}[train part]"),
                self._subset(validation_indices, f"{self.name}[validation part]"))

    def batches(self, batch_size: int, seed: int | None = None,
                shuffle: bool = True) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.uint8]]]:
        """Yield ``(images_batch, labels_batch)`` covering every example once.

        With ``shuffle`` the order is a permutation drawn from ``seed`` (reproducible when
        ``seed`` is given); the last batch may be smaller. Batches are uint8; unshuffled
        batches are views of the dataset, so do not modify them in place.
        """
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        batch_size = int(batch_size)
        if not shuffle:
            for start in range(0, len(self), batch_size):
                yield self.images[start:start + batch_size], self.labels[start:start + batch_size]
            return
        order = np.random.default_rng(seed).permutation(len(self))
        for start in range(0, len(self), batch_size):
            batch_indices = order[start:start + batch_size]
            yield self.images[batch_indices], self.labels[batch_indices]

    def _subset(self, indices, name):
        return Dataset(self.images[indices], self.labels[indices], self.class_names, name, self.source,
                       self.image_shape)


def split_indices(n, fraction, seed, name="split fraction"):
    """(train indices, validation indices) of n examples, ``round(fraction * n)`` of them held out.

    ``seed`` is anything ``np.random.default_rng`` takes; the same seed always gives the same
    split. Both parts must end up non-empty; ``name`` is what a refusal calls ``fraction``.
    """
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {fraction!r}")
    validation_size = round(float(fraction) * n)
    if validation_size == 0 or validation_size == n:
        raise ValueError(f"{name} {fraction} of {n} examples leaves one part empty")
    order = np.random.default_rng(seed).permutation(n)
    # Sorted indices keep each part in the original order, which reads memory linearly.
    return np.sort(order[validation_size:]), np.sort(order[:validation_size])


def _checked_images(images, name, allow_float=False):
    if not isinstance(images, np.ndarray):
        raise DataError(f"{name}: images must be a NumPy array, got {type(images).__name__}")
    if images.dtype != np.uint8 and not (allow_float and images.dtype.kind == "f"):
        raise DataError(f"{name}: images must be uint8{' or floats' if allow_float else ''}, "
                        f"got {images.dtype}")
    if images.ndim != 2 or images.shape[1] == 0:
        raise DataError(
            f"{name}: images must have shape (N, pixels) with pixels > 0, got {images.shape}")
    return images


def _checked_image_shape(image_shape, n_pixels, name):
    if image_shape is None:
        side = math.isqrt(n_pixels)
        return (side, side) if side * side == n_pixels else (n_pixels,)
    try:
        shape = tuple(int(size) for size in image_shape)
    except (TypeError, ValueError):
        raise DataError(f"{name}: image_shape must be a sequence of sizes, got {image_shape!r}") from None
    if not shape or min(shape) < 1 or math.prod(shape) != n_pixels:
        raise DataError(f"{name}: image_shape {shape} does not hold the {n_pixels} pixels of a row")
    return shape


def _checked_labels(labels, n_images, n_classes, name):
    if n_classes == 0:
        raise DataError(f"{name}: class_names is empty")
    if labels is None:
        raise DataError(f"{name}: labels are None; images without labels are an nncore.data.ImageSet")
    if not isinstance(labels, np.ndarray):
        raise DataError(f"{name}: labels must be a NumPy array, got {type(labels).__name__}")
    if labels.dtype.kind not in "ui":
        raise DataError(f"{name}: labels must be integers (uint8), got {labels.dtype}")
    if labels.ndim != 1:
        raise DataError(f"{name}: labels must have shape (N,), got {labels.shape}")
    if len(labels) != n_images:
        raise DataError(f"{name}: {n_images} images but {len(labels)} labels")
    if len(labels):
        smallest, largest = int(labels.min()), int(labels.max())
        if smallest < 0 or largest >= n_classes:
            bad = smallest if smallest < 0 else largest
            raise DataError(
                f"{name}: label {bad} is outside 0..{n_classes - 1} ({n_classes} classes)")
    # The range check above makes this conversion lossless.
    return labels.astype(np.uint8, copy=False)
