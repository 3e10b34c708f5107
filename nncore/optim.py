"""Optimizers: hyperparameters plus state buffers laid out like the flat parameter buffer.

The update itself is a backend kernel (one pass over the flat buffers); these classes only
hold what it needs, so that both backends, checkpoints and ``fit`` share one definition.
The update rules are PyTorch's (``torch.optim.SGD`` and ``torch.optim.Adam``):

SGD:  g = grad + weight_decay * theta;  v = momentum * v + g;
      step = g + momentum * v (Nesterov) or v;  theta -= lr * step   (v unused if momentum == 0)
Adam: t += 1;  g = grad + weight_decay * theta;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
      theta -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

Weight decay is applied to every parameter, biases included, as PyTorch does; it is the
gradient of the penalty 0.5 * weight_decay * ||theta||^2.
"""
import math

import numpy as np


def _non_negative(name, value, upper=None):
    value = float(value)
    if not math.isfinite(value) or value < 0 or (upper is not None and value >= upper):
        bound = f"in [0, {upper})" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be finite and {bound}, got {value}")
    return value


class Optimizer:
    """Common state handling: buffers created lazily to match the parameters."""

    kind = None
    _buffer_names = ()

    def __init__(self):
        self._buffers = {}
        self.step = 0  # number of updates applied so far

    def ensure_state(self, n_params, dtype):
        """Create zeroed state buffers for ``n_params`` parameters of ``dtype``, if not there yet."""
        dtype = np.dtype(dtype)
        for name in self._buffer_names:
            buffer = self._buffers.get(name)
            if buffer is None:
                self._buffers[name] = np.zeros(n_params, dtype=dtype)
            elif buffer.shape != (n_params,) or buffer.dtype != dtype:
                raise ValueError(
                    f"{type(self).__name__} state {name!r} was made for {buffer.shape[0]} {buffer.dtype} "
                    f"parameters, not {n_params} {dtype}: use a new optimizer for a different model")

    def state_buffers(self):
        """The state arrays by name (empty until the first update)."""
        return dict(self._buffers)

    def reset_state(self):
        self._buffers = {}
        self.step = 0

    def hyperparameters(self):
        raise NotImplementedError

    def state_dict(self):
        """Everything needed to resume: kind, hyperparameters, step count and buffers (copies)."""
        return {"kind": self.kind, "step": self.step, "hyperparameters": self.hyperparameters(),
                "buffers": {name: buffer.copy() for name, buffer in self._buffers.items()}}

    def load_state_dict(self, state):
        """Restore what ``state_dict`` returned (hyperparameters included)."""
        if state.get("kind") != self.kind:
            raise ValueError(f"state is for a {state.get('kind')!r} optimizer, not {self.kind!r}")
        self.__init__(**state["hyperparameters"])
        self.step = int(state["step"])
        unknown = set(state["buffers"]) - set(self._buffer_names)
        if unknown:
            raise ValueError(f"unknown {self.kind} state buffers: {sorted(unknown)}")
        self._buffers = {name: np.ascontiguousarray(buffer).copy() for name, buffer in state["buffers"].items()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and weight decay."""

    kind = "sgd"
    _buffer_names = ("velocity",)

    def __init__(self, lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__()
        self.lr = _non_negative("lr", lr)
        self.momentum = _non_negative("momentum", momentum, upper=1.0)
        self.nesterov = bool(nesterov)
        self.weight_decay = _non_negative("weight_decay", weight_decay)
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")

    def hyperparameters(self):
        return {"lr": self.lr, "momentum": self.momentum, "nesterov": self.nesterov,
                "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction and L2 weight decay, as torch.optim.Adam."""

    kind = "adam"
    _buffer_names = ("m", "v")

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__()
        self.lr = _non_negative("lr", lr)
        beta1, beta2 = betas
        self.betas = (_non_negative("betas[0]", beta1, upper=1.0), _non_negative("betas[1]", beta2, upper=1.0))
        self.eps = _non_negative("eps", eps)
        self.weight_decay = _non_negative("weight_decay", weight_decay)

    def hyperparameters(self):
        return {"lr": self.lr, "betas": tuple(self.betas), "eps": self.eps, "weight_decay": self.weight_decay}
