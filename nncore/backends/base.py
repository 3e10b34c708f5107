"""What a backend is: the four calls nncore makes of one, and what both backends share.

A backend is internal: ``fit``, the model and the estimator call it with arguments that
``nncore.inputs`` has checked once (``X`` 2-D, C-contiguous, uint8 or the network's dtype and
finite; ``y`` int32 class indices in range; ``batch_size`` a positive int; ``params`` the
network's flat buffer; the optimizer's state made for it). Backends trust that and check
nothing again; the compiled core still keeps the bounds checks that make it memory-safe.

``network`` is an ``nncore.network.Network``, ``loss`` an ``nncore.losses.Loss``, ``optimizer``
an ``nncore.optim`` optimizer.
"""
import abc
import copy
from typing import NamedTuple

import numpy as np

#: Rows per forward pass in predict, evaluate and validation (each row's result does not depend on it).
PREDICT_BATCH_SIZE = 4096


class EpochResult(NamedTuple):
    """What ``train_epoch`` reports.

    ``loss_sum`` is the sum over the samples seen of each sample's data loss, measured in the
    forward pass before that batch's update (as Keras and PyTorch loops report it);
    ``n_correct`` counts the samples whose argmax (first maximum on ties) was the label.
    ``diverged_batch`` is None, or the 1-based index of the batch whose loss was not finite:
    that batch's update was not applied, and training stopped there.
    """

    loss_sum: float
    n_correct: int
    n_samples: int
    n_batches: int
    diverged_batch: "int | None"


def epoch_order(n_samples, seed):
    """The shuffled sample order of one epoch: the same for both backends, given the seed."""
    return np.random.default_rng(seed).permutation(n_samples)


def input_scale(dtype):
    """The factor uint8 pixels are multiplied by, rounded once to the parameters' dtype."""
    return np.dtype(dtype).type(1.0 / 255.0)


class Backend(abc.ABC):
    """The calls of a backend, with the same arguments and meaning in every backend.

    ``stops_between_batches``: a KeyboardInterrupt during ``train_epoch`` leaves the parameters
    and the optimizer state at a batch boundary, with ``optimizer.step`` counting the updates
    applied. When False the interrupt can cut an update in half, and ``fit`` rolls the epoch back.
    """

    name: str | None = None
    stops_between_batches = False
    #: How many threads each call may use (None: the process-wide count; ``nncore.backends.threads``).
    n_threads = None

    def with_threads(self, n_threads):
        """This backend, or a copy whose calls use ``n_threads`` threads (None: this one as it is)."""
        from .threads import checked_threads
        n_threads = checked_threads(n_threads)
        if n_threads is None or n_threads == self.n_threads:
            return self
        clone = copy.copy(self)
        clone.n_threads = n_threads
        return clone

    def step_threads(self, network, batch_size):
        """How many threads a training step of ``batch_size`` rows runs on, when its results depend
        on that count (a checkpoint records it and a resume compares it); None when they do not."""
        return None

    @abc.abstractmethod
    def train_epoch(self, network, params, optimizer, X, y, batch_size, seed, loss, augment=None,
                    on_progress=None, n_batches=None):
        """One epoch of mini-batch training, updating ``params`` and the optimizer state in place.

        The samples are visited in ``epoch_order(len(X), seed)``, ``batch_size`` at a time (the
        last batch may be smaller). Each batch: forward, loss, backward, one optimizer update. A
        batch whose loss is not finite is not applied and ends the epoch. ``n_batches`` stops
        the epoch after its first ``n_batches`` batches, exactly as the whole epoch would have
        run them (``fit`` replays an epoch so to find a batch whose update overflowed).
        Returns an ``EpochResult``.

        ``on_progress(n_batches, n_samples, loss_sum)``, when given, is called between batches
        with the counts so far (how often is the backend's choice: the compiled one at most
        every 20 ms); what it raises stops the epoch there, as Ctrl-C does.
        The network's dropout and ``augment`` (a resolved ``nncore.augment.Shift``, or None) are
        drawn from ``seed`` and each row's position in that order (``nncore.counters``).
        """

    @abc.abstractmethod
    def forward(self, network, params, X, batch_size):
        """Class probabilities (n_samples, n_classes) for X, computed batch_size rows at a time."""

    @abc.abstractmethod
    def evaluate(self, network, params, X, y, loss, batch_size):
        """(sum of per-sample losses, number of correct argmax predictions) over X, y."""

    @abc.abstractmethod
    def data_gradient(self, network, params, X, y, loss, seed=None, augment=None):
        """(sum of per-sample losses over all of X, the gradient of their mean (flat)); X not empty.

        With ``seed`` (not None), the network's dropout and ``augment`` apply as in a training
        pass that visits X in order (positions 0..n-1): a fixed mask, so a deterministic function.
        """

    def loss_and_grad(self, network, params, X, y, loss, weight_decay=0.0, seed=None, augment=None):
        """Mean loss over all of X (not empty) plus 0.5*weight_decay*||params||^2, and its gradient (flat)."""
        loss_sum, grad = self.data_gradient(network, params, X, y, loss, seed, augment)
        value = float(loss_sum) / len(X)
        if weight_decay:
            value += 0.5 * weight_decay * float(params @ params)
            grad += weight_decay * params
        return value, grad

    def __repr__(self):
        return f"<nncore {self.name} backend>"
