"""The losses nncore trains with, by name, with their NumPy definitions (the kernels' reference).

Both act on the network's logits z (n, k) and integer labels y (n,), through the softmax
p = softmax(z):

- ``"cross_entropy"``: log(sum_j exp z_j) - z_y  (the negative log-likelihood of the label);
- ``"mse"``: sum_j (p_j - onehot(y)_j)^2  (squared error of the softmax output, as the
  seed projects' "MSE" networks use).

Each registry entry holds the loss's ``code`` (``LOSS_*`` of src_c/_network.pxd), its NumPy
``forward_backward`` (per-sample losses, dlogits averaged over the batch size m, and the
probabilities: the twin of the kernel of the same name in src_c/_kernels.pxd) and the other
names the command line takes for it. Backends report the sum of the per-sample losses;
``fit`` and ``evaluate`` divide by the number of samples.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

__all__ = ["LOSSES", "Loss", "cross_entropy", "get_loss", "loss_per_sample", "mse", "softmax_forward"]


class Loss(NamedTuple):
    """One loss: its name, kernel code, NumPy forward-backward, and the aliases the CLI accepts."""

    name: str
    code: int
    forward_backward: Callable
    aliases: tuple = ()


def softmax_forward(logits):
    """Row-wise softmax, max subtracted so exp never overflows."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def cross_entropy_forward_backward(logits, y, m):
    """Per-sample loss log(sum(exp z)) - z_y and dlogits = (P - onehot(y)) / m.

    logits (b, k), y (b,) int; m is the size of the whole batch the gradient is averaged over.
    Returns (losses (b,), dlogits (b, k), probabilities (b, k)).
    """
    row_max = logits.max(axis=1, keepdims=True)
    exp = np.exp(logits - row_max)
    sum_exp = exp.sum(axis=1, keepdims=True)
    probs = exp / sum_exp
    rows = np.arange(len(y))
    losses = (np.log(sum_exp[:, 0]) + row_max[:, 0]) - logits[rows, y]
    dlogits = probs.copy()
    dlogits[rows, y] -= 1
    dlogits /= m
    return losses, dlogits, probs


def mse_forward_backward(logits, y, m):
    """Squared error of the softmax output: per-sample loss sum_k (p_k - onehot_k)^2.

    Its gradient through the softmax: with g = 2 (P - Y) / m, dlogits = P * (g - sum_k g_k p_k).
    Returns (losses (b,), dlogits (b, k), probabilities (b, k)).
    """
    probs = softmax_forward(logits)
    residual = probs.copy()
    residual[np.arange(len(y)), y] -= 1
    losses = (residual * residual).sum(axis=1)
    g = 2.0 * residual / m
    dlogits = probs * (g - (g * probs).sum(axis=1, keepdims=True))
    return losses, dlogits, probs


LOSSES = {loss.name: loss for loss in (
    Loss("cross_entropy", 0, cross_entropy_forward_backward, aliases=("cross-entropy", "crossentropy", "ce", "nll")),
    Loss("mse", 1, mse_forward_backward),
)}


def get_loss(name: str | Loss) -> Loss:
    """The registry entry called ``name`` (or one of its aliases); ValueError naming the choices otherwise."""
    if isinstance(name, Loss):
        return name
    if isinstance(name, str):
        for loss in LOSSES.values():
            if name == loss.name or name.lower() in loss.aliases:
                return loss
    raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {name!r}")


def loss_per_sample(name, logits, y):
    """Per-sample loss ``name`` of ``logits`` (n, k) against labels ``y`` (n,)."""
    loss = get_loss(name)
    logits = np.asarray(logits, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    losses, _, _ = loss.forward_backward(logits, y, max(len(y), 1))
    return losses


def cross_entropy(logits, y):
    """Mean cross-entropy of ``logits`` against labels ``y``."""
    return float(loss_per_sample("cross_entropy", logits, y).mean())


def mse(logits, y):
    """Mean squared error of softmax(``logits``) against one-hot ``y``."""
    return float(loss_per_sample("mse", logits, y).mean())
