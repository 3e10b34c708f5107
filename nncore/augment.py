"""Training-time augmentation: each training image moved by a random (dy, dx), as it is gathered.

``fit(augment="shift:2")`` (or ``augment=Shift(2, image_shape=(28, 28))``) reads every
training row as its image moved down by dy and right by dx, each drawn uniformly from -2..2
for that row (``nncore.counters``), with the pixels moved in from outside the image zero:
np.roll with the wrapped-around border zeroed. The compiled core does it while it gathers and
scales a batch; nothing changes at inference. It needs the image's shape: given as
``image_shape``, or, for a ``Dataset`` of 784 pixels (MNIST and Fashion-MNIST, which nncore's
loaders check are 28 x 28), 28 x 28.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

import numpy as np

from .data.dataset import Dataset

MNIST_IMAGE_SHAPE = (28, 28)
#: "shift:K" with K in ASCII digits: str.isdigit also takes "²", which int() refuses, and
#: more digits than any image is wide would only make int() slow or refuse them.
_SHIFT = re.compile(r"shift:([0-9]{1,6})")


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Shift:
    """Move each training image by up to ``pixels`` in each direction, zero-filled.

    ``image_shape`` (height, width) must multiply to the model's inputs; None: taken from the
    data when ``fit`` can tell (a Dataset of 28 x 28 images).
    """

    name = "shift"

    def __init__(self, pixels: int, image_shape: tuple[int, int] | None = None) -> None:
        self.pixels = _positive_int("shift pixels", pixels)
        if image_shape is not None:
            if np.ndim(image_shape) != 1 or len(image_shape) != 2:
                raise ValueError(f"image_shape must be (height, width), got {image_shape!r}")
            image_shape = tuple(_positive_int("image_shape", side) for side in image_shape)
        self.image_shape = image_shape

    def resolved(self, n_inputs: int, data: object = None) -> Shift:
        """This shift with its image shape, checked against ``n_inputs`` (and taken from ``data``, if unknown)."""
        shape = self.image_shape
        if shape is None:
            if not (isinstance(data, Dataset) and n_inputs == MNIST_IMAGE_SHAPE[0] * MNIST_IMAGE_SHAPE[1]):
                raise ValueError(f"augment={self} needs the images' shape: pass Shift({self.pixels}, "
                                 f"image_shape=(height, width)) for {n_inputs} inputs")
            shape = MNIST_IMAGE_SHAPE
        if shape[0] * shape[1] != n_inputs:
            raise ValueError(f"image_shape {shape} has {shape[0] * shape[1]} pixels, the model takes {n_inputs} inputs")
        if self.pixels >= min(shape):
            raise ValueError(f"a shift of {self.pixels} pixels would move {shape[0]} x {shape[1]} images out of view")
        return Shift(self.pixels, shape)

    def to_dict(self) -> dict[str, object]:
        """What checkpoints record of it."""
        return {"shift": self.pixels, "image_shape": None if self.image_shape is None else list(self.image_shape)}

    @classmethod
    def from_dict(cls, record: Mapping[str, object]) -> Shift:
        """The shift ``to_dict`` recorded; ValueError for anything else."""
        if not isinstance(record, dict) or set(record) != {"shift", "image_shape"}:
            raise ValueError(f"not a recorded shift: {record!r}")
        return cls(record["shift"], record["image_shape"])

    def __eq__(self, other):
        return isinstance(other, Shift) and (self.pixels, self.image_shape) == (other.pixels, other.image_shape)

    def __hash__(self):
        return hash((self.pixels, self.image_shape))

    def __str__(self):
        return f"shift:{self.pixels}"

    def __repr__(self):
        return f"Shift({self.pixels}, image_shape={self.image_shape!r})"


def get_augment(augment: str | Shift | None) -> Shift | None:
    """``augment`` as a ``Shift`` or None: None, "none", "shift:K" or a ``Shift``."""
    if augment is None or isinstance(augment, Shift):
        return augment
    if isinstance(augment, str):
        if augment == "none":
            return None
        match = _SHIFT.fullmatch(augment)
        if match:
            return Shift(int(match.group(1)))
    given = repr(augment)
    given = given if len(given) <= 80 else f"{given[:80]}... ({len(given)} characters)"
    raise ValueError(f"augment must be None, 'shift:K' (K pixels, e.g. 'shift:2') or an nncore.Shift, got {given}")


def shift_images(batch, dy, dx, image_shape):
    """Row i of ``batch`` (m, height * width) as its image moved down dy[i], right dx[i], zero-filled (a copy).

    The NumPy twin of the compiled shifted gather: out[y, x] = image[y - dy, x - dx] inside the image.
    """
    height, width = image_shape
    images = batch.reshape(len(batch), height, width)
    moved = np.zeros_like(images)
    for shift in set(zip(dy.tolist(), dx.tolist())):
        rows = np.flatnonzero((dy == shift[0]) & (dx == shift[1]))
        (to_y, from_y), (to_x, from_x) = (_overlap(shift[0], height), _overlap(shift[1], width))
        moved[rows, to_y, to_x] = images[rows, from_y, from_x]
    return moved.reshape(batch.shape)


def _overlap(offset, size):
    """(target slice, source slice) of a move by ``offset`` along an axis of ``size``."""
    return slice(max(offset, 0), size + min(offset, 0)), slice(max(-offset, 0), size - max(offset, 0))
