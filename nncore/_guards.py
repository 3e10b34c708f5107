"""What ``fit`` checks so that it never returns, keeps or checkpoints NaN or infinite parameters,
and never runs twice at once on one model.

The guards cost one pass over the parameters and the optimizer state per epoch and per
callback hook, and one copy of them per epoch:

- after each epoch the parameters and the optimizer state must be finite. If an update made
  them NaN or infinite (a finite loss, an overflowing step), the epoch is replayed from its
  start to the last batch that left them finite, and ``TrainingDiverged`` names the batch
  after it: the model keeps the parameters from before the bad batch, as it does when a
  batch's loss is not finite (that batch is never applied);
- a callback that leaves NaN or infinity in them is named in a ValueError;
- one model trains in one ``fit`` at a time: a second thread calling ``fit`` on it is refused.
"""
import contextlib
import threading
import weakref

import numpy as np

from .errors import TrainingDiverged


def diverged(run, result, snapshot, train, epoch):
    """Raise TrainingDiverged for this epoch with the model as it was just before the bad batch."""
    if non_finite(run) is None:  # the loss of result.diverged_batch was not finite; it was not applied
        batch = result.diverged_batch
        what = f"the loss became NaN or infinite at epoch {epoch}, batch {batch}"
    else:  # an applied update made the parameters (or the optimizer state) non-finite
        try:
            batch = _last_finite_prefix(run, snapshot, train, result.n_batches) + 1
        except KeyboardInterrupt:
            snapshot.restore()
            raise
        what = f"the update of epoch {epoch}, batch {batch} made the parameters NaN or infinite"
    error = TrainingDiverged(f"training diverged: {what} (learning rate {run.optimizer.lr:g}); the model keeps the "
                             "parameters from before that batch; try a smaller learning rate", epoch=epoch, batch=batch)
    error.history = run.history
    raise error


def _last_finite_prefix(run, snapshot, train, applied):
    """Replay the epoch from its snapshot up to the last batch after which everything is finite; return
    how many batches that is. Each probe restarts from the snapshot; in practice the first probe,
    ``applied - 1``, is the answer (a non-finite parameter makes the next batch's loss NaN)."""
    def finite_after(n_batches):
        snapshot.restore()
        if n_batches:
            train(n_batches)
        return non_finite(run) is None

    if applied > 1 and finite_after(applied - 1):
        return applied - 1
    low, high = 0, max(applied - 2, 0)  # finite after 0 batches: the snapshot is checked
    while low < high:
        middle = (low + high + 1) // 2
        if finite_after(middle):
            low = middle
        else:
            high = middle - 1
    finite_after(low)
    return low


class Snapshot:
    """The parameters and optimizer state at the start of an epoch, in buffers made once per run.

    fit rolls back to it when Ctrl-C cuts a NumPy update in half, and replays from it to find
    the batch whose update made the parameters non-finite.
    """

    def __init__(self, run):
        self.run = run
        self.params = np.empty_like(run.model.params)
        self.buffers, self.optimizer, self.step = {}, None, 0

    def take(self):
        np.copyto(self.params, self.run.model.params)
        self.optimizer = self.run.optimizer
        for name, buffer in self.optimizer.state_buffers().items():
            saved = self.buffers.get(name)
            if saved is None or saved.shape != buffer.shape or saved.dtype != buffer.dtype:
                self.buffers[name] = saved = np.empty_like(buffer)
            np.copyto(saved, buffer)
        self.step = self.optimizer.step

    def restore(self):
        np.copyto(self.run.model.params, self.params)
        for name, buffer in self.optimizer.state_buffers().items():
            np.copyto(buffer, self.buffers[name])
        self.optimizer.step = self.step


def non_finite(run):
    """Which of the model's parameters and optimizer state holds NaN or infinity first, or None."""
    if not np.all(np.isfinite(run.model.params)):
        return "parameters"
    for name, buffer in run.optimizer.state_buffers().items():
        if not np.all(np.isfinite(buffer)):
            return f"optimizer state {name!r}"
    return None


def check_after_callback(run, callback, hook, epoch=None):
    broken = non_finite(run)
    if broken is not None:
        name = getattr(callback, "function", callback)
        name = getattr(name, "__qualname__", type(name).__name__)
        at = f" of epoch {epoch}" if epoch is not None else ""
        raise ValueError(f"callback {name} left NaN or infinity in the model's {broken} in {hook}{at}")


_TRAINING: weakref.WeakSet = weakref.WeakSet()
_TRAINING_LOCK = threading.Lock()


@contextlib.contextmanager
def one_fit_at_a_time(model):
    """Refuse a second ``fit`` on a model that is training (in another thread): the two would
    interleave their updates in one parameter buffer."""
    with _TRAINING_LOCK:
        if model in _TRAINING:
            raise RuntimeError("fit is already running on this model (in another thread); one model trains in one "
                               "fit at a time: wait for it, or train a copy (model.copy())")
        _TRAINING.add(model)
    try:
        yield
    finally:
        with _TRAINING_LOCK:
            _TRAINING.discard(model)
