"""The losses nncore trains with, by name, with their NumPy definitions.

Both act on the network's logits z (n, k) and integer labels y (n,), through the softmax
p = softmax(z):

- ``"cross_entropy"``: log(sum_j exp z_j) - z_y  (the negative log-likelihood of the label);
- ``"mse"``: sum_j (p_j - onehot(y)_j)^2  (squared error of the softmax output, as the
  seed projects' "MSE" networks use).

Backends report the sum of the per-sample losses; ``fit`` and ``evaluate`` divide by the
number of samples. The definitions are the reference backend's kernels, so there is one
source of truth.
"""
import numpy as np

from .backends._common import LOSSES
from .backends.numpy_backend import LOSS_KERNELS, softmax

__all__ = ["LOSSES", "cross_entropy", "loss_per_sample", "mse", "softmax"]


def loss_per_sample(name, logits, y):
    """Per-sample loss ``name`` of ``logits`` (n, k) against labels ``y`` (n,)."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    losses, _, _ = LOSS_KERNELS[name](logits, y, max(len(y), 1))
    return losses


def cross_entropy(logits, y):
    """Mean cross-entropy of ``logits`` against labels ``y``."""
    return float(loss_per_sample("cross_entropy", logits, y).mean())


def mse(logits, y):
    """Mean squared error of softmax(``logits``) against one-hot ``y``."""
    return float(loss_per_sample("mse", logits, y).mean())
