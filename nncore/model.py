"""MLP: layer sizes, activation, dtype, one flat parameter buffer with per-layer views.

The model owns its parameters (and, once trained, its optimizer); the work happens in a
backend (``nncore.backends``) and the training loop lives in ``nncore.train``.
"""
import contextlib
from typing import NamedTuple

import numpy as np

from .backends import DEFAULT_BACKEND, get_backend
from .backends._common import check_layer_sizes, count_parameters, layer_views

ACTIVATIONS = ("relu",)
INITS = ("he", "xavier")
PREDICT_BATCH_SIZE = 4096


class Evaluation(NamedTuple):
    """What ``MLP.evaluate`` returns: the mean loss and the accuracy."""

    loss: float
    accuracy: float


def thread_limit(n_threads):
    """A context limiting BLAS/OpenMP threads to ``n_threads`` (None: leave them alone)."""
    if n_threads is None:
        return contextlib.nullcontext()
    if isinstance(n_threads, bool) or int(n_threads) != n_threads or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=int(n_threads))


def as_inputs(X, n_features, dtype, name="X"):
    """X as the backends take it: uint8 kept (scaled by 1/255 in the kernels), other numbers
    converted to ``dtype``; 2-D, C-contiguous, finite. A Dataset stands for its images."""
    if hasattr(X, "images") and hasattr(X, "labels"):
        X = X.images
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features, the model takes {n_features}")
    if X.dtype == np.uint8:
        return np.ascontiguousarray(X)
    if X.dtype.kind in "iu":
        # uint8 means pixels (scaled by 1/255); an int64 copy of the same pixels would not be
        # scaled and would silently give other answers, so say which is meant.
        raise TypeError(f"{name} has integer dtype {X.dtype}: pass uint8 for pixels 0..255 (scaled "
                        f"by 1/255 in the kernels) or floats for values used as they are")
    converted = np.ascontiguousarray(X, dtype=dtype)
    # Checked after the conversion: a finite float64 such as 1e300 is inf in float32.
    if not np.all(np.isfinite(converted)):
        raise ValueError(f"{name} contains NaN or infinity (in {np.dtype(dtype).name})")
    return converted


def as_labels(y, n_samples, n_classes, name="y"):
    """Integer class indices in 0..n_classes-1, one per sample, as int32."""
    if hasattr(y, "images") and hasattr(y, "labels"):
        y = y.labels
    y = np.asarray(y)
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinity")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class indices, got non-integer values")
    elif y.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},), got {y.shape}")
    if n_samples and (y.min() < 0 or y.max() >= n_classes):
        bad = y.min() if y.min() < 0 else y.max()
        raise ValueError(f"{name} holds label {bad:g}, outside 0..{n_classes - 1} "
                         f"(the model has {n_classes} outputs)")
    return np.ascontiguousarray(y, dtype=np.int32)


class MLP:
    """A multilayer perceptron: ReLU hidden layers, a softmax output layer.

    ``layer_sizes`` lists the widths from input to output, e.g. ``(784, 256, 128, 10)``;
    any number of hidden layers of any width. ``init`` is "he" (normal, std sqrt(2/fan_in),
    for ReLU) or "xavier" (Glorot uniform, limit sqrt(6/(fan_in+fan_out))); biases start at
    zero. ``seed`` fixes the initial weights and, unless ``fit`` is given its own, the
    shuffling. The parameters live in one flat buffer ``params``; ``layers`` gives per-layer
    ``(W, b)`` views into it, W of shape (fan_in, fan_out).
    """

    def __init__(self, layer_sizes, activation="relu", dtype="float32", init="he", seed=None):
        self.layer_sizes = check_layer_sizes(layer_sizes)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.activation, self.init, self.seed = activation, init, seed
        self.params = np.zeros(count_parameters(self.layer_sizes), dtype=self.dtype)
        self.optimizer = None  # created by the first fit, kept for the next (as Keras does)
        self.history = None  # the History of the latest fit
        self.epochs_trained = 0
        self.loss = "cross_entropy"  # the loss of the latest fit; evaluate's default
        self.initialize(seed)

    def initialize(self, seed=None):
        """Draw fresh initial weights (zero biases) from ``seed``; forget the optimizer state."""
        rng = np.random.default_rng(seed)
        for W, b in self.layers:
            fan_in, fan_out = W.shape
            if self.init == "he":
                W[...] = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
            else:
                limit = np.sqrt(6.0 / (fan_in + fan_out))
                W[...] = rng.uniform(-limit, limit, (fan_in, fan_out))
            b[...] = 0
        self.optimizer, self.history, self.epochs_trained = None, None, 0

    @property
    def layers(self):
        """Per layer ``(W, b)``: views into ``params``, W (fan_in, fan_out), b (fan_out,)."""
        return layer_views(self.params, self.layer_sizes)

    @property
    def n_inputs(self):
        return self.layer_sizes[0]

    @property
    def n_classes(self):
        return self.layer_sizes[-1]

    @property
    def n_parameters(self):
        return self.params.shape[0]

    def __repr__(self):
        return (f"MLP(layer_sizes={list(self.layer_sizes)}, activation={self.activation!r}, "
                f"dtype={self.dtype.name!r}, init={self.init!r}, seed={self.seed!r})")

    # ------------------------------------------------------------ training

    def fit(self, X, y=None, epochs=10, batch_size=128, optimizer=None, loss="cross_entropy",
            validation_data=None, validation_split=None, backend=DEFAULT_BACKEND, callbacks=None,
            early_stopping=None, checkpoint_dir=None, resume=False, verbose=0, lr_schedule=None,
            seed=None, n_threads=None):
        """Train for ``epochs`` epochs; return a ``History``. See ``nncore.train.fit``."""
        from .train import fit
        return fit(self, X, y, epochs=epochs, batch_size=batch_size, optimizer=optimizer, loss=loss,
                   validation_data=validation_data, validation_split=validation_split,
                   backend=backend, callbacks=callbacks, early_stopping=early_stopping,
                   checkpoint_dir=checkpoint_dir, resume=resume, verbose=verbose,
                   lr_schedule=lr_schedule, seed=seed, n_threads=n_threads)

    # ------------------------------------------------------------ inference

    def predict_proba(self, X, batch_size=PREDICT_BATCH_SIZE, backend=DEFAULT_BACKEND, n_threads=None):
        """Class probabilities (n_samples, n_classes)."""
        X = as_inputs(X, self.n_inputs, self.dtype)
        with thread_limit(n_threads):
            return get_backend(backend).forward(self.params, self.layer_sizes, X, batch_size)

    def predict(self, X, batch_size=PREDICT_BATCH_SIZE, backend=DEFAULT_BACKEND, n_threads=None):
        """Predicted class indices (n_samples,), the first maximum on ties."""
        return self.predict_proba(X, batch_size, backend, n_threads).argmax(axis=1)

    def evaluate(self, X, y=None, loss=None, batch_size=PREDICT_BATCH_SIZE, backend=DEFAULT_BACKEND,
                 n_threads=None):
        """Mean loss (the latest fit's loss unless given) and accuracy on X, y: an ``Evaluation``.

        ``X`` may be a Dataset, with ``y`` omitted.
        """
        if y is None:
            if not hasattr(X, "labels"):
                raise TypeError("evaluate needs labels y (or a Dataset as X)")
            y = X.labels
        X = as_inputs(X, self.n_inputs, self.dtype)
        y = as_labels(y, len(X), self.n_classes)
        if len(X) == 0:
            raise ValueError("X is empty: nothing to evaluate")
        with thread_limit(n_threads):
            loss_sum, n_correct = get_backend(backend).evaluate(
                self.params, self.layer_sizes, X, y, loss or self.loss, batch_size)
        return Evaluation(loss_sum / len(X), n_correct / len(X))

    # ------------------------------------------------------------ files

    def save(self, path):
        """Write the architecture and parameters to ``path`` (.npz, atomically); ``nncore.load`` reads it."""
        from .io import save_model
        save_model(self, path)

    def to_onnx(self, path, input_dtype="uint8"):
        """Write the model to ``path`` as an ONNX graph; see ``nncore.onnx_export`` (needs ``nncore[onnx]``)."""
        from .onnx_export import to_onnx
        return to_onnx(self, path, input_dtype)

    def copy(self):
        """An independent copy of the architecture and parameters (no optimizer, no history)."""
        clone = MLP(self.layer_sizes, self.activation, self.dtype.name, self.init, self.seed)
        clone.params[:] = self.params
        return clone
