"""Classification metrics: accuracy and the confusion matrix, plus its text rendering."""
import numpy as np


def accuracy(y_true, y_pred):
    """Fraction of predictions equal to the labels."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    if y_true.size == 0:
        raise ValueError("accuracy of no samples is undefined")
    return float(np.mean(y_true == y_pred))


def confusion_matrix(y_true, y_pred, n_classes=None):
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


def format_confusion_matrix(matrix, class_names=None):
    """The matrix as aligned text: rows are true classes, columns predicted, with totals."""
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    names = [str(name) for name in (class_names if class_names is not None else range(n))]
    short = [name[:8] for name in names]
    width = max(max(len(str(int(matrix.max(initial=0)))), 1), max(len(s) for s in short)) + 1
    label_width = max(len(s) for s in short) + 1
    lines = [" " * label_width + " " + "".join(s.rjust(width) for s in short) + "  <- predicted",]
    for i in range(n):
        row = "".join(str(int(v)).rjust(width) for v in matrix[i])
        total = int(matrix[i].sum())
        correct = matrix[i, i] / total if total else float("nan")
        lines.append(f"{short[i].rjust(label_width)} {row}   {correct:6.1%}")
    return "\n".join(lines)
