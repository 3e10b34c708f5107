"""The training loop around ``backend.train_epoch``: history, validation, schedules, early
stopping, callbacks, checkpoints, interruption and divergence.

A whole epoch is one backend call, so the loop runs Python once per epoch. Everything random
is derived from one integer seed: the validation split from ``(seed, SPLIT_STREAM)`` and each
epoch's shuffle from ``(seed, epoch)`` (``epoch_seed``), where ``epoch`` counts every epoch the
model has trained. A checkpoint therefore needs only that seed and the epoch counters to
reproduce the rest of a run: a run resumed from its checkpoint ends with the same parameters,
bit for bit (same backend, same thread count), as one never interrupted.

Progress is one line per epoch (``verbose=1``). There is no bar *during* an epoch: the epoch
is one call into the compiled core, which reports nothing until it returns, and an estimated
bar would be fake progress. On MNIST an epoch of the default model takes about a second.
"""
import math
import time
import warnings
from pathlib import Path

import numpy as np

from .backends import DEFAULT_BACKEND, get_backend
from .backends._common import LOSSES
from .errors import ModelFileError, TrainingDiverged
from .io import load_checkpoint, save_checkpoint
from .model import PREDICT_BATCH_SIZE, as_inputs, as_labels, thread_limit
from .optim import SGD, Adam
from .schedules import get_schedule

CHECKPOINT_NAME = "checkpoint.npz"
SPLIT_STREAM = 0x5EED5  # the SeedSequence key that keeps the split's stream apart from the epochs'
HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds", "lr")


def epoch_seed(seed, epoch):
    """The shuffle seed of epoch ``epoch`` (0-based, counted over the model's whole training)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


class History:
    """Per-epoch records of one ``fit`` call (or of a run resumed from a checkpoint).

    Lists of equal length: ``epoch`` (1-based, counted over the model's whole training),
    ``loss`` and ``accuracy`` (training, measured during the epoch before each batch's
    update), ``val_loss`` and ``val_accuracy`` (None without validation data), ``seconds``
    (wall time of the epoch, validation included) and ``lr``. ``history`` is the same as a
    dict, as Keras has it. ``interrupted`` says Ctrl-C ended the run; ``stopped_early`` that
    early stopping did, and ``best_epoch`` which epoch it kept.
    """

    def __init__(self):
        self.epoch = []
        for key in HISTORY_KEYS:
            setattr(self, key, [])
        self.interrupted = False
        self.stopped_early = False
        self.best_epoch = None

    def append(self, epoch, logs):
        self.epoch.append(int(epoch))
        for key in HISTORY_KEYS:
            getattr(self, key).append(logs.get(key))

    @property
    def history(self):
        return {"epoch": list(self.epoch), **{key: list(getattr(self, key)) for key in HISTORY_KEYS}}

    @property
    def has_validation(self):
        return any(value is not None for value in self.val_loss)

    def to_dict(self):
        return {**self.history, "interrupted": self.interrupted, "stopped_early": self.stopped_early,
                "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, data):
        history = cls()
        try:
            history.epoch = [int(e) for e in data["epoch"]]
            for key in HISTORY_KEYS:
                values = [None if v is None else float(v) for v in data[key]]
                if len(values) != len(history.epoch):
                    raise ValueError(f"{key} has {len(values)} entries for {len(history.epoch)} epochs")
                setattr(history, key, values)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"invalid history in checkpoint ({error})") from None
        history.stopped_early = bool(data.get("stopped_early", False))
        best = data.get("best_epoch")
        history.best_epoch = None if best is None else int(best)
        return history

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        last = f", last={self.last()}" if self.epoch else ""
        return f"History(epochs={len(self)}{last})"

    def last(self):
        """The last epoch's record as a dict."""
        return {"epoch": self.epoch[-1], **{key: getattr(self, key)[-1] for key in HISTORY_KEYS}}


class Callback:
    """Base class of fit callbacks. ``model`` is set before training starts.

    ``on_epoch_end`` gets the 1-based epoch number and the epoch's ``logs`` (the History keys);
    returning True stops training after this epoch. Raising KeyboardInterrupt acts like Ctrl-C.
    A plain function ``f(epoch, logs)`` works as ``on_epoch_end``.
    """

    model = None

    def on_train_begin(self, history):
        pass

    def on_epoch_end(self, epoch, logs):
        return False

    def on_train_end(self, history):
        pass


class _FunctionCallback(Callback):
    def __init__(self, function):
        self.function = function

    def on_epoch_end(self, epoch, logs):
        return self.function(epoch, logs)


class EarlyStopping:
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``monitor`` is "val_loss" (the default; "loss" when there is no validation data),
    "val_accuracy", "loss" or "accuracy"; accuracies must rise, losses fall. With
    ``restore_best_weights`` the model gets back the parameters of the best epoch when it
    stops. Its state is computed from the history, so a resumed run stops where the
    uninterrupted one would.
    """

    def __init__(self, monitor="val_loss", patience=3, min_delta=0.0, restore_best_weights=True):
        if monitor not in HISTORY_KEYS[:4]:
            raise ValueError(f"monitor must be one of {HISTORY_KEYS[:4]}, got {monitor!r}")
        if int(patience) != patience or patience < 1:
            raise ValueError(f"patience must be a positive integer, got {patience!r}")
        self.monitor, self.patience = monitor, int(patience)
        self.min_delta, self.restore_best_weights = float(min_delta), bool(restore_best_weights)
        self.best_params = None

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

    def update(self, history, params, monitor):
        """After each epoch: remember the best parameters; return True when it is time to stop."""
        values = getattr(history, monitor)
        best = self.best_index(values)
        if best is None:
            return False
        if best == len(values) - 1 and self.restore_best_weights:
            self.best_params = params.copy()
        history.best_epoch = history.epoch[best]
        return len(values) - 1 - best >= self.patience


def _early_stopping(early_stopping):
    if early_stopping is None or early_stopping is False:
        return None
    if early_stopping is True:
        return EarlyStopping()
    if isinstance(early_stopping, EarlyStopping):
        return early_stopping
    if isinstance(early_stopping, int):
        return EarlyStopping(patience=early_stopping)
    raise TypeError(f"early_stopping must be None, True, a patience (int) or an EarlyStopping, "
                    f"got {early_stopping!r}")


def _optimizer(model, optimizer):
    if optimizer is None:
        return model.optimizer if model.optimizer is not None else Adam()
    if optimizer in ("adam", "sgd"):
        return Adam() if optimizer == "adam" else SGD()
    if getattr(optimizer, "kind", None) not in ("sgd", "adam"):
        raise TypeError(f"optimizer must be None, 'adam', 'sgd' or an nncore SGD/Adam, got {optimizer!r}")
    return optimizer


def _check_count(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _validation(model, validation_data):
    if hasattr(validation_data, "images") and hasattr(validation_data, "labels"):
        X_val, y_val = validation_data.images, validation_data.labels
    else:
        try:
            X_val, y_val = validation_data
        except (TypeError, ValueError):
            raise TypeError("validation_data must be (X_val, y_val) or a Dataset") from None
    X_val = as_inputs(X_val, model.n_inputs, model.dtype, "validation_data X")
    y_val = as_labels(y_val, len(X_val), model.n_classes, "validation_data y")
    if len(X_val) == 0:
        raise ValueError("validation_data is empty")
    return X_val, y_val


def _split(X, y, fraction, seed):
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"validation_split must be between 0 and 1 (exclusive), got {fraction!r}")
    n_val = round(float(fraction) * len(X))
    if n_val == 0 or n_val == len(X):
        raise ValueError(f"validation_split {fraction} of {len(X)} samples leaves one part empty")
    order = np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_STREAM])).permutation(len(X))
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return X[train], y[train], X[val], y[val]


def _restore(model, optimizer_argument, path):
    """Load the checkpoint at ``path`` into ``model``; return (optimizer, training state, best params)."""
    checkpoint = load_checkpoint(path)
    header = checkpoint["header"]
    if tuple(header["layer_sizes"]) != model.layer_sizes or header["dtype"] != model.dtype.name:
        raise ModelFileError(f"{path}: checkpoint is for layer sizes {header['layer_sizes']} "
                             f"{header['dtype']}, not this model's {list(model.layer_sizes)} {model.dtype.name}")
    state = checkpoint["optimizer_state"]
    optimizer = _optimizer(model, optimizer_argument)
    if optimizer.kind != state["kind"]:
        if optimizer_argument is not None:
            raise ValueError(f"the checkpoint in {path} was trained with {state['kind']}, "
                             f"not {optimizer.kind}: pass optimizer=None to take it from the checkpoint")
        optimizer = Adam() if state["kind"] == "adam" else SGD()
    try:
        optimizer.load_state_dict(state)
    except (TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: invalid optimizer state ({error})") from None
    training = header["training"]
    try:
        seed, offset, done = int(training["seed"]), int(training["epoch_offset"]), int(training["epochs_done"])
        base_lr = float(training["base_lr"])
        history = History.from_dict(training["history"])
    except (KeyError, TypeError, ValueError) as error:
        raise ModelFileError(f"{path}: invalid training state ({error})") from None
    if seed < 0 or offset < 0 or done < 0 or len(history) != done:
        raise ModelFileError(f"{path}: inconsistent training state")
    model.params[:] = checkpoint["params"]
    return optimizer, {"seed": seed, "epoch_offset": offset, "epochs_done": done, "base_lr": base_lr,
                       "history": history, "settings": training.get("settings", {})}, checkpoint["best_params"]


def format_epoch(run_epoch, epochs, logs):
    """One progress line: epoch i/n, loss, accuracy, validation loss and accuracy, seconds."""
    width = len(str(epochs))
    line = (f"epoch {run_epoch:>{width}}/{epochs}  loss {logs['loss']:.4f}  "
            f"accuracy {logs['accuracy']:.4f}")
    if logs.get("val_loss") is not None:
        line += f"  val_loss {logs['val_loss']:.4f}  val_accuracy {logs['val_accuracy']:.4f}"
    return line + f"  {logs['seconds']:.2f} s"


def fit(model, X, y=None, epochs=10, batch_size=128, optimizer=None, loss="cross_entropy",
        validation_data=None, validation_split=None, backend=DEFAULT_BACKEND, callbacks=None,
        early_stopping=None, checkpoint_dir=None, resume=False, verbose=0, lr_schedule=None,
        seed=None, n_threads=None):
    """Train ``model`` for ``epochs`` epochs and return a ``History``.

    - ``X``: (n, n_inputs) uint8 (scaled by 1/255 in the kernels) or floats (converted to the
      model's dtype), or a Dataset with ``y`` omitted; ``y``: class indices 0..n_classes-1.
      NaN/inf inputs and labels out of range raise ValueError naming the argument.
    - ``batch_size``: samples per update; None means full-batch gradient descent.
    - ``optimizer``: an ``nncore.SGD``/``Adam``, "sgd"/"adam" (defaults), or None: the model's
      optimizer from the previous fit (its state continues, as in Keras) or ``Adam(1e-3)``.
    - ``validation_data`` (X, y) or a Dataset; or ``validation_split``, a fraction of X held
      out at random (from the seed).
    - ``lr_schedule``: "step", "cosine", "constant" or a callable (epoch, epochs, base_lr) -> lr,
      applied to ``optimizer.lr`` before each epoch; the base lr is restored afterwards.
    - ``early_stopping``: True, a patience, or an ``EarlyStopping``.
    - ``callbacks``: ``Callback`` objects or functions ``f(epoch, logs)``; True stops.
    - ``checkpoint_dir``: write ``checkpoint.npz`` there after every epoch (atomically);
      ``resume=True`` first continues from that checkpoint if there is one (parameters,
      optimizer state, epoch counters, seed and history), up to ``epochs`` epochs in all.
    - ``seed``: the shuffling/split seed (default: the model's seed, else a random one).
    - ``n_threads``: limit BLAS/OpenMP threads (threadpoolctl) for the run.

    Ctrl-C (KeyboardInterrupt) stops the run: with the compiled backend after the batch in
    progress, with the NumPy backend back at the start of the interrupted epoch; ``fit``
    warns and returns the history so far, ``history.interrupted`` set, and the checkpoint
    directory keeps the last complete epoch. A non-finite loss raises ``TrainingDiverged``
    (epoch and batch); the model keeps the parameters from before that batch.
    """
    epochs = _check_count("epochs", epochs, 0)
    if batch_size is not None:
        batch_size = _check_count("batch_size", batch_size, 1)
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if verbose not in (0, 1, True, False):
        raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
    if seed is not None:
        seed = _check_count("seed", seed, 0)
    schedule = get_schedule(lr_schedule)
    stopper = _early_stopping(early_stopping)
    callbacks = [c if isinstance(c, Callback) else _FunctionCallback(c) if callable(c) else None
                 for c in (callbacks or [])]
    if any(c is None for c in callbacks):
        raise TypeError("callbacks must be Callback objects or functions f(epoch, logs)")
    if validation_data is not None and validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    if y is None:
        if not (hasattr(X, "images") and hasattr(X, "labels")):
            raise TypeError("fit needs labels y (or a Dataset as X)")
        y = X.labels
    X = as_inputs(X, model.n_inputs, model.dtype, "X")
    y = as_labels(y, len(X), model.n_classes, "y")
    if len(X) == 0:
        raise ValueError("X is empty: nothing to train on")
    validation = _validation(model, validation_data) if validation_data is not None else None
    backend_module = get_backend(backend)
    checkpoint_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
    if resume and checkpoint_path is None:
        raise ValueError("resume=True needs checkpoint_dir")
    if checkpoint_path is not None:
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        # A run killed mid-write (SIGKILL skips the cleanup) leaves its temporary file behind;
        # without this they pile up, one partial checkpoint per kill.
        for leftover in checkpoint_path.parent.glob(f".{CHECKPOINT_NAME}.*.tmp"):
            leftover.unlink(missing_ok=True)

    restored_best = None
    if resume and checkpoint_path.exists():
        optimizer, restored, restored_best = _restore(model, optimizer, checkpoint_path)
        if stopper is not None:
            stopper.best_params = restored_best
        run_seed, epoch_offset, start = restored["seed"], restored["epoch_offset"], restored["epochs_done"]
        history, base_lr = restored["history"], restored["base_lr"]
        if verbose:
            print(f"resuming from {checkpoint_path} after epoch {start}/{epochs}", flush=True)
        if history.stopped_early:
            start = max(start, epochs)  # the checkpointed run had finished: early stopping ended it
    else:
        if resume and verbose:
            print(f"no checkpoint in {checkpoint_dir}: starting from the current parameters", flush=True)
        optimizer = _optimizer(model, optimizer)
        run_seed = seed if seed is not None else model.seed if model.seed is not None else int(
            np.random.SeedSequence().generate_state(1)[0])
        run_seed = _check_count("seed", run_seed, 0)
        epoch_offset, start, history, base_lr = model.epochs_trained, 0, History(), optimizer.lr
    if validation_split:
        X, y, X_val, y_val = _split(X, y, validation_split, run_seed)
        validation = (X_val, y_val)

    model.optimizer, model.loss, model.history = optimizer, loss, history
    model.epochs_trained = epoch_offset + start
    monitor = stopper.monitor if stopper else None
    if stopper and validation is None and monitor.startswith("val_"):
        monitor = monitor[len("val_"):]
    # The NumPy backend can be interrupted mid-update; the compiled one only between batches.
    rollback_on_interrupt = getattr(backend_module, "NAME", "") == "numpy"
    settings = {"batch_size": batch_size, "loss": loss, "epochs": epochs, "backend": backend,
                "validation_split": validation_split}
    for callback in callbacks:
        callback.model = model
        callback.on_train_begin(history)

    with thread_limit(n_threads):
        try:
            for run_epoch in range(start, epochs):
                global_epoch = epoch_offset + run_epoch
                if schedule is not None:
                    optimizer.lr = float(schedule(run_epoch, epochs, base_lr))
                began = time.perf_counter()
                snapshot = (model.params.copy(), optimizer.state_dict()) if rollback_on_interrupt else None
                try:
                    result = backend_module.train_epoch(model.params, model.layer_sizes, optimizer, X, y,
                                                        batch_size, epoch_seed(run_seed, global_epoch), loss)
                except KeyboardInterrupt:
                    if snapshot is not None:
                        model.params[:] = snapshot[0]
                        optimizer.load_state_dict(snapshot[1])
                    raise
                if result.diverged_batch is not None:
                    error = TrainingDiverged(
                        f"training diverged: the loss became NaN or infinite at epoch {global_epoch + 1}, "
                        f"batch {result.diverged_batch} (learning rate {optimizer.lr:g}); try a smaller "
                        f"learning rate", epoch=global_epoch + 1, batch=result.diverged_batch)
                    error.history = history
                    raise error
                logs = {"loss": result.loss_sum / result.n_samples,
                        "accuracy": result.n_correct / result.n_samples, "lr": optimizer.lr}
                if validation is not None:
                    loss_sum, n_correct = backend_module.evaluate(
                        model.params, model.layer_sizes, validation[0], validation[1], loss, PREDICT_BATCH_SIZE)
                    logs["val_loss"] = loss_sum / len(validation[0])
                    logs["val_accuracy"] = n_correct / len(validation[0])
                logs["seconds"] = time.perf_counter() - began
                history.append(global_epoch + 1, logs)
                model.epochs_trained = global_epoch + 1
                stop_early = stopper.update(history, model.params, monitor) if stopper else False
                history.stopped_early = bool(stop_early)  # before the checkpoint, so resume knows
                if checkpoint_path is not None:
                    training_state = {"seed": run_seed, "epoch_offset": epoch_offset,
                                      "epochs_done": run_epoch + 1, "base_lr": base_lr,
                                      "history": history.to_dict(), "settings": settings}
                    best = stopper.best_params if stopper else None
                    try:
                        save_checkpoint(checkpoint_path, model, optimizer, training_state, best)
                    except KeyboardInterrupt:
                        # Ctrl-C broke off the write of a complete epoch: finish it, so the
                        # checkpoint holds the epoch the history and the warning report.
                        save_checkpoint(checkpoint_path, model, optimizer, training_state, best)
                        raise
                if verbose:
                    print(format_epoch(run_epoch + 1, epochs, logs), flush=True)
                stop = stop_early
                for callback in callbacks:
                    if callback.on_epoch_end(global_epoch + 1, dict(logs, epoch=global_epoch + 1)):
                        stop = True
                if stop:
                    break
        except KeyboardInterrupt:
            history.interrupted = True
            kept = f"; the checkpoint in {checkpoint_dir} holds epoch {model.epochs_trained}" \
                if checkpoint_path is not None and len(history) else ""
            warnings.warn(f"training interrupted after {len(history)} complete epoch(s){kept}; "
                          "returning the history so far", RuntimeWarning, stacklevel=3)
        finally:
            if schedule is not None:
                optimizer.lr = base_lr
    best = stopper.best_params if stopper is not None else restored_best
    if history.stopped_early and best is not None and (stopper is None or stopper.restore_best_weights):
        model.params[:] = best
        if verbose:
            print(f"early stopping: kept the parameters of epoch {history.best_epoch}", flush=True)
    for callback in callbacks:
        callback.on_train_end(history)
    return history
