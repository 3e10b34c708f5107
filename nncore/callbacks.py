"""Callbacks: what ``fit`` calls around each epoch, in Keras's shape.

``fit`` is a short loop; everything else a run does is a callback: the learning-rate schedule
(``LearningRateScheduler``), early stopping (``EarlyStopping``), checkpoints and resuming
(``ModelCheckpoint``), the per-epoch line (``EpochLogger``). ``fit``'s convenience arguments
(``lr_schedule``, ``early_stopping``, ``checkpoint_dir``/``resume``, ``verbose``) build them in
that order, ahead of the ``callbacks`` passed in; pass, combine or subclass them as you like.

Hooks (Keras's names): ``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``,
``on_epoch_end(epoch, logs)``, ``on_train_end(logs)``. ``epoch`` is 1-based and counts the
model's whole training (a second ``fit``, or a resumed run, goes on counting); ``logs`` at
an epoch's end holds that epoch's ``History`` keys. Returning True from ``on_epoch_end``
stops training after that epoch; raising KeyboardInterrupt acts like Ctrl-C.
``on_train_end`` is called however the run ends (finished, stopped, interrupted, diverged).

Before ``on_train_begin`` each callback gets ``self.run`` (the ``TrainingRun`` of nncore.train:
model, optimizer, seed, epochs, history, ...; a callback may set its fields there, as
``ModelCheckpoint`` does when it resumes) and ``self.model``.
"""
import math
from pathlib import Path

from .errors import ModelFileError
from .history import HISTORY_KEYS, History
from .io import load_checkpoint, save_checkpoint
from .optim import OPTIMIZERS
from .schedules import get_schedule

CHECKPOINT_NAME = "checkpoint.npz"


class Callback:
    """Base class of fit callbacks: every hook does nothing."""

    run = None
    model = None

    def set_run(self, run):
        self.run, self.model = run, run.model

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        return False

    def on_train_end(self, logs=None):
        pass


class FunctionCallback(Callback):
    """A plain function ``f(epoch, logs)`` as ``on_epoch_end``."""

    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, epoch, logs=None):
        return self.function(epoch, logs)


class LearningRateScheduler(Callback):
    """Sets ``optimizer.lr`` before each epoch from ``schedule(epoch, epochs, base_lr)`` (nncore.schedules).

    ``epoch`` counts from 0 within the run, ``base_lr`` is the optimizer's rate when the run
    began (kept in checkpoints); the base rate is restored when training ends.
    """

    def __init__(self, schedule):
        self.schedule = get_schedule(schedule)

    def on_epoch_begin(self, epoch, logs=None):
        self.run.optimizer.lr = float(self.schedule(self.run.index_of(epoch), self.run.epochs, self.run.base_lr))

    def on_train_end(self, logs=None):
        self.run.optimizer.lr = self.run.base_lr


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``monitor`` is "val_loss" (the default; "loss" when there is no validation data),
    "val_accuracy", "loss" or "accuracy"; accuracies must rise, losses fall. With
    ``restore_best_weights`` the model gets back the parameters of the best epoch when it
    stops. Its state is computed from the history (and the best parameters are kept in the
    run, so checkpoints hold them): a resumed run stops where the uninterrupted one would.
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, restore_best_weights=True):
        if monitor not in HISTORY_KEYS[:4]:
            raise ValueError(f"monitor must be one of {HISTORY_KEYS[:4]}, got {monitor!r}")
        if int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        self.monitor, self.patience = monitor, int(patience)
        self.min_delta, self.restore_best_weights = float(min_delta), bool(restore_best_weights)

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, "
                f"min_delta={self.min_delta}, restore_best_weights={self.restore_best_weights})")

    def best_index(self, values):
        """Index of the best value, counting only improvements beyond min_delta."""
        sign = -1.0 if "accuracy" in self.monitor else 1.0
        best, best_index = math.inf, None
        for index, value in enumerate(values):
            if value is not None and sign * value < best - self.min_delta:
                best, best_index = sign * value, index
        return best_index

    def on_epoch_end(self, epoch, logs=None):
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

    def on_train_end(self, logs=None):
        if self.run.history.stopped_early and self.restore_best_weights and self.run.best_params is not None:
            self.model.params[:] = self.run.best_params
            self.run.say(f"early stopping: kept the parameters of epoch {self.run.history.best_epoch}")


class ModelCheckpoint(Callback):
    """Write ``checkpoint.npz`` into ``directory`` after every epoch (atomically); with ``resume``,
    continue from the one there first.

    A checkpoint holds the parameters, the optimizer state, the epoch counters, the seed, the
    base learning rate, the history and early stopping's best parameters: a run resumed from
    it ends with the same parameters, bit for bit, as one never interrupted. Put it after an
    EarlyStopping in the callbacks, so each checkpoint knows whether the run stopped there.
    """

    def __init__(self, directory, resume=False):
        self.directory = Path(directory)
        self.path = self.directory / CHECKPOINT_NAME
        self.resume = bool(resume)

    def on_train_begin(self, logs=None):
        self.directory.mkdir(parents=True, exist_ok=True)
        # A run killed mid-write (SIGKILL skips the cleanup) leaves its temporary file behind;
        # without this they pile up, one partial checkpoint per kill.
        for leftover in self.directory.glob(f".{CHECKPOINT_NAME}.*.tmp"):
            leftover.unlink(missing_ok=True)
        if self.resume and self.path.exists():
            self._restore()
            self.run.say(f"resuming from {self.path} after epoch {self.run.start}/{self.run.epochs}")
            if self.run.history.stopped_early:
                self.run.start = max(self.run.start, self.run.epochs)  # early stopping had ended that run
        elif self.resume:
            self.run.say(f"no checkpoint in {self.directory}: starting from the current parameters")

    def on_epoch_end(self, epoch, logs=None):
        run = self.run
        training_state = {"seed": run.seed, "epoch_offset": run.epoch_offset, "epochs_done": run.index_of(epoch) + 1,
                          "base_lr": run.base_lr, "history": run.history.to_dict(), "settings": run.settings}
        try:
            save_checkpoint(self.path, self.model, run.optimizer, training_state, run.best_params)
        except KeyboardInterrupt:
            # Ctrl-C broke off the write of a complete epoch: finish it, so the checkpoint
            # holds the epoch the history and the warning report.
            save_checkpoint(self.path, self.model, run.optimizer, training_state, run.best_params)
            raise
        return False

    def on_train_end(self, logs=None):
        if self.run.history.interrupted and len(self.run.history):
            self.run.notes.append(f"the checkpoint in {self.directory} holds epoch {self.model.epochs_trained}")

    def _restore(self):
        """Load the checkpoint into the model and the run: parameters, optimizer, counters, history."""
        run, path = self.run, self.path
        checkpoint = load_checkpoint(path)
        if checkpoint["network"] != self.model.network:
            raise ModelFileError(f"{path}: checkpoint is for {checkpoint['network']}, not this model's "
                                 f"{self.model.network}")
        state = checkpoint["optimizer_state"]
        optimizer = run.optimizer
        if optimizer.kind != state["kind"]:
            if run.optimizer_given:
                raise ValueError(f"the checkpoint in {path} was trained with {state['kind']}, not "
                                 f"{optimizer.kind}: pass optimizer=None to take it from the checkpoint")
            optimizer = OPTIMIZERS[state["kind"]]()
        try:
            optimizer.load_state_dict(state)
            optimizer.ensure_state(self.model.network.n_params, self.model.network.dtype)
        except (TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: invalid optimizer state ({error})") from None
        training = checkpoint["header"]["training"]
        try:
            seed, offset, done = int(training["seed"]), int(training["epoch_offset"]), int(training["epochs_done"])
            base_lr = float(training["base_lr"])
            history = History.from_dict(training["history"])
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"{path}: invalid training state ({error})") from None
        if seed < 0 or offset < 0 or done < 0 or len(history) != done:
            raise ModelFileError(f"{path}: inconsistent training state")
        self.model.params[:] = checkpoint["params"]
        run.optimizer, run.seed, run.epoch_offset, run.start = optimizer, seed, offset, done
        run.base_lr, run.history, run.best_params = base_lr, history, checkpoint["best_params"]


class EpochLogger(Callback):
    """One line per epoch: ``epoch  3/10  loss 0.0712  accuracy 0.9781  val_loss ...  1.23 s``."""

    def on_epoch_end(self, epoch, logs=None):
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
