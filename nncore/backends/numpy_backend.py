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
"""
import numpy as np

from ..losses import softmax_forward
from .base import Backend, EpochResult, epoch_order, input_scale

# ---------------------------------------------------------------- the ops, twins of the kernels

def bias_activation_forward(Z, b, activation):
    """Z (m, n) += b (n,), then ``activation`` (an nncore.activations entry) in place."""
    Z += b
    return activation.forward(Z)


def activation_backward(dA, A, activation):
    """dZ = dA * f'(Z) in place on dA, f' written from the layer's output A.

    The kernel of the same name also adds dZ's column sums to the bias gradient in that pass.
    """
    return activation.backward(dA, A)


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

def _forward_batch(network, layers, batch):
    """Activations of every layer for one batch: [X, A_1, ..., A_{L-1}] and the logits."""
    activations = [batch]
    for (W, b), activation in zip(layers[:-1], network.activations):
        activations.append(bias_activation_forward(activations[-1] @ W, b, activation))
    W, b = layers[-1]
    return activations, activations[-1] @ W + b


def _backward_batch(network, layers, grad_layers, activations, dlogits):
    """Fill grad_layers (views into the flat gradient) from dlogits; dZ flows back layer by layer."""
    dZ = dlogits
    for index in range(len(layers) - 1, -1, -1):
        dW, db = grad_layers[index]
        np.matmul(activations[index].T, dZ, out=dW)
        bias_backward(db, dZ)
        if index > 0:
            dZ = activation_backward(dZ @ layers[index][0].T, activations[index], network.activations[index - 1])


def _batch_loss_and_grad(network, params, batch, y, loss, grad):
    """Per-sample losses and predictions of one batch, and its mean-loss gradient into ``grad``."""
    layers = network.views(params)
    activations, logits = _forward_batch(network, layers, batch)
    losses, dlogits, _ = loss.forward_backward(logits, y, len(y))
    _backward_batch(network, layers, network.views(grad), activations, dlogits)
    return losses, logits.argmax(axis=1)


def _row_blocks(n_samples, batch_size):
    for start in range(0, n_samples, batch_size):
        yield np.arange(start, min(start + batch_size, n_samples))


# ---------------------------------------------------------------- the backend

class NumpyBackend(Backend):
    """The reference: one batch at a time in NumPy. Ctrl-C can land inside an update."""

    name = "numpy"
    stops_between_batches = False

    def forward(self, network, params, X, batch_size):
        layers = network.views(params)
        out = np.empty((len(X), network.n_classes), dtype=params.dtype)
        for rows in _row_blocks(len(X), batch_size):
            _, logits = _forward_batch(network, layers, gather_scale(X, rows, params.dtype))
            out[rows] = softmax_forward(logits)
        return out

    def evaluate(self, network, params, X, y, loss, batch_size):
        layers = network.views(params)
        loss_sum, n_correct = 0.0, 0
        for rows in _row_blocks(len(X), batch_size):
            _, logits = _forward_batch(network, layers, gather_scale(X, rows, params.dtype))
            losses, _, _ = loss.forward_backward(logits, y[rows], len(rows))
            loss_sum += float(losses.sum())
            n_correct += int((logits.argmax(axis=1) == y[rows]).sum())
        return loss_sum, n_correct

    def data_gradient(self, network, params, X, y, loss):
        grad = np.empty_like(params)
        losses, _ = _batch_loss_and_grad(network, params, gather_scale(X, np.arange(len(X)), params.dtype), y,
                                         loss, grad)
        return float(losses.sum()), grad

    def train_epoch(self, network, params, optimizer, X, y, batch_size, seed, loss):
        order = epoch_order(len(X), seed)
        grad = np.empty_like(params)
        loss_sum, n_correct, n_batches = 0.0, 0, 0
        for start in range(0, len(X), batch_size):
            rows = order[start:start + batch_size]
            # A diverging batch overflows on its way to a non-finite loss; that is reported below
            # (EpochResult.diverged_batch), so NumPy's overflow warnings would only repeat it.
            with np.errstate(over="ignore", invalid="ignore"):
                losses, predictions = _batch_loss_and_grad(network, params, gather_scale(X, rows, params.dtype),
                                                           y[rows], loss, grad)
            batch_loss = float(losses.sum())
            if not np.isfinite(batch_loss):
                return EpochResult(loss_sum, n_correct, start, n_batches, n_batches + 1)
            apply_update(params, grad, optimizer)
            loss_sum += batch_loss
            n_correct += int((predictions == y[rows]).sum())
            n_batches += 1
        return EpochResult(loss_sum, n_correct, len(X), n_batches, None)
