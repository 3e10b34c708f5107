"""The reference backend: the specification of every network pass, in plain NumPy.

The compiled backend (``cython_backend``) offers the same calls with the same arguments and
meaning; the tests hold it to this module's results, and the benchmark measures it against
this module's speed. Everything here runs one batch at a time and reads like the maths; it
is written for clarity first, then for reasonable speed. The element-wise definitions live
with their registries: activations in ``nncore.activations``, losses in ``nncore.losses``,
optimizer updates in ``nncore.optim``; each has a kernel of the same name in src_c/.

Shapes: a batch X is (m, n_in); layer l maps (m, fan_in) -> (m, fan_out) by Z = A W + b;
hidden layers apply their activation; the last layer's Z are the logits, turned into
probabilities by softmax.

Training noise: a hidden layer with a dropout rate multiplies its output by a mask of kept
units times 1/(1 - rate) (inverted dropout); a shift augmentation moves each input image. Both
are drawn from counters (``nncore.counters``): the epoch's seed and each row's position in the
epoch's order, so the compiled core draws exactly these masks and shifts.
"""
import functools

import numpy as np

from .. import counters
from ..augment import shift_images
from ..losses import softmax_forward
from .base import Backend, EpochResult, epoch_order, input_scale

# ---------------------------------------------------------------- the ops, twins of the kernels

def bias_activation_forward(Z, b, activation):
    """Z (m, n) += b (n,), then ``activation`` (an nncore.activations entry) in place.

    Returns (A, z): z is a copy of Z + b before the activation when the activation's derivative
    reads its input (``activation.reads_input``), else None.
    """
    Z += b
    kept = Z.copy() if activation.reads_input else None
    return activation.forward(Z), kept


def dropout_forward(A, keep, scale):
    """Inverted dropout in place: A (m, n) times ``scale`` where ``keep``, times 0 elsewhere (NaN stays NaN)."""
    A *= np.where(keep, scale, A.dtype.type(0))
    return A


def activation_backward(dA, A, Z, activation, dropout=None):
    """dZ = dA * f'(z) in place on dA, f' written from the layer's output A, or from its input Z
    (kept by the forward pass) when ``activation.reads_input``.

    ``dropout`` (keep, scale, unscale) is the forward pass's: then A is the dropped, scaled
    output, the gradient flows through the mask as through the forward pass (dropout_forward),
    and f' reads A * unscale, the activation before scaling (as the kernel reads it: it keeps
    only A). The kernel of the same name also adds dZ's column sums to the bias gradient in that pass.
    """
    if dropout is not None:
        keep, scale, unscale = dropout
        dropout_forward(dA, keep, scale)
        A = A * unscale
    return activation.backward(dA, Z if activation.reads_input else A)


def bias_backward(db, dZ):
    """db = column sums of dZ (the kernel adds them to a db zeroed once per batch)."""
    return np.sum(dZ, axis=0, out=db)


def gather_scale(X, indices, dtype):
    """The batch X[indices] as floats; uint8 pixels are scaled by 1/255."""
    batch = X[indices]
    if batch.dtype == np.uint8:
        return batch.astype(dtype) * input_scale(dtype)
    return batch


def apply_update(params, grad, optimizer):
    """Apply ``optimizer``'s rule to ``params`` in place, advancing its step count."""
    optimizer.step += 1
    optimizer.numpy_update(params, grad)


# ---------------------------------------------------------------- a batch through the network

class _Noise:
    """The draws of one training batch: a dropout mask per site, and the input shifts.

    ``seed`` is the epoch's; ``positions`` are the batch rows' places in the epoch's order.
    """

    def __init__(self, network, dtype, seed, positions, shift=None):
        widths = network.layer_sizes[:-1]  # the sites: the inputs, then each hidden layer's output
        self.dropouts = [None if threshold == 0 else
                         (counters.keep_mask(seed, site, positions, widths[site], threshold),
                          counters.keep_scale(threshold, dtype), counters.drop_unscale(threshold, dtype))
                         for site, threshold in enumerate(network.drop_thresholds)]
        self.shifts = None if shift is None else counters.image_shifts(seed, positions, shift.pixels)
        self.shift = shift

    def inputs(self, batch):
        """The gathered batch, shifted and dropped out (a copy when anything changes)."""
        if self.shift is not None:
            batch = shift_images(batch, *self.shifts, self.shift.image_shape)
        if self.dropouts[0] is not None:
            batch = dropout_forward(batch.copy(), *self.dropouts[0][:2])
        return batch


def _forward_batch(network, layers, batch, noise=None):
    """One batch forward: the activations [X, A_1, ..., A_{L-1}], the inputs [None, Z_1, ...] kept
    for the activations whose derivative reads them (else None), and the logits."""
    activations, kept = [batch], [None]
    for site, ((W, b), activation) in enumerate(zip(layers[:-1], network.activations), start=1):
        A, Z = bias_activation_forward(activations[-1] @ W, b, activation)
        if noise is not None and noise.dropouts[site] is not None:
            dropout_forward(A, *noise.dropouts[site][:2])
        activations.append(A)
        kept.append(Z)
    W, b = layers[-1]
    return activations, kept, activations[-1] @ W + b


def _backward_batch(network, layers, grad_layers, activations, kept, dlogits, noise=None):
    """Fill grad_layers (views into the flat gradient) from dlogits; dZ flows back layer by layer."""
    dZ = dlogits
    for index in range(len(layers) - 1, -1, -1):
        dW, db = grad_layers[index]
        np.matmul(activations[index].T, dZ, out=dW)
        bias_backward(db, dZ)
        if index > 0:
            dZ = activation_backward(dZ @ layers[index][0].T, activations[index], kept[index],
                                     network.activations[index - 1], None if noise is None else noise.dropouts[index])


def _batch_loss_and_grad(network, params, batch, y, loss, grad, noise=None):
    """Per-sample losses and predictions of one batch, and its mean-loss gradient into ``grad``."""
    layers = network.views(params)
    if noise is not None:
        batch = noise.inputs(batch)
    activations, kept, logits = _forward_batch(network, layers, batch, noise)
    losses, dlogits, _ = loss.forward_backward(logits, y, len(y))
    _backward_batch(network, layers, network.views(grad), activations, kept, dlogits, noise)
    return losses, logits.argmax(axis=1)


def _row_blocks(n_samples, batch_size):
    for start in range(0, n_samples, batch_size):
        yield np.arange(start, min(start + batch_size, n_samples))


# ---------------------------------------------------------------- the backend

def _blas_threads(method):
    """Run ``method`` with NumPy's BLAS at the backend's ``n_threads`` (when given): its only threads."""
    @functools.wraps(method)
    def limited(self, *args, **kwargs):
        if self.n_threads is None:
            return method(self, *args, **kwargs)
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=self.n_threads, user_api="blas"):
            return method(self, *args, **kwargs)
    return limited


class NumpyBackend(Backend):
    """The reference: one batch at a time in NumPy. Ctrl-C can land inside an update.

    ``n_threads`` limits NumPy's BLAS, the only threads it has.
    """

    name = "numpy"
    stops_between_batches = False

    @_blas_threads
    def forward(self, network, params, X, batch_size):
        layers = network.views(params)
        out = np.empty((len(X), network.n_classes), dtype=params.dtype)
        for rows in _row_blocks(len(X), batch_size):
            _, _, logits = _forward_batch(network, layers, gather_scale(X, rows, params.dtype))
            out[rows] = softmax_forward(logits)
        return out

    @_blas_threads
    def evaluate(self, network, params, X, y, loss, batch_size):
        layers = network.views(params)
        loss_sum, n_correct = 0.0, 0
        for rows in _row_blocks(len(X), batch_size):
            _, _, logits = _forward_batch(network, layers, gather_scale(X, rows, params.dtype))
            losses, _, _ = loss.forward_backward(logits, y[rows], len(rows))
            loss_sum += float(losses.sum())
            n_correct += int((logits.argmax(axis=1) == y[rows]).sum())
        return loss_sum, n_correct

    @_blas_threads
    def data_gradient(self, network, params, X, y, loss, seed=None, augment=None):
        grad = np.empty_like(params)
        rows = np.arange(len(X))
        noise = None if seed is None else _Noise(network, params.dtype, seed, rows, augment)
        losses, _ = _batch_loss_and_grad(network, params, gather_scale(X, rows, params.dtype), y, loss, grad, noise)
        return float(losses.sum()), grad

    @_blas_threads
    def train_epoch(self, network, params, optimizer, X, y, batch_size, seed, loss, augment=None,
                    on_progress=None, n_batches=None):
        order = epoch_order(len(X), seed)
        if n_batches is not None:
            order = order[:n_batches * batch_size]
        grad = np.empty_like(params)
        loss_sum, n_correct, applied = 0.0, 0, 0
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            # A diverging batch overflows on its way to a non-finite loss, or in its update; both are
            # reported (EpochResult.diverged_batch here, fit's check of the parameters after the
            # epoch), so NumPy's overflow warnings would only repeat it.
            noise = _Noise(network, params.dtype, seed, np.arange(start, start + len(rows)), augment)
            with np.errstate(over="ignore", invalid="ignore"):
                losses, predictions = _batch_loss_and_grad(network, params, gather_scale(X, rows, params.dtype),
                                                           y[rows], loss, grad, noise)
                batch_loss = float(losses.sum())
                if not np.isfinite(batch_loss):
                    return EpochResult(loss_sum, n_correct, start, applied, applied + 1)
                apply_update(params, grad, optimizer)
            loss_sum += batch_loss
            n_correct += int((predictions == y[rows]).sum())
            applied += 1
            if on_progress is not None:  # after every batch: Python runs each one anyway
                on_progress(applied, start + len(rows), loss_sum)
        return EpochResult(loss_sum, n_correct, len(order), applied, None)
