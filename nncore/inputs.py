"""The input contract: X, y, Datasets and validation data, coerced and checked once for the
model, ``fit`` and the estimator.

- **X** is a 2-D array of numbers (n_samples, n_features), or a Dataset (its images). uint8
  arrays are pixels: kept as they are and scaled by 1/255 in the kernels, with no float copy
  of the set. Other integer arrays whose values all lie in 0..255 are pixels too, stored as
  uint8, so that ``np.array(list_of_pixels)`` (int64) gives the same answers as the uint8
  original; integers outside 0..255 are refused, as they would need a scale nncore cannot
  guess (pass floats for values used as they are). Floats (and object arrays of numbers) are
  converted to the network's dtype and must be finite there (1e300 is inf in float32).
  Booleans, complex numbers, strings and sparse matrices are refused.
- **y** holds class indices 0..n_classes-1, one per sample: integers, or floats with integer
  values; stored as int32.

What passed is returned as ``Samples``, which ``fit``, ``evaluate`` and ``predict`` take
without checking again. Backends trust it; the compiled core only keeps the bounds checks
that make it memory-safe. Refusals say which argument and what is wrong; their wording comes
from a ``Wording``, which the estimator replaces with scikit-learn's.
"""
from dataclasses import dataclass, replace

import numpy as np

PIXEL_RANGE = (0, 255)


class Wording:
    """The contract's refusals, one method per fact: each returns the exception to raise."""

    def none(self, name):
        return ValueError(f"{name} is None: expected an array")

    def sparse(self, name):
        return TypeError(f"{name} is a sparse matrix, which nncore does not take: convert it with {name}.toarray()")

    def complex(self, name):
        return ValueError(f"{name} holds complex numbers, which nncore does not take")

    def not_numbers(self, name, dtype):
        return TypeError(f"{name} must hold numbers, got dtype {dtype}")

    def booleans(self, name):
        return TypeError(f"{name} holds booleans: pass floats, or uint8 pixels")

    def not_2d(self, name, shape):
        # Images come as (N, 28, 28) from IDX files and most loaders: say the one line that fixes it.
        if len(shape) > 2:
            hint = f": flatten each sample with {name}.reshape(len({name}), -1)"
        elif len(shape) == 1:
            hint = f": one sample is {name}.reshape(1, -1)"
        else:
            hint = ""
        return ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {shape}{hint}")

    def too_few_samples(self, name, shape, minimum):
        return ValueError(f"{name} is empty (shape {shape}): at least {minimum} sample(s) needed")

    def no_features(self, name, shape):
        return ValueError(f"{name} has no features (shape {shape})")

    def wrong_width(self, name, got, expected):
        return ValueError(f"{name} has {got} features, the model takes {expected}")

    def not_pixels(self, name, dtype, low, high):
        return ValueError(f"{name} holds {dtype} values from {low} to {high}: integer arrays are pixels 0..255 "
                          "(scaled by 1/255, as uint8); pass floats for values used as they are")

    def not_finite(self, name, dtype):
        return ValueError(f"{name} contains NaN or infinity (in {np.dtype(dtype).name})")


WORDING = Wording()


@dataclass(frozen=True)
class Samples:
    """X (and y) that passed the contract for a network of ``n_inputs`` inputs, ``dtype`` and ``n_classes``.

    ``X`` is 2-D, C-contiguous, uint8 or ``dtype``, finite; ``y`` is None or int32 in 0..n_classes-1.
    """

    X: np.ndarray
    y: "np.ndarray | None"
    n_inputs: int
    dtype: np.dtype
    n_classes: "int | None"

    @classmethod
    def checked_for(cls, network, X, y=None):
        """Arrays that already passed ``features`` (and ``labels``) for ``network``, as Samples."""
        return cls(X, y, network.n_inputs, network.dtype, None if y is None else network.n_classes)

    def __len__(self):
        return len(self.X)

    def subset(self, rows):
        """The samples at ``rows`` (already checked: a copy, nothing checked again)."""
        return replace(self, X=self.X[rows], y=None if self.y is None else self.y[rows])

    def fits(self, network, with_labels):
        return (self.n_inputs == network.n_inputs and self.dtype == network.dtype
                and (not with_labels or (self.y is not None and self.n_classes == network.n_classes)))


def _as_array(X, name, wording):
    if X is None:
        raise wording.none(name)
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise wording.sparse(name)
    X = np.asarray(X)
    if X.dtype.kind == "c":
        raise wording.complex(name)
    if X.dtype.kind == "O":
        X = X.astype(np.float64)  # float() raises the TypeError a non-number deserves
    if X.dtype.kind == "b":
        raise wording.booleans(name)
    if X.dtype.kind not in "iuf":
        raise wording.not_numbers(name, X.dtype)
    return X


def features(X, n_inputs, dtype, name="X", min_samples=0, wording=WORDING):
    """``X`` as the backends take it: see the module docstring. ``n_inputs`` None: any width >= 1."""
    X = _as_array(X, name, wording)
    if X.ndim != 2:
        raise wording.not_2d(name, X.shape)
    if X.shape[0] < min_samples:
        raise wording.too_few_samples(name, X.shape, min_samples)
    if n_inputs is None and X.shape[1] == 0:
        raise wording.no_features(name, X.shape)
    if n_inputs is not None and X.shape[1] != n_inputs:
        raise wording.wrong_width(name, X.shape[1], n_inputs)
    if X.dtype == np.uint8:
        return np.ascontiguousarray(X)
    if X.dtype.kind in "iu":
        low, high = (int(X.min()), int(X.max())) if X.size else PIXEL_RANGE
        if low < PIXEL_RANGE[0] or high > PIXEL_RANGE[1]:
            raise wording.not_pixels(name, X.dtype, low, high)
        return np.ascontiguousarray(X, dtype=np.uint8)
    # Checked after the conversion: a finite float64 such as 1e300 is inf in float32.
    with np.errstate(over="ignore"):
        converted = np.ascontiguousarray(X, dtype=dtype)
    if not np.all(np.isfinite(converted)):
        raise wording.not_finite(name, dtype)
    return converted


def labels(y, n_samples, n_classes, name="y"):
    """Integer class indices in 0..n_classes-1, one per sample, as int32."""
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinity")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class indices, got non-integer values")
    elif y.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},), got {y.shape}")
    if n_samples and (y.min() < 0 or y.max() >= n_classes):
        bad = y.min() if y.min() < 0 else y.max()
        raise ValueError(f"{name} holds label {bad:g}, outside 0..{n_classes - 1} "
                         f"(the model has {n_classes} outputs)")
    return np.ascontiguousarray(y, dtype=np.int32)


def samples(X, y, network, purpose, name="X", labels_name="y", with_labels=True, min_samples=0,
            wording=WORDING):
    """X and y (or a Dataset as X, y omitted) checked for ``network``, as ``Samples``.

    ``purpose`` names the caller in the one refusal that is about the call, not the data
    ("fit needs labels y"). ``Samples`` made for the same network pass through unchecked.
    """
    if isinstance(X, Samples):
        if y is not None or not X.fits(network, with_labels) or len(X) < min_samples:
            raise ValueError(f"{purpose} was given Samples checked for another network, or with y beside them")
        return X
    if y is None and hasattr(X, "images") and hasattr(X, "labels"):
        n_named = len(getattr(X, "class_names", ()))
        if n_named and n_named != network.n_classes:
            raise ValueError(f"{purpose}: {getattr(X, 'name', 'the Dataset')} has {n_named} classes, the model "
                             f"{network.n_classes} outputs")
        X, y = X.images, X.labels
    if with_labels and y is None:
        raise TypeError(f"{purpose} needs labels y (or a Dataset as X)")
    X = features(X, network.n_inputs, network.dtype, name, min_samples, wording)
    return Samples.checked_for(network, X, labels(y, len(X), network.n_classes, labels_name) if with_labels else None)


def validation_samples(validation_data, network):
    """``validation_data`` ((X_val, y_val) or a Dataset) checked for ``network``: at least one sample."""
    if isinstance(validation_data, Samples) or (hasattr(validation_data, "images")
                                                and hasattr(validation_data, "labels")):
        X_val, y_val = validation_data, None
    else:
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise TypeError("validation_data must be (X_val, y_val) or a Dataset") from None
    return samples(X_val, y_val, network, "validation_data", name="validation_data X",
                   labels_name="validation_data y", min_samples=1)


def count(name, value, minimum):
    """``value`` as an int >= ``minimum`` (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def batch_size(value):
    """None (the whole set: full-batch gradient descent) or a positive int."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"batch_size must be a positive int or None, got {value!r}")
    if value < 1:
        raise ValueError(f"batch_size must be >= 1, got {value}")
    return int(value)
