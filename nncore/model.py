"""MLP: a network description, its flat parameter buffer, training, inference and files.

The model owns its parameters (and, once trained, its optimizer); the shape and layout are
its ``Network``, the work happens in a backend (``nncore.backends``) and ``fit``'s loop lives
in ``nncore.train``.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from . import inputs, train
from .backends import DEFAULT_BACKEND, get_backend
from .backends.base import PREDICT_BATCH_SIZE
from .io import read_model, save_model
from .losses import get_loss
from .model_data import checked_fields
from .network import INITIALIZERS, Network
from .outputs import check_probabilities, count_non_finite, refusal
from ._types import ArrayLike, DTypeLike, FloatArray, Logs, NDArray, PathLike, Schedule

if TYPE_CHECKING:
    import onnx

    from .augment import Shift
    from .backends.base import Backend
    from .callbacks import Callback, EarlyStopping
    from .data.dataset import Dataset, ImageSet
    from .history import History
    from .losses import Loss
    from .optim import Optimizer


class Evaluation(NamedTuple):
    """What ``MLP.evaluate`` returns: the mean loss and the accuracy."""

    loss: float
    accuracy: float


class MLP:
    """A multilayer perceptron: hidden layers with an activation each, a softmax output layer.

    ``layer_sizes`` lists the widths from input to output, e.g. ``(784, 256, 128, 10)``; any
    number of hidden layers of any width. ``activation`` is one of scikit-learn's four
    ("identity", "logistic", "tanh", "relu") for every hidden layer, or a sequence with one
    per hidden layer. ``init`` is "he" (normal, std sqrt(2/fan_in), for ReLU) or "xavier"
    (Glorot uniform, limit sqrt(6/(fan_in+fan_out))) for every layer; None (the default) gives
    each hidden layer its activation's own (He for ReLU, Glorot for the others) and the output
    layer the same as the last hidden one; biases start at zero. ``seed`` fixes the initial
    weights and, unless ``fit`` is given its own, the shuffling. ``dropout`` is the rate of
    dropout of every hidden layer, or one rate per hidden layer: in training each row drops
    that fraction of the layer's units and scales the others by 1 / (1 - rate) (inverted
    dropout), so inference uses the whole network as it is; ``input_dropout`` likewise drops
    that fraction of the input features of each training row. The parameters live in one
    flat buffer ``params``; ``layers`` gives per-layer ``(W, b)`` views into it, W of shape
    (fan_in, fan_out).

    What the model was trained on, as far as it knows (None until then): ``dataset_name``,
    ``class_names`` (one per output) and ``input_shape`` (one image's shape, e.g. (28, 28)).
    ``fit`` on a Dataset records them, model files keep them, ``nncore evaluate``/``predict``
    use them; set them by hand for models trained on arrays.
    """

    dataset_name: str | None
    class_names: tuple[str, ...] | None
    input_shape: tuple[int, ...] | None

    def __init__(self, layer_sizes: Sequence[int], activation: str | Sequence[str] = "relu",
                 dtype: DTypeLike = "float32", init: str | None = None, seed: int | None = None,
                 dropout: float | Sequence[float] = 0.0, input_dropout: float = 0.0) -> None:
        if init is not None and init not in INITIALIZERS:
            raise ValueError(f"init must be None or one of {tuple(INITIALIZERS)}, got {init!r}")
        self._adopt(Network(layer_sizes, activation, dtype, dropout, input_dropout),
                    activation if isinstance(activation, str) else tuple(activation), init, seed)
        self.initialize(seed)

    @classmethod
    def from_network(cls, network: Network, params: ArrayLike) -> MLP:
        """A model of ``network`` (an ``nncore.network.Network``) holding a copy of ``params``; no
        initialisation is drawn. ``activation`` is the hidden layers' one name, or their names."""
        names = network.activation_names
        model = cls.__new__(cls)
        model._adopt(network, names[0] if names and len(set(names)) == 1 else names or "relu", None, None)
        model._params[:] = params
        return model

    def _adopt(self, network, activation, init, seed):
        self.network = network
        self.activation = activation
        self.init, self.seed = init, seed
        self._params = network.zeros()
        self.optimizer = None  # created by the first fit, kept for the next (as Keras does)
        self.history = None  # the History of the latest fit
        self.epochs_trained = 0
        self.loss = "cross_entropy"  # the loss of the latest fit; evaluate's default
        self.dataset_name = self.class_names = self.input_shape = None

    def remember_data(self, dataset: ImageSet) -> None:
        """Record what ``dataset`` (a Dataset or ImageSet) is: its dataset's name, class names, image shape.

        ValueError, before anything changes, for what a model file could not keep (``nncore.model_data``).
        """
        self.dataset_name, self.class_names, self.input_shape = checked_fields(
            self.network, dataset.dataset_name, tuple(dataset.class_names) or None, tuple(dataset.image_shape),
            dataset.name)

    def initialize(self, seed: int | None = None) -> None:
        """Draw fresh initial weights (zero biases) from ``seed``; forget the optimizer state."""
        inits = ((self.init,) * self.network.n_layers if self.init is not None else
                 self.network.default_inits(self.activation if isinstance(self.activation, str) else "relu"))
        self._params[:] = self.network.initial_params(seed, inits)
        self.optimizer, self.history, self.epochs_trained = None, None, 0

    @property
    def params(self) -> FloatArray:
        """The flat parameter buffer (assign into it: ``model.params[:] = ...``)."""
        return self._params

    @property
    def layers(self) -> list[tuple[FloatArray, FloatArray]]:
        """Per layer ``(W, b)``: views into ``params``, W (fan_in, fan_out), b (fan_out,)."""
        return self.network.views(self._params)

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        return self.network.layer_sizes

    @property
    def dtype(self) -> np.dtype:
        return self.network.dtype

    @property
    def dropout(self) -> tuple[float, ...]:
        """The dropout rate of each hidden layer (a tuple)."""
        return self.network.dropout

    @property
    def input_dropout(self) -> float:
        """The dropout rate of the input features."""
        return self.network.input_dropout

    @property
    def n_inputs(self) -> int:
        return self.network.n_inputs

    @property
    def n_classes(self) -> int:
        return self.network.n_classes

    @property
    def n_parameters(self) -> int:
        return self.network.n_params

    def __repr__(self):
        dropout = f", dropout={list(self.dropout)!r}" if any(self.dropout) else ""
        dropout += f", input_dropout={self.input_dropout!r}" if self.input_dropout else ""
        return (f"MLP(layer_sizes={list(self.layer_sizes)}, activation={self.activation!r}, "
                f"dtype={self.dtype.name!r}, init={self.init!r}, seed={self.seed!r}{dropout})")

    def summary(self, print_fn: Callable[[str], object] | None = None) -> None:
        """Print a table of the layers: output shapes, activations, W and b shapes, parameter counts.

        As Keras's ``model.summary()``; ``print_fn`` (default ``print``) receives each line.
        """
        from .summary import summary_lines
        for line in summary_lines(self):
            (print_fn or print)(line)

    # ------------------------------------------------------------ training

    def fit(self, X: ArrayLike | Dataset, y: ArrayLike | None = None, epochs: int = 10,
            batch_size: int | None = 128, optimizer: Optimizer | str | None = None,
            loss: str | Loss = "cross_entropy", validation_data: tuple[ArrayLike, ArrayLike] | Dataset | None = None,
            validation_split: float | None = None, backend: str | Backend = DEFAULT_BACKEND,
            callbacks: Sequence[Callback | Callable[[int, Logs], bool | None]] | None = None,
            early_stopping: bool | int | EarlyStopping | None = None, checkpoint_dir: PathLike | None = None,
            resume: bool = False, verbose: int | str = "auto", lr_schedule: Schedule | None = None,
            seed: int | None = None, n_threads: int | None = None, augment: str | Shift | None = None) -> History:
        """Train for ``epochs`` epochs and return a ``History``.

        - ``X``: (n, n_inputs) pixels (uint8, or integers 0..255; scaled by 1/255 in the kernels) or
          floats (converted to the model's dtype), or a Dataset with ``y`` omitted; ``y``: class
          indices 0..n_classes-1. See ``nncore.inputs``: NaN/inf inputs and labels out of range
          raise ValueError naming the argument, before anything trains.
        - ``batch_size``: samples per update; None means full-batch gradient descent.
        - ``optimizer``: an ``nncore.SGD``/``Adam``/``RMSprop``/``AdamW``, a kind's name ("sgd",
          "adam", "rmsprop", "adamw": its defaults), or None: the model's optimizer from the
          previous fit (its state continues, as in Keras) or ``Adam(1e-3)``.
        - ``validation_data`` (X, y) or a Dataset; or ``validation_split``, a fraction of X held
          out at random (from the seed).
        - ``callbacks``: ``nncore.callbacks.Callback`` objects or functions ``f(epoch, logs)``;
          returning True stops. These convenience arguments add callbacks ahead of them:
          ``lr_schedule`` ("step", "cosine", "constant" or a callable (epoch, epochs, base_lr) -> lr):
          a ``LearningRateScheduler``; ``early_stopping`` (True, a patience, or an ``EarlyStopping``);
          ``checkpoint_dir``: a ``ModelCheckpoint`` writing ``checkpoint.npz`` there after every
          epoch, which with ``resume=True`` first continues from the checkpoint there, if any, up
          to ``epochs`` epochs in all; ``verbose``: 1 or "auto" (the default) a ``ProgressBar`` (a live
          bar with rate and ETA in a terminal, one line per epoch otherwise), 2 an ``EpochLogger`` (one
          line per epoch), 0 nothing.
        - ``backend``: "cython" (the compiled core), "numpy" (the reference), or a Backend.
        - ``seed``: the shuffling/split seed (default: the model's seed, else a random one).
        - ``n_threads``: how many of nncore's threads the run may use (None: all the process may,
          ``nncore.backends.threads``). Results are bit-identical run to run for a thread count.
        - ``augment``: None, or "shift:K" / ``nncore.Shift(K, image_shape)``: each training image
          moved by a random (dy, dx) in -K..K, zero-filled (``nncore.augment``). The model's
          dropout (``MLP(dropout=..., input_dropout=...)``) applies in every training batch.

        Ctrl-C (KeyboardInterrupt) stops the run: with a backend that stops between batches (the
        compiled one) after the batch in progress, otherwise back at the start of the interrupted
        epoch; ``fit`` warns and returns the history so far, ``history.interrupted`` set, and the
        checkpoint directory keeps the last complete epoch. A non-finite loss raises
        ``TrainingDiverged`` (epoch and batch); the model keeps the parameters from before that batch.
        """
        return train.fit(self, X, y, epochs, batch_size, optimizer, loss, validation_data, validation_split, backend,
                         callbacks, early_stopping, checkpoint_dir, resume, verbose, lr_schedule, seed, n_threads,
                         augment)

    # ------------------------------------------------------------ inference

    def predict_proba(self, X: ArrayLike | ImageSet, batch_size: int | None = PREDICT_BATCH_SIZE,
                      backend: str | Backend = DEFAULT_BACKEND, n_threads: int | None = None) -> FloatArray:
        """Class probabilities (n_samples, n_classes); ``X`` as ``fit`` takes it (see ``nncore.inputs``).

        Raises ``NonFiniteOutputError`` rather than return rows of NaN (``nncore.outputs``).
        """
        data = inputs.samples(X, None, self.network, "predict", with_labels=False)
        batch_size = inputs.batch_size(batch_size)
        probabilities = get_backend(backend, n_threads).forward(self.network, self._params, data.X,
                                                                batch_size or max(len(data), 1))
        return check_probabilities(self.network, self._params, probabilities, "X")

    def predict(self, X: ArrayLike | ImageSet, batch_size: int | None = PREDICT_BATCH_SIZE,
                backend: str | Backend = DEFAULT_BACKEND, n_threads: int | None = None) -> NDArray[np.intp]:
        """Predicted class indices (n_samples,), the first maximum on ties."""
        return self.predict_proba(X, batch_size, backend, n_threads).argmax(axis=1)

    def evaluate(self, X: ArrayLike | ImageSet, y: ArrayLike | None = None, loss: str | None = None,
                 batch_size: int | None = PREDICT_BATCH_SIZE, backend: str | Backend = DEFAULT_BACKEND,
                 n_threads: int | None = None) -> Evaluation:
        """Mean loss (the latest fit's loss unless given) and accuracy on X, y: an ``Evaluation``.

        ``X`` may be a Dataset, with ``y`` omitted. Raises ``NonFiniteOutputError`` when the
        network's outputs on some rows are NaN or infinite (see ``nncore.outputs``).
        """
        data = inputs.samples(X, y, self.network, "evaluate", min_samples=1)
        batch_size = inputs.batch_size(batch_size)
        backend = get_backend(backend, n_threads)
        loss_sum, n_correct = backend.evaluate(self.network, self._params, data.X, data.y,
                                               get_loss(loss or self.loss), batch_size or len(data))
        # A loss that is not finite may come from NaN outputs, whose argmax is no prediction.
        bad = 0 if math.isfinite(loss_sum) else count_non_finite(backend, self.network, self._params, data.X,
                                                                  batch_size or len(data))
        if bad:
            raise refusal(self.network, self._params, bad, len(data), "X", "an accuracy")
        return Evaluation(loss_sum / len(data), n_correct / len(data))

    # ------------------------------------------------------------ files

    def save(self, path: PathLike) -> None:
        """Write the architecture and parameters to ``path`` (.npz, atomically); ``nncore.load`` reads it."""
        save_model(self, path)

    def to_onnx(self, path: PathLike, input_dtype: str = "uint8") -> onnx.ModelProto:
        """Write the model to ``path`` as an ONNX graph; see ``nncore.onnx_export`` (needs ``nncore[onnx]``)."""
        from .onnx_export import to_onnx
        return to_onnx(self, path, input_dtype)

    def copy(self) -> MLP:
        """An independent copy of the architecture, parameters and data fields (no optimizer, no history)."""
        return self.astype(self.dtype)

    def astype(self, dtype: DTypeLike) -> MLP:
        """A copy with its parameters in ``dtype`` (float32 or float64), data fields and epoch count kept; no
        optimizer, no history."""
        network = Network(self.layer_sizes, self.network.activation_names, dtype, self.dropout, self.input_dropout)
        clone = MLP.from_network(network, self._params)
        clone.activation, clone.init, clone.seed = self.activation, self.init, self.seed
        clone.dataset_name, clone.class_names, clone.input_shape = self.dataset_name, self.class_names, self.input_shape
        clone.epochs_trained = self.epochs_trained  # what the parameters are the result of
        return clone


def load(path: PathLike) -> MLP:
    """Load a model (or the model inside a checkpoint) saved by ``MLP.save``; return an ``MLP``.

    Raises ``ModelFileError`` if the file is missing, corrupt, crafted or from a newer nncore.
    """
    network, params, data = read_model(path)
    model = MLP.from_network(network, params)
    for field, value in data.items():
        setattr(model, field, value)
    return model
