"""Network: the one description of an MLP that the model, both backends and model files share.

Layer widths (inputs first), the activation of each hidden layer (the output layer ends in the
loss's softmax), the dtype, and the flat parameter layout, computed here once: one
C-contiguous buffer holding, layer after layer, ``W_l`` (fan_in x fan_out, row-major) followed
by ``b_l`` (fan_out,). Gradients and optimizer state buffers use the same layout. ``table``
hands the layout to the compiled core, whose ``Layout`` (src_c/_network.pxd) mirrors it.

Initialisation lives here too: ``INITIALIZERS`` (He, Xavier/Glorot) and ``initial_params``.
"""
import numpy as np

from .activations import ACTIVATIONS, get_activation

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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
    a sequence with one name per hidden layer.
    """

    def __init__(self, layer_sizes, activations="relu", dtype="float32"):
        self.layer_sizes = _checked_sizes(layer_sizes)
        n_hidden = len(self.layer_sizes) - 2
        names = [activations] * n_hidden if isinstance(activations, str) else list(activations)
        if len(names) != n_hidden:
            raise ValueError(f"activation lists {len(names)} names for {n_hidden} hidden layers")
        self.activations = tuple(get_activation(name) for name in names)
        self.dtype = checked_dtype(dtype)
        self.w_offsets, self.b_offsets, position = [], [], 0
        for fan_in, fan_out in zip(self.layer_sizes[:-1], self.layer_sizes[1:]):
            self.w_offsets.append(position)
            self.b_offsets.append(position + fan_in * fan_out)
            position += fan_in * fan_out + fan_out
        self.n_params = position
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

    def views(self, flat):
        """Per layer ``(W, b)``: views into ``flat`` (no copies), W (fan_in, fan_out), b (fan_out,)."""
        return [(flat[w:b].reshape(fan_in, fan_out), flat[b:b + fan_out])
                for w, b, fan_in, fan_out in zip(self.w_offsets, self.b_offsets, self.layer_sizes[:-1],
                                                 self.layer_sizes[1:])]

    def zeros(self):
        return np.zeros(self.n_params, dtype=self.dtype)

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
                and self.activation_names == other.activation_names and self.dtype == other.dtype)

    def __hash__(self):
        return hash((self.layer_sizes, self.activation_names, self.dtype))

    def __repr__(self):
        return (f"Network({list(self.layer_sizes)}, activations={list(self.activation_names)}, "
                f"dtype={self.dtype.name!r})")
