"""MNIST's own preprocessing, for digits that did not come from MNIST (a drawing, a photo's crop).

MNIST's digits are NIST's bilevel scans, "size normalized to fit in a 20x20 pixel box while
preserving their aspect ratio" with anti-aliasing, then "centered in a 28x28 image by
computing the center of mass of the pixels, and translating the image so as to position
this point at the center of the 28x28 field" (LeCun, Cortes and Burges). A network trained
on MNIST has only ever seen digits of that size and placement: a digit drawn in a browser
and merely shrunk to 28x28 is larger, thinner or off-centre, and gets poor guesses.

``mnist_style(ink)`` does the same to any drawing, in one linear map:

1. the ink's bounding box (the pixels above zero);
2. a scale that makes the box's longer side 20 pixels, aspect kept, by area averaging (each
   output pixel is the mean of the ink under it: the anti-aliasing);
3. the box's corner on a pixel corner, moved by whole pixels so that the centre of mass falls
   in pixel 14 (counting from 0) of each axis;
4. 0..255 rounded to uint8, as MNIST's pixels are.

Step 3 is what MNIST's files show rather than what their description says: each of the 10,000
test digits has its centre of mass within pixel 14 (between 14.0 and 15.0 in continuous
coordinates, where pixel k covers [k, k + 1)), spread evenly over it, as a translation by whole
pixels leaves it; and 9,997 have their box's longer side exactly 20 pixels (3 have 19). Put
through ``mnist_style``, 9,996 of those 10,000 digits come back unchanged, bit for bit, and so
do their 10x enlargements (tests/test_demo_preprocess.py); the other four are the three
19-pixel boxes, scaled up here, and one centre of mass exactly on a pixel's edge. Doing the scale and the translation in one resampling
blurs the digit once, not twice. ``preprocessing_steps`` also returns the intermediate
pictures (the guide, docs/guide/demo.md, draws them).
"""
import math
from typing import NamedTuple

import numpy as np

FRAME_SIDE = 28  # MNIST's image side
BOX_SIDE = 20  # the side of the box the ink's bounding box is scaled to fit
MASS_CENTRE_PIXEL = 14  # the pixel (row and column) holding the centre of mass of every MNIST digit


class PreprocessingSteps(NamedTuple):
    """What ``preprocessing_steps`` returns: each step of ``mnist_style`` as a picture."""

    ink: np.ndarray  # the drawing, float64 in [0, 1]
    box: tuple  # the ink's bounding box (top, left, bottom, right), pixel edges
    boxed: np.ndarray  # the box scaled into BOX_SIDE x BOX_SIDE (its shorter side centred), float64
    image: np.ndarray  # the result: FRAME_SIDE x FRAME_SIDE uint8, placed by its centre of mass


def mnist_style(ink):
    """The 28x28 uint8 image MNIST's preprocessing makes of ``ink``.

    ``ink`` is a 2-D array of any size, 0 where there is no ink: uint8 (255 full ink, e.g. one
    channel of a canvas with white strokes on black) or floats in [0, 1]. Raises ValueError
    when it holds no ink or is not such an array.
    """
    ink = _ink_fraction(ink)
    box = bounding_box(ink)
    scale = _box_scale(box)
    corner = (box[0], box[1])
    mass_centre = centre_of_mass(ink)
    # Whole pixels from the frame's corner to the box's, putting the centre of mass in [14, 15).
    offset = tuple(math.ceil(MASS_CENTRE_PIXEL - (mass_centre[axis] - corner[axis]) * scale) for axis in (0, 1))
    return _to_pixels(_resample(ink, scale, corner, offset, FRAME_SIDE))


def preprocessing_steps(ink):
    """``mnist_style``'s steps: the ink, its bounding box, the box scaled into 20x20, the final image."""
    fraction = _ink_fraction(ink)
    box = bounding_box(fraction)
    scale = _box_scale(box)
    # The scaled box in a 20x20 frame, its shorter side centred to the whole pixel.
    offset = tuple((BOX_SIDE - math.ceil((box[axis + 2] - box[axis]) * scale - 1e-9)) // 2 for axis in (0, 1))
    boxed = _resample(fraction, scale, (box[0], box[1]), offset, BOX_SIDE)
    return PreprocessingSteps(fraction, box, boxed, mnist_style(ink))


def bounding_box(ink):
    """(top, left, bottom, right): the edges of the smallest box holding every pixel above 0."""
    rows = np.flatnonzero(ink.any(axis=1))
    columns = np.flatnonzero(ink.any(axis=0))
    return (int(rows[0]), int(columns[0]), int(rows[-1]) + 1, int(columns[-1]) + 1)


def centre_of_mass(image):
    """(y, x) of the ink's centre of mass, in continuous coordinates (pixel k's centre is k + 0.5)."""
    image = np.asarray(image, dtype=np.float64)
    total = image.sum()
    y = (image.sum(axis=1) @ (np.arange(image.shape[0]) + 0.5)) / total
    x = (image.sum(axis=0) @ (np.arange(image.shape[1]) + 0.5)) / total
    return float(y), float(x)


def _ink_fraction(ink):
    """``ink`` as float64 in [0, 1], checked: 2-D, finite, in range, with some ink."""
    array = np.asarray(ink)
    if array.ndim != 2 or min(array.shape) < 1:
        raise ValueError(f"the ink must be a 2-D image, got shape {array.shape}")
    if array.dtype == np.uint8:
        fraction = array / 255.0
    elif array.dtype.kind == "f":
        fraction = array.astype(np.float64)
        if not np.all(np.isfinite(fraction)) or fraction.min() < 0 or fraction.max() > 1:
            raise ValueError("float ink must hold finite values in [0, 1]")
    else:
        raise ValueError(f"the ink must be uint8 (0-255) or floats in [0, 1], got dtype {array.dtype}")
    if not fraction.any():
        raise ValueError("the image holds no ink")
    return fraction


def _box_scale(box):
    """The scale that makes the box's longer side BOX_SIDE pixels."""
    return BOX_SIDE / max(box[2] - box[0], box[3] - box[1])


def _resample(ink, scale, anchor_in, anchor_out, side):
    """A side x side image of ``ink`` mapped by out = (in - anchor_in) * scale + anchor_out, area-averaged.

    Each output pixel is the integral of the ink over its cell, read from the summed-area
    table, times scale squared (a mean, not a sum); the ink is constant over each of its
    pixels, so the table is exact between its entries when interpolated bilinearly. Where a
    cell falls outside the ink, the missing part counts as no ink. No matrix product: BLAS's
    threads made a 28 x 280 product cost 20-30 ms per drawing on a busy machine.
    """
    integral = np.zeros((ink.shape[0] + 1, ink.shape[1] + 1))
    integral[1:, 1:] = ink.cumsum(axis=0).cumsum(axis=1)  # integral[y, x]: the ink in [0, y) x [0, x)
    for axis in (0, 1):
        edges = (np.arange(side + 1) - anchor_out[axis]) / scale + anchor_in[axis]  # the cells' edges, in ink pixels
        integral = _interpolate(integral, edges, axis)
    return np.diff(np.diff(integral, axis=0), axis=1) * scale ** 2


def _interpolate(table, positions, axis):
    """``table`` read at fractional ``positions`` along ``axis``, linearly, clamped to its ends."""
    last = table.shape[axis] - 1
    positions = np.clip(positions, 0, last)
    lower = np.minimum(np.floor(positions).astype(np.intp), last - 1)
    fraction = np.expand_dims(positions - lower, 1 - axis)
    below, above = np.take(table, lower, axis=axis), np.take(table, lower + 1, axis=axis)
    return below + (above - below) * fraction


def _to_pixels(fraction):
    return np.rint(np.clip(fraction, 0.0, 1.0) * 255.0).astype(np.uint8)
