"""Digits drawn by a program: stroke templates, a brush renderer, and a model trained on them.

The default test suite runs offline, without MNIST, yet the demo's tests want a model that
answers drawings for real. Each digit here is one to three strokes (polylines in a unit
square, y downwards) that a test can render with a round brush, as a canvas does, or draw
with the mouse in a browser. Varied by a random affine map, point jitter and brush width,
and put through the demo's own preprocessing, they train a small MLP that recognises them.
"""
import functools

import numpy as np

from nncore.data import Dataset
from nncore.model import MLP
from nncore.optim import Adam
from nncore.preprocess import mnist_style


def _loop(centre_x, centre_y, radius_x, radius_y, start=-np.pi / 2, points=14):
    angles = start + np.linspace(0, 2 * np.pi, points + 1)
    return [(centre_x + radius_x * np.cos(a), centre_y + radius_y * np.sin(a)) for a in angles]


#: digit -> strokes, each a list of (x, y) in [0, 1], y downwards.
STROKES = {
    0: [_loop(0.5, 0.5, 0.28, 0.4)],
    1: [[(0.38, 0.25), (0.55, 0.1), (0.55, 0.9)]],
    2: [[(0.2, 0.3), (0.35, 0.12), (0.6, 0.1), (0.78, 0.25), (0.7, 0.45), (0.2, 0.9), (0.85, 0.9)]],
    3: [[(0.2, 0.15), (0.7, 0.12), (0.75, 0.3), (0.45, 0.5), (0.8, 0.65), (0.75, 0.88), (0.2, 0.88)]],
    4: [[(0.6, 0.1), (0.15, 0.65), (0.85, 0.65)], [(0.65, 0.35), (0.65, 0.9)]],
    5: [[(0.8, 0.1), (0.3, 0.1), (0.25, 0.45), (0.6, 0.42), (0.8, 0.6), (0.7, 0.85), (0.25, 0.88)]],
    6: [[(0.7, 0.1), (0.35, 0.4), (0.25, 0.7), (0.45, 0.9), (0.7, 0.8), (0.7, 0.6), (0.45, 0.5), (0.27, 0.62)]],
    7: [[(0.15, 0.1), (0.85, 0.1), (0.4, 0.9)]],
    8: [_loop(0.5, 0.28, 0.2, 0.18, start=np.pi / 2), _loop(0.5, 0.7, 0.24, 0.2, start=-np.pi / 2)],
    9: [_loop(0.5, 0.3, 0.22, 0.2, start=0.0), [(0.72, 0.3), (0.65, 0.9)]],
}
CLASS_NAMES = tuple(str(digit) for digit in range(10))
#: The brush of the demo page (app.js's BRUSH_WIDTH), in pixels of its 280-pixel canvas.
PAGE_BRUSH_WIDTH = 18


def strokes_on_canvas(digit, side=280, margin=0.2, rng=None):
    """The digit's strokes in canvas pixels: the unit square mapped into the canvas minus ``margin``,
    varied by a random affine map and point jitter when ``rng`` is given."""
    matrix, shift = np.eye(2) * side * (1 - 2 * margin), np.full(2, side * margin)
    if rng is not None:
        angle, shear = rng.uniform(-0.15, 0.15), rng.uniform(-0.2, 0.2)
        scale = side * rng.uniform(0.45, 0.75) * np.array([rng.uniform(0.8, 1.15), 1.0])
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        matrix = rotation @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag(scale)
        shift = rng.uniform(0.1, 0.25, size=2) * side + rng.uniform(-0.05, 0.05, size=2) * side
    strokes = []
    for stroke in STROKES[digit]:
        points = np.array(stroke, dtype=np.float64)
        if rng is not None:
            points = points + rng.normal(0.0, 0.015, size=points.shape)
        strokes.append(points @ matrix.T + shift)
    return strokes


def render(strokes, side=280, brush_width=PAGE_BRUSH_WIDTH):
    """A side x side uint8 image of the strokes drawn with a round, anti-aliased brush (255 = ink)."""
    centres = np.arange(side) + 0.5
    y, x = np.meshgrid(centres, centres, indexing="ij")
    ink = np.zeros((side, side))
    for points in strokes:
        for start, end in zip(points[:-1], points[1:]):
            ink = np.maximum(ink, _coverage(x, y, start, end, brush_width / 2))
    return np.rint(ink * 255).astype(np.uint8)


def _coverage(x, y, start, end, radius):
    """How much of each pixel a round brush of ``radius`` covers along the segment start-end (0..1)."""
    direction = end - start
    length_squared = float(direction @ direction) or 1.0
    along = np.clip(((x - start[0]) * direction[0] + (y - start[1]) * direction[1]) / length_squared, 0, 1)
    distance = np.hypot(x - start[0] - along * direction[0], y - start[1] - along * direction[1])
    return np.clip(radius + 0.5 - distance, 0.0, 1.0)


def drawn_digits(per_class, seed, side=112):
    """(images (N, 784) uint8, labels (N,)): random drawings of every digit, preprocessed as the demo does."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for digit in STROKES:
        for _ in range(per_class):
            brush = rng.uniform(0.8, 1.25) * PAGE_BRUSH_WIDTH * side / 280
            images.append(mnist_style(render(strokes_on_canvas(digit, side, rng=rng), side, brush)).reshape(-1))
            labels.append(digit)
    return np.array(images), np.array(labels)


def drawn_test_set(seed, per_class=3):
    """A labeled Dataset of drawn digits, named like a test split, for the random-test-image button."""
    images, labels = drawn_digits(per_class, seed)
    return Dataset(images, labels, CLASS_NAMES, name="drawn-digits/test", image_shape=(28, 28))


@functools.lru_cache(maxsize=1)
def drawn_digits_model():
    """A 784-64-10 MLP trained on 2,000 drawn digits (a few seconds; once per test process).

    It carries class names and a dataset name, as a model file from ``nncore train`` does.
    """
    images, labels = drawn_digits(per_class=200, seed=0)
    model = MLP([784, 64, 10], seed=0)
    model.fit(images, labels, epochs=25, batch_size=32, optimizer=Adam(lr=2e-3), seed=0, verbose=0)
    model.class_names = CLASS_NAMES
    model.dataset_name, model.input_shape = "drawn-digits", (28, 28)
    return model
