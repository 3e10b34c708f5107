"""The compiled backend: numpy_backend's calls, each one call into the Cython core (nncore._core).

The core runs the whole loop (an epoch, an inference pass, the full-batch gradient) in C with
the GIL released and without allocating per batch. The extension is imported here, at module
import, so a missing or broken build raises ImportError at once; there is no fallback to the
NumPy backend.
"""
import numpy as np

from .. import _core
from .base import Backend, EpochResult, epoch_order


class CythonBackend(Backend):
    """The compiled core. Ctrl-C stops an epoch between two batches (within ~20 ms).

    ``chunk_rows``: rows the core's workspaces hold. A larger batch is processed in chunks of
    this many rows with the gradients accumulated, which gives the same result as one big
    batch without an (n_samples, n_inputs) float copy of the data. Tests lower it to exercise
    the chunking.
    """

    name = "cython"
    stops_between_batches = True

    def __init__(self, chunk_rows=_core.DEFAULT_CHUNK_ROWS):
        self.chunk_rows = int(chunk_rows)

    def forward(self, network, params, X, batch_size):
        out = np.empty((len(X), network.n_classes), dtype=params.dtype)
        # Each row's probabilities do not depend on the batching: the core uses its own chunks.
        _core.forward(network.table, params, X, out, min(batch_size, self.chunk_rows))
        return out

    def evaluate(self, network, params, X, y, loss, batch_size):
        loss_sum, n_correct = _core.evaluate(network.table, params, X, y, loss.code,
                                             min(batch_size, self.chunk_rows))
        return float(loss_sum), int(n_correct)

    def data_gradient(self, network, params, X, y, loss):
        grad = np.empty_like(params)
        loss_sum = _core.loss_and_grad(network.table, params, X, y, loss.code, grad, self.chunk_rows)
        return float(loss_sum), grad

    def train_epoch(self, network, params, optimizer, X, y, batch_size, seed, loss):
        """Same contract as NumpyBackend.train_epoch. Ctrl-C stops the epoch after the batch in
        progress has been applied; ``optimizer.step`` then counts the applied batches and
        KeyboardInterrupt propagates."""
        if len(X) == 0:
            return EpochResult(0.0, 0, 0, 0, None)
        order = np.ascontiguousarray(epoch_order(len(X), seed), dtype=np.intp)
        buffers = [optimizer.state_buffers()[name] for name in optimizer.buffer_names]
        loss_total = np.zeros(1, dtype=np.float64)
        progress = np.zeros(4, dtype=np.intp)  # n_batches, n_correct, n_samples, diverged_batch (0: none)
        try:
            # A kind with one state buffer finds it in both slots; the core reads what its rule needs.
            _core.train_epoch(network.table, params, X, y, order, batch_size, loss.code, optimizer.core_code,
                              optimizer.core_hyperparameters(), optimizer.step, buffers[0], buffers[-1],
                              loss_total, progress, self.chunk_rows)
        finally:
            # Also on KeyboardInterrupt: the core stops only between batches, so the step count
            # always matches the updates that reached params and the state buffers.
            optimizer.step += int(progress[0])
        n_batches, n_correct, n_samples, diverged = (int(v) for v in progress)
        return EpochResult(float(loss_total[0]), n_correct, n_samples, n_batches, diverged or None)
