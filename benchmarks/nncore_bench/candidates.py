"""The candidates timed against each other, and the workload they share (SGD lr 0.01, He init).

A candidate has ``warm_up(n_rows)`` and ``run()`` (one training epoch, or one inference pass
over all rows). This module holds nncore's own backends; numpy_baselines.py and
torch_candidates.py the others.
"""
import math

import numpy as np

import nncore
from nncore.losses import get_loss
from nncore.network import Network

LEARNING_RATE = 0.01  # small enough that no epoch diverges (a diverged epoch stops early)
# nncore's NumPy backend, the careful loop, the seeds' full-batch formulation (numpy_baselines.py).
NUMPY_CANDIDATES = ("numpy", "careful_numpy", "seed_numpy")


def he_init(layer_sizes, dtype, seed=0):
    """A flat parameter buffer (per layer W (fan_in, fan_out) then b) with He-normal weights and zero biases."""
    rng = np.random.default_rng(seed)
    parts = []
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        parts.append(rng.standard_normal(fan_in * fan_out) * math.sqrt(2.0 / fan_in))
        parts.append(np.zeros(fan_out))
    return np.concatenate(parts).astype(dtype)


def layer_arrays(params, layer_sizes):
    """[(W (fan_in, fan_out), b (fan_out,))]: copies out of a flat buffer, for candidates that keep their own."""
    layers, position = [], 0
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        W = params[position:position + fan_in * fan_out].reshape(fan_in, fan_out).copy()
        position += fan_in * fan_out
        layers.append((W, params[position:position + fan_out].copy()))
        position += fan_out
    return layers


class BackendTrainer:
    """One epoch of an nncore backend (``train_epoch``), with its own parameters and optimizer."""

    def __init__(self, backend, layer_sizes, dtype, X, y, batch_size):
        self.backend, self.network, self.X = backend, Network(layer_sizes, dtype=dtype), X
        self.y, self.batch_size = np.ascontiguousarray(y, dtype=np.int32), batch_size
        self.params = he_init(layer_sizes, dtype)
        self.optimizer = nncore.SGD(lr=LEARNING_RATE)
        self.optimizer.ensure_state(self.network.n_params, self.network.dtype)
        self.epoch = 0

    def run(self, X=None, y=None):
        X = self.X if X is None else X
        y = self.y if y is None else y
        result = self.backend.train_epoch(self.network, self.params, self.optimizer, X, y,
                                          self.batch_size or len(X), self.epoch, get_loss("cross_entropy"))
        self.epoch += 1
        if result.diverged_batch is not None:
            raise RuntimeError(f"{self.backend.name} diverged at batch {result.diverged_batch}: timing is void")
        return result

    def warm_up(self, n_rows):
        self.run(self.X[:n_rows], self.y[:n_rows])


class BackendInference:
    """Forward-only probabilities over X with an nncore backend."""

    def __init__(self, backend, layer_sizes, dtype, X, batch_size):
        self.backend, self.network, self.X, self.batch_size = backend, Network(layer_sizes, dtype=dtype), X, batch_size
        self.params = he_init(layer_sizes, dtype)

    def run(self, X=None):
        return self.backend.forward(self.network, self.params, self.X if X is None else X, self.batch_size)

    def warm_up(self, n_rows):
        self.run(self.X[:n_rows])
