"""Classification metrics: accuracy and the confusion matrix, plus its text rendering."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._terminal import printable


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of predictions equal to the labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    if y_true.size == 0:
        raise ValueError("accuracy of no samples is undefined")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None) -> NDArray[np.int64]:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be 1-D of one length")
    if n_classes is None:
        n_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    if y_true.size and (min(y_true.min(), y_pred.min()) < 0
                        or max(y_true.max(), y_pred.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def per_class_accuracy(matrix: ArrayLike) -> NDArray[np.float64]:
    """Diagonal over row sums; NaN for a class with no examples."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / np.maximum(totals, 1), np.nan)


def format_confusion_matrix(matrix: ArrayLike, class_names: Sequence[str] | None = None) -> str:
    """The confusion matrix as aligned text: rows true classes, columns predicted, plus accuracy.

    Columns are headed by class index to stay narrow; each row names its class in full, e.g.
    ``9 Ankle boot``. The last column is the row's accuracy (recall); the last line the total.
    Needs no matplotlib.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix is square, got shape {matrix.shape}")
    n_classes = matrix.shape[0]
    if class_names is None:
        class_names = [str(k) for k in range(n_classes)]
    if len(class_names) != n_classes:
        raise ValueError(f"{len(class_names)} class names for a {n_classes}-class matrix")
    # Names from a model file are anyone's: escaped, they cannot drive the terminal or break the rows.
    names = [printable(name) for name in class_names]
    row_labels = [name if name == str(k) else f"{k} {name}" for k, name in enumerate(names)]
    corner = "true \\ predicted"
    label_width = max(len(corner), *(len(label) for label in row_labels))
    cell_width = max(3, len(str(int(matrix.max()) if matrix.size else 0)), len(str(n_classes - 1)))
    accuracy = per_class_accuracy(matrix)

    def line(label, cells, last):
        return (f"{label:<{label_width}}  " + " ".join(f"{cell:>{cell_width}}" for cell in cells)
                + f"  {last:>8}").rstrip()

    lines = [line(corner, [str(k) for k in range(n_classes)], "accuracy")]
    for label, row, row_accuracy in zip(row_labels, matrix, accuracy, strict=True):
        shown = "-" if np.isnan(row_accuracy) else f"{100 * row_accuracy:.1f}%"
        lines.append(line(label, [str(int(count)) for count in row], shown))
    total = int(matrix.sum())
    overall = f"{100 * np.trace(matrix) / total:.2f}%" if total else "-"
    lines.append(f"accuracy {overall} ({int(np.trace(matrix))} of {total})")
    return "\n".join(lines)
