"""MLP: a network description, its flat parameter buffer, inference, and ``fit``.

The model owns its parameters (and, once trained, its optimizer); the shape and layout are
its ``Network``, the work happens in a backend (``nncore.backends``) and the training loop
lives in ``nncore.train``.
"""
from typing import NamedTuple

from . import inputs
from .backends import DEFAULT_BACKEND, get_backend
from .backends.base import PREDICT_BATCH_SIZE
from .io import read_model, save_model
from .losses import get_loss
from .network import INITIALIZERS, Network
from .train import fit


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
    weights and, unless ``fit`` is given its own, the shuffling. The parameters live in one
    flat buffer ``params``; ``layers`` gives per-layer ``(W, b)`` views into it, W of shape
    (fan_in, fan_out).
    """

    def __init__(self, layer_sizes, activation="relu", dtype="float32", init=None, seed=None):
        self.network = Network(layer_sizes, activation, dtype)
        if init is not None and init not in INITIALIZERS:
            raise ValueError(f"init must be None or one of {tuple(INITIALIZERS)}, got {init!r}")
        self.activation = activation if isinstance(activation, str) else tuple(activation)
        self.init, self.seed = init, seed
        self._params = self.network.zeros()
        self.optimizer = None  # created by the first fit, kept for the next (as Keras does)
        self.history = None  # the History of the latest fit
        self.epochs_trained = 0
        self.loss = "cross_entropy"  # the loss of the latest fit; evaluate's default
        self.initialize(seed)

    def initialize(self, seed=None):
        """Draw fresh initial weights (zero biases) from ``seed``; forget the optimizer state."""
        inits = ((self.init,) * self.network.n_layers if self.init is not None else
                 self.network.default_inits(self.activation if isinstance(self.activation, str) else "relu"))
        self._params[:] = self.network.initial_params(seed, inits)
        self.optimizer, self.history, self.epochs_trained = None, None, 0

    @property
    def params(self):
        """The flat parameter buffer (assign into it: ``model.params[:] = ...``)."""
        return self._params

    @property
    def layers(self):
        """Per layer ``(W, b)``: views into ``params``, W (fan_in, fan_out), b (fan_out,)."""
        return self.network.views(self._params)

    @property
    def layer_sizes(self):
        return self.network.layer_sizes

    @property
    def dtype(self):
        return self.network.dtype

    @property
    def n_inputs(self):
        return self.network.n_inputs

    @property
    def n_classes(self):
        return self.network.n_classes

    @property
    def n_parameters(self):
        return self.network.n_params

    def __repr__(self):
        return (f"MLP(layer_sizes={list(self.layer_sizes)}, activation={self.activation!r}, "
                f"dtype={self.dtype.name!r}, init={self.init!r}, seed={self.seed!r})")

    # ------------------------------------------------------------ training

    fit = fit

    # ------------------------------------------------------------ inference

    def predict_proba(self, X, batch_size=PREDICT_BATCH_SIZE, backend=DEFAULT_BACKEND, n_threads=None):
        """Class probabilities (n_samples, n_classes); ``X`` as ``fit`` takes it (see ``nncore.inputs``)."""
        data = inputs.samples(X, None, self.network, "predict", with_labels=False)
        batch_size = inputs.batch_size(batch_size)
        with inputs.thread_limit(n_threads):
            return get_backend(backend).forward(self.network, self._params, data.X, batch_size or max(len(data), 1))

    def predict(self, X, batch_size=PREDICT_BATCH_SIZE, backend=DEFAULT_BACKEND, n_threads=None):
        """Predicted class indices (n_samples,), the first maximum on ties."""
        return self.predict_proba(X, batch_size, backend, n_threads).argmax(axis=1)

    def evaluate(self, X, y=None, loss=None, batch_size=PREDICT_BATCH_SIZE, backend=DEFAULT_BACKEND,
                 n_threads=None):
        """Mean loss (the latest fit's loss unless given) and accuracy on X, y: an ``Evaluation``.

        ``X`` may be a Dataset, with ``y`` omitted.
        """
        data = inputs.samples(X, y, self.network, "evaluate", min_samples=1)
        batch_size = inputs.batch_size(batch_size)
        with inputs.thread_limit(n_threads):
            loss_sum, n_correct = get_backend(backend).evaluate(self.network, self._params, data.X, data.y,
                                                                get_loss(loss or self.loss), batch_size or len(data))
        return Evaluation(loss_sum / len(data), n_correct / len(data))

    # ------------------------------------------------------------ files

    def save(self, path):
        """Write the architecture and parameters to ``path`` (.npz, atomically); ``nncore.load`` reads it."""
        save_model(self, path)

    def to_onnx(self, path, input_dtype="uint8"):
        """Write the model to ``path`` as an ONNX graph; see ``nncore.onnx_export`` (needs ``nncore[onnx]``)."""
        from .onnx_export import to_onnx
        return to_onnx(self, path, input_dtype)

    def copy(self):
        """An independent copy of the architecture and parameters (no optimizer, no history)."""
        clone = MLP(self.layer_sizes, self.activation, self.dtype.name, self.init, self.seed)
        clone.params[:] = self._params
        return clone


def load(path):
    """Load a model (or the model inside a checkpoint) saved by ``MLP.save``; return an ``MLP``.

    Raises ``ModelFileError`` if the file is missing, corrupt, crafted or from a newer nncore.
    """
    network, params = read_model(path)
    names = network.activation_names
    activation = names[0] if names and len(set(names)) == 1 else names or "relu"
    model = MLP(network.layer_sizes, activation=activation, dtype=network.dtype.name, seed=0)
    model.params[:] = params
    return model
