"""The compiled backend: numpy_backend's calls, each one call into the Cython core (nncore._core).

The core runs the whole loop (an epoch, an inference pass, the full-batch gradient) in C with
the GIL released and without allocating per batch, on the package's own threads, with BLAS held
at one thread meanwhile (``nncore.backends.threads``). The extension is imported here, at module
import, so a missing or broken build raises ImportError at once; there is no fallback to the
NumPy backend.
"""
import numpy as np

from .._compiled import import_core
from ..counters import noise_table
from .base import Backend, EpochResult, epoch_order
from .threads import checked_threads, single_threaded_blas

_core = import_core()


#: Rows times the widths of all layers that one chunk's workspaces may hold (64 MB of float32):
#: far above what MNIST-sized networks need at 1024 rows, it keeps a very wide layer's
#: workspace (2.2 million units) from growing to gigabytes.
WORKSPACE_ELEMENTS = 1 << 24


class CythonBackend(Backend):
    """The compiled core. Ctrl-C stops an epoch between two batches (within ~20 ms).

    ``chunk_rows``: rows the core's workspaces hold. A larger batch is processed in chunks of
    this many rows with the gradients accumulated, which gives the same result as one big
    batch without an (n_samples, n_inputs) float copy of the data. Tests lower it to exercise
    the chunking. For very wide layers the chunk is smaller (``chunk_for``).
    """

    name = "cython"
    stops_between_batches = True

    def __init__(self, chunk_rows=_core.DEFAULT_CHUNK_ROWS, n_threads=None):
        self.chunk_rows = int(chunk_rows)
        self.n_threads = checked_threads(n_threads)

    def chunk_for(self, network, rows):
        """Rows per chunk for ``network``: at most ``rows`` and ``chunk_rows``, few enough that every
        gemm dimension (rows x the widest layer) fits BLAS's 32-bit index and the workspaces
        stay within ``WORKSPACE_ELEMENTS``; at least 1."""
        widest, total = max(network.layer_sizes), sum(network.layer_sizes)
        return max(1, min(rows, self.chunk_rows, _core.INT_MAX // widest, WORKSPACE_ELEMENTS // total))

    def forward(self, network, params, X, batch_size):
        out = np.empty((len(X), network.n_classes), dtype=params.dtype)
        # Each row's probabilities do not depend on the batching: the core uses its own chunks.
        with single_threaded_blas:
            _core.forward(network.table, params, X, out, self.chunk_for(network, batch_size), self.n_threads)
        return out

    def evaluate(self, network, params, X, y, loss, batch_size):
        with single_threaded_blas:
            loss_sum, n_correct = _core.evaluate(network.table, params, X, y, loss.name,
                                                 self.chunk_for(network, batch_size), self.n_threads)
        return float(loss_sum), int(n_correct)

    def data_gradient(self, network, params, X, y, loss, seed=None, augment=None):
        grad = np.empty_like(params)
        noise = None if seed is None else _noise(network, seed, augment)
        with single_threaded_blas:
            loss_sum = _core.loss_and_grad(network.table, params, X, y, loss.name, grad,
                                           self.chunk_for(network, self.chunk_rows), noise, self.n_threads)
        return float(loss_sum), grad

    def step_threads(self, network, batch_size):
        """How many threads a training step of ``batch_size`` rows runs on: its results, bit for bit,
        are those of that count (a checkpoint records it)."""
        return _core.step_threads(network.table, network.n_params, batch_size, self.n_threads)[0]

    def train_epoch(self, network, params, optimizer, X, y, batch_size, seed, loss, augment=None,
                    on_progress=None, n_batches=None):
        """Same contract as NumpyBackend.train_epoch. Ctrl-C stops the epoch after the batch in
        progress has been applied; ``optimizer.step`` then counts the applied batches and
        KeyboardInterrupt propagates. ``on_progress`` is called at most every 20 ms, when the
        core re-takes the GIL to check for Ctrl-C."""
        if len(X) == 0:
            return EpochResult(0.0, 0, 0, 0, None)
        order = np.ascontiguousarray(epoch_order(len(X), seed), dtype=np.intp)
        if n_batches is not None:
            order = order[:n_batches * batch_size]
        states = [optimizer.state_buffers()[name] for name in optimizer.buffer_names]
        loss_total = np.zeros(1, dtype=np.float64)
        progress = np.zeros(4, dtype=np.intp)  # n_batches, n_correct, n_samples, diverged_batch (0: none)
        # The core calls it without arguments, when the counts are current.
        report = None if on_progress is None else (
            lambda: on_progress(int(progress[0]), int(progress[2]), float(loss_total[0])))
        try:
            with single_threaded_blas:
                _core.train_epoch(network.table, params, X, y, order, batch_size=batch_size, loss=loss.name,
                                  optimizer=optimizer.core_config(), states=states, loss_total=loss_total,
                                  progress=progress, chunk_rows=self.chunk_for(network, self.chunk_rows),
                                  noise=_noise(network, seed, augment), on_progress=report,
                                  n_threads=self.n_threads)
        finally:
            # Also on KeyboardInterrupt: the core stops only between batches, so the step count
            # always matches the updates that reached params and the state buffers.
            optimizer.step += int(progress[0])
        n_batches, n_correct, n_samples, diverged = (int(v) for v in progress)
        return EpochResult(float(loss_total[0]), n_correct, n_samples, n_batches, diverged or None)


def _noise(network, seed, augment):
    """The core's noise table, or None when the pass draws nothing (the path without noise)."""
    if augment is None and not any(network.drop_thresholds):
        return None
    return noise_table(seed, network.drop_thresholds, augment)
