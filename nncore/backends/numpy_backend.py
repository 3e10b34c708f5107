"""The reference backend: the specification of every kernel, in plain NumPy.

The compiled backend (``cython_backend``) offers the same functions with the same arguments
and meaning; the tests hold it to this module's results, and the benchmark measures it
against this module's speed. Everything here runs one batch at a time and reads like the
maths; it is written for clarity first, then for reasonable speed.

Shapes: a batch X is (m, n_in); layer l maps (m, fan_in) -> (m, fan_out) by Z = A W + b;
hidden layers apply ReLU; the last layer's Z are the logits, turned into probabilities by
softmax.
"""
import numpy as np

from ._common import (EpochResult, check_batch_size, check_inputs, check_labels, check_layer_sizes,
                      check_loss, check_optimizer, check_params, check_writeable, epoch_order,
                      input_scale, layer_views)

NAME = "numpy"


# ---------------------------------------------------------------- the kernels, one op each

def bias_relu_forward(Z, b):
    """Z (m, n) += b (n,), then ReLU in place."""
    Z += b
    np.maximum(Z, 0, out=Z)
    return Z


def softmax(logits):
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
    probs = softmax(logits)
    residual = probs.copy()
    residual[np.arange(len(y)), y] -= 1
    losses = (residual * residual).sum(axis=1)
    g = 2.0 * residual / m
    dlogits = probs * (g - (g * probs).sum(axis=1, keepdims=True))
    return losses, dlogits, probs


LOSS_KERNELS = {"cross_entropy": cross_entropy_forward_backward, "mse": mse_forward_backward}


def relu_backward(dA, A):
    """dZ = dA * 1[A > 0], in place on dA (A is the layer's ReLU output)."""
    dA *= (A > 0)
    return dA


def gather_scale(X, indices, dtype):
    """The batch X[indices] as floats; uint8 pixels are scaled by 1/255."""
    batch = X[indices]
    if batch.dtype == np.uint8:
        return batch.astype(dtype) * input_scale(dtype)
    return batch


def sgd_update(params, grad, velocity, lr, momentum, nesterov, weight_decay):
    """One SGD step over the flat buffers (see nncore.optim for the rule)."""
    g = grad + weight_decay * params if weight_decay else grad
    if momentum:
        velocity *= momentum
        velocity += g
        step = g + momentum * velocity if nesterov else velocity
    else:
        step = g
    params -= lr * step


def adam_update(params, grad, m, v, step_number, lr, beta1, beta2, eps, weight_decay):
    """One Adam step over the flat buffers; ``step_number`` counts from 1."""
    g = grad + weight_decay * params if weight_decay else grad
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step_number)
    v_hat = v / (1 - beta2 ** step_number)
    params -= lr * m_hat / (np.sqrt(v_hat) + eps)


def apply_update(params, grad, optimizer):
    """Apply ``optimizer``'s rule to ``params`` in place, advancing its step count."""
    state = optimizer.state_buffers()
    optimizer.step += 1
    if optimizer.kind == "sgd":
        sgd_update(params, grad, state["velocity"], optimizer.lr, optimizer.momentum,
                   optimizer.nesterov, optimizer.weight_decay)
    else:
        adam_update(params, grad, state["m"], state["v"], optimizer.step, optimizer.lr,
                    optimizer.betas[0], optimizer.betas[1], optimizer.eps, optimizer.weight_decay)


# ---------------------------------------------------------------- a batch through the network

def _forward_batch(layers, batch):
    """Activations of every layer for one batch: [X, A_1, ..., A_{L-1}] and the logits."""
    activations = [batch]
    for W, b in layers[:-1]:
        activations.append(bias_relu_forward(activations[-1] @ W, b))
    W, b = layers[-1]
    return activations, activations[-1] @ W + b


def _backward_batch(layers, grad_layers, activations, dlogits):
    """Fill grad_layers (views into the flat gradient) from dlogits; dZ flows back layer by layer."""
    dZ = dlogits
    for index in range(len(layers) - 1, -1, -1):
        dW, db = grad_layers[index]
        np.matmul(activations[index].T, dZ, out=dW)
        np.sum(dZ, axis=0, out=db)
        if index > 0:
            dZ = relu_backward(dZ @ layers[index][0].T, activations[index])


def _batch_loss_and_grad(params, layer_sizes, batch, y, loss, grad):
    """Per-sample losses and predictions of one batch, and its mean-loss gradient into ``grad``."""
    layers = layer_views(params, layer_sizes)
    activations, logits = _forward_batch(layers, batch)
    losses, dlogits, _ = LOSS_KERNELS[loss](logits, y, len(y))
    _backward_batch(layers, layer_views(grad, layer_sizes), activations, dlogits)
    return losses, logits.argmax(axis=1)


# ---------------------------------------------------------------- the public backend functions

def forward(params, layer_sizes, X, batch_size=None):
    """Class probabilities (n_samples, n_out) for X, computed batch_size rows at a time."""
    layer_sizes = check_layer_sizes(layer_sizes)
    check_params(params, layer_sizes)
    check_inputs(X, layer_sizes, params.dtype)
    batch_size = check_batch_size(batch_size, len(X))
    layers = layer_views(params, layer_sizes)
    out = np.empty((len(X), layer_sizes[-1]), dtype=params.dtype)
    for start in range(0, len(X), batch_size):
        rows = np.arange(start, min(start + batch_size, len(X)))
        _, logits = _forward_batch(layers, gather_scale(X, rows, params.dtype))
        out[rows] = softmax(logits)
    return out


def evaluate(params, layer_sizes, X, y, loss="cross_entropy", batch_size=None):
    """(sum of per-sample losses, number of correct argmax predictions) over X, y."""
    layer_sizes = check_layer_sizes(layer_sizes)
    check_params(params, layer_sizes)
    check_inputs(X, layer_sizes, params.dtype)
    y = check_labels(y, len(X), layer_sizes[-1])
    check_loss(loss)
    batch_size = check_batch_size(batch_size, len(X))
    layers = layer_views(params, layer_sizes)
    loss_sum, n_correct = 0.0, 0
    for start in range(0, len(X), batch_size):
        rows = np.arange(start, min(start + batch_size, len(X)))
        _, logits = _forward_batch(layers, gather_scale(X, rows, params.dtype))
        losses, _, _ = LOSS_KERNELS[loss](logits, y[rows], len(rows))
        loss_sum += float(losses.sum())
        n_correct += int((logits.argmax(axis=1) == y[rows]).sum())
    return loss_sum, n_correct


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
    losses, _ = _batch_loss_and_grad(params, layer_sizes, gather_scale(X, np.arange(len(X)), params.dtype),
                                     y, loss, grad)
    value = float(losses.mean())
    if weight_decay:
        value += 0.5 * weight_decay * float(params @ params)
        grad += weight_decay * params
    return value, grad


def train_epoch(params, layer_sizes, optimizer, X, y, batch_size=None, seed=0, loss="cross_entropy"):
    """One epoch of mini-batch training, updating ``params`` and the optimizer state in place.

    The samples are visited in ``epoch_order(len(X), seed)``, ``batch_size`` at a time (the last
    batch may be smaller; None means one full batch). Each batch: forward, loss, backward,
    one optimizer update. A batch whose loss is not finite is not applied and ends the epoch
    (``EpochResult.diverged_batch``). Returns an ``EpochResult``.
    """
    layer_sizes = check_layer_sizes(layer_sizes)
    check_params(params, layer_sizes)
    check_writeable(params, "params")
    check_inputs(X, layer_sizes, params.dtype)
    y = check_labels(y, len(X), layer_sizes[-1])
    check_loss(loss)
    check_optimizer(optimizer, params)
    batch_size = check_batch_size(batch_size, len(X))
    order = epoch_order(len(X), seed)
    grad = np.empty_like(params)
    loss_sum, n_correct, n_batches = 0.0, 0, 0
    for start in range(0, len(X), batch_size):
        rows = order[start:start + batch_size]
        # A diverging batch overflows on its way to a non-finite loss; that is reported below
        # (EpochResult.diverged_batch), so NumPy's overflow warnings would only repeat it.
        with np.errstate(over="ignore", invalid="ignore"):
            losses, predictions = _batch_loss_and_grad(params, layer_sizes, gather_scale(X, rows, params.dtype),
                                                       y[rows], loss, grad)
        batch_loss = float(losses.sum())
        if not np.isfinite(batch_loss):
            return EpochResult(loss_sum, n_correct, start, n_batches, n_batches + 1)
        apply_update(params, grad, optimizer)
        loss_sum += batch_loss
        n_correct += int((predictions == y[rows]).sum())
        n_batches += 1
    return EpochResult(loss_sum, n_correct, len(X), n_batches, None)
