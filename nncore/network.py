"""Network: the one description of an MLP that the model, both backends and model files share.

Layer widths (inputs first), the activation of each hidden layer (the output layer ends in the
loss's softmax), the dropout rate of each hidden layer and of the inputs (training only:
inverted dropout, so inference ignores it), the dtype, and the flat parameter layout, computed
here once: one C-contiguous buffer holding, layer after layer, ``W_l`` (fan_in x fan_out,
row-major) followed by ``b_l`` (fan_out,). Gradients and optimizer state buffers use the same layout. ``table``
hands the layout to the compiled core, whose ``Layout`` (src_c/_network.pxd) mirrors it.

Initialisation lives here too: ``INITIALIZERS`` (He, Xavier/Glorot) and ``initial_params``.
"""
import math

import numpy as np

from .activations import ACTIVATIONS, get_activation
from .counters import drop_threshold

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: The most parameters a network may have (4 GB of float64): model files hold at most this many,
#: and the compiled core indexes every layer's rows in 32-bit BLAS calls.
MAX_PARAMETERS = 1 << 29


def he_normal(rng, fan_in, fan_out):
    """Normal, std sqrt(2 / fan_in): keeps ReLU pre-activations at a steady scale (He et al. 2015)."""
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)


def glorot_uniform(rng, fan_in, fan_out):
    """Uniform in +-sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio 2010), for tanh, logistic, identity."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out))


INITIALIZERS = {"he": he_normal, "xavier": glorot_uniform}


def _checked_sizes(layer_sizes):
    try:
        sizes = tuple(int(s) for s in layer_sizes)
        exact = all(s == float(t) for s, t in zip(sizes, layer_sizes))
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, got {sizes}")
    if any(s < 1 for s in sizes) or not exact:
        raise ValueError(f"layer_sizes must be positive integers, got {list(layer_sizes)}")
    return sizes


def _valid_rate(rate):
    # A rate so close to 1 that it rounds to 2^24 would keep nothing and scale by infinity.
    return math.isfinite(rate) and 0 <= rate < 1 and drop_threshold(rate) < 2 ** 24


def checked_dropout(dropout, n_hidden):
    """``dropout`` (one rate for every hidden layer, or one per hidden layer) as a tuple of rates in [0, 1)."""
    if isinstance(dropout, (str, bytes)):
        raise TypeError(f"dropout must be a rate or a sequence of rates, got {dropout!r}")
    try:
        rates = [dropout] * n_hidden if np.ndim(dropout) == 0 else list(dropout)
        rates = [float(rate) for rate in rates]
    except (TypeError, ValueError):
        raise TypeError(f"dropout must be a rate or a sequence of rates, got {dropout!r}") from None
    if len(rates) != n_hidden:
        raise ValueError(f"dropout lists {len(rates)} rates for {n_hidden} hidden layers")
    if not all(_valid_rate(rate) for rate in rates):
        raise ValueError(f"dropout rates must lie in [0, 1), got {dropout!r}")
    return tuple(rates)


def checked_input_dropout(input_dropout):
    """``input_dropout`` (the fraction of the input features dropped in each training row) as a rate in [0, 1)."""
    try:
        if isinstance(input_dropout, (str, bytes)) or np.ndim(input_dropout) != 0:
            raise TypeError
        rate = float(input_dropout)
    except (TypeError, ValueError):
        raise TypeError(f"input_dropout must be one rate, got {input_dropout!r}") from None
    if not _valid_rate(rate):
        raise ValueError(f"input_dropout must lie in [0, 1), got {input_dropout!r}")
    return rate


def checked_dtype(dtype):
    """``dtype`` as a NumPy dtype, which must be float32 or float64."""
    try:
        checked = np.dtype(dtype)
    except TypeError:
        checked = None
    if checked not in FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return checked


class Network:
    """Layer sizes, hidden activations, dtype, and where every parameter lives in the flat buffer.

    ``activations`` is one name of ``nncore.activations.ACTIVATIONS`` for every hidden layer, or
    a sequence with one name per hidden layer; ``dropout`` likewise one rate or one per hidden
    layer (the fraction of its units dropped in each training row); ``input_dropout`` the
    fraction of the input features dropped in each training row.
    """

    def __init__(self, layer_sizes, activations="relu", dtype="float32", dropout=0.0, input_dropout=0.0):
        self.layer_sizes = _checked_sizes(layer_sizes)
        n_hidden = len(self.layer_sizes) - 2
        names = [activations] * n_hidden if isinstance(activations, str) else list(activations)
        if len(names) != n_hidden:
            raise ValueError(f"activation lists {len(names)} names for {n_hidden} hidden layers")
        self.activations = tuple(get_activation(name) for name in names)
        self.dropout = checked_dropout(dropout, n_hidden)
        self.input_dropout = checked_input_dropout(input_dropout)
        self.dtype = checked_dtype(dtype)
        self.w_offsets, self.b_offsets, position = [], [], 0
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            self.w_offsets.append(position)
            self.b_offsets.append(position + fan_in * fan_out)
            position += fan_in * fan_out + fan_out
        self.n_params = position
        if position > MAX_PARAMETERS:
            raise ValueError(f"layer_sizes {list(self.layer_sizes)} need {position:,} parameters, more than the "
                             f"{MAX_PARAMETERS:,} nncore supports")
        # The output layer's activation is identity: its logits go to the loss.
        codes = [a.code for a in self.activations] + [ACTIVATIONS["identity"].code]
        self.table = np.array([*self.layer_sizes, *self.w_offsets, *self.b_offsets, *codes], dtype=np.intp)
        self.table.flags.writeable = False

    @property
    def n_layers(self):
        return len(self.layer_sizes) - 1

    @property
    def n_inputs(self):
        return self.layer_sizes[0]

    @property
    def n_classes(self):
        return self.layer_sizes[-1]

    @property
    def activation_names(self):
        return tuple(a.name for a in self.activations)

    @property
    def drop_thresholds(self):
        """Per dropout site (the inputs, then each hidden layer's output): round(rate * 2^24); 0 for none."""
        return tuple(drop_threshold(rate) for rate in (self.input_dropout, *self.dropout))

    def views(self, flat):
        """Per layer ``(W, b)``: views into ``flat`` (no copies), W (fan_in, fan_out), b (fan_out,)."""
        return [(flat[w:b].reshape(fan_in, fan_out), flat[b:b + fan_out])
                for w, b, fan_in, fan_out in zip(self.w_offsets, self.b_offsets, self.layer_sizes[:-1],
                                                 self.layer_sizes[1:])]

    def zeros(self):
        try:
            return np.zeros(self.n_params, dtype=self.dtype)
        except MemoryError:
            raise MemoryError(f"{self.n_params:,} {self.dtype.name} parameters of {list(self.layer_sizes)} "
                              f"({self.n_params * self.dtype.itemsize / 1e9:.1f} GB) do not fit in memory") from None

    def default_inits(self, fallback="relu"):
        """Per layer, the initialiser of its activation; the output layer takes the last hidden
        layer's, or ``fallback``'s (an activation name) when there is no hidden layer."""
        last = self.activations[-1] if self.activations else get_activation(fallback)
        return tuple(a.default_init for a in self.activations) + (last.default_init,)

    def initial_params(self, seed=None, inits=None):
        """A fresh flat buffer: W_l drawn by ``inits[l]`` (names of INITIALIZERS) from ``seed``, b_l zero."""
        inits = self.default_inits() if inits is None else tuple(inits)
        rng = np.random.default_rng(seed)
        params = self.zeros()
        for init, (W, _) in zip(inits, self.views(params)):
            W[...] = INITIALIZERS[init](rng, *W.shape)
        return params

    def __eq__(self, other):
        return (isinstance(other, Network) and self.layer_sizes == other.layer_sizes
                and self.activation_names == other.activation_names and self.dtype == other.dtype
                and self.dropout == other.dropout and self.input_dropout == other.input_dropout)

    def __hash__(self):
        return hash((self.layer_sizes, self.activation_names, self.dtype, self.dropout, self.input_dropout))

    def __repr__(self):
        dropout = f", dropout={list(self.dropout)}" if any(self.dropout) else ""
        dropout += f", input_dropout={self.input_dropout}" if self.input_dropout else ""
        return (f"Network({list(self.layer_sizes)}, activations={list(self.activation_names)}{dropout}, "
                f"dtype={self.dtype.name!r})")
