"""What both backends share: the flat parameter layout, argument checks, and the epoch result.

Every public backend function validates its arguments here, once, before any kernel runs, so
the NumPy reference and the compiled core reject bad input with the same errors.

Parameter layout: one flat, C-contiguous float32 or float64 buffer holding, layer after layer,
``W_l`` (fan_in x fan_out, row-major) followed by ``b_l`` (fan_out,). Gradients and optimizer
state buffers use the same layout.
"""
from typing import NamedTuple

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam")


class EpochResult(NamedTuple):
    """What ``train_epoch`` reports.

    ``loss_sum`` is the sum over the samples seen of each sample's data loss, measured in the
    forward pass before that batch's update (as Keras and PyTorch loops report it);
    ``n_correct`` counts the samples whose argmax (first maximum on ties) was the label.
    ``diverged_batch`` is None, or the 1-based index of the batch whose loss was not finite:
    that batch's update was not applied, and training stopped there.
    """

    loss_sum: float
    n_correct: int
    n_samples: int
    n_batches: int
    diverged_batch: "int | None"


def count_parameters(layer_sizes):
    """Number of scalars in the flat buffer for ``layer_sizes`` (e.g. [784, 128, 10])."""
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]))


def layer_offsets(layer_sizes):
    """Per layer: (W offset, fan_in, fan_out, b offset) into the flat buffer."""
    offsets, position = [], 0
    for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
        offsets.append((position, fan_in, fan_out, position + fan_in * fan_out))
        position += fan_in * fan_out + fan_out
    return offsets


def layer_views(flat, layer_sizes):
    """Per layer: (W, b) views into ``flat`` (no copies), W of shape (fan_in, fan_out)."""
    return [(flat[w:b].reshape(fan_in, fan_out), flat[b:b + fan_out])
            for w, fan_in, fan_out, b in layer_offsets(layer_sizes)]


def check_layer_sizes(layer_sizes):
    """Return ``layer_sizes`` as a tuple of positive ints, at least (inputs, outputs)."""
    try:
        sizes = tuple(int(s) for s in layer_sizes)
    except (TypeError, ValueError):
        raise TypeError(f"layer_sizes must be a sequence of integers, got {layer_sizes!r}") from None
    if len(sizes) < 2:
        raise ValueError(f"layer_sizes needs at least an input and an output size, got {sizes}")
    if any(s < 1 for s in sizes) or any(s != float(t) for s, t in zip(sizes, layer_sizes)):
        raise ValueError(f"layer_sizes must be positive integers, got {list(layer_sizes)}")
    return sizes


def check_params(params, layer_sizes, name="params"):
    """Check the flat parameter buffer (dtype, shape, contiguity, writeability); return it."""
    if not isinstance(params, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(params).__name__}")
    if params.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {params.dtype}")
    expected = count_parameters(layer_sizes)
    if params.ndim != 1 or params.shape[0] != expected:
        raise ValueError(f"{name} must have shape ({expected},) for layer sizes "
                         f"{list(layer_sizes)}, got {params.shape}")
    if not params.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    return params


def check_writeable(array, name):
    if not array.flags.writeable:
        raise ValueError(f"{name} is read-only; it is updated in place")


def check_inputs(X, layer_sizes, dtype, name="X"):
    """Check the input matrix: 2-D, C-contiguous, uint8 (scaled by 1/255) or the parameters' dtype."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(X).__name__}")
    if X.dtype != np.uint8 and X.dtype != dtype:
        raise TypeError(f"{name} must be uint8 or {np.dtype(dtype)} (the parameters' dtype), got {X.dtype}")
    if X.ndim != 2 or X.shape[1] != layer_sizes[0]:
        raise ValueError(f"{name} must have shape (n_samples, {layer_sizes[0]}), got {X.shape}")
    if not X.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use np.ascontiguousarray)")
    return X


def check_labels(y, n_samples, n_classes, name="y"):
    """Check class indices and return them as a contiguous int32 array."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    if y.ndim != 1 or y.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},), got {y.shape}")
    if n_samples and (y.min() < 0 or y.max() >= n_classes):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise ValueError(f"{name} holds label {bad}, outside 0..{n_classes - 1}")
    return np.ascontiguousarray(y, dtype=np.int32)


def check_batch_size(batch_size, n_samples):
    """None means the whole set (full-batch gradient descent); otherwise a positive int."""
    if batch_size is None:
        return max(n_samples, 1)
    if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(min(batch_size, max(n_samples, 1)))


def check_loss(loss):
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def check_optimizer(optimizer, params):
    """Check an optimizer (nncore.optim.SGD / Adam) against the parameters, creating its state."""
    kind = getattr(optimizer, "kind", None)
    if kind not in OPTIMIZERS:
        raise TypeError(f"optimizer must be an nncore SGD or Adam, got {type(optimizer).__name__}")
    optimizer.ensure_state(params.shape[0], params.dtype)
    for name, buffer in optimizer.state_buffers().items():
        if buffer.dtype != params.dtype or buffer.shape != params.shape or not buffer.flags.c_contiguous:
            raise ValueError(f"optimizer state {name!r} must be a C-contiguous {params.dtype} array "
                             f"of shape {params.shape}, got {buffer.dtype} {buffer.shape}")
        check_writeable(buffer, f"optimizer state {name!r}")
    return optimizer


def epoch_order(n_samples, seed):
    """The shuffled sample order of one epoch: the same for both backends, given the seed."""
    return np.random.default_rng(seed).permutation(n_samples)


def input_scale(dtype):
    """The factor uint8 pixels are multiplied by, rounded once to the parameters' dtype."""
    return np.dtype(dtype).type(1.0 / 255.0)
