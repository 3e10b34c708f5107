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

Before ``on_train_begin`` each callback gets ``self.run`` (the ``TrainingRun`` of nncore.run:
model, optimizer, seed, epochs, history, ...; a callback may set its fields there, as
``ModelCheckpoint`` does when it resumes) and ``self.model``.
"""
from __future__ import annotations

import functools
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._locking import DirectoryLock
from ._numbers import finite, whole
from ._output_paths import check_output_file, prepare_output_directory
from .checkpoint import TrainingState, compare_settings, fingerprint, optimizer_setting
from .errors import CheckpointMismatch, ModelFileError, NNCoreWarning, OutputPathError
from .history import HISTORY_KEYS, History, HistoryLog
from .io import load_checkpoint, save_checkpoint
from .model_data import data_header
from .optim import OPTIMIZERS
from .schedules import checked_rate, get_schedule

from ._types import Logs, Model, PathLike, Schedule

if TYPE_CHECKING:
    from .run import TrainingRun

CHECKPOINT_NAME = "checkpoint.npz"


class Callback:
    """Base class of fit callbacks: every hook does nothing."""

    run: TrainingRun = None  # type: ignore[assignment]  # set before on_train_begin
    model: Model = None  # type: ignore[assignment]

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
        self._unlogged = 0  # epochs of the run (from its first) whose records the log does not hold

    def on_train_begin(self, logs: Logs | None = None) -> None:
        prepare_output_directory(self.directory, "checkpoint directory")
        self._lock = DirectoryLock(self.directory, "checkpoint directory").acquire()
        try:
            self._begin()
        except BaseException:
            self._release()
            raise

    def _begin(self):
        """Check everything (the checkpoint to resume, the one in the way, what a write would refuse), then
        change the model and the run: a refused run leaves them as they were."""
        run = self.run
        for key, samples in (("data", run.data), ("validation_data", run.validation)):
            if key not in run.settings:  # once per run, however many checkpoint callbacks it has
                run.settings[key] = fingerprint(samples)
        # A checkpoint to resume is an input first: a bad one is reported as a file that does not read.
        checkpoint = self._checkpoint_to_resume() if self.resume and self.path.exists() else None
        self._check_writable()
        if not self.resume and os.path.lexists(self.path):
            self._refuse_another_runs_checkpoint()
        # Partial files of killed runs: no live run writes here, since this one holds the lock.
        for leftover in self.directory.glob(f".{CHECKPOINT_NAME}.*.tmp"):
            leftover.unlink(missing_ok=True)
        self._wrote, self._unlogged = False, 0
        if checkpoint is not None:
            self._resume_from(checkpoint)
            run.say(f"resuming from {self.path} after epoch {run.start}/{run.epochs}")
            if run.history.stopped_early:
                run.start = max(run.start, run.epochs)  # early stopping had ended that run
        elif self.resume:
            run.say(f"no checkpoint in {self.directory}: starting from the current parameters")
        if self._log is None:
            self._log = HistoryLog.create(self.directory)
            self._log.write(0, run.history.records())  # a version 2 checkpoint's history, if resumed from one

    def _check_writable(self):
        """What the first checkpoint write would refuse, refused before the first epoch: a directory, link or
        device at the checkpoint's path, data fields no file keeps."""
        check_output_file(self.path, "checkpoint", streams=False)
        try:
            data_header(self.model)
        except ValueError as error:
            raise ValueError(f"cannot write checkpoints into {self.directory}: {error}") from None

    def _refuse_another_runs_checkpoint(self):
        """Without ``resume``, the checkpoint there may only be replaced by the run it describes going on
        (a model that continues it: same network, parameters and epoch count); another run's is refused."""
        try:
            checkpoint = load_checkpoint(self.path, history_optional=True)
        except ModelFileError as error:
            raise OutputPathError(f"checkpoint directory {self.directory}: holds {CHECKPOINT_NAME}, which this run "
                                  f"would replace but cannot read ({error}); move it away, or choose another "
                                  "checkpoint directory") from None
        training = checkpoint["training"]
        if (checkpoint["network"] == self.model.network
                and training.epoch_offset + training.epochs_done == self.run.epoch_offset
                and np.array_equal(checkpoint["params"], self.model.params)):
            return
        sizes = "-".join(map(str, checkpoint["network"].layer_sizes))
        raise OutputPathError(
            f"checkpoint directory {self.directory}: holds the checkpoint of another run ({sizes}, "
            f"{training.epoch_offset + training.epochs_done} epochs trained), which this run would replace: "
            "continue it with resume=True (nncore train --resume), or start over in another checkpoint "
            f"directory or after removing {self.path}")

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
        logged = index - self._unlogged  # this epoch's position in the history and its log
        self._log.write(logged, run.history.records(logged))
        state = TrainingState(run.seed, run.epoch_offset, index + 1, run.base_lr, run.settings, self._log.path.name,
                              run.has_validation, run.history.stopped_early, run.history.best_epoch,
                              first_logged_epoch=run.epoch_offset + 1 + self._unlogged,
                              log_digest=self._log.digest(logged + 1))
        save_checkpoint(self.path, self.model, run.optimizer, state, run.best_params)
        if not self._wrote:
            self._wrote = True
            # The checkpoint now names this run's log: the previous run's is no longer needed.
            for log in self.directory.glob("history-*.bin"):
                if log.name != self._log.path.name and not log.is_dir():  # a directory there is not a log of ours
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

    def _checkpoint_to_resume(self):
        """The checkpoint, read and found to match the run's settings (CheckpointMismatch naming each difference)."""
        run, path = self.run, self.path
        checkpoint = load_checkpoint(path, history_optional=True)
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
        return checkpoint

    def _resume_from(self, checkpoint):
        """Load the checkpoint into the model and the run."""
        run, training, state = self.run, checkpoint["training"], checkpoint["optimizer_state"]
        optimizer = run.optimizer if run.optimizer_given else OPTIMIZERS[state["kind"]]()
        optimizer.load_state_dict(state, keep_hyperparameters=run.optimizer_given)
        optimizer.ensure_state(self.model.network.n_params, self.model.network.dtype)
        if not run.optimizer_given:
            run.optimizer, run.base_lr = optimizer, training.base_lr
        self.model.params[:] = checkpoint["params"]
        run.seed, run.epoch_offset, run.start = training.seed, training.epoch_offset, training.epochs_done
        run.best_params = checkpoint["best_params"]
        self._unlogged = training.epochs_done - training.logged_epochs
        run.history = checkpoint["history"]
        if run.history is None:
            run.history = self._without_lost_history(checkpoint)
        elif training.log is not None:
            self._log = HistoryLog.reopen(self.directory / training.log, training.logged_epochs)

    def _without_lost_history(self, checkpoint):
        """An empty History for a run whose log is lost: it resumes from the intact parameters and optimizer
        state, and says so; its checkpoints record which epochs their new log holds."""
        training = checkpoint["training"]
        warnings.warn(f"{checkpoint['history_problem']}: resuming from its parameters "
                      f"and optimizer state, which are intact; the history of epochs {training.epoch_offset + 1}.."
                      f"{training.epoch_offset + training.epochs_done} is lost, and early stopping counts from epoch "
                      f"{training.epoch_offset + training.epochs_done + 1}", NNCoreWarning, stacklevel=2)
        self._unlogged = training.epochs_done
        history = History()
        history.stopped_early, history.best_epoch = training.stopped_early, training.best_epoch
        return history


def display(hook):
    """Mark a hook of a callback that only shows the run: if its output fails (a pipe whose reader left, a
    closed or full file), the callback stops showing, with a warning, and the run goes on: a display never
    ends training."""
    @functools.wraps(hook)
    def shown(self, *args, **kwargs):
        if getattr(self, "output_failed", False):
            return False
        try:
            return hook(self, *args, **kwargs)
        except (OSError, ValueError) as error:
            if isinstance(error, ValueError) and "closed file" not in str(error):
                raise  # not the output failing: a bug to see
            self.output_failed = True
            warnings.warn(f"{type(self).__name__} stopped showing the run: its output failed ({error}); training "
                          "goes on", NNCoreWarning, stacklevel=2)
            return False
    return shown


class EpochLogger(Callback):
    """One line per epoch: ``epoch  3/10  loss 0.0712  accuracy 0.9781  val_loss ...  1.23 s``."""

    @display
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
