"""What the backend tests share: calls into a backend made as nncore's own callers make them.

Backends trust their caller (nncore.inputs has checked everything once), so these helpers pass
labels through the contract's ``labels``, resolve a None batch size to the whole set, look the
loss up in its registry and give the optimizer its state, exactly as ``fit`` does.
"""
import numpy as np

from nncore import inputs
from nncore.losses import get_loss


def labels(y, network):
    return inputs.labels(y, len(y), network.n_classes)


def epoch(backend, network, params, optimizer, X, y, batch_size=None, seed=0, loss="cross_entropy"):
    optimizer.ensure_state(network.n_params, network.dtype)
    return backend.train_epoch(network, params, optimizer, X, labels(y, network), batch_size or max(len(X), 1), seed,
                               get_loss(loss))


def forward(backend, network, params, X, batch_size=None):
    return backend.forward(network, params, X, batch_size or max(len(X), 1))


def evaluate(backend, network, params, X, y, loss="cross_entropy", batch_size=None):
    return backend.evaluate(network, params, X, labels(y, network), get_loss(loss), batch_size or max(len(X), 1))


def loss_and_grad(backend, network, params, X, y, loss="cross_entropy", weight_decay=0.0):
    return backend.loss_and_grad(network, params, X, labels(y, network), get_loss(loss), weight_decay)


def random_params(network, seed=0, bias_scale=0.1):
    """He-scaled weights and small random biases (not zero, so the bias gradients are exercised)."""
    rng = np.random.default_rng(seed)
    params = network.initial_params(seed, ("he",) * network.n_layers)
    for _, b in network.views(params):
        b[:] = rng.standard_normal(len(b)) * bias_scale
    return params
