"""Optimizers: one class per kind, and the registry everything else derives from.

A class holds all there is to know about its kind: the hyperparameters and their defaults
(its ``__init__`` signature, written once), the state buffers (laid out like the flat
parameter buffer), the NumPy update (the reference: ``sgd_update``, ``adam_update``,
``rmsprop_update``, the twins of the kernels of the same names in src_c/_kernels.pxd) and what
the compiled core needs: ``core_config()``, its hyperparameters by the names of src_c/ops.h's
``nncore_optimizer_config``, the kind's name included (ops.h holds the same names and the
number of state buffers each kind has; tests/test_ops.py holds the two together). Model and
checkpoint files, ``fit``, the command line (``--optimizer``) and the estimator (``solver=``) all
look kinds up in ``OPTIMIZERS``. Adding a kind: its class here, its name and config fields in
ops.h, its kernel and case in _kernels.pxd's ``apply_update``.

The update rules are PyTorch's (``torch.optim.SGD``, ``Adam``, ``RMSprop`` and ``AdamW``):

SGD:     g = grad + weight_decay * theta;  v = momentum * v + g;
         step = g + momentum * v (Nesterov) or v;  theta -= lr * step   (v unused if momentum == 0)
Adam:    t += 1;  g = grad + weight_decay * theta;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
         theta -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
AdamW:   Adam with the decay decoupled: theta *= 1 - lr * weight_decay, then Adam's step without it
RMSprop: g = grad + weight_decay * theta;  s = alpha s + (1 - alpha) g^2;  centered: a = alpha a +
         (1 - alpha) g and s_hat = s - a^2, else s_hat = s;  d = sqrt(s_hat) + eps;
         momentum: buf = momentum buf + g / d, theta -= lr buf;  else theta -= lr g / d

Weight decay (but AdamW's) is applied to every parameter, biases included, as PyTorch does; it
is the gradient of the penalty 0.5 * weight_decay * ||theta||^2.
"""
from __future__ import annotations

import inspect

import numpy as np

from ._numbers import finite

#: More updates than any run makes; the compiled core counts them in 64 bits.
MAX_STEPS = 2**62


def _non_negative(name, value, upper=None):
    return finite(name, value, 0, upper)


def _positive(name, value):
    return finite(name, value, 0, strict=True)


def _flag(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


# ---------------------------------------------------------------- the NumPy updates (the reference)

def sgd_update(params, grad, velocity, lr, momentum, nesterov, weight_decay):
    """One SGD step over the flat buffers, in place."""
    g = grad + weight_decay * params if weight_decay else grad
    if momentum:
        velocity *= momentum
        velocity += g
        step = g + momentum * velocity if nesterov else velocity
    else:
        step = g
    params -= lr * step


def adam_update(params, grad, m, v, step_number, lr, beta1, beta2, eps, weight_decay, decoupled=False):
    """One Adam step over the flat buffers, in place; ``step_number`` counts from 1. ``decoupled``
    (AdamW): theta *= 1 - lr * weight_decay first, and the gradient is taken as it is."""
    if decoupled and weight_decay:
        params *= 1 - lr * weight_decay
    g = grad + weight_decay * params if weight_decay and not decoupled else grad
    m *= beta1
    m += (1 - beta1) * g
    v *= beta2
    v += (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** step_number)
    v_hat = v / (1 - beta2 ** step_number)
    params -= lr * m_hat / (np.sqrt(v_hat) + eps)


def rmsprop_update(params, grad, square_avg, momentum_buffer, grad_avg, lr, alpha, eps, weight_decay, momentum,
                   centered):
    """One RMSprop step over the flat buffers, in place. Centered, a negative rounding residue of
    s - a^2 is taken as 0 (its square root would be NaN)."""
    g = grad + weight_decay * params if weight_decay else grad
    square_avg *= alpha
    square_avg += (1 - alpha) * g * g
    estimate = square_avg
    if centered:
        grad_avg *= alpha
        grad_avg += (1 - alpha) * g
        estimate = square_avg - grad_avg * grad_avg
        estimate = np.where(estimate < 0, 0, estimate)  # NaN stays NaN
    denominator = np.sqrt(estimate) + eps
    if momentum:
        momentum_buffer *= momentum
        momentum_buffer += g / denominator
        params -= lr * momentum_buffer
    else:
        params -= lr * (g / denominator)


# ---------------------------------------------------------------- the kinds

class Optimizer:
    """Common state handling: buffers created lazily to match the parameters.

    A kind sets ``kind`` (its name in src_c/ops.h too) and ``buffer_names``, and defines
    ``hyperparameters``, ``core_config`` and ``numpy_update``.
    """

    kind: str | None = None
    buffer_names: tuple[str, ...] = ()
    mean_squares: tuple[str, ...] = ()  # the state buffers that are running means of squared gradients
    lr: float  # every kind has a learning rate, which schedules set

    def __init__(self):
        self._buffers = {}
        self.step = 0  # number of updates applied so far

    def ensure_state(self, n_params, dtype):
        """Create zeroed state buffers for ``n_params`` parameters of ``dtype``, or check the ones there are."""
        dtype = np.dtype(dtype)
        self.check_dtype(dtype)
        for name in self.buffer_names:
            buffer = self._buffers.get(name)
            if buffer is None:
                self._buffers[name] = np.zeros(n_params, dtype=dtype)
            elif (buffer.shape != (n_params,) or buffer.dtype != dtype or not buffer.flags.c_contiguous
                  or not buffer.flags.writeable):
                raise ValueError(
                    f"optimizer state {name!r} of {type(self).__name__} is a {buffer.dtype} array of shape "
                    f"{buffer.shape}, not a writeable, C-contiguous one for {n_params} {dtype} parameters: use a "
                    "new optimizer for a different model")

    def state_buffers(self):
        """The state arrays by name (empty until the first update)."""
        return dict(self._buffers)

    def reset_state(self):
        self._buffers = {}
        self.step = 0

    def hyperparameters(self):
        """The constructor's arguments, by name: what ``state_dict`` stores and ``repr`` shows."""
        raise NotImplementedError

    def core_config(self):
        """What the compiled update reads, by the names of src_c/ops.h's nncore_optimizer_config:
        the kind, the updates applied so far, and the kind's own fields (``_core_fields``)."""
        return {"kind": self.kind, "steps_taken": self.step, **self._core_fields()}

    def _core_fields(self):
        raise NotImplementedError

    def numpy_update(self, params, grad):
        """Apply one update with ``grad`` to ``params`` in place (step already counted)."""
        raise NotImplementedError

    def check_dtype(self, dtype):
        """Refuse hyperparameters that do not work for parameters of ``dtype``: an ``eps`` (the kinds
        that divide by a root plus eps) that is 0 there would divide 0 by 0."""
        eps = getattr(self, "eps", None)
        if eps is not None and np.dtype(dtype).type(eps) == 0:
            raise ValueError(f"eps={eps:g} is 0 in {np.dtype(dtype).name}: {type(self).__name__} would divide 0 by 0; "
                             f"use eps >= {np.finfo(dtype).tiny:g}")

    def state_dict(self):
        """Everything needed to resume: kind, hyperparameters, step count and buffers (copies)."""
        return {"kind": self.kind, "step": self.step, "hyperparameters": self.hyperparameters(),
                "buffers": {name: buffer.copy() for name, buffer in self._buffers.items()}}

    def check_state_dict(self, state):
        """Raise ValueError/TypeError if ``state`` is not one ``load_state_dict`` accepts; copies nothing.

        The kind must be this one, the hyperparameters valid for it, the step an integer in
        [0, MAX_STEPS), and every buffer one of the kind's, 1-D, finite and within its range.
        """
        if not isinstance(state, dict) or state.get("kind") != self.kind:
            kind = state.get("kind") if isinstance(state, dict) else state
            raise ValueError(f"state is for a {kind!r} optimizer, not {self.kind!r}")
        hyperparameters = state.get("hyperparameters")
        if not isinstance(hyperparameters, dict):
            raise TypeError(f"hyperparameters must be a dict, got {hyperparameters!r}")
        type(self)(**hyperparameters)
        step = state.get("step")
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, (int, np.integer)) or not 0 <= step < MAX_STEPS:
            raise ValueError(f"step must be an integer in [0, {MAX_STEPS}), got {step!r}")
        buffers = state.get("buffers")
        if not isinstance(buffers, dict) or set(buffers) - set(self.buffer_names):
            raise ValueError(f"{self.kind} state buffers are {list(self.buffer_names)}, got "
                             f"{sorted(buffers) if isinstance(buffers, dict) else buffers!r}")
        for name, buffer in buffers.items():
            buffer = np.asarray(buffer)
            if buffer.ndim != 1 or buffer.dtype.kind != "f":
                raise ValueError(f"state buffer {name!r} must be a 1-D float array, got {buffer.dtype} {buffer.shape}")
            problem = self.buffer_problem(name, buffer)
            if problem:
                raise ValueError(f"state buffer {name!r} {problem}")

    def buffer_problem(self, name, buffer):
        """What is wrong with the values of state buffer ``name``, or None: they must be finite, and
        the kind's running means of squared gradients (``mean_squares``) not negative."""
        if not np.all(np.isfinite(buffer)):
            return "holds NaN or infinity"
        if name in self.mean_squares and np.any(buffer < 0):
            return "holds negative values (a mean of squares is >= 0)"
        return None

    def load_state_dict(self, state, keep_hyperparameters=False):
        """Restore what ``state_dict`` returned, hyperparameters included unless ``keep_hyperparameters``
        (then only the step count and buffers are taken: a resumed run with the caller's settings)."""
        self.check_state_dict(state)
        if not keep_hyperparameters:
            self.__init__(**state["hyperparameters"])
        self.step = int(state["step"])
        self._buffers = {name: np.ascontiguousarray(buffer).copy() for name, buffer in state["buffers"].items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay."""

    kind = "sgd"
    buffer_names = ("velocity",)

    def __init__(self, lr: float = 0.1, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr = _non_negative("lr", lr)
        self.momentum = _non_negative("momentum", momentum, upper=1.0)
        self.nesterov = _flag("nesterov", nesterov)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}

    def _core_fields(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": int(self.nesterov),
                "weight_decay": self.weight_decay}

    def numpy_update(self, params, grad):
        sgd_update(params, grad, self._buffers["velocity"], self.lr, self.momentum, self.nesterov,
                   self.weight_decay)


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction and L2 weight decay, as torch.optim.Adam."""

    kind = "adam"
    buffer_names = ("m", "v")
    mean_squares = ("v",)
    decoupled = False

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__()
        self.lr = _non_negative("lr", lr)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = (_non_negative("betas[0]", beta1, upper=1.0), _non_negative("betas[1]", beta2, upper=1.0))
        # eps = 0 divides 0 by 0 for every parameter whose gradient has always been zero.
        self.eps = _positive("eps", eps)
        self.weight_decay = _non_negative("weight_decay", weight_decay)

    def hyperparameters(self):
        return {"lr": self.lr, "betas": tuple(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}

    def _core_fields(self):
        return {"lr": self.lr, "beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps,
                "weight_decay": self.weight_decay}

    def numpy_update(self, params, grad):
        adam_update(params, grad, self._buffers["m"], self._buffers["v"], self.step, self.lr, self.betas[0],
                    self.betas[1], self.eps, self.weight_decay, self.decoupled)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW: each step first
    shrinks every parameter by 1 - lr * weight_decay, and the moments see the plain gradient."""

    kind = "adamw"
    decoupled = True

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e) as torch.optim.RMSprop: a running mean of squared gradients
    (smoothing ``alpha``), optionally ``centered`` (divided by the gradient's estimated standard
    deviation), with optional momentum and L2 weight decay."""

    kind = "rmsprop"
    buffer_names = ("square_avg", "momentum_buffer", "grad_avg")
    mean_squares = ("square_avg",)

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False) -> None:
        super().__init__()
        self.lr = _non_negative("lr", lr)
        self.alpha = _non_negative("alpha", alpha, upper=1.0)
        self.eps = _positive("eps", eps)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        self.momentum = _non_negative("momentum", momentum, upper=1.0)
        self.centered = _flag("centered", centered)

    def hyperparameters(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": self.centered}

    def _core_fields(self):
        return {"lr": self.lr, "alpha": self.alpha, "eps": self.eps, "weight_decay": self.weight_decay,
                "momentum": self.momentum, "centered": int(self.centered)}

    def numpy_update(self, params, grad):
        rmsprop_update(params, grad, self._buffers["square_avg"], self._buffers["momentum_buffer"],
                       self._buffers["grad_avg"], self.lr, self.alpha, self.eps, self.weight_decay, self.momentum,
                       self.centered)


OPTIMIZERS = {kind.kind: kind for kind in (SGD, Adam, RMSprop, AdamW)}


def optimizer_class(kind, name="optimizer"):
    """The class of optimizer kind ``kind`` (a key of OPTIMIZERS); ValueError naming ``name`` and the choices."""
    if not isinstance(kind, str) or kind not in OPTIMIZERS:
        raise ValueError(f"{name} must be one of {tuple(OPTIMIZERS)}, got {kind!r}")
    return OPTIMIZERS[kind]


def make_optimizer(kind, name="optimizer", **options):
    """An optimizer of ``kind`` built from those of ``options`` its constructor takes (the rest are
    ignored): how the command line's and the estimator's flat option sets map onto each kind."""
    cls = optimizer_class(kind, name)
    accepted = inspect.signature(cls).parameters
    return cls(**{key: value for key, value in options.items() if key in accepted})
