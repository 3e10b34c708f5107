# cython: language_level=3
# distutils: extra_compile_args = -fno-math-errno
"""Test and benchmark entry points into the compiled kernels: nncore._testing, not part of the API.

Each wrapper checks its arguments (so a wrong call raises, never reads out of bounds) and
runs ONE kernel of the core on NumPy arrays, so tests can hold each kernel against its NumPy
definition, and the narrow-layer kernels (src_c/narrow.c) against BLAS; the ``time_*`` functions
time products alone for the benchmarks (the epoch's floor is nncore._core.train_epoch(products_only=True)).
The training entry points themselves are in nncore._core; this module ships beside it only
because tests and benchmarks of an installed package need a compiled way in.
"""
import time

import numpy as np

from cython cimport floating

cimport _blas
cimport _kernels as k
cimport _narrow as n
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset

from _counters cimport GOLDEN32, KEEP_BITS, SHIFT_SITE, Mask, mix32, row_bits, shift_offsets, site_key
from _ops cimport (NNCORE_ACTIVATION_COUNT, NNCORE_ACTIVATION_RELU, NNCORE_LOSS_CROSS_ENTROPY, NNCORE_LOSS_MSE,
                   NNCORE_MAX_OPTIMIZER_STATES, NNCORE_OPTIMIZER_COUNT, OptimizerConfig, nncore_activation_names,
                   nncore_activation_reads_input, nncore_optimizer_names, nncore_optimizer_states)

cdef extern from *:
    """
    #ifndef NNCORE_SOURCE_HASH
    #define NNCORE_SOURCE_HASH "unknown"
    #endif
    """
    const char* NNCORE_SOURCE_HASH

SOURCE_HASH = NNCORE_SOURCE_HASH.decode("ascii")
INT_MAX = 2 ** 31 - 1


# ---------------------------------------------------------------- single kernels

def gemm(const floating[:, ::1] A, const floating[:, ::1] B, floating[:, ::1] C, double alpha=1.0,
         double beta=0.0, bint trans_a=False, bint trans_b=False):
    """Row-major C := alpha * op(A).op(B) + beta * C in place, through the BLAS shim."""
    cdef Py_ssize_t m = A.shape[1] if trans_a else A.shape[0]
    cdef Py_ssize_t inner = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t inner_b = B.shape[1] if trans_b else B.shape[0]
    cdef Py_ssize_t n = B.shape[0] if trans_b else B.shape[1]
    if inner != inner_b or C.shape[0] != m or C.shape[1] != n:
        raise ValueError(f"shapes do not match: op(A) ({m}, {inner}), op(B) ({inner_b}, {n}), "
                         f"C ({C.shape[0]}, {C.shape[1]})")
    if max(m, n, inner) > INT_MAX:
        raise ValueError("dimensions exceed the 32-bit BLAS index range")
    if m == 0 or n == 0:
        return
    # Row-major C = op(A).op(B) is column-major C^T = op(B)^T.op(A)^T: the operands swap (_blas.pxd).
    with nogil:
        _blas.gemm(c't' if trans_b else c'n', c't' if trans_a else c'n', <int> n, <int> m, <int> inner,
                   <floating> alpha, &B[0, 0] if B.shape[0] * B.shape[1] else NULL, <int> max(1, B.shape[1]),
                   &A[0, 0] if A.shape[0] * A.shape[1] else NULL, <int> max(1, A.shape[1]),
                   <floating> beta, &C[0, 0], <int> C.shape[1])


def _test_mask(dropout, Py_ssize_t rows):
    """A Mask from (seed, site, position, threshold), checked, or None for no dropout."""
    if dropout is None:
        return None
    seed, site, position, threshold = (int(v) for v in dropout)
    if not (0 <= seed < 2 ** 32 and 0 <= site <= SHIFT_SITE and 0 <= position and 0 < threshold < 2 ** KEEP_BITS):
        raise ValueError(f"dropout must be (seed, site, position, threshold) in range, got {dropout!r}")
    return seed, site, position, threshold


cdef Mask _mask(tuple checked) noexcept:
    cdef Mask mask
    mask.key = site_key(checked[0], checked[1])
    mask.position = checked[2]
    mask.threshold = checked[3]
    return mask


def bias_activation_forward(floating[:, ::1] Z, const floating[::1] b, int activation, dropout=None,
                            floating[:, ::1] kept=None):
    """Z += b, then the activation (an nncore.activations code), in place; then dropout if given as
    (seed, site, position of Z's first row, threshold). ``kept`` (Z's shape) receives Z + b before
    the activation."""
    cdef Mask mask
    if b.shape[0] != Z.shape[1] or not 0 <= activation < NNCORE_ACTIVATION_COUNT:
        raise ValueError("b must have Z.shape[1] entries and activation be a known code")
    if kept is not None and (kept.shape[0] != Z.shape[0] or kept.shape[1] != Z.shape[1]):
        raise ValueError("kept must have Z's shape")
    checked = _test_mask(dropout, Z.shape[0])
    if checked is not None:
        mask = _mask(checked)
    if Z.shape[0] and Z.shape[1]:
        k.bias_activation_forward(&Z[0, 0], &b[0], Z.shape[0], Z.shape[1], activation,
                                  &mask if checked is not None else NULL, &kept[0, 0] if kept is not None else NULL)


def dropout_forward(floating[:, ::1] A, dropout):
    """Inverted dropout of A in place, the mask of (seed, site, position of A's first row, threshold)."""
    cdef Mask mask = _mask(_test_mask(dropout, A.shape[0]))
    if A.shape[0] and A.shape[1]:
        k.dropout_forward(&A[0, 0], A.shape[0], A.shape[1], &mask)


def unit_bits(Py_ssize_t seed, Py_ssize_t site, Py_ssize_t position, Py_ssize_t rows, Py_ssize_t n):
    """The counters' 32 bits of units 0..n-1 of rows position..position+rows-1 at ``site`` (uint32 (rows, n))."""
    if not (0 <= seed < 2 ** 32 and 0 <= site <= SHIFT_SITE and position >= 0 and rows >= 0 and n >= 0):
        raise ValueError("seed, site, position, rows and n out of range")
    bits = np.empty((rows, n), dtype=np.uint32)
    cdef uint32_t[:, ::1] out = bits
    cdef uint64_t key = site_key(seed, site)
    cdef uint32_t counter
    cdef Py_ssize_t i, j
    for i in range(rows):
        counter = row_bits(key, position + i)
        for j in range(n):
            out[i, j] = mix32(counter)
            counter = counter + GOLDEN32
    return bits


def image_shifts(Py_ssize_t seed, Py_ssize_t position, Py_ssize_t rows, Py_ssize_t pixels):
    """(dy, dx) of rows position..position+rows-1, as the shifted gather draws them (two intp arrays)."""
    if not (0 <= seed < 2 ** 32 and position >= 0 and rows >= 0 and pixels >= 0):
        raise ValueError("seed, position, rows and pixels out of range")
    dy, dx = np.empty(rows, dtype=np.intp), np.empty(rows, dtype=np.intp)
    cdef Py_ssize_t[::1] dy_view = dy, dx_view = dx
    cdef uint64_t key = site_key(seed, SHIFT_SITE)
    cdef Py_ssize_t i
    for i in range(rows):
        shift_offsets(row_bits(key, position + i), pixels, &dy_view[i], &dx_view[i])
    return dy, dx


def _check_logits(logits, y):
    if logits.ndim != 2 or logits.shape[1] < 1 or y.shape != (logits.shape[0],):
        raise ValueError("logits must be (rows, k >= 1) and y (rows,)")
    if len(y) and (y.min() < 0 or y.max() >= logits.shape[1]):
        raise ValueError("labels out of range")


def _loss_rows(floating[:, ::1] z, const int[::1] y, double m, int loss_kind):
    cdef Py_ssize_t i, argmax
    losses = np.empty(z.shape[0], dtype=np.asarray(z).dtype)
    predictions = np.empty(z.shape[0], dtype=np.intp)
    cdef floating[::1] losses_view = losses
    cdef Py_ssize_t[::1] predictions_view = predictions
    for i in range(z.shape[0]):
        if loss_kind == NNCORE_LOSS_CROSS_ENTROPY:
            losses_view[i] = k.cross_entropy_forward_backward(&z[i, 0], z.shape[1], y[i], <floating> m, &argmax)
        else:
            losses_view[i] = k.mse_forward_backward(&z[i, 0], z.shape[1], y[i], <floating> m, &argmax)
        predictions_view[i] = argmax
    return losses, predictions


def _loss_kernel(logits, y, m, int loss_kind):
    """(per-sample losses, dlogits, argmax predictions) of one loss kernel over the rows of a copy of logits."""
    logits = np.array(logits, order="C")
    y = np.ascontiguousarray(y, dtype=np.int32)
    _check_logits(logits, y)
    losses, predictions = _loss_rows(logits, y, float(m), loss_kind)
    return losses, logits, predictions


def cross_entropy_forward_backward(logits, y, m):
    """(per-sample losses, dlogits = (P - onehot) / m, argmax predictions) of logits (rows, k)."""
    return _loss_kernel(logits, y, m, NNCORE_LOSS_CROSS_ENTROPY)


def mse_forward_backward(logits, y, m):
    """(per-sample sum_k (p_k - onehot_k)^2, its gradient through the softmax / m, argmax predictions)."""
    return _loss_kernel(logits, y, m, NNCORE_LOSS_MSE)


def softmax_forward(floating[:, ::1] Z):
    """Row-wise softmax in place."""
    cdef Py_ssize_t i, argmax
    if Z.shape[1] == 0:
        return
    for i in range(Z.shape[0]):
        k.softmax_forward(&Z[i, 0], Z.shape[1], &argmax)


def activation_backward(floating[:, ::1] dA, const floating[:, ::1] A, floating[::1] db, int activation,
                        dropout=None, const floating[:, ::1] Z=None):
    """dA *= f'(z) in place (an nncore.activations code), read from the output A or, for an
    activation whose derivative reads its input, from Z; db += its column sums, in the same pass.
    With dropout (as bias_activation_forward's), A is the dropped output and the mask applies to dA."""
    cdef Mask mask
    if A.shape[0] != dA.shape[0] or A.shape[1] != dA.shape[1] or db.shape[0] != dA.shape[1]:
        raise ValueError("dA and A must have one shape, db dA.shape[1] entries")
    if not 0 <= activation < NNCORE_ACTIVATION_COUNT:
        raise ValueError(f"unknown activation code {activation}")
    if nncore_activation_reads_input(activation) and (Z is None or Z.shape[0] != A.shape[0] or Z.shape[1] != A.shape[1]):
        raise ValueError(f"activation {activation} reads its input: Z of A's shape is needed")
    checked = _test_mask(dropout, dA.shape[0])
    if checked is not None:
        mask = _mask(checked)
    if dA.shape[0] and dA.shape[1]:
        k.activation_backward(&dA[0, 0], &A[0, 0], &Z[0, 0] if Z is not None else NULL, dA.shape[0], dA.shape[1],
                              &db[0], activation, &mask if checked is not None else NULL)


def bias_backward(floating[::1] db, const floating[:, ::1] dZ):
    """db += column sums of dZ."""
    if db.shape[0] != dZ.shape[1]:
        raise ValueError("db must have dZ.shape[1] entries")
    if dZ.shape[0] and dZ.shape[1]:
        k.bias_backward(&db[0], &dZ[0, 0], dZ.shape[0], dZ.shape[1])


def gather_scale(X, const Py_ssize_t[::1] indices, floating[:, ::1] out, shift=None):
    """out[i] = X[indices[i]], scaled by 1/255 (rounded to out's dtype) when X is uint8.

    ``shift`` (seed, position of the first row, pixels, (height, width)): each row is an image
    moved by the (dy, dx) its counters draw, zero-filled, as training's shifted gather does.
    """
    cdef const unsigned char[:, ::1] X_uint8
    cdef const floating[:, ::1] X_float
    cdef Py_ssize_t i
    # X is a Python object: with boundscheck off, X.shape[1] of a 1-D array reads past the tuple.
    if not isinstance(X, np.ndarray):
        raise TypeError(f"X must be a NumPy array, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D, got {X.ndim} dimensions")
    if out.shape[0] != indices.shape[0] or out.shape[1] != X.shape[1]:
        raise ValueError("out must be (len(indices), X.shape[1])")
    if X.dtype != np.uint8 and X.dtype != np.asarray(out).dtype:
        raise TypeError(f"X must be uint8 or {np.asarray(out).dtype}, got {X.dtype}")
    for i in range(indices.shape[0]):
        if indices[i] < 0 or indices[i] >= X.shape[0]:
            raise IndexError(f"row {indices[i]} out of range")
    if shift is not None:
        _gather_shifted_checked(X, indices, out, shift)
        return
    if indices.shape[0] == 0 or out.shape[1] == 0:
        return
    if X.dtype == np.uint8:
        X_uint8 = X
        k.gather_scale_uint8(&out[0, 0], &X_uint8[0, 0], X_uint8.shape[1], &indices[0], 0, indices.shape[0],
                             <floating> (1.0 / 255.0))
    else:
        X_float = X
        k.gather_rows(&out[0, 0], &X_float[0, 0], X_float.shape[1], &indices[0], 0, indices.shape[0])


def _gather_shifted_checked(X, const Py_ssize_t[::1] indices, floating[:, ::1] out, shift):
    cdef const unsigned char[:, ::1] X_uint8
    cdef const floating[:, ::1] X_float
    cdef Py_ssize_t seed, position, pixels, height, width
    seed, position, pixels, (height, width) = shift
    if not (0 <= seed < 2 ** 32 and position >= 0 and pixels >= 0 and height >= 1 and width >= 1
            and height * width == X.shape[1]):
        raise ValueError(f"shift must be (seed, position, pixels, (height, width)) for {X.shape[1]} features")
    if indices.shape[0] == 0:
        return
    cdef uint64_t key = site_key(seed, SHIFT_SITE)
    if X.dtype == np.uint8:
        X_uint8 = X
        k.gather_shifted(&out[0, 0], &X_uint8[0, 0], height, width, &indices[0], 0, indices.shape[0],
                         <floating> (1.0 / 255.0), key, position, pixels)
    else:
        X_float = X
        k.gather_shifted(&out[0, 0], &X_float[0, 0], height, width, &indices[0], 0, indices.shape[0],
                         <floating> 1, key, position, pixels)


def _check_flat(*arrays):
    if len({a.shape[0] for a in arrays}) != 1:
        raise ValueError("the flat buffers must have one length")


OPTIMIZER_CODES = {nncore_optimizer_names[i].decode(): i for i in range(NNCORE_OPTIMIZER_COUNT)}


def optimizer_update(config, floating[::1] params, const floating[::1] grad, states):
    """One update of the optimizer that ``config`` names (a mapping of ops.h's fields, "kind" a name,
    as nncore.optim's core_config()) over the flat buffers, in place; its step number is
    config["steps_taken"] + 1. ``states``: the kind's state buffers, in its order."""
    cdef OptimizerConfig opt
    cdef floating* pointers[NNCORE_MAX_OPTIMIZER_STATES]
    cdef floating[::1] state
    memset(&opt, 0, sizeof(OptimizerConfig))
    values = dict(opt)    # a dict of every field (struct to dict), filled by name below
    fields = dict(config)
    kind = fields.pop("kind", None)
    if kind not in OPTIMIZER_CODES or set(fields) - set(values):
        raise ValueError(f"unknown optimizer kind {kind!r} or fields {sorted(set(fields) - set(values))}")
    values.update(fields, kind=OPTIMIZER_CODES[kind])
    opt = values
    states = list(states)
    if len(states) != nncore_optimizer_states[opt.kind]:
        raise ValueError(f"{kind} takes {nncore_optimizer_states[opt.kind]} state buffers, got {len(states)}")
    if grad.shape[0] != params.shape[0]:
        raise ValueError("the flat buffers must have one length")
    for i, array in enumerate(states):
        state = array    # a 1-D buffer of the parameters' dtype, or TypeError/ValueError
        if state.shape[0] != params.shape[0]:
            raise ValueError("the flat buffers must have one length")
        pointers[i] = &state[0] if state.shape[0] else NULL
    if params.shape[0]:
        k.apply_update(&opt, &params[0], &grad[0], pointers, params.shape[0], opt.steps_taken + 1)


# ---------------------------------------------------------------- narrow-layer kernels (src_c/narrow.c)

#: The activations by name (ops.h): the narrow wrappers take names.
NARROW_ACTIVATIONS = {nncore_activation_names[i].decode(): i for i in range(NNCORE_ACTIVATION_COUNT)}
NARROW_ISAS = tuple(n.nncore_narrow_isa_name(isa).decode() for isa in range(n.NNCORE_NARROW_ISA_COUNT))


def narrow_isas():
    """The instruction sets whose kernels are compiled in and run on this CPU, slowest first."""
    return [name for isa, name in enumerate(NARROW_ISAS) if n.nncore_narrow_isa_supported(isa)]


def narrow_isa(name=None):
    """The instruction set the narrow kernels run; with ``name``, switch to it first."""
    if name is not None:
        if name not in NARROW_ISAS:
            raise ValueError(f"unknown instruction set {name!r}; one of {NARROW_ISAS}")
        if n.nncore_narrow_set_isa(NARROW_ISAS.index(name)) != 0:
            raise ValueError(f"{name} kernels cannot run here (available: {narrow_isas()})")
    return NARROW_ISAS[n.nncore_narrow_isa()]


cdef int _activation_code(activation) except -1:
    if activation not in NARROW_ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(NARROW_ACTIVATIONS)}, got {activation!r}")
    return NARROW_ACTIVATIONS[activation]


cdef Py_ssize_t _row_length(name, Py_ssize_t row_stride, Py_ssize_t column_stride, Py_ssize_t columns,
                            Py_ssize_t itemsize) except? -1:
    """A 2-D array's row stride in elements (its leading dimension); each row must be contiguous."""
    if columns > 1 and column_stride != itemsize:
        raise ValueError(f"{name}'s rows must be contiguous (any distance apart)")
    if row_stride % itemsize:
        raise ValueError(f"{name}'s rows are not a whole number of elements apart")
    return row_stride // itemsize


def _check_index(index, Py_ssize_t rows, Py_ssize_t n_samples):
    """The rows of X as a C-contiguous intp array of length ``rows``, each in range; None stays None."""
    if index is None:
        if rows > n_samples:
            raise ValueError(f"X has {n_samples} rows, fewer than the {rows} asked for")
        return None
    index = np.ascontiguousarray(index, dtype=np.intp)
    if index.shape != (rows,):
        raise ValueError(f"index must have {rows} entries, got shape {index.shape}")
    if rows and (index.min() < 0 or index.max() >= n_samples):
        raise IndexError(f"index holds a row outside X's {n_samples}")
    return index


def narrow_pack(const floating[:, :] W):
    """W (K, n) packed as the narrow kernels read it: W^T, (n, packed_stride(K)), zero past K."""
    cdef Py_ssize_t K = W.shape[0], width = W.shape[1]
    packed = np.zeros((width, n.nncore_narrow_packed_stride(K)), dtype=np.asarray(W).dtype)
    cdef floating[:, ::1] WT = packed
    if K and width:
        n.pack(&WT[0, 0], &W[0, 0], _row_length("W", W.strides[0], W.strides[1], width, sizeof(floating)), K, width)
    return packed


cdef void _check_width(Py_ssize_t width) except *:
    if width > n.NNCORE_NARROW_MAX_N:
        raise ValueError(f"the narrow kernels take at most {n.NNCORE_NARROW_MAX_N} columns, got {width}")


cdef void _check_weights(Py_ssize_t K, Py_ssize_t width, W, b, Py_ssize_t z_rows, Py_ssize_t z_width,
                         Py_ssize_t rows) except *:
    _check_width(width)
    if W.shape[0] != K or W.shape[1] != width:
        raise ValueError(f"W must be ({K}, {width}), got ({W.shape[0]}, {W.shape[1]})")
    if b is not None and b.shape[0] != width:
        raise ValueError(f"b must have {width} entries, got {b.shape[0]}")
    if z_rows != rows or z_width != width:
        raise ValueError(f"Z must be ({rows}, {width}), got ({z_rows}, {z_width})")


def narrow_forward(floating[:, :] Z, const floating[:, :] A, const floating[:, :] W,
                   const floating[::1] b=None, double alpha=1.0, activation="identity"):
    """Z (rows, n) := act(alpha * A (rows, K) . W (K, n) + b), in one pass (W packed here)."""
    cdef int code = _activation_code(activation)
    cdef Py_ssize_t rows = A.shape[0], K = A.shape[1], width = W.shape[1]
    _check_weights(K, width, W, b, Z.shape[0], Z.shape[1], rows)
    if rows == 0 or width == 0:
        return
    cdef floating[:, ::1] WT = narrow_pack(W)
    cdef floating no_weights = 0  # W^T of K = 0 has no element to point at
    cdef Py_ssize_t ld_z = _row_length("Z", Z.strides[0], Z.strides[1], Z.shape[1], sizeof(floating))
    cdef Py_ssize_t ld_a = _row_length("A", A.strides[0], A.strides[1], A.shape[1], sizeof(floating))
    with nogil:
        n.forward(&Z[0, 0], ld_z, &A[0, 0] if K else NULL, ld_a, &WT[0, 0] if K else &no_weights, &b[0] if b is not None else NULL,
                  <floating> alpha, rows, K, width, code)


def narrow_forward_u8(floating[:, :] Z, const unsigned char[:, :] X, index, const floating[:, :] W,
                      const floating[::1] b=None, double alpha=1.0 / 255.0, activation="identity",
                      floating[:, :] converted=None):
    """Z (rows, n) := act(alpha * X[index] . W + b), X uint8 converted as it is read (X[:rows] when index is None);
    the rows as converted (unscaled) into ``converted`` (rows, K) when given."""
    cdef int code = _activation_code(activation)
    cdef Py_ssize_t rows = Z.shape[0], K = X.shape[1], width = W.shape[1]
    _check_weights(K, width, W, b, Z.shape[0], Z.shape[1], rows)
    index = _check_index(index, rows, X.shape[0])
    if converted is not None and (converted.shape[0] != rows or converted.shape[1] != K):
        raise ValueError(f"converted must be ({rows}, {K}), got ({converted.shape[0]}, {converted.shape[1]})")
    if rows == 0 or width == 0:
        return
    cdef bint keep = converted is not None and K > 0
    cdef Py_ssize_t ld_c = (_row_length("converted", converted.strides[0], converted.strides[1], K, sizeof(floating))
                            if keep else 0)
    cdef const Py_ssize_t[::1] rows_of_X = index
    cdef floating[:, ::1] WT = narrow_pack(W)
    cdef floating no_weights = 0  # W^T of K = 0 has no element to point at
    cdef Py_ssize_t ld_z = _row_length("Z", Z.strides[0], Z.strides[1], Z.shape[1], sizeof(floating))
    cdef Py_ssize_t ld_x = _row_length("X", X.strides[0], X.strides[1], X.shape[1], 1)
    with nogil:
        n.forward_u8(&Z[0, 0], ld_z, &X[0, 0] if K else NULL, ld_x, &rows_of_X[0] if rows_of_X is not None else NULL,
                     &converted[0, 0] if keep else NULL, ld_c, &WT[0, 0] if K else &no_weights,
                     &b[0] if b is not None else NULL, <floating> alpha, rows, K, width, code)


def _transposed_gradient(floating[:, :] dW, bint accumulate):
    """dW (K, n) as the narrow kernels write it: dW^T (n, packed_stride(K)), zeros past K (dW's values
    when accumulating)."""
    cdef Py_ssize_t K = dW.shape[0]
    dWT = np.zeros((dW.shape[1], n.nncore_narrow_packed_stride(K)), dtype=np.asarray(dW).dtype)
    if accumulate:
        dWT[:, :K] = np.asarray(dW).T
    return dWT


def narrow_weight_grad(floating[:, :] dW, const floating[:, :] A, const floating[:, :] dZ,
                       double alpha=1.0, bint accumulate=False):
    """dW (K, n) := alpha * A^T (K, rows) . dZ (rows, n), or += when accumulate.

    The kernel writes dW^T (n, packed_stride(K)); that buffer is returned (its columns past K
    must hold zeros) and its transpose copied into dW."""
    cdef Py_ssize_t rows = A.shape[0], K = A.shape[1], width = dZ.shape[1]
    if dZ.shape[0] != rows or dW.shape[0] != K or dW.shape[1] != width:
        raise ValueError(f"need A (rows, K), dZ (rows, n), dW (K, n); got ({A.shape[0]}, {A.shape[1]}), "
                         f"({dZ.shape[0]}, {dZ.shape[1]}), ({dW.shape[0]}, {dW.shape[1]})")
    _check_width(width)
    if K == 0 or width == 0:
        return None
    dWT_array = _transposed_gradient(dW, accumulate)
    cdef floating[:, ::1] dWT = dWT_array
    cdef Py_ssize_t ld_a = _row_length("A", A.strides[0], A.strides[1], A.shape[1], sizeof(floating))
    cdef Py_ssize_t ld_dz = _row_length("dZ", dZ.strides[0], dZ.strides[1], dZ.shape[1], sizeof(floating))
    with nogil:
        n.weight_grad(&dWT[0, 0], dWT.shape[1], &A[0, 0] if rows else NULL, ld_a, &dZ[0, 0] if rows else NULL,
                      ld_dz, <floating> alpha, accumulate, rows, K, width)
    np.asarray(dW)[...] = dWT_array[:, :K].T
    return dWT_array


def narrow_weight_grad_u8(floating[:, :] dW, const unsigned char[:, :] X, index, const floating[:, :] dZ,
                          double alpha=1.0 / 255.0, bint accumulate=False):
    """dW (K, n) := alpha * X[index]^T . dZ (rows, n), or += when accumulate; X uint8 (X[:rows] without
    index). Returns the kernel's dW^T as narrow_weight_grad does."""
    cdef Py_ssize_t rows = dZ.shape[0], K = X.shape[1], width = dZ.shape[1]
    if dW.shape[0] != K or dW.shape[1] != width:
        raise ValueError(f"dW must be ({K}, {width}), got ({dW.shape[0]}, {dW.shape[1]})")
    _check_width(width)
    index = _check_index(index, rows, X.shape[0])
    if K == 0 or width == 0:
        return None
    cdef const Py_ssize_t[::1] rows_of_X = index
    dWT_array = _transposed_gradient(dW, accumulate)
    cdef floating[:, ::1] dWT = dWT_array
    cdef Py_ssize_t ld_x = _row_length("X", X.strides[0], X.strides[1], X.shape[1], 1)
    cdef Py_ssize_t ld_dz = _row_length("dZ", dZ.strides[0], dZ.strides[1], dZ.shape[1], sizeof(floating))
    with nogil:
        n.weight_grad_u8(&dWT[0, 0], dWT.shape[1], &X[0, 0] if rows else NULL, ld_x,
                         &rows_of_X[0] if rows_of_X is not None and rows else NULL, &dZ[0, 0] if rows else NULL,
                         ld_dz, <floating> alpha, accumulate, rows, K, width)
    np.asarray(dW)[...] = dWT_array[:, :K].T
    return dWT_array


def narrow_input_grad(floating[:, :] dA, const floating[:, :] dZ, const floating[:, :] W,
                      const floating[:, :] A_out=None, activation="identity", floating[::1] db=None):
    """dA (rows, K) := (dZ (rows, n) . W^T) * act'(A_out), A_out what the derivative reads (ops.h: the
    activation's output, or its input); db (K,) += column sums of dA when given."""
    cdef int code = _activation_code(activation)
    cdef Py_ssize_t rows = dZ.shape[0], K = W.shape[0], width = W.shape[1]
    if dZ.shape[1] != width or dA.shape[0] != rows or dA.shape[1] != K:
        raise ValueError(f"need dZ (rows, n), W (K, n), dA (rows, K); got ({dZ.shape[0]}, {dZ.shape[1]}), "
                         f"({W.shape[0]}, {W.shape[1]}), ({dA.shape[0]}, {dA.shape[1]})")
    if activation != "identity" and (A_out is None or A_out.shape[0] != rows or A_out.shape[1] != K):
        raise ValueError(f"{activation} needs A_out ({rows}, {K}), what its derivative reads")
    _check_width(width)
    if db is not None and db.shape[0] != K:
        raise ValueError(f"db must have {K} entries, got {db.shape[0]}")
    if rows == 0 or K == 0:
        return
    cdef floating[:, ::1] WT = narrow_pack(W) if width else np.zeros((1, n.nncore_narrow_packed_stride(K)),
                                                                      dtype=np.asarray(dA).dtype)
    cdef bint with_output = A_out is not None and A_out.shape[0] * A_out.shape[1] > 0
    cdef Py_ssize_t ld_da = _row_length("dA", dA.strides[0], dA.strides[1], dA.shape[1], sizeof(floating))
    cdef Py_ssize_t ld_dz = _row_length("dZ", dZ.strides[0], dZ.strides[1], dZ.shape[1], sizeof(floating))
    cdef Py_ssize_t ld_a_out = (_row_length("A_out", A_out.strides[0], A_out.strides[1], A_out.shape[1],
                                            sizeof(floating)) if with_output else 0)
    with nogil:
        n.input_grad(&dA[0, 0], ld_da, &dZ[0, 0] if width else NULL, ld_dz, &WT[0, 0],
                     &A_out[0, 0] if with_output else NULL, ld_a_out, code, &db[0] if db is not None else NULL,
                     rows, K, width)


# ---------------------------------------------------------------- timing the narrow kernels against BLAS

NARROW_TIMED_OPS = ("forward", "weight_grad", "input_grad")
# narrow: pack W (once per call, as once per optimizer step) + the kernel; narrow_prepacked: the kernel
# alone; blas: what the core does today (gather, gemm, the fused element-wise kernel); gemm: the gemm alone.
NARROW_TIMED_IMPLS = ("narrow", "narrow_prepacked", "blas", "gemm")


cdef struct _Operands:
    void* Z
    void* A
    void* W
    void* WT
    void* b
    void* dZ
    void* dW
    void* dWT
    void* dA
    void* A_out
    void* db
    void* gathered
    const unsigned char* X
    const Py_ssize_t* order
    Py_ssize_t n_samples


cdef void _narrow_forward_once(int impl, bint from_u8, _Operands* o, floating* dtype_marker, const Py_ssize_t* index,
                               Py_ssize_t rows, Py_ssize_t K, Py_ssize_t width) noexcept nogil:
    cdef floating scale = <floating> (1.0 / 255.0)
    cdef const floating* source = <floating*> o.A
    if impl <= 1:
        if impl == 0:
            n.pack(<floating*> o.WT, <floating*> o.W, width, K, width)
        if from_u8:
            n.forward_u8(<floating*> o.Z, width, o.X, K, index, NULL, 0, <floating*> o.WT, <floating*> o.b, scale, rows, K,
                         width, NNCORE_ACTIVATION_RELU)
        else:
            n.forward(<floating*> o.Z, width, source, K, <floating*> o.WT, <floating*> o.b, 1, rows, K, width,
                      NNCORE_ACTIVATION_RELU)
        return
    if from_u8:
        k.gather_scale_uint8(<floating*> o.gathered, o.X, K, index, 0, rows, scale)
        source = <floating*> o.gathered
    _blas.gemm(c'n', c'n', <int> width, <int> rows, <int> K, 1, <floating*> o.W, <int> width, source, <int> K, 0,
               <floating*> o.Z, <int> width)
    if impl == 2:
        k.bias_activation_forward(<floating*> o.Z, <floating*> o.b, rows, width, NNCORE_ACTIVATION_RELU, NULL, NULL)


cdef void _narrow_weight_grad_once(int impl, bint from_u8, _Operands* o, floating* dtype_marker,
                                   const Py_ssize_t* index, Py_ssize_t rows, Py_ssize_t K,
                                   Py_ssize_t width) noexcept nogil:
    cdef floating scale = <floating> (1.0 / 255.0)
    cdef const floating* source = <floating*> o.A
    cdef Py_ssize_t stride = n.nncore_narrow_packed_stride(K)
    if impl <= 1:    # into dW^T, where training's update reads it
        if from_u8:
            n.weight_grad_u8(<floating*> o.dWT, stride, o.X, K, index, <floating*> o.dZ, width, scale, False, rows,
                             K, width)
        else:
            n.weight_grad(<floating*> o.dWT, stride, source, K, <floating*> o.dZ, width, 1, False, rows, K, width)
        return
    if from_u8 and impl == 2:
        k.gather_scale_uint8(<floating*> o.gathered, o.X, K, index, 0, rows, scale)
        source = <floating*> o.gathered
    _blas.gemm(c'n', c't', <int> width, <int> K, <int> rows, 1, <floating*> o.dZ, <int> width, source, <int> K, 0,
               <floating*> o.dW, <int> width)


cdef void _narrow_input_grad_once(int impl, _Operands* o, floating* dtype_marker, Py_ssize_t rows, Py_ssize_t K,
                                  Py_ssize_t width) noexcept nogil:
    if impl <= 1:
        if impl == 0:
            n.pack(<floating*> o.WT, <floating*> o.W, width, K, width)
        n.input_grad(<floating*> o.dA, K, <floating*> o.dZ, width, <floating*> o.WT, <floating*> o.A_out, K,
                     NNCORE_ACTIVATION_RELU, <floating*> o.db, rows, K, width)
        return
    _blas.gemm(c't', c'n', <int> K, <int> rows, <int> width, 1, <floating*> o.W, <int> width, <floating*> o.dZ,
               <int> width, 0, <floating*> o.dA, <int> K)
    if impl == 2:
        k.activation_backward(<floating*> o.dA, <floating*> o.A_out, NULL, rows, K, <floating*> o.db,
                              NNCORE_ACTIVATION_RELU, NULL)


cdef void _narrow_repeat(int op, int impl, bint from_u8, bint fresh_rows, _Operands* o, floating* dtype_marker,
                         Py_ssize_t rows, Py_ssize_t K, Py_ssize_t width, Py_ssize_t repeats) noexcept nogil:
    cdef Py_ssize_t r
    cdef const Py_ssize_t* index = o.order
    for r in range(repeats):
        if fresh_rows:  # each call a new stretch of one shuffled epoch, as batches are: rows come from memory
            index = o.order + (r * rows) % (o.n_samples - rows + 1)
        if op == 0:
            _narrow_forward_once(impl, from_u8, o, dtype_marker, index, rows, K, width)
        elif op == 1:
            _narrow_weight_grad_once(impl, from_u8, o, dtype_marker, index, rows, K, width)
        else:
            _narrow_input_grad_once(impl, o, dtype_marker, rows, K, width)


def time_narrow(op, impl, dtype, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t width, Py_ssize_t repeats,
                bint from_u8=False, bint fresh_rows=True, Py_ssize_t n_samples=60_000):
    """(wall, process CPU) seconds per call of one narrow-layer product, ``repeats`` calls in a C loop.

    op: forward (ReLU epilogue), weight_grad or input_grad (ReLU mask and bias gradient); impl: one
    of NARROW_TIMED_IMPLS. With ``from_u8`` the rows come from an (n_samples, K) uint8 array through
    a shuffled index (the gemm alternatives gather them first), a new stretch per call unless
    ``fresh_rows`` is false (the same rows, in cache, as for dW right after the forward read them).
    """
    if op not in NARROW_TIMED_OPS or impl not in NARROW_TIMED_IMPLS:
        raise ValueError(f"op must be one of {NARROW_TIMED_OPS}, impl one of {NARROW_TIMED_IMPLS}")
    _check_width(width)
    if min(rows, K, width, repeats) < 1 or rows > n_samples or max(rows, K, width) > INT_MAX:
        raise ValueError("rows, K, width and repeats must be positive, rows at most n_samples")
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(0)
    draw = lambda *shape: rng.standard_normal(shape).astype(dtype)
    arrays = {"Z": draw(rows, width), "A": draw(rows, K), "W": draw(K, width),
              "WT": np.zeros((width, n.nncore_narrow_packed_stride(K)), dtype), "b": draw(width),
              "dWT": np.zeros((width, n.nncore_narrow_packed_stride(K)), dtype),
              "dZ": draw(rows, width), "dW": draw(K, width), "dA": draw(rows, K),
              "A_out": np.maximum(draw(rows, K), 0), "db": draw(K), "gathered": draw(rows, K)}
    cdef const unsigned char[:, ::1] X = rng.integers(0, 256, (n_samples if from_u8 else 1, K), dtype=np.uint8)
    cdef const Py_ssize_t[::1] order = rng.permutation(n_samples).astype(np.intp)
    cdef int op_code = NARROW_TIMED_OPS.index(op), impl_code = NARROW_TIMED_IMPLS.index(impl)
    if dtype == np.float32:
        return _time_narrow_typed(<float> 0, arrays, X, order, op_code, impl_code, from_u8, fresh_rows, rows, K,
                                  width, repeats)
    if dtype == np.float64:
        return _time_narrow_typed(<double> 0, arrays, X, order, op_code, impl_code, from_u8, fresh_rows, rows, K,
                                  width, repeats)
    raise ValueError(f"dtype must be float32 or float64, got {dtype}")


cdef tuple _time_narrow_typed(floating dtype_marker, dict arrays, const unsigned char[:, ::1] X,
                              const Py_ssize_t[::1] order, int op, int impl, bint from_u8, bint fresh_rows,
                              Py_ssize_t rows, Py_ssize_t K, Py_ssize_t width, Py_ssize_t repeats):
    cdef _Operands o
    cdef floating[:, ::1] Z = arrays["Z"], A = arrays["A"], W = arrays["W"], WT = arrays["WT"], dWT = arrays["dWT"]
    cdef floating[:, ::1] dZ = arrays["dZ"], dW = arrays["dW"], dA = arrays["dA"], A_out = arrays["A_out"]
    cdef floating[:, ::1] gathered = arrays["gathered"]
    cdef floating[::1] b = arrays["b"], db = arrays["db"]
    o.Z, o.A, o.W, o.WT, o.b = &Z[0, 0], &A[0, 0], &W[0, 0], &WT[0, 0], &b[0]
    o.dZ, o.dW, o.dWT, o.dA, o.A_out, o.db = &dZ[0, 0], &dW[0, 0], &dWT[0, 0], &dA[0, 0], &A_out[0, 0], &db[0]
    o.gathered = &gathered[0, 0]
    o.X, o.order, o.n_samples = &X[0, 0], &order[0], order.shape[0]
    n.pack(&WT[0, 0], &W[0, 0], width, K, width)  # what the prepacked runs read
    began, cpu_began = time.perf_counter(), time.process_time()
    with nogil:
        _narrow_repeat(op, impl, from_u8, fresh_rows, &o, &dtype_marker, rows, K, width, repeats)
    return (time.perf_counter() - began) / repeats, (time.process_time() - cpu_began) / repeats
