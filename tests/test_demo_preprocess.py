"""nncore.preprocess.mnist_style: MNIST's own preprocessing, for drawings.

Offline, the properties that define it (box to 20 pixels with the aspect kept, centre of mass
in pixel 14, area averaging, nothing depending on where or how large the digit was drawn);
with the network, that MNIST's own test digits come back from it bit for bit.
"""
import numpy as np
import pytest
from _drawn_digits import drawn_digits, render, strokes_on_canvas

from nncore.preprocess import BOX_SIDE, FRAME_SIDE, bounding_box, centre_of_mass, mnist_style, preprocessing_steps


def _ink_box_sides(image):
    top, left, bottom, right = bounding_box(image)
    return bottom - top, right - left


def test_an_mnist_style_image_enlarged_tenfold_comes_back_bit_for_bit():
    images, _ = drawn_digits(per_class=2, seed=3)
    for image in images.reshape(-1, FRAME_SIDE, FRAME_SIDE):
        enlarged = np.kron(image, np.ones((10, 10), dtype=np.uint8))
        np.testing.assert_array_equal(mnist_style(enlarged), image)


def test_the_longer_side_of_the_ink_box_becomes_20_pixels_with_the_aspect_kept():
    ink = np.zeros((280, 280), dtype=np.uint8)
    ink[40:240, 100:180] = 255  # 200 tall, 80 wide
    image = mnist_style(ink)
    assert _ink_box_sides(image) == (BOX_SIDE, 8)
    ink = np.zeros((280, 280), dtype=np.uint8)
    ink[120:150, 10:250] = 255  # 30 tall, 240 wide: 2.5 x 20
    top, left, bottom, right = bounding_box(mnist_style(ink))
    assert right - left == BOX_SIDE and bottom - top == 3


def test_the_centre_of_mass_lands_in_pixel_14_of_each_axis():
    rng = np.random.default_rng(0)
    for digit in range(10):
        image = mnist_style(render(strokes_on_canvas(digit, rng=rng)))
        y, x = centre_of_mass(image)
        # Continuous coordinates: pixel 14 is [14, 15); uint8 rounding moves the centre a little.
        assert 13.98 <= y < 15.02 and 13.98 <= x < 15.02, (digit, y, x)


def test_where_and_how_large_the_digit_was_drawn_does_not_matter():
    drawing = render(strokes_on_canvas(5, side=140), side=140)
    expected = mnist_style(drawing)
    moved = np.zeros((280, 280), dtype=np.uint8)
    moved[97:237, 11:151] = drawing
    np.testing.assert_array_equal(mnist_style(moved), expected)
    np.testing.assert_array_equal(mnist_style(np.kron(drawing, np.ones((2, 2), dtype=np.uint8))), expected)


def test_area_averaging_keeps_the_ink_and_anti_aliases_the_edges():
    drawing = render(strokes_on_canvas(7))
    image = mnist_style(drawing)
    top, left, bottom, right = bounding_box(drawing)
    scale = BOX_SIDE / max(bottom - top, right - left)
    # Each output pixel is the mean of the ink under it: the total ink scales with the area.
    assert image.sum() / 255 == pytest.approx(drawing.sum() / 255 * scale ** 2, abs=FRAME_SIDE ** 2 * 0.5 / 255)
    greys = np.count_nonzero((image > 0) & (image < 255))
    assert greys > 20  # a 2-pixel stroke at a slant is mostly partly covered pixels


def test_float_ink_in_0_1_means_the_same_as_uint8():
    drawing = render(strokes_on_canvas(3))
    np.testing.assert_array_equal(mnist_style(drawing / 255.0), mnist_style(drawing))


@pytest.mark.parametrize("ink, message", [
    (np.zeros((280, 280), dtype=np.uint8), "no ink"),
    (np.ones((2, 28, 28), dtype=np.uint8), "2-D"),
    (np.zeros((0, 28), dtype=np.uint8), "2-D"),
    (np.full((28, 28), 2.0), r"\[0, 1\]"),
    (np.full((28, 28), np.nan), r"\[0, 1\]"),
    (np.ones((28, 28), dtype=np.int16), "uint8"),
])
def test_ink_it_cannot_use_is_refused_with_a_reason(ink, message):
    with pytest.raises(ValueError, match=message):
        mnist_style(ink)


def test_the_steps_show_the_box_the_20_pixel_box_and_the_result():
    drawing = render(strokes_on_canvas(4))
    steps = preprocessing_steps(drawing)
    assert steps.box == bounding_box(drawing)
    assert steps.boxed.shape == (BOX_SIDE, BOX_SIDE)
    assert max(_ink_box_sides(steps.boxed > 1e-9)) == BOX_SIDE
    np.testing.assert_array_equal(steps.image, mnist_style(drawing))
    assert steps.ink.max() == 1.0


@pytest.mark.network
def test_mnist_test_digits_come_back_from_it_bit_for_bit():
    from nncore import load_mnist

    digits = load_mnist("test").images.reshape(-1, FRAME_SIDE, FRAME_SIDE)
    unchanged = sum(np.array_equal(mnist_style(digit), digit) for digit in digits)
    assert unchanged >= 9990, f"{unchanged} of {len(digits)} MNIST test digits come back unchanged"  # 9,996 measured
    enlarged_unchanged = sum(np.array_equal(mnist_style(np.kron(digit, np.ones((10, 10), dtype=np.uint8))), digit)
                             for digit in digits[:200])
    assert enlarged_unchanged >= 199
