"""The compiled backend: numpy_backend's functions, run by the Cython core (nncore._core).

Every public function validates its arguments once with the shared ``_common`` checks, then
makes one call into the extension, which runs the whole loop (an epoch, an inference pass,
the full-batch gradient) in C with the GIL released and without allocating per batch. The
extension is imported here, at module import, so a missing or broken build raises
ImportError at once; there is no fallback to the NumPy backend.
"""
import numpy as np

from .. import _core
from ._common import (EpochResult, check_batch_size, check_inputs, check_labels, check_layer_sizes,
                      check_loss, check_optimizer, check_params, check_writeable, epoch_order)

NAME = "cython"

# Rows the workspaces hold: a larger batch is processed in chunks of this many rows with the
# gradients accumulated, which gives the same result as one big batch without an
# (n_samples, n_inputs) float copy of the data. Tests lower it to exercise the chunking.
CHUNK_ROWS = _core.DEFAULT_CHUNK_ROWS


def forward(params, layer_sizes, X, batch_size=None):
    """Class probabilities (n_samples, n_out) for X, computed batch_size rows at a time."""
    layer_sizes = check_layer_sizes(layer_sizes)
    check_params(params, layer_sizes)
    check_inputs(X, layer_sizes, params.dtype)
    batch_size = check_batch_size(batch_size, len(X))
    out = np.empty((len(X), layer_sizes[-1]), dtype=params.dtype)
    # Each row's probabilities do not depend on the batching: the core uses its own chunks.
    _core.forward(params, layer_sizes, X, out, min(batch_size, CHUNK_ROWS))
    return out


def evaluate(params, layer_sizes, X, y, loss="cross_entropy", batch_size=None):
    """(sum of per-sample losses, number of correct argmax predictions) over X, y."""
    layer_sizes = check_layer_sizes(layer_sizes)
    check_params(params, layer_sizes)
    check_inputs(X, layer_sizes, params.dtype)
    y = check_labels(y, len(X), layer_sizes[-1])
    check_loss(loss)
    batch_size = check_batch_size(batch_size, len(X))
    loss_sum, n_correct = _core.evaluate(params, layer_sizes, X, y, _core.LOSS_KINDS[loss],
                                         min(batch_size, CHUNK_ROWS))
    return float(loss_sum), int(n_correct)


def loss_and_grad(params, layer_sizes, X, y, loss="cross_entropy", weight_decay=0.0):
    """Mean loss over all of X plus 0.5*weight_decay*||params||^2, and its gradient (flat)."""
    layer_sizes = check_layer_sizes(layer_sizes)
    check_params(params, layer_sizes)
    check_inputs(X, layer_sizes, params.dtype)
    y = check_labels(y, len(X), layer_sizes[-1])
    check_loss(loss)
    if len(X) == 0:
        raise ValueError("X is empty: the loss of no samples is undefined")
    grad = np.empty_like(params)
    loss_sum = _core.loss_and_grad(params, layer_sizes, X, y, _core.LOSS_KINDS[loss], grad, CHUNK_ROWS)
    value = float(loss_sum) / len(X)
    if weight_decay:
        value += 0.5 * weight_decay * float(params @ params)
        grad += weight_decay * params
    return value, grad


def train_epoch(params, layer_sizes, optimizer, X, y, batch_size=None, seed=0, loss="cross_entropy"):
    """One epoch of mini-batch training, updating ``params`` and the optimizer state in place.

    Same contract as numpy_backend.train_epoch: samples in ``epoch_order(len(X), seed)``,
    ``batch_size`` at a time (None: one full batch); a batch whose loss is not finite is not
    applied and ends the epoch. Ctrl-C stops the epoch after the batch in progress has been
    applied; ``optimizer.step`` then counts the applied batches and KeyboardInterrupt propagates.
    """
    layer_sizes = check_layer_sizes(layer_sizes)
    check_params(params, layer_sizes)
    check_writeable(params, "params")
    check_inputs(X, layer_sizes, params.dtype)
    y = check_labels(y, len(X), layer_sizes[-1])
    check_loss(loss)
    check_optimizer(optimizer, params)
    batch_size = check_batch_size(batch_size, len(X))
    if len(X) == 0:
        return EpochResult(0.0, 0, 0, 0, None)
    order = np.ascontiguousarray(epoch_order(len(X), seed), dtype=np.intp)
    state = optimizer.state_buffers()
    if optimizer.kind == "sgd":
        state_a = state_b = state["velocity"]
        hyper = dict(adam=False, lr=optimizer.lr, momentum=optimizer.momentum, nesterov=optimizer.nesterov,
                     weight_decay=optimizer.weight_decay)
    else:
        state_a, state_b = state["m"], state["v"]
        hyper = dict(adam=True, lr=optimizer.lr, beta1=optimizer.betas[0], beta2=optimizer.betas[1],
                     eps=optimizer.eps, weight_decay=optimizer.weight_decay)
    loss_total = np.zeros(1, dtype=np.float64)
    progress = np.zeros(4, dtype=np.intp)  # n_batches, n_correct, n_samples, diverged_batch (0: none)
    try:
        _core.train_epoch(params, layer_sizes, X, y, order, batch_size, _core.LOSS_KINDS[loss], state_a, state_b,
                          loss_total, progress, step0=optimizer.step, chunk_rows=CHUNK_ROWS, **hyper)
    finally:
        # Also on KeyboardInterrupt: the core stops only between batches, so the step count
        # always matches the updates that reached params and the state buffers.
        optimizer.step += int(progress[0])
    n_batches, n_correct, n_samples, diverged = (int(v) for v in progress)
    return EpochResult(float(loss_total[0]), n_correct, n_samples, n_batches, diverged or None)
