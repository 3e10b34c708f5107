"""Callbacks: what ``fit`` calls around each epoch, in Keras's shape.

``fit`` is a short loop; everything else a run does is a callback: the learning-rate schedule
(``LearningRateScheduler``), early stopping (``EarlyStopping``), checkpoints and resuming
(``ModelCheckpoint``), the per-epoch line (``EpochLogger``), the progress bar
(``nncore.progress.ProgressBar``). ``fit``'s convenience arguments (``lr_schedule``,
``early_stopping``, ``checkpoint_dir``/``resume``, ``verbose``) build them in that order, ahead
of the ``callbacks`` passed in; pass, combine or subclass them as you like.

Hooks (Keras's names): ``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``,
``on_epoch_end(epoch, logs)``, ``on_train_end(logs)``. ``epoch`` is 1-based and counts the
model's whole training (a second ``fit``, or a resumed run, goes on counting); ``logs`` at
an epoch's end holds that epoch's ``History`` keys. Returning True from ``on_epoch_end``
stops training after that epoch; raising KeyboardInterrupt acts like Ctrl-C.
``on_train_end`` is called however the run ends (finished, stopped, interrupted, diverged).
``on_epoch_progress(epoch, logs)`` reports progress within an epoch, between batches:
``logs`` holds ``batches`` and ``samples`` done so far and their mean ``loss``. It is not
Keras's per-batch hook: the compiled core calls it at most every 20 ms (the NumPy backend
after every batch), and only for callbacks that override it.

Before ``on_train_begin`` each callback gets ``self.run`` (the ``TrainingRun`` of nncore.train:
model, optimizer, seed, epochs, history, ...; a callback may set its fields there, as
``ModelCheckpoint`` does when it resumes) and ``self.model``.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ._locking import DirectoryLock
from ._numbers import finite, whole
from ._output_paths import prepare_output_directory
from .checkpoint import TrainingState, compare_settings, fingerprint, optimizer_setting
from .errors import CheckpointMismatch, NNCoreWarning, OutputPathError
from .history import HISTORY_KEYS, HistoryLog
from .io import load_checkpoint, save_checkpoint
from .optim import OPTIMIZERS
from .schedules import checked_rate, get_schedule

from ._types import Logs, PathLike, Schedule

if TYPE_CHECKING:
    from .model import MLP
    from .train import TrainingRun

CHECKPOINT_NAME = "checkpoint.npz"


class Callback:
    """Base class of fit callbacks: every hook does nothing."""

    run: TrainingRun = None  # type: ignore[assignment]  # set before on_train_begin
    model: MLP = None  # type: ignore[assignment]

    def set_run(self, run: TrainingRun) -> None:
        self.run, self.model = run, run.model

    def on_train_begin(self, logs: Logs | None = None) -> None:
        pass

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        pass

    def on_epoch_progress(self, epoch: int, logs: Logs) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool | None:
        return False

    def on_train_end(self, logs: Logs | None = None) -> None:
        pass

    @property
    def wants_progress(self) -> bool:
        """Whether this callback overrides ``on_epoch_progress`` (else the epoch reports none)."""
        return type(self).on_epoch_progress is not Callback.on_epoch_progress


class FunctionCallback(Callback):
    """A plain function ``f(epoch, logs)`` as ``on_epoch_end``."""

    def __init__(self, function: Callable[[int, Logs], bool | None]) -> None:
        self.function = function

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool | None:
        return self.function(epoch, logs if logs is not None else {})


class LearningRateScheduler(Callback):
    """Sets ``optimizer.lr`` before each epoch from ``schedule(epoch, epochs, base_lr)`` (nncore.schedules).

    ``epoch`` counts from 0 within the run, ``base_lr`` is the optimizer's rate when the run
    began (kept in checkpoints); the base rate is restored when training ends.
    """

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = get_schedule(schedule)

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        # A negative, NaN or infinite rate would train silently wrong, or diverge without saying why.
        self.run.optimizer.lr = checked_rate(self.schedule(self.run.index_of(epoch), self.run.epochs,
                                                           self.run.base_lr), epoch)

    def on_train_end(self, logs: Logs | None = None) -> None:
        self.run.optimizer.lr = self.run.base_lr


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``monitor`` is "val_loss" (the default; "loss" when there is no validation data),
    "val_accuracy", "loss" or "accuracy"; accuracies must rise, losses fall. With
    ``restore_best_weights`` the model gets back the parameters of the best epoch when it
    stops. Its state is computed from the history (and the best parameters are kept in the
    run, so checkpoints hold them): a resumed run stops where the uninterrupted one would.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 restore_best_weights: bool = True) -> None:
        if monitor not in HISTORY_KEYS[:4]:
            raise ValueError(f"monitor must be one of {HISTORY_KEYS[:4]}, got {monitor!r}")
        self.monitor, self.patience = monitor, whole("patience", patience, 1)
        self.min_delta, self.restore_best_weights = finite("min_delta", min_delta), bool(restore_best_weights)

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, restore_best_weights={self.restore_best_weights})")

    def best_index(self, values: Sequence[float | None]) -> int | None:
        """Index of the best value, counting only improvements beyond min_delta."""
        sign = -1.0 if "accuracy" in self.monitor else 1.0
        best, best_index = math.inf, None
        for index, value in enumerate(values):
            if value is not None and sign * value < best - self.min_delta:
                best, best_index = sign * value, index
        return best_index

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool | None:
        history = self.run.history
        monitor = self.monitor
        if monitor.startswith("val_") and not self.run.has_validation:
            monitor = monitor[len("val_"):]
        values = getattr(history, monitor)
        best = self.best_index(values)
        if best is None:
            return False
        if best == len(values) - 1 and self.restore_best_weights:
            self.run.best_params = self.model.params.copy()
        history.best_epoch = history.epoch[best]
        history.stopped_early = len(values) - 1 - best >= self.patience
        return history.stopped_early

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.run.history.stopped_early and self.restore_best_weights and self.run.best_params is not None:
            self.model.params[:] = self.run.best_params
            self.run.say(f"early stopping: kept the parameters of epoch {self.run.history.best_epoch}")


class ModelCheckpoint(Callback):
    """Write ``checkpoint.npz`` into ``directory`` after every epoch (atomically); with ``resume``,
    continue from the one there first.

    A checkpoint holds the parameters, the optimizer state, the epoch counters, the seed, the
    base learning rate, the run's settings and early stopping's best parameters; the history
    goes to a log file beside it (``history-*.bin``), one fixed-size record per epoch, so a
    checkpoint costs the same at epoch 20,000 as at epoch 1. A run resumed from it ends with
    the same parameters, bit for bit, as one never interrupted. Put it after an EarlyStopping in
    the callbacks, so each checkpoint knows whether the run stopped there.

    Before the first epoch the directory is created and tested for writing, and locked: a
    second run writing into it (another process, or another thread) is refused, naming the
    process that holds it. Resuming refuses a checkpoint of another run -- other data, seed,
    batch size, loss or validation -- naming each difference, and follows the caller's
    optimizer hyperparameters, schedule and backend with a warning (``nncore.checkpoint``).
    """

    def __init__(self, directory: PathLike, resume: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / CHECKPOINT_NAME
        self.resume = bool(resume)
        self._lock = self._log = None
        self._wrote = False

    def on_train_begin(self, logs: Logs | None = None) -> None:
        prepare_output_directory(self.directory, "checkpoint directory")
        self._lock = DirectoryLock(self.directory, "checkpoint directory").acquire()
        try:
            self._begin()
        except BaseException:
            self._release()
            raise

    def _begin(self):
        run = self.run
        if self.path.is_dir():
            raise OutputPathError(f"checkpoint {self.path}: is a directory; ModelCheckpoint writes a file there")
        # Partial files of killed runs: no live run writes here, since this one holds the lock.
        for leftover in self.directory.glob(f".{CHECKPOINT_NAME}.*.tmp"):
            leftover.unlink(missing_ok=True)
        for key, samples in (("data", run.data), ("validation_data", run.validation)):
            if key not in run.settings:  # once per run, however many checkpoint callbacks it has
                run.settings[key] = fingerprint(samples)
        self._wrote = False
        if self.resume and self.path.exists():
            self._restore()
            run.say(f"resuming from {self.path} after epoch {run.start}/{run.epochs}")
            if run.history.stopped_early:
                run.start = max(run.start, run.epochs)  # early stopping had ended that run
        elif self.resume:
            run.say(f"no checkpoint in {self.directory}: starting from the current parameters")
        if self._log is None:
            self._log = HistoryLog.create(self.directory)
            self._log.write(0, run.history.records())  # a version 2 checkpoint's history, if resumed from one

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool | None:
        try:
            self._write(epoch)
        except KeyboardInterrupt:
            # Ctrl-C broke off the write of a complete epoch: finish it, so the checkpoint
            # holds the epoch the history and the warning report.
            self._write(epoch)
            raise
        return False

    def _write(self, epoch):
        run = self.run
        index = run.index_of(epoch)
        self._log.write(index, run.history.records(index))
        state = TrainingState(run.seed, run.epoch_offset, index + 1, run.base_lr, run.settings, self._log.path.name,
                              run.has_validation, run.history.stopped_early, run.history.best_epoch)
        save_checkpoint(self.path, self.model, run.optimizer, state, run.best_params)
        if not self._wrote:
            self._wrote = True
            # The checkpoint now names this run's log: the previous run's is no longer needed.
            for log in self.directory.glob("history-*.bin"):
                if log.name != self._log.path.name:
                    log.unlink(missing_ok=True)

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.run.history.interrupted and len(self.run.history):
            self.run.notes.append(f"the checkpoint in {self.directory} holds epoch {self.model.epochs_trained}")
        self._release()

    def _release(self):
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _restore(self):
        """Load the checkpoint into the model and the run, once its settings are found to match the run's."""
        run, path = self.run, self.path
        checkpoint = load_checkpoint(path)
        if checkpoint["network"] != self.model.network:
            raise CheckpointMismatch(f"{path}: checkpoint is for {checkpoint['network']}, not this model's "
                                     f"{self.model.network}")
        training, state = checkpoint["training"], checkpoint["optimizer_state"]
        stored = dict(training.settings, seed=training.seed,
                      optimizer={"kind": state["kind"], **state["hyperparameters"], "lr": training.base_lr})
        requested = dict(run.settings)
        if run.seed_given:
            requested["seed"] = run.seed
        if run.optimizer_given:
            requested["optimizer"] = optimizer_setting(run.optimizer, run.base_lr)
        refusals, followed = compare_settings(stored, requested)
        if refusals:
            raise CheckpointMismatch(f"{path}: cannot resume this run from it: {'; '.join(refusals)}. Resume with "
                                     "the checkpoint's settings, or train into another checkpoint directory")
        if followed:
            warnings.warn(f"resuming from {path} with this run's settings, not the checkpoint's: "
                          f"{'; '.join(followed)}", NNCoreWarning, stacklevel=2)
        if "data" not in training.settings:
            warnings.warn(f"{path} was written by an older nncore, which did not record the data it trained on: "
                          "make sure this run trains on the same data", NNCoreWarning, stacklevel=2)
        optimizer = run.optimizer if run.optimizer_given else OPTIMIZERS[state["kind"]]()
        optimizer.load_state_dict(state, keep_hyperparameters=run.optimizer_given)
        optimizer.ensure_state(self.model.network.n_params, self.model.network.dtype)
        if not run.optimizer_given:
            run.optimizer, run.base_lr = optimizer, training.base_lr
        self.model.params[:] = checkpoint["params"]
        run.seed, run.epoch_offset, run.start = training.seed, training.epoch_offset, training.epochs_done
        run.history, run.best_params = checkpoint["history"], checkpoint["best_params"]
        if training.log is not None:
            self._log = HistoryLog.reopen(self.directory / training.log)


class EpochLogger(Callback):
    """One line per epoch: ``epoch  3/10  loss 0.0712  accuracy 0.9781  val_loss ...  1.23 s``."""

    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool | None:
        print(format_epoch(self.run.index_of(epoch) + 1, self.run.epochs, logs), flush=True)
        return False


def format_epoch(run_epoch, epochs, logs):
    """One progress line: epoch i/n, loss, accuracy, validation loss and accuracy, seconds."""
    width = len(str(epochs))
    line = (f"epoch {run_epoch:>{width}}/{epochs}  loss {logs['loss']:.4f}  "
            f"accuracy {logs['accuracy']:.4f}")
    if logs.get("val_loss") is not None:
        line += f"  val_loss {logs['val_loss']:.4f}  val_accuracy {logs['val_accuracy']:.4f}"
    return line + f"  {logs['seconds']:.2f} s"
