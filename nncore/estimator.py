"""MLPClassifier: nncore's MLP as a scikit-learn-compatible estimator, without importing scikit-learn.

It follows scikit-learn's estimator conventions (``get_params``/``set_params``, parameters
only stored by ``__init__`` and validated in ``fit``, fitted attributes ending in ``_``,
``classes_`` for any label values, ``n_features_in_``, ``feature_names_in_`` for DataFrames)
so that ``sklearn.utils.estimator_checks`` passes. Where scikit-learn defines a warning or
exception class the checks look for (``NotFittedError``, ``DataConversionWarning``,
``ConvergenceWarning``), the class is taken from scikit-learn if it has already been
imported, else a local stand-in with the same name and bases is used: importing nncore never
imports scikit-learn. As scikit-learn's own MLPClassifier does, ``fit`` warns with a
ConvergenceWarning when ``max_iter`` ends training before ``tol`` was met, and
``predict_proba`` returns float64 whatever the network's dtype (evaluated in float64).

Input: X as everywhere in nncore (``nncore.inputs``: uint8, or integers 0..255, are pixels scaled
by 1/255; floats are used as they are); this module only adds scikit-learn's conventions
(any label values, feature names, a column-vector y) and the wording of its error messages.
"""
from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import inputs
from ._numbers import whole
from .activations import get_activation
from .augment import Shift, get_augment
from .callbacks import EarlyStopping
from .model import MLP
from .model_data import checked_fields
from .network import Network, checked_dtype
from .optim import make_optimizer, optimizer_class
from ._types import ArrayLike, FloatArray, NDArray


class NotFittedError(ValueError, AttributeError):
    """The estimator was used before ``fit`` (scikit-learn's class when it is loaded)."""


class DataConversionWarning(UserWarning):
    """Input data was converted (scikit-learn's class when it is loaded)."""


class ConvergenceWarning(UserWarning):
    """Training stopped at ``max_iter`` before converging (scikit-learn's class when it is loaded)."""


def _sklearn_class(module, name, fallback):
    loaded = sys.modules.get(module)
    return getattr(loaded, name, fallback) if loaded is not None else fallback


def _not_fitted(estimator):
    error = _sklearn_class("sklearn.exceptions", "NotFittedError", NotFittedError)
    return error(f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                 "arguments before using this estimator.")


def _feature_names(X):
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(list(columns), dtype=object)
    if len(names) and all(isinstance(name, str) for name in names):
        return names
    return None


class _ScikitLearnWording(inputs.Wording):
    """The input contract's refusals in the words scikit-learn's ``check_array`` uses."""

    def __init__(self, estimator):
        self.estimator = type(estimator).__name__

    def complex(self, name):
        return ValueError("Complex data not supported")

    def not_2d(self, name, shape):
        return ValueError(f"Expected 2D array, got {len(shape)}D array instead. Reshape your data, e.g. "
                          "X.reshape(-1, 1) for one feature or X.reshape(1, -1) for one sample")

    def too_few_samples(self, name, shape, minimum):
        return ValueError(f"Found array with {shape[0]} sample(s) (shape={shape}) while a minimum of {minimum} "
                          "is required.")

    def no_features(self, name, shape):
        return ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 is required.")

    def wrong_width(self, name, got, expected):
        return ValueError(f"X has {got} features, but {self.estimator} is expecting {expected} features as input.")

    def not_finite(self, name, dtype):
        return ValueError(f"Input {name} contains NaN or infinity")


def _as_target(y):
    if y is None:
        raise ValueError("MLPClassifier requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warning = _sklearn_class("sklearn.exceptions", "DataConversionWarning", DataConversionWarning)
        warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape "
                      "of y to (n_samples, ), for example using ravel().", warning, stacklevel=3)
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y should be a 1d array, got an array of shape {y.shape} instead")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError("Input y contains NaN or infinity")
        if not np.all(y == np.round(y)):
            raise ValueError("Unknown label type: continuous. MLPClassifier takes class labels, not "
                             "continuous targets")
    if y.dtype.kind == "O":
        kinds = {type(v) for v in y}
        if len(kinds) > 1:
            raise TypeError(f"labels mix types {sorted(k.__name__ for k in kinds)}")
    return y


class MLPClassifier:
    """A scikit-learn-compatible classifier trained by nncore's compiled core.

    ``hidden_layer_sizes`` are the hidden widths (the input and output sizes come from the
    data); ``activation`` is one of scikit-learn's "identity", "logistic", "tanh", "relu", or
    "leaky_relu" or "gelu", for every hidden layer. ``solver`` is an optimizer kind of
    ``nncore.optim.OPTIMIZERS``: "adam", "adamw", "rmsprop" or "sgd" (with ``momentum``,
    ``nesterovs_momentum``), ``learning_rate_init`` its learning rate, ``alpha`` its weight decay
    (L2, or AdamW's decoupled decay),
    ``learning_rate`` "constant", "step" or "cosine". ``max_iter`` is the number of epochs;
    as in scikit-learn, training stops earlier when the training loss has not improved by
    ``tol`` for ``n_iter_no_change`` epochs, or, with ``early_stopping``, when the accuracy on
    a held-out ``validation_fraction`` has not (the best parameters are then kept).
    ``batch_size`` None means full batch. ``warm_start`` makes ``fit`` continue from the
    current parameters; ``partial_fit`` runs one epoch. ``dropout`` is the hidden layers' dropout
    rate in training (one, or one per hidden layer), ``input_dropout`` that of the input
    features; ``augment`` "shift:K" moves each training image by up to K pixels, zero-filled:
    square images (height = width = sqrt(n_features)), or an ``nncore.Shift`` with its
    ``image_shape``.
    """

    def __init__(self, hidden_layer_sizes: int | Sequence[int] = (128,), activation: str = "relu",
                 solver: str = "adam", alpha: float = 0.0, batch_size: int | None = 128,
                 learning_rate_init: float = 1e-3, learning_rate: str = "constant", max_iter: int = 200,
                 momentum: float = 0.9, nesterovs_momentum: bool = False, loss: str = "cross_entropy",
                 tol: float = 1e-4, n_iter_no_change: int = 10, early_stopping: bool = False,
                 validation_fraction: float = 0.1, init: str | None = None, dtype: str = "float32",
                 random_state: int | np.random.RandomState | np.random.Generator | None = None,
                 warm_start: bool = False, backend: str = "cython", n_threads: int | None = None, verbose: int = 0,
                 dropout: float | Sequence[float] = 0.0, input_dropout: float = 0.0, augment: str | Shift | None = None,
                 ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.learning_rate = learning_rate
        self.max_iter = max_iter
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.loss = loss
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.init = init
        self.dtype = dtype
        self.random_state = random_state
        self.warm_start = warm_start
        self.backend = backend
        self.n_threads = n_threads
        self.verbose = verbose
        self.dropout = dropout
        self.input_dropout = input_dropout
        self.augment = augment

    # ------------------------------------------------------------ scikit-learn protocol

    @classmethod
    def _get_param_names(cls):
        import inspect
        return sorted(name for name in inspect.signature(cls.__init__).parameters if name != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters as a dict."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> MLPClassifier:
        """Set constructor parameters; returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                                 f"Valid parameters are: {valid!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = type(self)().get_params()
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (isinstance(v, type(defaults[k])) and _equal(v, defaults[k]))]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_class=True, multi_label=False),
                    input_tags=InputTags(two_d_array=True, allow_nan=False, sparse=False))

    # ------------------------------------------------------------ training

    def _seed(self):
        state = self.random_state
        if state is None:
            return None
        if isinstance(state, (int, np.integer)) and not isinstance(state, bool):
            return int(state) % (2**32)
        if isinstance(state, np.random.RandomState):
            return int(state.randint(0, 2**31 - 1))
        if isinstance(state, np.random.Generator):
            return int(state.integers(0, 2**31 - 1))
        raise ValueError(f"random_state must be None, an int, a RandomState or a Generator, got {state!r}")

    def _optimizer(self):
        # momentum and nesterovs_momentum are SGD's, as in scikit-learn; alpha is every kind's weight decay.
        momentum = {"momentum": self.momentum, "nesterov": bool(self.nesterovs_momentum) and self.momentum > 0} \
            if self.solver == "sgd" else {}
        return make_optimizer(self.solver, "solver", lr=self.learning_rate_init, weight_decay=self.alpha, **momentum)

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(sizes)
        return [whole("hidden_layer_sizes", s, 1) for s in sizes]

    def _augment(self, n_features):
        """``augment`` as fit takes it: a shift without an image shape is one of square images."""
        augment = get_augment(self.augment)
        side = math.isqrt(n_features)
        if augment is not None and augment.image_shape is None and side * side == n_features:
            augment = Shift(augment.pixels, (side, side))
        return augment

    def _check_features(self, X, fitting):
        names = _feature_names(X)
        if fitting:
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None and names is not None:
            warnings.warn(f"X has feature names, but {type(self).__name__} was fitted without feature names",
                          UserWarning, stacklevel=3)
        elif fitted is not None and names is None:
            warnings.warn(f"X does not have valid feature names, but {type(self).__name__} was fitted with "
                          "feature names", UserWarning, stacklevel=3)
        elif fitted is not None and (len(fitted) != len(names) or np.any(fitted != names)):
            raise ValueError("The feature names should match those that were passed during fit.")

    def _X(self, X, fitting=False, dtype=None):
        """X through nncore's input contract, in scikit-learn's words; for a fresh fit, of any width.

        Floats become ``dtype``: by default the network's (for a fresh fit, the ``dtype`` parameter).
        """
        self._check_features(X, fitting)
        if dtype is None:
            dtype = checked_dtype(self.dtype) if fitting else self.model_.dtype
        return inputs.features(X, None if fitting else self.n_features_in_, dtype, min_samples=1,
                               wording=_ScikitLearnWording(self))

    def _fit(self, X, y, epochs, classes=None, incremental=False):
        get_activation(self.activation)
        optimizer_class(self.solver, "solver")
        for name in ("max_iter", "n_iter_no_change"):
            whole(name, getattr(self, name), 1)  # inf is a ValueError, not an OverflowError
        y = _as_target(y)
        fresh = not (incremental or self.warm_start) or not hasattr(self, "model_")
        # A continued network is made (and a changed architecture refused) before anything is changed.
        continued = None if fresh else self._continued_model()
        X = self._X(X, fitting=fresh, dtype=None if fresh else continued.dtype)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
        classes = np.unique(classes if classes is not None else y) if fresh else self.classes_
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            raise ValueError(f"y holds labels {unknown.tolist()} not in classes_ {classes.tolist()}")
        if fresh:
            self.model_ = self._new_model(X.shape[1], classes)
            self.classes_, self.n_features_in_ = classes, X.shape[1]
            self.n_iter_, self.loss_curve_ = 0, []
        else:
            self.model_ = continued
        network = self.model_.network
        encoded = inputs.labels(np.searchsorted(self.classes_, y), len(X), network.n_classes)
        data = inputs.Samples.checked_for(network, X, encoded)
        stopping = None
        if not incremental:
            if self.early_stopping:
                stopping = EarlyStopping("val_accuracy", patience=self.n_iter_no_change, min_delta=self.tol)
            else:
                stopping = EarlyStopping("loss", patience=self.n_iter_no_change, min_delta=self.tol,
                                         restore_best_weights=False)
        split = self.validation_fraction if (self.early_stopping and not incremental) else None
        history = self.model_.fit(
            data, epochs=epochs, batch_size=self.batch_size, loss=self.loss, backend=self.backend,
            validation_split=split, early_stopping=stopping, verbose=self.verbose,
            lr_schedule=None if self.learning_rate == "constant" else self.learning_rate,
            n_threads=self.n_threads, augment=self._augment(X.shape[1]))
        self.history_ = history
        self.n_iter_ += len(history)
        self.loss_curve_ = list(self.loss_curve_) + list(history.loss)
        self.loss_ = history.loss[-1] if len(history) else float("nan")
        # As scikit-learn: with early stopping the held-out scores and no best_loss_, else the reverse.
        if history.has_validation:
            self.validation_scores_ = list(history.val_accuracy)
            self.best_validation_score_ = max(history.val_accuracy)
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None
        if not incremental and len(history) == epochs and not history.stopped_early:
            warning = _sklearn_class("sklearn.exceptions", "ConvergenceWarning", ConvergenceWarning)
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({epochs}) reached and the optimization "
                          "hasn't converged yet.", warning, stacklevel=3)
        return self

    def _new_model(self, n_features, classes):
        """A fresh network for ``n_features`` inputs and ``classes``; its class names are checked as a model
        file's reader checks them, so a model that trained can be saved."""
        model = MLP([n_features, *self._hidden(), max(len(classes), 1)], activation=self.activation,
                    dtype=self.dtype, init=self.init, seed=self._seed(), dropout=self.dropout,
                    input_dropout=self.input_dropout)
        names = tuple(str(label) for label in classes) if len(classes) else None
        model.class_names = checked_fields(model.network, None, names, None, "y's labels")[1]
        model.optimizer = self._optimizer()
        return model

    def _continued_model(self):
        """The fitted network with this estimator's current parameters, for ``warm_start`` and ``partial_fit``.

        As in scikit-learn, what can be applied is: the optimizer's hyperparameters (its state
        is kept while ``solver`` names the same kind), the dtype (parameters and state converted),
        the dropout rates, and every per-fit setting. A changed architecture cannot be: it is
        refused, never silently ignored.
        """
        model, hidden = self.model_, tuple(self._hidden())
        activation = get_activation(self.activation).name
        changed = []
        if tuple(model.layer_sizes[1:-1]) != hidden:
            changed.append(f"hidden_layer_sizes from {tuple(model.layer_sizes[1:-1])} to {hidden}")
        if any(name != activation for name in model.network.activation_names):
            changed.append(f"activation from {model.network.activation_names[0]!r} to {activation!r}")
        if changed:
            raise ValueError(f"{type(self).__name__} cannot continue its fitted network (warm_start or partial_fit) "
                             f"with another architecture: {' and '.join(changed)}. Set warm_start=False (or call fit "
                             "on a new estimator) to train a new network")
        network = Network(model.layer_sizes, model.network.activation_names, self.dtype, self.dropout,
                          self.input_dropout)
        continued = model if network == model.network else _with_network(model, network)
        continued.optimizer = _continued_optimizer(model.optimizer, self._optimizer(), network.dtype)
        return continued

    def fit(self, X: ArrayLike, y: ArrayLike) -> MLPClassifier:
        """Train (from scratch unless ``warm_start``) for up to ``max_iter`` epochs; returns self."""
        return self._fit(X, y, epochs=self.max_iter)

    def partial_fit(self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None) -> MLPClassifier:
        """One epoch on X, y; the first call needs ``classes`` (every label the model will see)."""
        if not hasattr(self, "model_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            return self._fit(X, y, epochs=1, classes=np.asarray(classes), incremental=True)
        if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes {np.unique(classes).tolist()} differ from the first call's "
                             f"{self.classes_.tolist()}")
        return self._fit(X, y, epochs=1, incremental=True)

    # ------------------------------------------------------------ fitted network, as scikit-learn names it

    @property
    def coefs_(self) -> list[FloatArray]:
        """Each layer's weights, (fan_in, fan_out): views into ``model_.params``, as scikit-learn's ``coefs_``."""
        return [W for W, _ in self._fitted_model().layers]

    @property
    def intercepts_(self) -> list[FloatArray]:
        """Each layer's biases, (fan_out,): views into ``model_.params``, as scikit-learn's ``intercepts_``."""
        return [b for _, b in self._fitted_model().layers]

    @property
    def n_layers_(self) -> int:
        """Layers counting the input and the output layer, as scikit-learn: ``len(hidden_layer_sizes) + 2``."""
        return self._fitted_model().network.n_layers + 1

    @property
    def n_outputs_(self) -> int:
        """Output units: one per class (softmax; scikit-learn uses one logistic unit for two classes)."""
        return self._fitted_model().n_classes

    @property
    def out_activation_(self) -> str:
        """The output layer's activation: always "softmax" (scikit-learn's "logistic" for two classes)."""
        self._fitted_model()
        return "softmax"

    def _fitted_model(self):
        if not hasattr(self, "model_"):
            raise _not_fitted(self)
        return self.model_

    # ------------------------------------------------------------ prediction

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities (n_samples, n_classes) in float64, columns in the order of ``classes_``.

        scikit-learn returns float64, and float64 that only widens float32 results would carry
        their batch-dependent last bits (BLAS sums a lone row in another order than a block):
        so the network is evaluated in float64, from its parameters as trained. The result
        agrees with ``model_.predict_proba`` to the training dtype's rounding.
        """
        if not hasattr(self, "model_"):
            raise _not_fitted(self)
        model = self.model_ if self.model_.dtype == np.float64 else self.model_.astype("float64")
        samples = inputs.Samples.checked_for(model.network, self._X(X, dtype=model.dtype))
        return model.predict_proba(samples, backend=self.backend, n_threads=self.n_threads)

    def predict_log_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """The logarithm of ``predict_proba`` (-inf where a probability is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """The most probable label of each sample, from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[proba.argmax(axis=1)]

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Mean accuracy (weighted by ``sample_weight`` if given)."""
        y = _as_target(y)
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        return float(np.average(self.predict(X) == y, weights=weights))


def _with_network(model, network):
    """A copy of ``model`` for ``network`` (same layers; another dtype or dropout): parameters converted,
    data fields, epoch count, loss and history kept. Its optimizer is set by the caller."""
    continued = MLP(network.layer_sizes, model.activation, network.dtype, model.init, model.seed, network.dropout,
                    network.input_dropout)
    continued.params[:] = model.params
    for field in ("dataset_name", "class_names", "input_shape", "epochs_trained", "loss", "history"):
        setattr(continued, field, getattr(model, field))
    return continued


def _continued_optimizer(previous, requested, dtype):
    """``requested`` (the estimator's current solver settings), with ``previous``'s state when it is of the same kind."""
    if previous is None or previous.kind != requested.kind:
        return requested
    state = previous.state_dict()
    state["buffers"] = {name: buffer.astype(dtype) for name, buffer in state["buffers"].items()}
    requested.load_state_dict(state, keep_hyperparameters=True)
    return requested


def _equal(a, b):
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return a is b
