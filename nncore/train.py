"""``fit``: the training loop, a short loop around ``backend.train_epoch`` and the callbacks.

A whole epoch is one backend call, so the loop runs Python once per epoch. Schedules, early
stopping, checkpoints and the per-epoch line are callbacks (``nncore.callbacks``). Everything
random is derived from one integer seed: the validation split from ``(seed, SPLIT_STREAM)``
and each epoch's shuffle from ``(seed, epoch)`` (``epoch_seed``), where ``epoch`` counts every
epoch the model has trained. Dropout masks and image shifts are drawn from counters keyed by
that epoch seed and each row's position in the epoch (``nncore.counters``). A checkpoint
therefore needs only that seed and the epoch counters to reproduce the rest of a run: a run
resumed from its checkpoint ends with the same parameters, bit for bit (same backend, same
thread count), as one never interrupted.

The loop guards the model against non-finite parameters and concurrent fits (``nncore._guards``).
"""
from __future__ import annotations

import math
import time
import warnings

import numpy as np

from . import inputs
from ._guards import Snapshot, check_after_callback, diverged, non_finite, one_fit_at_a_time
from ._numbers import finite
from .augment import get_augment
from .backends import DEFAULT_BACKEND, get_backend
from .backends.base import PREDICT_BATCH_SIZE
from .callbacks import Callback, EarlyStopping, EpochLogger, FunctionCallback, LearningRateScheduler, ModelCheckpoint
from .checkpoint import MAX_EPOCHS, MAX_SEED, describe_schedule
from .data.dataset import split_indices
from .errors import NNCoreWarning
from .losses import get_loss
from .optim import OPTIMIZERS, Adam, Optimizer
from .progress import ProgressBar
from .run import TrainingRun
from .outputs import count_non_finite

SPLIT_STREAM = 0x5EED5  # the SeedSequence key that keeps the split's stream apart from the epochs'
#: ``verbose``: 0 quiet, 1 a ProgressBar (one line per epoch when the output is not a terminal),
#: 2 an EpochLogger (one line per epoch); "auto", the default, is 1, as in Keras.
VERBOSITIES = (0, 1, 2, "auto")


def epoch_seed(seed, epoch):
    """The shuffle seed of epoch ``epoch`` (0-based, counted over the model's whole training)."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def fit(model, X, y=None, epochs=10, batch_size=128, optimizer=None, loss="cross_entropy",
        validation_data=None, validation_split=None, backend=DEFAULT_BACKEND, callbacks=None,
        early_stopping=None, checkpoint_dir=None, resume=False, verbose="auto", lr_schedule=None,
        seed=None, n_threads=None, augment=None):
    """Train ``model`` for ``epochs`` epochs and return a ``History``: ``MLP.fit`` (its docstring
    says what each argument means)."""
    epochs = inputs.count("epochs", epochs, 0)
    if epochs > MAX_EPOCHS:
        raise ValueError(f"epochs must be at most {MAX_EPOCHS}, got {epochs}")
    batch_size = inputs.batch_size(batch_size)
    loss = get_loss(loss)
    if isinstance(verbose, float) or verbose not in VERBOSITIES:  # True and False are 1 and 0
        raise ValueError(f"verbose must be one of {VERBOSITIES}, got {verbose!r}")
    if validation_data is not None and validation_split:
        raise ValueError("give validation_data or validation_split, not both")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs checkpoint_dir")
    data = inputs.samples(X, y, model.network, "fit", min_samples=1)
    if validation_split:
        validation_split = finite("validation_split", validation_split)
        split_indices(len(data), validation_split, 0, name="validation_split")  # refused now, not after epoch 1
    augment = get_augment(augment)
    augment = augment.resolved(model.network.n_inputs, X) if augment is not None else None
    validation = inputs.validation_samples(validation_data, model.network) if validation_data is not None else None
    backend = get_backend(backend, n_threads)
    callbacks = _callbacks(lr_schedule, early_stopping, checkpoint_dir, resume, verbose, callbacks)
    chosen = _optimizer(model, optimizer)
    chosen.ensure_state(model.network.n_params, model.network.dtype)
    settings = {"batch_size": batch_size, "loss": loss.name, "epochs": epochs, "backend": backend.name,
                "validation_split": validation_split or None,
                "augment": augment.to_dict() if augment is not None else None,
                "lr_schedule": describe_schedule([c.schedule for c in callbacks if isinstance(c, LearningRateScheduler)]),
                # The results are bit-identical run to run for this thread count (None: any count).
                "step_threads": backend.step_threads(model.network, batch_size or len(data))}
    run = TrainingRun(model, chosen, optimizer is not None, epochs, _run_seed(model, seed), model.epochs_trained,
                      chosen.lr, settings, bool(verbose), seed_given=seed is not None, data=data,
                      validation=validation, augment=augment)
    with one_fit_at_a_time(model):
        if hasattr(X, "image_shape") and hasattr(X, "class_names"):  # a Dataset: the model remembers it
            model.remember_data(X)
        _run(run, backend, loss, data, validation, validation_split, batch_size, callbacks)
    if run.history.interrupted:
        kept = "".join(f"; {note}" for note in run.notes)
        warnings.warn(f"training interrupted after {len(run.history)} complete epoch(s){kept}; "
                      "returning the history so far", RuntimeWarning, stacklevel=2)
    return run.history


def _run(run, backend, loss, data, validation, validation_split, batch_size, callbacks):
    """The callbacks' on_train_begin, the epochs, and on_train_end for every callback that began."""
    model, begun = run.model, []
    try:
        for callback in callbacks:
            callback.set_run(run)
        for callback in callbacks:
            begun.append(callback)
            callback.on_train_begin({})
            check_after_callback(run, callback, "on_train_begin")
        if validation_split:
            data, validation = _split(data, validation_split, run.seed)
        run.has_validation = validation is not None
        run.samples_per_epoch = len(data)
        run.batches_per_epoch = -(-len(data) // (batch_size or len(data)))
        model.optimizer, model.loss, model.history = run.optimizer, loss.name, run.history
        model.epochs_trained = run.epoch_offset + run.start
        snapshot = Snapshot(run)
        for index in range(run.start, run.epochs):
            if _train_one_epoch(run, backend, loss, data, validation, batch_size, callbacks, index, snapshot):
                break
    except KeyboardInterrupt:
        run.history.interrupted = True
    except BaseException:
        _end(run, begun, failing=True)
        raise
    _end(run, begun, failing=False)


def _end(run, begun, failing):
    """on_train_end for each callback that began, however the others fare; the first error is raised
    unless the run is already failing (its own error wins)."""
    first = None
    for callback in begun:
        try:
            callback.on_train_end({})
            check_after_callback(run, callback, "on_train_end")
        except BaseException as error:  # KeyboardInterrupt too: the other callbacks still end
            first = first or error
    if first is not None and not failing:
        raise first


def _train_one_epoch(run, backend, loss, data, validation, batch_size, callbacks, index, snapshot):
    """Epoch ``index`` of the run, with its callbacks; returns True when one of them stops training."""
    model = run.model
    epoch = run.epoch_offset + index + 1
    for callback in callbacks:
        callback.on_epoch_begin(epoch, {})
        check_after_callback(run, callback, "on_epoch_begin", epoch)
    optimizer = run.optimizer
    began = time.perf_counter()
    snapshot.take()
    seed = epoch_seed(run.seed, epoch - 1)
    progress = _progress_hook(callbacks, epoch)

    def train(n_batches=None):
        return backend.train_epoch(model.network, model.params, optimizer, data.X, data.y, batch_size or len(data),
                                   seed, loss, run.augment, on_progress=None if n_batches else progress,
                                   n_batches=n_batches)

    try:
        result = train()
    except KeyboardInterrupt:
        if not backend.stops_between_batches:  # the interrupt may have cut an update in half
            snapshot.restore()
        raise
    if result.diverged_batch is not None or non_finite(run) is not None:
        diverged(run, result, snapshot, train, epoch)
    logs = {"loss": result.loss_sum / result.n_samples, "accuracy": result.n_correct / result.n_samples,
            "lr": optimizer.lr}
    if validation is not None:
        logs["val_loss"], logs["val_accuracy"] = _validate(run, backend, loss, validation, epoch)
    logs["seconds"] = time.perf_counter() - began
    run.history.append(epoch, logs)
    model.epochs_trained = epoch
    stop = False
    for callback in callbacks:
        stop = bool(callback.on_epoch_end(epoch, dict(logs, epoch=epoch))) or stop
        check_after_callback(run, callback, "on_epoch_end", epoch)
    return stop


def _progress_hook(callbacks, epoch):
    """What the backend calls between batches: the callbacks' ``on_epoch_progress``; None when none listens."""
    listeners = [callback for callback in callbacks if callback.wants_progress]
    if not listeners:
        return None

    def report(n_batches, n_samples, loss_sum):
        logs = {"batches": n_batches, "samples": n_samples, "loss": loss_sum / n_samples if n_samples else math.nan}
        for callback in listeners:
            callback.on_epoch_progress(epoch, logs)

    return report


def _validate(run, backend, loss, validation, epoch):
    """(val_loss, val_accuracy); inf and NaN, with a warning, when the outputs are NaN or infinite."""
    model = run.model
    loss_sum, n_correct = backend.evaluate(model.network, model.params, validation.X, validation.y, loss,
                                           PREDICT_BATCH_SIZE)
    val_loss, val_accuracy = loss_sum / len(validation), n_correct / len(validation)
    if not np.isfinite(val_loss):
        bad = count_non_finite(backend, model.network, model.params, validation.X, PREDICT_BATCH_SIZE)
        if bad:
            warnings.warn(f"epoch {epoch}: the network's outputs are NaN or infinite for {bad} of {len(validation)} "
                          "validation samples (its logits overflow); val_loss is recorded as inf, val_accuracy as NaN",
                          NNCoreWarning, stacklevel=4)
            val_loss, val_accuracy = float("inf"), float("nan")  # unbounded; not measured
    return val_loss, val_accuracy


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
    if verbose == 2:
        built.append(EpochLogger())
    elif verbose:
        built.append(ProgressBar())
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
    seed = inputs.count("seed", seed, 0)
    if seed >= MAX_SEED:
        raise ValueError(f"seed must be below 2**128, got {seed}")
    return seed


def _split(data, fraction, seed):
    """(training part, validation part) of ``data``: ``fraction`` held out at random, from ``seed``."""
    train, validation = split_indices(len(data), fraction, np.random.SeedSequence([int(seed), SPLIT_STREAM]),
                                      name="validation_split")
    return data.subset(train), data.subset(validation)
