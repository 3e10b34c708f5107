# cython: language_level=3
# distutils: extra_compile_args = -fno-math-errno
"""nncore's compiled core: a whole training epoch, inference and the full-batch gradient in C.

The Python-facing functions here take arrays that nncore.backends.cython_backend has already
validated (dtype, shape, contiguity, label range); they only derive the workspace sizes,
allocate the workspaces once per call, take raw pointers and release the GIL for the whole
loop. The per-op kernels live in _kernels.pxd, the BLAS shim in _blas.pxd, the network
passes in _network.pxd. Test and benchmark wrappers of single kernels live in a module of
their own, nncore._testing (src_c/_testing.pyx).

Compiled with -fno-math-errno (the distutils comment above): sqrt then needs no errno
branch, so the Adam loop vectorizes (4x faster); nothing here reads errno.

No OpenMP ``prange`` is used: the only parallelism is BLAS's own threads (set them with
threadpoolctl); element-wise passes are memory-bound and short next to the gemms.
"""
import numpy as np

from cython cimport floating
from libc.float cimport FLT_MAX
from libc.math cimport isfinite
from libc.string cimport memcpy

cimport _kernels as k
from _network cimport (LOSS_CROSS_ENTROPY, LOSS_MSE, LOSS_NONE, Layout, OptimizerConfig, _apply_update,
                       batch_gradient, forward_chunk, loss_chunk)

cdef extern from *:
    """
    #ifndef NNCORE_SOURCE_HASH
    #define NNCORE_SOURCE_HASH "unknown"
    #endif
    #ifdef _OPENMP
    #define NNCORE_OPENMP 1
    #else
    #define NNCORE_OPENMP 0
    #endif
    #if defined(_WIN32)
    #include <windows.h>
    static double nncore_seconds(void) {
        LARGE_INTEGER frequency, counter;
        QueryPerformanceFrequency(&frequency);
        QueryPerformanceCounter(&counter);
        return (double)counter.QuadPart / (double)frequency.QuadPart;
    }
    #else
    #include <time.h>
    static double nncore_seconds(void) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
    }
    #endif
    """
    const char* NNCORE_SOURCE_HASH
    const int NNCORE_OPENMP
    const int NNCORE_DEBUG_BUILD
    double nncore_seconds() noexcept nogil

cdef extern from "Python.h":
    # Declared here with "except -1" so that a KeyboardInterrupt raised by a signal handler
    # propagates out of the nogil epoch loop like any other exception.
    int PyErr_CheckSignals() except -1

SOURCE_HASH = NNCORE_SOURCE_HASH.decode("ascii")
OPENMP = bool(NNCORE_OPENMP)
DEBUG_BUILD = bool(NNCORE_DEBUG_BUILD)

LOSS_KINDS = {"cross_entropy": LOSS_CROSS_ENTROPY, "mse": LOSS_MSE}
# Rows the workspaces hold: larger batches are processed in chunks of this many rows.
DEFAULT_CHUNK_ROWS = 1024
# The GIL is re-taken to check for Ctrl-C after a batch only when this long has passed since
# the last check: re-taking it costs up to the interpreter's switch interval (5 ms) when
# another Python thread is running, more than a whole small batch.
cdef double SIGNAL_CHECK_SECONDS = 0.02
INT_MAX = 2 ** 31 - 1


# ---------------------------------------------------------------- workspace layout

def _layout_tables(layer_sizes, Py_ssize_t chunk_rows):
    """(tables, activations size, delta size) for ``layer_sizes`` with workspaces of ``chunk_rows`` rows.

    ``tables`` is one intp array: sizes (L + 1), W offsets (L), b offsets (L), activation offsets (L).
    Every gemm dimension must fit a BLAS int (32 bits); checked here, once.
    """
    sizes = [int(s) for s in layer_sizes]
    n_layers = len(sizes) - 1
    w_offsets, b_offsets, act_offsets = [], [], []
    position = activations = 0
    for fan_in, fan_out in zip(sizes[:n_layers], sizes[1:]):
        w_offsets.append(position)
        b_offsets.append(position + fan_in * fan_out)
        position += fan_in * fan_out + fan_out
        act_offsets.append(activations)
        activations += chunk_rows * fan_out
    if max(sizes) > INT_MAX or chunk_rows * max(sizes) > INT_MAX:
        raise ValueError(f"layer sizes {sizes} with {chunk_rows}-row chunks exceed the 32-bit BLAS index range")
    widest_hidden = max(sizes[1:n_layers], default=1)
    tables = np.array(sizes + w_offsets + b_offsets + act_offsets, dtype=np.intp)
    return tables, activations, chunk_rows * widest_hidden


def _check_structure(Py_ssize_t n_params, layer_sizes, X, Py_ssize_t n_rows=-1, y=None, order=None,
                     loss_kind=None):
    """Shape checks that keep a direct call into this module from reading out of bounds.

    cython_backend validates every argument (with nncore.backends._common) before calling in;
    this only makes the extension's own entry points memory-safe: O(n) numpy, no kernel work.
    """
    sizes = [int(s) for s in layer_sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"layer_sizes must be >= 2 positive ints, got {sizes}")
    if n_params != sum(a * b + b for a, b in zip(sizes[:len(sizes) - 1], sizes[1:])):
        raise ValueError(f"params do not match layer sizes {sizes}")
    if X is not None:
        if X.ndim != 2 or X.shape[1] != sizes[0] or not X.flags.c_contiguous:
            raise ValueError(f"X must be C-contiguous (n, {sizes[0]})")
        if n_rows >= 0 and X.shape[0] != n_rows:
            raise ValueError(f"X has {X.shape[0]} rows, expected {n_rows}")
    if y is not None:
        labels = np.asarray(y)
        if X is not None and labels.shape[0] != X.shape[0]:
            raise ValueError("y and X differ in length")
        if labels.shape[0] and (labels.min() < 0 or labels.max() >= sizes[len(sizes) - 1]):
            raise ValueError("labels out of range")
    if order is not None:
        rows = np.asarray(order)
        if rows.shape[0] and (rows.min() < 0 or rows.max() >= X.shape[0]):
            raise ValueError("order holds rows outside X")
    if loss_kind is not None and loss_kind not in (LOSS_CROSS_ENTROPY, LOSS_MSE):
        raise ValueError(f"unknown loss kind {loss_kind}")


cdef void _fill_layout(Layout* net, const Py_ssize_t[::1] tables, Py_ssize_t n_layers,
                       Py_ssize_t chunk_rows) noexcept:
    cdef const Py_ssize_t* base = &tables[0]
    net.n_layers = n_layers
    net.sizes = base
    net.w_offsets = base + n_layers + 1
    net.b_offsets = base + 2 * n_layers + 1
    net.act_offsets = base + 3 * n_layers + 1
    net.chunk_rows = chunk_rows


cdef inline floating _input_scale(floating dtype_marker) noexcept nogil:
    """1/255 rounded once to the floating type (as _common.input_scale)."""
    return <floating> (1.0 / 255.0)


# ---------------------------------------------------------------- the epoch

cdef int _run_epoch(const Layout* net, floating* params, Py_ssize_t n_params,
                    const unsigned char* X_uint8, const floating* X_float, floating scale,
                    const int* y, const Py_ssize_t* order, Py_ssize_t n_samples, Py_ssize_t batch_size,
                    int loss_kind, const OptimizerConfig* opt, floating* state_a, floating* state_b,
                    floating* grad, floating* inputs, floating* acts, floating* delta_a, floating* delta_b,
                    double* loss_total,          # OUT sum of the applied batches' losses
                    Py_ssize_t* progress         # OUT n_batches, n_correct, n_samples, diverged_batch
                    ) except -1 nogil:
    """Every batch: gradient, divergence check, update; progress is current after each applied batch."""
    cdef Py_ssize_t start, m, batch_correct
    cdef double batch_loss
    cdef double last_check = nncore_seconds()
    cdef double now
    start = 0
    while start < n_samples:
        m = min(batch_size, n_samples - start)
        batch_loss = 0
        batch_correct = 0
        batch_gradient(net, params, X_uint8, X_float, scale, y, order, start, m, loss_kind, grad,
                       inputs, acts, delta_a, delta_b, &batch_loss, &batch_correct)
        # The NumPy backend sums the batch's losses in the parameters' dtype: a float32 sum
        # beyond FLT_MAX is inf there, so it counts as divergence here too.
        if not isfinite(batch_loss) or (floating is float and (batch_loss > FLT_MAX or batch_loss < -FLT_MAX)):
            progress[3] = progress[0] + 1
            return 0
        _apply_update(opt, params, grad, state_a, state_b, n_params, opt.step0 + progress[0] + 1)
        loss_total[0] += batch_loss
        progress[0] += 1
        progress[1] += batch_correct
        progress[2] += m
        start += m
        now = nncore_seconds()
        if now - last_check >= SIGNAL_CHECK_SECONDS:
            last_check = now
            with gil:
                PyErr_CheckSignals()
    return 0


def train_epoch(floating[::1] params, layer_sizes, X, const int[::1] y, const Py_ssize_t[::1] order,
                Py_ssize_t batch_size, int loss_kind, floating[::1] state_a, floating[::1] state_b,
                double[::1] loss_total, Py_ssize_t[::1] progress, *, bint adam, double lr,
                double momentum=0.0, bint nesterov=False, double weight_decay=0.0,
                double beta1=0.9, double beta2=0.999, double eps=1e-8, long long step0=0,
                Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS):
    """One epoch in one call, GIL released. Arguments are validated by cython_backend.train_epoch.

    ``progress`` (n_batches, n_correct, n_samples, diverged_batch or 0) and ``loss_total`` are
    updated after every applied batch, so they are right even when a KeyboardInterrupt
    propagates out of here; the caller advances optimizer.step by progress[0].
    """
    cdef Py_ssize_t n_samples = order.shape[0]
    cdef Py_ssize_t n_layers = len(layer_sizes) - 1
    cdef Py_ssize_t chunk = max(1, min(chunk_rows, batch_size, n_samples))
    cdef Layout net
    cdef OptimizerConfig opt
    cdef const unsigned char[:, ::1] X_uint8
    cdef const floating[:, ::1] X_float
    cdef const unsigned char* X_uint8_ptr = NULL
    cdef const floating* X_float_ptr = NULL
    cdef floating scale = _input_scale(params[0])
    cdef floating[::1] grad, inputs, acts, delta_a, delta_b
    _check_structure(params.shape[0], layer_sizes, X, -1, y, order, loss_kind)
    if (state_a.shape[0] != params.shape[0] or state_b.shape[0] != params.shape[0]
            or loss_total.shape[0] < 1 or progress.shape[0] < 4 or batch_size < 1 or chunk_rows < 1):
        raise ValueError("state buffers, progress or sizes do not fit")
    if n_samples == 0:
        return
    tables, acts_size, delta_size = _layout_tables(layer_sizes, chunk)
    _fill_layout(&net, tables, n_layers, chunk)
    if X.dtype == np.uint8:
        X_uint8 = X
        X_uint8_ptr = &X_uint8[0, 0]
    else:
        X_float = X
        X_float_ptr = &X_float[0, 0]
    dtype = np.asarray(params).dtype
    grad = np.empty(params.shape[0], dtype=dtype)
    inputs = np.empty(chunk * net.sizes[0], dtype=dtype)
    acts = np.empty(acts_size, dtype=dtype)
    delta_a = np.empty(delta_size, dtype=dtype)
    delta_b = np.empty(delta_size, dtype=dtype)
    opt.adam = adam
    opt.lr = lr
    opt.momentum = momentum
    opt.nesterov = nesterov
    opt.weight_decay = weight_decay
    opt.beta1 = beta1
    opt.beta2 = beta2
    opt.eps = eps
    opt.step0 = step0
    with nogil:
        _run_epoch(&net, &params[0], params.shape[0], X_uint8_ptr, X_float_ptr, scale, &y[0], &order[0],
                   n_samples, batch_size, loss_kind, &opt, &state_a[0], &state_b[0], &grad[0], &inputs[0],
                   &acts[0], &delta_a[0], &delta_b[0], &loss_total[0], &progress[0])


# ---------------------------------------------------------------- inference and the full gradient

cdef void _inference(const Layout* net, const floating* params,
                     const unsigned char* X_uint8, const floating* X_float, floating scale,
                     const int* y, Py_ssize_t n_samples, int loss_kind,
                     floating* inputs, floating* acts,
                     floating* out,                               # OUT (n_samples, n_out) if loss_kind is LOSS_NONE
                     double* loss_sum, Py_ssize_t* n_correct) noexcept nogil:
    """Forward chunk by chunk: probabilities into ``out``, or the loss sum and correct count."""
    cdef Py_ssize_t start, rows, i, argmax
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[net.n_layers]
    cdef const floating* source
    cdef floating* logits = acts + net.act_offsets[net.n_layers - 1]
    start = 0
    while start < n_samples:
        rows = min(net.chunk_rows, n_samples - start)
        if X_uint8 != NULL:
            k.gather_scale_uint8(inputs, X_uint8, n_in, NULL, start, rows, scale)
            source = inputs
        else:
            source = X_float + start * n_in    # contiguous rows: no copy
        forward_chunk(net, params, source, rows, acts)
        if loss_kind == LOSS_NONE:
            for i in range(rows):
                k.softmax_row(logits + i * n_out, n_out, &argmax)
            memcpy(out + start * n_out, logits, rows * n_out * sizeof(floating))
        else:
            loss_chunk(logits, rows, n_out, y, NULL, start, loss_kind, 1, loss_sum, n_correct)
        start += rows


cdef tuple _run_inference(const floating[::1] params, layer_sizes, X, const int* y, int loss_kind,
                          floating* out, Py_ssize_t n_samples, Py_ssize_t chunk_rows):
    """Workspaces for one call, then ``_inference`` with the GIL released: what ``forward``
    (y NULL, LOSS_NONE, probabilities into ``out``) and ``evaluate`` (``out`` NULL) share.
    The caller has checked the shapes; returns (loss sum, correct count)."""
    cdef Layout net
    cdef const unsigned char[:, ::1] X_uint8
    cdef const floating[:, ::1] X_float
    cdef const unsigned char* X_uint8_ptr = NULL
    cdef const floating* X_float_ptr = NULL
    cdef floating[::1] inputs, acts
    cdef double loss_sum = 0
    cdef Py_ssize_t n_correct = 0
    chunk = max(1, min(chunk_rows, n_samples))
    tables, acts_size, _ = _layout_tables(layer_sizes, chunk)
    _fill_layout(&net, tables, len(layer_sizes) - 1, chunk)
    dtype = np.asarray(params).dtype
    inputs = np.empty(chunk * int(layer_sizes[0]), dtype=dtype)
    acts = np.empty(acts_size, dtype=dtype)
    if X.dtype == np.uint8:
        X_uint8 = X
        X_uint8_ptr = &X_uint8[0, 0]
    else:
        X_float = X
        X_float_ptr = &X_float[0, 0]
    with nogil:
        _inference(&net, &params[0], X_uint8_ptr, X_float_ptr, _input_scale(params[0]), y, n_samples,
                   loss_kind, &inputs[0], &acts[0], out, &loss_sum, &n_correct)
    return loss_sum, n_correct


def forward(const floating[::1] params, layer_sizes, X, floating[:, ::1] out,
            Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS):
    """Class probabilities of every row of X into ``out`` (n_samples, n_out), GIL released."""
    cdef Py_ssize_t n_samples = out.shape[0]
    _check_structure(params.shape[0], layer_sizes, X, n_samples)
    if out.shape[1] != int(layer_sizes[len(layer_sizes) - 1]) or chunk_rows < 1:
        raise ValueError("out must be (n_samples, n_outputs)")
    if n_samples == 0:
        return
    _run_inference(params, layer_sizes, X, NULL, LOSS_NONE, &out[0, 0], n_samples, chunk_rows)


def evaluate(const floating[::1] params, layer_sizes, X, const int[::1] y, int loss_kind,
             Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS):
    """(sum of per-sample losses, number of correct argmax predictions), GIL released."""
    cdef Py_ssize_t n_samples = y.shape[0]
    _check_structure(params.shape[0], layer_sizes, X, n_samples, y, None, loss_kind)
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    if n_samples == 0:
        return 0.0, 0
    return _run_inference(params, layer_sizes, X, &y[0], loss_kind, <floating*> NULL, n_samples, chunk_rows)


def loss_and_grad(const floating[::1] params, layer_sizes, X, const int[::1] y, int loss_kind,
                  floating[::1] grad, Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS):
    """The gradient of the mean data loss over all of X into ``grad``; returns the loss sum."""
    cdef Py_ssize_t n_samples = y.shape[0]
    cdef Layout net
    cdef const unsigned char[:, ::1] X_uint8
    cdef const floating[:, ::1] X_float
    cdef const unsigned char* X_uint8_ptr = NULL
    cdef const floating* X_float_ptr = NULL
    cdef floating[::1] inputs, acts, delta_a, delta_b
    cdef double loss_sum = 0
    cdef Py_ssize_t n_correct = 0
    _check_structure(params.shape[0], layer_sizes, X, n_samples, y, None, loss_kind)
    if grad.shape[0] != params.shape[0] or n_samples == 0 or chunk_rows < 1:
        raise ValueError("grad must match params, and X must not be empty")
    chunk = max(1, min(chunk_rows, n_samples))
    tables, acts_size, delta_size = _layout_tables(layer_sizes, chunk)
    _fill_layout(&net, tables, len(layer_sizes) - 1, chunk)
    dtype = np.asarray(grad).dtype
    inputs = np.empty(chunk * net.sizes[0], dtype=dtype)
    acts = np.empty(acts_size, dtype=dtype)
    delta_a = np.empty(delta_size, dtype=dtype)
    delta_b = np.empty(delta_size, dtype=dtype)
    if X.dtype == np.uint8:
        X_uint8 = X
        X_uint8_ptr = &X_uint8[0, 0]
    else:
        X_float = X
        X_float_ptr = &X_float[0, 0]
    with nogil:
        batch_gradient(&net, &params[0], X_uint8_ptr, X_float_ptr, _input_scale(grad[0]), &y[0], NULL, 0,
                       n_samples, loss_kind, &grad[0], &inputs[0], &acts[0], &delta_a[0], &delta_b[0],
                       &loss_sum, &n_correct)
    return loss_sum
