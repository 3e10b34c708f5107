"""``fit``: the training loop, a short loop around ``backend.train_epoch`` and the callbacks.

A whole epoch is one backend call, so the loop runs Python once per epoch. Schedules, early
stopping, checkpoints and the per-epoch line are callbacks (``nncore.callbacks``). Everything
random is derived from one integer seed: the validation split from ``(seed, SPLIT_STREAM)``
and each epoch's shuffle from ``(seed, epoch)`` (``epoch_seed``), where ``epoch`` counts every
epoch the model has trained. A checkpoint therefore needs only that seed and the epoch
counters to reproduce the rest of a run: a run resumed from its checkpoint ends with the same
parameters, bit for bit (same backend, same thread count), as one never interrupted.
"""
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import inputs
from .backends import DEFAULT_BACKEND, get_backend
from .backends.base import PREDICT_BATCH_SIZE
from .callbacks import Callback, EarlyStopping, EpochLogger, FunctionCallback, LearningRateScheduler, ModelCheckpoint
from .data.dataset import split_indices
from .errors import TrainingDiverged
from .history import History
from .losses import get_loss
from .optim import OPTIMIZERS, Adam, Optimizer

SPLIT_STREAM = 0x5EED5  # the SeedSequence key that keeps the split's stream apart from the epochs'


def epoch_seed(seed, epoch):
    """The shuffle seed of epoch ``epoch`` (0-based, counted over the model's whole training)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


@dataclass
class TrainingRun:
    """The state of one run that the loop and its callbacks share (``callback.run``).

    ``epochs`` is the run's length; it trains its epochs ``start``..``epochs``-1, which are the
    model's epochs ``epoch_offset + 1``.. (1-based, as callbacks see them). A resumed run takes
    ``optimizer``, ``seed``, the counters, ``history``, ``base_lr`` and ``best_params`` from its checkpoint.
    """

    model: object
    optimizer: Optimizer
    optimizer_given: bool
    epochs: int
    seed: int
    epoch_offset: int
    base_lr: float
    settings: dict
    verbose: bool
    start: int = 0
    history: History = field(default_factory=History)
    best_params: "np.ndarray | None" = None
    has_validation: bool = False
    notes: list = field(default_factory=list)  # what on_train_end adds to an interruption's warning

    def index_of(self, epoch):
        """The 0-based index within this run of the model's (1-based) epoch ``epoch``."""
        return epoch - 1 - self.epoch_offset

    def say(self, message):
        if self.verbose:
            print(message, flush=True)


def fit(model, X, y=None, epochs=10, batch_size=128, optimizer=None, loss="cross_entropy",
        validation_data=None, validation_split=None, backend=DEFAULT_BACKEND, callbacks=None,
        early_stopping=None, checkpoint_dir=None, resume=False, verbose=0, lr_schedule=None,
        seed=None, n_threads=None):
    """Train ``model`` for ``epochs`` epochs and return a ``History``.

    - ``X``: (n, n_inputs) pixels (uint8, or integers 0..255; scaled by 1/255 in the kernels) or
      floats (converted to the model's dtype), or a Dataset with ``y`` omitted; ``y``: class
      indices 0..n_classes-1. See ``nncore.inputs``: NaN/inf inputs and labels out of range
      raise ValueError naming the argument, before anything trains.
    - ``batch_size``: samples per update; None means full-batch gradient descent.
    - ``optimizer``: an ``nncore.SGD``/``Adam``, a kind's name ("sgd", "adam": its defaults), or
      None: the model's optimizer from the previous fit (its state continues, as in Keras) or
      ``Adam(1e-3)``.
    - ``validation_data`` (X, y) or a Dataset; or ``validation_split``, a fraction of X held
      out at random (from the seed).
    - ``callbacks``: ``nncore.callbacks.Callback`` objects or functions ``f(epoch, logs)``;
      returning True stops. These convenience arguments add callbacks ahead of them:
      ``lr_schedule`` ("step", "cosine", "constant" or a callable (epoch, epochs, base_lr) -> lr):
      a ``LearningRateScheduler``; ``early_stopping`` (True, a patience, or an ``EarlyStopping``);
      ``checkpoint_dir``: a ``ModelCheckpoint`` writing ``checkpoint.npz`` there after every
      epoch, which with ``resume=True`` first continues from the checkpoint there, if any, up
      to ``epochs`` epochs in all; ``verbose=1``: an ``EpochLogger``.
    - ``backend``: "cython" (the compiled core), "numpy" (the reference), or a Backend.
    - ``seed``: the shuffling/split seed (default: the model's seed, else a random one).
    - ``n_threads``: limit BLAS/OpenMP threads (threadpoolctl) for the run.

    Ctrl-C (KeyboardInterrupt) stops the run: with a backend that stops between batches (the
    compiled one) after the batch in progress, otherwise back at the start of the interrupted
    epoch; ``fit`` warns and returns the history so far, ``history.interrupted`` set, and the
    checkpoint directory keeps the last complete epoch. A non-finite loss raises
    ``TrainingDiverged`` (epoch and batch); the model keeps the parameters from before that batch.
    """
    epochs = inputs.count("epochs", epochs, 0)
    batch_size = inputs.batch_size(batch_size)
    loss = get_loss(loss)
    if verbose not in (0, 1, True, False):
        raise ValueError(f"verbose must be 0 or 1, got {verbose!r}")
    if validation_data is not None and validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    data = inputs.samples(X, y, model.network, "fit", min_samples=1)
    validation = inputs.validation_samples(validation_data, model.network) if validation_data is not None else None
    backend = get_backend(backend)
    callbacks = _callbacks(lr_schedule, early_stopping, checkpoint_dir, resume, verbose, callbacks)
    chosen = _optimizer(model, optimizer)
    chosen.ensure_state(model.network.n_params, model.network.dtype)
    run = TrainingRun(model, chosen, optimizer is not None, epochs, _run_seed(model, seed), model.epochs_trained,
                      chosen.lr, {"batch_size": batch_size, "loss": loss.name, "epochs": epochs,
                                  "backend": backend.name, "validation_split": validation_split}, bool(verbose))
    for callback in callbacks:
        callback.set_run(run)
        callback.on_train_begin({})
    if validation_split:
        data, validation = _split(data, validation_split, run.seed)
    run.has_validation = validation is not None
    model.optimizer, model.loss, model.history = run.optimizer, loss.name, run.history
    model.epochs_trained = run.epoch_offset + run.start
    with inputs.thread_limit(n_threads):
        try:
            for index in range(run.start, epochs):
                if _train_one_epoch(run, backend, loss, data, validation, batch_size, callbacks, index):
                    break
        except KeyboardInterrupt:
            run.history.interrupted = True
        finally:
            for callback in callbacks:
                callback.on_train_end({})
    if run.history.interrupted:
        kept = "".join(f"; {note}" for note in run.notes)
        warnings.warn(f"training interrupted after {len(run.history)} complete epoch(s){kept}; "
                      "returning the history so far", RuntimeWarning, stacklevel=2)
    return run.history


def _train_one_epoch(run, backend, loss, data, validation, batch_size, callbacks, index):
    """Epoch ``index`` of the run, with its callbacks; returns True when one of them stops training."""
    model, optimizer = run.model, run.optimizer
    epoch = run.epoch_offset + index + 1
    for callback in callbacks:
        callback.on_epoch_begin(epoch, {})
    began = time.perf_counter()
    snapshot = None if backend.stops_between_batches else (model.params.copy(), optimizer.state_dict())
    try:
        result = backend.train_epoch(model.network, model.params, optimizer, data.X, data.y,
                                     batch_size or len(data), epoch_seed(run.seed, epoch - 1), loss)
    except KeyboardInterrupt:
        if snapshot is not None:  # the interrupt may have cut an update in half: back to the epoch's start
            model.params[:] = snapshot[0]
            optimizer.load_state_dict(snapshot[1])
        raise
    if result.diverged_batch is not None:
        error = TrainingDiverged(
            f"training diverged: the loss became NaN or infinite at epoch {epoch}, batch {result.diverged_batch} "
            f"(learning rate {optimizer.lr:g}); try a smaller learning rate", epoch=epoch, batch=result.diverged_batch)
        error.history = run.history
        raise error
    logs = {"loss": result.loss_sum / result.n_samples, "accuracy": result.n_correct / result.n_samples,
            "lr": optimizer.lr}
    if validation is not None:
        loss_sum, n_correct = backend.evaluate(model.network, model.params, validation.X, validation.y, loss,
                                               PREDICT_BATCH_SIZE)
        logs["val_loss"], logs["val_accuracy"] = loss_sum / len(validation), n_correct / len(validation)
    logs["seconds"] = time.perf_counter() - began
    run.history.append(epoch, logs)
    model.epochs_trained = epoch
    stop = False
    for callback in callbacks:
        stop = bool(callback.on_epoch_end(epoch, dict(logs, epoch=epoch))) or stop
    return stop


def _callbacks(lr_schedule, early_stopping, checkpoint_dir, resume, verbose, given):
    """The callbacks of a run: those fit's arguments ask for, in their order, then the ones given."""
    built = []
    if lr_schedule is not None:
        built.append(LearningRateScheduler(lr_schedule))
    if early_stopping is True:
        built.append(EarlyStopping())
    elif isinstance(early_stopping, int) and early_stopping is not False:
        built.append(EarlyStopping(patience=early_stopping))
    elif isinstance(early_stopping, EarlyStopping):
        built.append(early_stopping)
    elif early_stopping not in (None, False):
        raise TypeError(f"early_stopping must be None, True, a patience (int) or an EarlyStopping, "
                        f"got {early_stopping!r}")
    if checkpoint_dir is not None:
        built.append(ModelCheckpoint(checkpoint_dir, resume=resume))
    if verbose:
        built.append(EpochLogger())
    for callback in given or []:
        if not isinstance(callback, Callback) and not callable(callback):
            raise TypeError(f"callbacks must be Callback objects or functions f(epoch, logs), got {callback!r}")
        built.append(callback if isinstance(callback, Callback) else FunctionCallback(callback))
    return built


def _optimizer(model, optimizer):
    """The run's optimizer: the one given, a new one of the kind named, the model's, or Adam()."""
    if optimizer is None:
        return model.optimizer if model.optimizer is not None else Adam()
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]()
    if not isinstance(optimizer, Optimizer) or optimizer.kind not in OPTIMIZERS:
        given = repr(optimizer) if isinstance(optimizer, str) else f"a {type(optimizer).__name__}"
        raise TypeError(f"optimizer must be None, one of {tuple(OPTIMIZERS)} or an nncore optimizer, got {given}")
    return optimizer


def _run_seed(model, seed):
    if seed is None:
        seed = model.seed if model.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    return inputs.count("seed", seed, 0)


def _split(data, fraction, seed):
    """(training part, validation part) of ``data``: ``fraction`` held out at random, from ``seed``."""
    train, validation = split_indices(len(data), fraction, np.random.SeedSequence([int(seed), SPLIT_STREAM]),
                                      name="validation_split")
    return data.subset(train), data.subset(validation)
