"""Pictures of what a trained network does: predictions, training curves, confusion, weights.

Every figure function returns a ``matplotlib.figure.Figure`` built directly (never through
pyplot), with an Agg canvas attached, so nothing depends on a GUI backend or on pyplot's
global state: save it with ``save_figure`` or ``fig.savefig``. matplotlib is the optional
``[plot]`` extra and is imported only inside the figure functions, so this module imports
without it and ``format_confusion_matrix`` (plain text, for ``nncore evaluate``) always works.

A ``dataset`` is an ``nncore.data.Dataset`` (``.images`` uint8 (N, 784), ``.labels``,
``.class_names``, ``.name``) or a plain ``(X, y)`` tuple; a ``history`` is what ``fit``
returns (anything with a Keras-like ``.history`` dict of per-epoch lists) or that dict.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from nncore import metrics
from nncore._atomic import atomic_open
from nncore.metrics import format_confusion_matrix  # noqa: F401  (re-exported: text needs no matplotlib)
from nncore._types import ArrayLike, PathLike

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from nncore.data.dataset import Dataset
    from nncore.history import History
    from nncore.model import MLP

#: What the figure functions draw from: a Dataset, or a plain (X, y) pair.
Examples = Union["Dataset", "tuple[ArrayLike, ArrayLike]"]

INSTALL_HINT = 'pip install "nncore[plot]"'

# GitHub's "success" and "danger" colours: distinct for most colour-blind readers, since
# they differ in lightness as well as hue, and readable on white.
RIGHT_COLOR = "#1a7f37"
WRONG_COLOR = "#cf222e"

FIGURE_FILES = {
    "training_curves": "training_curves",
    "prediction_grid": "predictions",
    "prediction_errors": "prediction_errors",
    "confusion_matrix": "confusion_matrix",
    "first_layer_weights": "first_layer_weights",
}


# ---------------------------------------------------------------- matplotlib, only when drawing

def _new_figure(**figure_options):
    """A Figure with an Agg canvas; ImportError naming the extra when matplotlib is missing."""
    try:
        # The package itself first: a test (or a broken install) that blocks ``matplotlib``
        # must fail here even when its submodules are still cached in sys.modules.
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(
            f"nncore's figures need matplotlib, which is the optional [plot] extra: "
            f"{INSTALL_HINT}") from error
    figure = Figure(**figure_options)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path: PathLike, dpi: int = 100) -> Path:
    """Save ``figure`` as PNG or SVG, chosen by the suffix of ``path``; return the Path.

    Missing parent directories are created. ``dpi`` applies to PNG. The file is written as
    model files are (``nncore._atomic``): whole or not at all, never over a link or device.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise ValueError(f"save_figure writes .png or .svg files, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, streams=True) as stream:
        figure.savefig(stream, format=suffix[1:], dpi=dpi)
    return path


# ---------------------------------------------------------------- inputs

def _examples(dataset):
    """(images (N, D) uint8, labels (N,) int64, class names or None, name) of a dataset or (X, y)."""
    if hasattr(dataset, "images") and hasattr(dataset, "labels"):
        images, labels = dataset.images, dataset.labels
        class_names = tuple(getattr(dataset, "class_names", ()) or ()) or None
        name = getattr(dataset, "name", None)
    else:
        try:
            images, labels = dataset
        except (TypeError, ValueError):
            raise TypeError("dataset must be an nncore.data.Dataset or an (images, labels) tuple, "
                            f"got {type(dataset).__name__}") from None
        class_names, name = None, None
    images = np.ascontiguousarray(images)
    labels = np.asarray(labels).astype(np.int64, copy=False)
    if images.ndim != 2 or labels.shape != (len(images),):
        raise ValueError(f"need images of shape (N, D) and labels of shape (N,), "
                         f"got {images.shape} and {labels.shape}")
    return images, labels, class_names, name


def _class_names(model, class_names):
    n_classes = int(model.layer_sizes[-1])
    if class_names is None:
        return tuple(str(k) for k in range(n_classes))
    if len(class_names) != n_classes:
        raise ValueError(f"the dataset names {len(class_names)} classes but the model has "
                         f"{n_classes} outputs")
    return tuple(class_names)


def _image_side(n_features):
    """Side of the square image a row of ``n_features`` pixels is (28 for MNIST's 784)."""
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(f"cannot show {n_features} features as a square image")
    return side


def _history_dict(history):
    """The per-epoch dict of a History object (``.history``) or of a plain dict."""
    values = getattr(history, "history", history)
    if not isinstance(values, dict):
        raise TypeError(f"history must be a History or a dict of per-epoch lists, "
                        f"got {type(history).__name__}")
    return values


def _series(values, key):
    """Per-epoch floats for ``key`` with None as NaN, or None when absent or all missing."""
    column = values.get(key)
    if column is None:
        return None
    column = np.array([np.nan if value is None else float(value) for value in column])
    return None if column.size == 0 or np.all(np.isnan(column)) else column


def _dataset_label(name, default="test set"):
    return name if name else default


def _grid_shape(count, columns=None, target_ratio=2.0):
    """(columns, rows) for ``count`` cells: about ``target_ratio`` times wider than tall, few empty cells."""
    if columns:
        columns = int(columns)
        return columns, math.ceil(count / columns)
    target = math.sqrt(count * target_ratio)
    candidates = range(max(1, math.floor(target * 0.7)), max(1, math.ceil(target * 1.4)) + 1)
    columns = min(candidates, key=lambda c: (c * math.ceil(count / c) - count, abs(c - target)))
    columns = min(columns, count)
    return columns, math.ceil(count / columns)


# ---------------------------------------------------------------- figures

def prediction_grid(model: MLP, dataset: Examples, n: int = 36, only_errors: bool = False,
                    columns: int | None = None) -> Figure:
    """A grid of the first ``n`` images (or the first ``n`` misclassified ones) with predictions.

    Each cell's title is ``pred 7`` in green when the model is right, or ``pred 7`` over
    ``true 3`` in red when it is wrong (class names instead of digits where the dataset
    has them, e.g. Fashion-MNIST's ``Sneaker``).
    """
    images, labels, class_names, name = _examples(dataset)
    class_names = _class_names(model, class_names)
    side = _image_side(images.shape[1])
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")

    if only_errors:
        predictions_all = np.asarray(model.predict(images))
        wrong = np.flatnonzero(predictions_all != labels)
        chosen = wrong[:n]
        predictions = predictions_all[chosen]
        heading = (f"First {len(chosen)} of the {len(wrong):,} misclassified images "
                   f"of {_dataset_label(name)} ({len(labels):,} images)")
    else:
        chosen = np.arange(min(n, len(labels)))
        predictions = np.asarray(model.predict(images[chosen]))
        n_right = int((predictions == labels[chosen]).sum())
        heading = f"First {len(chosen)} images of {_dataset_label(name)}: {n_right} predicted right"

    count = max(len(chosen), 1)
    columns, rows = _grid_shape(count, columns)
    longest = max(len(name) for name in class_names)
    cell_width = 0.95 if longest <= 2 else min(0.9 + 0.025 * longest, 1.4)
    title_lines = 1 if np.all(predictions == labels[chosen]) else 2
    cell_height = 0.95 + 0.13 * title_lines
    figure = _new_figure(figsize=(columns * cell_width + 0.2, rows * cell_height + 0.4),
                         layout="constrained")
    figure.suptitle(heading, fontsize=10)

    if len(chosen) == 0:
        axes = figure.add_subplot()
        axes.set_axis_off()
        axes.text(0.5, 0.5, "no misclassified images", ha="center", va="center", fontsize=11)
        return figure

    for cell, (index, predicted) in enumerate(zip(chosen, predictions, strict=True)):
        axes = figure.add_subplot(rows, columns, cell + 1)
        axes.imshow(images[index].reshape(side, side), cmap="gray_r", vmin=0, vmax=255,
                    interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        right = predicted == labels[index]
        color = RIGHT_COLOR if right else WRONG_COLOR
        title = f"pred {class_names[predicted]}"
        if not right:
            title += f"\ntrue {class_names[labels[index]]}"
        axes.set_title(title, color=color, fontsize=8, linespacing=1.1, pad=2)
        for spine in axes.spines.values():
            spine.set_edgecolor(color)
            spine.set_linewidth(1.0 if right else 2.0)
    return figure


def training_curves(history: History | Mapping[str, Sequence[Any]]) -> Figure:
    """Loss (left) and accuracy (right) per epoch, training solid and validation dashed."""
    values = _history_dict(history)
    curves = {key: _series(values, key) for key in ("loss", "val_loss", "accuracy", "val_accuracy")}
    lengths = [len(curve) for curve in curves.values() if curve is not None]
    if not lengths:
        raise ValueError("history has no 'loss', 'accuracy', 'val_loss' or 'val_accuracy' values")
    n_epochs = max(lengths)
    # A run resumed from a checkpoint counts its epochs from where the model had got to.
    epoch_numbers = values.get("epoch")
    if epoch_numbers is None or len(epoch_numbers) == 0:
        epoch_numbers = np.arange(1, n_epochs + 1)
    epoch_numbers = np.asarray(epoch_numbers)

    figure = _new_figure(figsize=(9, 3.6), layout="constrained")
    from matplotlib.ticker import MaxNLocator, PercentFormatter

    loss_axes, accuracy_axes = figure.subplots(1, 2)
    panels = ((loss_axes, "loss", "Loss"), (accuracy_axes, "accuracy", "Accuracy"))
    for axes, key, title in panels:
        for prefix, label, style in (("", "training", "-"), ("val_", "validation", "--")):
            curve = curves[prefix + key]
            if curve is not None:
                axes.plot(epoch_numbers[:len(curve)], curve, style, marker="o", markersize=3.5, label=label)
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.set_xlim(epoch_numbers[0] - 0.5, epoch_numbers[-1] + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend()
    loss_axes.set_ylabel("loss")
    accuracy_axes.set_ylabel("accuracy")
    accuracy_axes.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    final = [f"{label} accuracy {100 * curve[~np.isnan(curve)][-1]:.2f}%"
             for label, curve in (("training", curves["accuracy"]), ("validation", curves["val_accuracy"]))
             if curve is not None]
    if final:
        figure.suptitle(f"After epoch {epoch_numbers[-1]}: " + ", ".join(final), fontsize=10)
    return figure


def confusion_matrix(model: MLP, dataset: Examples) -> Figure:
    """Counts of (true, predicted) class, annotated, beside each class's accuracy as a bar."""
    images, labels, class_names, name = _examples(dataset)
    class_names = _class_names(model, class_names)
    n_classes = len(class_names)
    predictions = np.asarray(model.predict(images))
    matrix = metrics.confusion_matrix(labels, predictions, n_classes)
    accuracy = metrics.per_class_accuracy(matrix)

    longest = max(len(name) for name in class_names)
    size = 0.5 * n_classes + 1.6 + 0.06 * longest
    figure = _new_figure(figsize=(size + 2.4, size), layout="constrained")
    from matplotlib.ticker import MaxNLocator

    matrix_axes, accuracy_axes = figure.subplots(
        1, 2, gridspec_kw={"width_ratios": [n_classes, 3.0]}, sharey=True)

    matrix_axes.imshow(np.log1p(matrix), cmap="Blues", aspect="equal")
    darkest = np.log1p(matrix.max()) if matrix.size else 1.0
    font_size = 8 if n_classes <= 12 else 6
    for true_class in range(n_classes):
        for predicted_class in range(n_classes):
            count = int(matrix[true_class, predicted_class])
            if count == 0:
                continue
            dark = np.log1p(count) > 0.6 * darkest
            matrix_axes.text(predicted_class, true_class, str(count), ha="center", va="center",
                             fontsize=font_size, color="white" if dark else "black")
    ticks = np.arange(n_classes)
    matrix_axes.set_xticks(ticks, class_names, rotation=45 if longest > 2 else 0,
                           ha="right" if longest > 2 else "center", rotation_mode="anchor")
    matrix_axes.set_yticks(ticks, class_names)
    matrix_axes.set_xlabel("predicted class")
    matrix_axes.set_ylabel("true class")
    matrix_axes.set_title("Counts (true × predicted)")

    # Dots on an axis zoomed to the observed range: bars from 0 would all look full at 97%.
    known = accuracy[~np.isnan(accuracy)]
    lowest = 100 * known.min() if known.size else 0.0
    left = max(0.0, 5 * math.floor((lowest - 1.0) / 5))
    accuracy_axes.hlines(ticks, left, 100 * np.nan_to_num(accuracy, nan=left / 100),
                         color="#9ab8dc", linewidth=2)
    accuracy_axes.plot(100 * accuracy, ticks, "o", color="#1f4e8c", markersize=5)
    for true_class, value in enumerate(accuracy):
        text = "-" if np.isnan(value) else f"{100 * value:.1f}%"
        accuracy_axes.annotate(text, (1.0, true_class), xycoords=("axes fraction", "data"),
                               xytext=(4, 0), textcoords="offset points",
                               ha="left", va="center", fontsize=font_size)
    accuracy_axes.set_xlim(left, 100)
    accuracy_axes.xaxis.set_major_locator(MaxNLocator(nbins=3))
    accuracy_axes.set_xlabel("accuracy (%)")
    accuracy_axes.set_title("Per-class accuracy")
    accuracy_axes.tick_params(axis="y", left=False)
    accuracy_axes.grid(axis="x", alpha=0.3)

    total = int(matrix.sum())
    overall = f"{100 * np.trace(matrix) / total:.2f}%" if total else "-"
    figure.suptitle(f"Confusion matrix on {_dataset_label(name)} ({total:,} images): "
                    f"accuracy {overall}", fontsize=10)
    return figure


def first_layer_weights(model: MLP, max_units: int = 64, columns: int | None = None) -> Figure:
    """Each hidden unit's incoming weights as an image, blue negative, red positive, white 0.

    Shows the first ``max_units`` units of the first layer on one colour scale centred at 0
    (its ends at the 99.5th percentile of |W|, so a few large weights do not wash the rest out).
    """
    weights = _first_layer(model)
    side = _image_side(weights.shape[0])
    n_units = weights.shape[1]
    shown = min(n_units, int(max_units))
    if shown < 1:
        raise ValueError(f"max_units must be at least 1, got {max_units}")
    weights = np.asarray(weights[:, :shown], dtype=np.float64)
    limit = float(np.percentile(np.abs(weights), 99.5)) or 1.0

    columns, rows = _grid_shape(shown, columns)
    figure = _new_figure(figsize=(columns * 0.72 + 1.0, rows * 0.72 + 0.45), layout="constrained")
    kind = "hidden" if len(model.layer_sizes) > 2 else "output"
    figure.suptitle(f"First-layer weights: {shown} of {n_units} {kind} units, "
                    f"each unit's {side}×{side} incoming weights", fontsize=10)
    grid = figure.subplots(rows, columns, squeeze=False)
    image = None
    for unit, axes in enumerate(grid.flat):
        axes.set_axis_off()
        if unit < shown:
            image = axes.imshow(weights[:, unit].reshape(side, side), cmap="RdBu_r",
                                vmin=-limit, vmax=limit, interpolation="nearest")
    colorbar = figure.colorbar(image, ax=grid, shrink=0.8, aspect=30)
    colorbar.set_label("weight")
    return figure


def _first_layer(model):
    """W of the first layer, (fan_in, fan_out), a view into the model's flat parameters."""
    return model.layers[0][0]


# ---------------------------------------------------------------- everything at once

def write_all(model: MLP, dataset: Examples, history: History | None = None, directory: PathLike = ".",
              suffix: str = ".png") -> list[Path]:
    """Write every figure that applies into ``directory``; return the paths written.

    Always the prediction grid, the grid of errors, the confusion matrix and the first-layer
    weights; the training curves too when ``history`` is given. ``dataset`` should be held-out
    data (the test or validation set).
    """
    directory = Path(directory)
    figures = []
    if history is not None:
        figures.append(("training_curves", lambda: training_curves(history)))
    figures += [
        ("prediction_grid", lambda: prediction_grid(model, dataset)),
        ("prediction_errors", lambda: prediction_grid(model, dataset, only_errors=True)),
        ("confusion_matrix", lambda: confusion_matrix(model, dataset)),
        ("first_layer_weights", lambda: first_layer_weights(model)),
    ]
    paths = []
    for kind, make in figures:
        paths.append(save_figure(make(), directory / (FIGURE_FILES[kind] + suffix)))
    return paths
