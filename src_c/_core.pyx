# cython: language_level=3
# distutils: extra_compile_args = -fno-math-errno
"""nncore's compiled core: a whole training epoch, inference and the full-batch gradient in C.

The callers (nncore.backends.cython_backend) pass arguments that nncore.inputs has already
checked. What is left here are the checks that keep the loops memory-safe whoever calls:
shapes against the layout, and private copies of everything the nogil loops index with (the
layout table, the labels, the sample order), each bounds-checked once, so that another thread
or process changing the caller's arrays meanwhile cannot send an index out of bounds. Then
workspaces are allocated once per call and the GIL is released for the whole loop. The
per-op kernels live in _kernels.pxd, the BLAS shim in _blas.pxd, the network passes (inference
and the optimizer update too) in _network.pxd. Test and benchmark wrappers of single kernels
live in a module of their own, nncore._testing (src_c/_testing.pyx).

Compiled with -fno-math-errno (the distutils comment above): sqrt then needs no errno
branch, so the Adam loop vectorizes (4x faster); nothing here reads errno.

Threads: BLAS's own (set them with threadpoolctl), and, for a batch of several chunks in a
network whose every layer runs in the narrow kernels (the seeds' 784-10-10 full batch), the
chunks split over OpenMP threads with a gradient each and one reduction per batch (``_Threads``).
"""
import numpy as np

from cpython.ref cimport PyObject
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.float cimport FLT_MAX
from libc.math cimport isfinite
from libc.string cimport memcpy, memset

cimport _blas
cimport _kernels as k
cimport _narrow as narrow
from _counters cimport KEEP_BITS
from _kernels cimport N_ACTIVATIONS
from _network cimport (KEEP_CONVERTED_BYTES, LOSS_CROSS_ENTROPY, LOSS_MSE, LOSS_NONE, MAX_HYPERPARAMETERS, N_LOSSES, N_OPTIMIZERS,
                       OPTIMIZER_ADAM, OPTIMIZER_SGD, Layout, Noise, OptimizerConfig, apply_update, batch_gradient,
                       chunk_gradient, inference)

cdef extern from *:
    """
    #ifndef NNCORE_SOURCE_HASH
    #define NNCORE_SOURCE_HASH "unknown"
    #endif
    #ifdef _OPENMP
    #include <omp.h>
    #define NNCORE_OPENMP 1
    static int nncore_max_threads(void) { return omp_get_max_threads(); }
    #else
    #define NNCORE_OPENMP 0
    static int nncore_max_threads(void) { return 1; }
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
    int nncore_max_threads() noexcept nogil

cdef extern from "Python.h":
    # Declared here with "except -1" so that a KeyboardInterrupt raised by a signal handler
    # propagates out of the nogil epoch loop like any other exception.
    int PyErr_CheckSignals() except -1

SOURCE_HASH = NNCORE_SOURCE_HASH.decode("ascii")
OPENMP = bool(NNCORE_OPENMP)
DEBUG_BUILD = bool(NNCORE_DEBUG_BUILD)

#: How many hyperparameters an optimizer may hand the core (OptimizerConfig.hyperparameters).
OPTIMIZER_HYPERPARAMETERS = MAX_HYPERPARAMETERS
# Rows the workspaces hold: larger batches are processed in chunks of this many rows.
DEFAULT_CHUNK_ROWS = 1024
# Layers with at most NARROW_MAX_WIDTH outputs run dW and dA in the narrow kernels (src_c/narrow.c),
# and their forward too up to NARROW_FORWARD_MAX_WIDTH outputs; wider products stay on BLAS. Where the
# two cross (benchmarks/narrow_crossover.py, README): a narrow forward loses to BLAS past ~12 columns,
# dW and dA past ~24 (float64; float32 ~32). Read when a call starts; tests set them to 0 (all BLAS)
# or large values (all narrow) to hold every path to the reference.
NARROW_MAX_WIDTH = 24
NARROW_FORWARD_MAX_WIDTH = 12
# The GIL is re-taken to check for Ctrl-C (and to report progress) after a batch only when this
# long has passed since the last check: re-taking it costs up to the interpreter's switch
# interval (5 ms) when another Python thread is running, more than a whole small batch.
cdef double SIGNAL_CHECK_SECONDS = 0.02
# Batches up to this many rows have their uint8 rows requested a batch ahead (larger ones prefetch
# within the pass: their rows would not stay in cache until their turn).
cdef Py_ssize_t PREFETCH_BATCH_ROWS = 128
INT_MAX = 2 ** 31 - 1


# ---------------------------------------------------------------- what the loops index with

# The narrow kernels' vector loads of W^T rows (packed_stride(K) long, a multiple of 16 entries)
# never straddle a cache line when W^T starts on one.
cdef Py_ssize_t ALIGNMENT_ELEMENTS = 16


def _aligned_zeros(Py_ssize_t n, dtype):
    """n zeros of dtype starting on a 64-byte boundary (NumPy guarantees only 16)."""
    dtype = np.dtype(dtype)
    spare = np.zeros(n + 64 // dtype.itemsize, dtype=dtype)
    skip = (-spare.ctypes.data % 64) // dtype.itemsize
    return spare[skip:skip + n]

cdef class _Plan:
    """A private, bounds-checked copy of a Network.table, plus the workspace offsets for one call.

    ``layout`` is nncore.network.Network.table: sizes (L + 1), W offsets (L), b offsets (L),
    activation codes (L). The layout itself is Network's; this only checks that every block
    lies inside the ``n_params``-entry buffer, that every activation code exists, and that
    every gemm dimension fits a BLAS int (32 bits).
    """

    cdef Layout net
    cdef object table, act_offsets, packed_offsets, packed, working_table
    cdef readonly Py_ssize_t acts_size, delta_size, packed_size, n_working
    cdef readonly bint relaid, all_narrow
    cdef const Py_ssize_t* flat_w_offsets
    cdef const Py_ssize_t* flat_b_offsets

    def __init__(self, layout, Py_ssize_t n_params, Py_ssize_t chunk_rows, bint transposed=False):
        """``transposed``: lay the buffers out for training (Layout.weights_transposed): a narrow
        layer's W as W^T, padded to the narrow kernels' stride; ``n_working`` entries in all and
        ``relaid`` when that differs from the caller's layout (there is a narrow layer)."""
        self.table = np.array(layout, dtype=np.intp, copy=True)  # ours: a caller cannot change it under the loops
        n_layers = (self.table.shape[0] - 1) // 4 if self.table.ndim == 1 else 0
        if n_layers < 1 or self.table.shape[0] != 4 * n_layers + 1 or chunk_rows < 1:
            raise ValueError("layout must be a Network.table: sizes (L + 1), W offsets, b offsets and "
                             "activations (L each), L >= 1")
        sizes, w_offsets, b_offsets, activations = (self.table[:n_layers + 1].tolist(),
                                                    self.table[n_layers + 1:2 * n_layers + 1].tolist(),
                                                    self.table[2 * n_layers + 1:3 * n_layers + 1].tolist(),
                                                    self.table[3 * n_layers + 1:].tolist())
        if min(sizes) < 1 or chunk_rows * max(sizes) > INT_MAX:
            raise ValueError(f"layer sizes {sizes} with {chunk_rows}-row chunks must be positive and within "
                             "the 32-bit BLAS index range")
        for l in range(n_layers):
            w_end, b_end = w_offsets[l] + sizes[l] * sizes[l + 1], b_offsets[l] + sizes[l + 1]
            if min(w_offsets[l], b_offsets[l]) < 0 or max(w_end, b_end) > n_params:
                raise ValueError(f"layer {l}'s parameters lie outside the {n_params}-entry buffer")
            if not 0 <= activations[l] < N_ACTIVATIONS:
                raise ValueError(f"layer {l} has an unknown activation code {activations[l]}")
        act_offsets, self.acts_size = [], 0
        for fan_out in sizes[1:]:
            act_offsets.append(self.acts_size)
            self.acts_size += chunk_rows * fan_out
        self.delta_size = chunk_rows * max(sizes[1:n_layers], default=1)
        self.act_offsets = np.array(act_offsets, dtype=np.intp)
        self._plan_narrow_layers(sizes)
        self.all_narrow = bool((self.packed_offsets >= 0).all())
        cdef const Py_ssize_t[::1] table = self.table
        cdef const Py_ssize_t[::1] offsets = self.act_offsets
        cdef const Py_ssize_t[::1] packed_offsets = self.packed_offsets
        self.net.n_layers = n_layers
        self.net.sizes = &table[0]
        self.net.w_offsets = &table[n_layers + 1]
        self.net.b_offsets = &table[2 * n_layers + 1]
        self.net.activations = &table[3 * n_layers + 1]
        self.net.act_offsets = &offsets[0]
        self.net.chunk_rows = chunk_rows
        self.net.packed_offsets = &packed_offsets[0]
        self.net.packed = NULL
        self.net.narrow_forward_width = NARROW_FORWARD_MAX_WIDTH
        self.net.weights_transposed = transposed
        self.flat_w_offsets, self.flat_b_offsets = self.net.w_offsets, self.net.b_offsets
        self.n_working, self.relaid = n_params, False
        if transposed and self.packed_size:
            self._plan_working_layout(sizes, n_layers, activations)

    def _plan_working_layout(self, sizes, Py_ssize_t n_layers, activations):
        """Training's buffer layout: per layer W (or a narrow layer's padded W^T), then b."""
        w_offsets, b_offsets, self.n_working = [], [], 0
        for l in range(n_layers):
            if self.packed_offsets[l] >= 0:    # a W^T starts on a cache line (in an _aligned_zeros buffer)
                self.n_working += (ALIGNMENT_ELEMENTS - self.n_working % ALIGNMENT_ELEMENTS) % ALIGNMENT_ELEMENTS
            w_offsets.append(self.n_working)
            width = narrow.nncore_narrow_packed_stride(sizes[l]) if self.packed_offsets[l] >= 0 else sizes[l]
            self.n_working += width * sizes[l + 1]
            b_offsets.append(self.n_working)
            self.n_working += sizes[l + 1]
        self.working_table = np.array(sizes + w_offsets + b_offsets + activations, dtype=np.intp)
        cdef const Py_ssize_t[::1] table = self.working_table
        self.net.w_offsets = &table[n_layers + 1]
        self.net.b_offsets = &table[2 * n_layers + 1]
        self.relaid = True

    def _plan_narrow_layers(self, sizes):
        """Which layers the narrow kernels run (-1: BLAS), and where each one's packed W^T goes."""
        offsets, self.packed_size = [], 0
        for fan_in, fan_out in zip(sizes[:len(sizes) - 1], sizes[1:]):
            narrow_layer = fan_out <= min(NARROW_MAX_WIDTH, narrow.NNCORE_NARROW_MAX_N)
            offsets.append(self.packed_size if narrow_layer else -1)
            self.packed_size += fan_out * narrow.nncore_narrow_packed_stride(fan_in) if narrow_layer else 0
        self.packed_offsets = np.array(offsets, dtype=np.intp)

    def workspaces(self, dtype, bint backward=True):
        """(inputs, activations[, delta_a, delta_b]): what a call's chunks are computed in, made once per call;
        the deltas only for a backward pass. The narrow layers' packed W^T is made here too, held by the plan."""
        cdef char[::1] packed_bytes
        self.packed = _aligned_zeros(max(1, self.packed_size), dtype)
        packed_bytes = self.packed.view(np.int8)
        self.net.packed = &packed_bytes[0]
        forward = (np.empty(self.net.chunk_rows * self.net.sizes[0], dtype=dtype), np.empty(self.acts_size, dtype=dtype))
        if not backward:
            return forward
        return forward + (np.empty(self.delta_size, dtype=dtype), np.empty(self.delta_size, dtype=dtype))

    @property
    def n_inputs(self):
        return self.net.sizes[0]

    @property
    def n_outputs(self):
        return self.net.sizes[self.net.n_layers]


cdef void _relayout(_Plan plan, floating* flat, floating* working, bint to_working) noexcept nogil:
    """Copy every layer's W and b between the caller's layout and the plan's (``to_working`` or back),
    transposing a narrow layer's W: the parameters, their gradient or an optimizer state alike."""
    cdef const Layout* net = &plan.net
    cdef Py_ssize_t l, i, j, fan_in, fan_out, stride
    cdef floating* WT
    cdef floating* W
    for l in range(net.n_layers):
        fan_in, fan_out = net.sizes[l], net.sizes[l + 1]
        W, WT = flat + plan.flat_w_offsets[l], working + net.w_offsets[l]
        if net.packed_offsets[l] < 0:
            if to_working:
                memcpy(WT, W, fan_in * fan_out * sizeof(floating))
            else:
                memcpy(W, WT, fan_in * fan_out * sizeof(floating))
        elif to_working:
            narrow.pack(WT, W, fan_out, fan_in, fan_out)    # zero past fan_in: the padding stays zero
        else:
            stride = narrow.nncore_narrow_packed_stride(fan_in)
            for i in range(fan_in):
                for j in range(fan_out):
                    W[i * fan_out + j] = WT[j * stride + i]
        if to_working:
            memcpy(working + net.b_offsets[l], flat + plan.flat_b_offsets[l], fan_out * sizeof(floating))
        else:
            memcpy(flat + plan.flat_b_offsets[l], working + net.b_offsets[l], fan_out * sizeof(floating))


cdef floating[::1] _working_copy(_Plan plan, const floating[::1] flat):
    """A new buffer holding ``flat`` in the plan's layout."""
    cdef floating[::1] working = _aligned_zeros(plan.n_working, np.asarray(flat).dtype)
    _relayout(plan, <floating*> &flat[0], &working[0], True)    # only read from
    return working


cdef class _Draws:
    """A private, checked copy of a pass's noise table (nncore.counters.noise_table), as a ``Noise``.

    The table is [seed, shift, image height, image width, one dropout threshold per site]: the
    sites are the inputs and each hidden layer's output (the logits are never dropped), each
    threshold in 0 .. 2^24 - 1; with a shift, height * width must be the input width.
    """

    cdef Noise noise
    cdef object table

    def __init__(self, table, _Plan plan):
        self.table = np.array(table, dtype=np.intp, copy=True)  # ours: a caller cannot change it under the loops
        cdef Py_ssize_t n_layers = plan.net.n_layers
        if self.table.ndim != 1 or self.table.shape[0] != 4 + n_layers:
            raise ValueError(f"noise must be a noise_table: seed, shift, height, width and {n_layers} thresholds")
        seed, shift, height, width = self.table[:4].tolist()
        thresholds = self.table[4:]
        if not 0 <= seed < 2 ** 32:
            raise ValueError(f"noise seed {seed} is not a 32-bit seed")
        if thresholds.min() < 0 or thresholds.max() >= 2 ** KEEP_BITS:
            raise ValueError(f"dropout thresholds {thresholds.tolist()} must lie in 0..2^{KEEP_BITS} - 1")
        if shift < 0 or (shift > 0 and (min(height, width) < 1 or height * width != plan.n_inputs)):
            raise ValueError(f"a shift of {shift} pixels needs images of height x width = {plan.n_inputs}, "
                             f"got {height} x {width}")
        cdef const Py_ssize_t[::1] view = self.table
        self.noise.seed = seed
        self.noise.drop_thresholds = &view[4]
        self.noise.shift = shift
        self.noise.image_height = height
        self.noise.image_width = width


cdef inline const Noise* _noise(_Draws draws) noexcept:
    return &draws.noise if draws is not None else NULL


cdef class _Rows:
    """X for the loops: checked against the layout, its buffer held (so it stays where it is) and its address.

    uint8 rows are pixels, scaled by 1/255 while gathered; float rows must have the parameters' dtype.
    """

    cdef const unsigned char[:, ::1] pixels
    cdef const float[:, ::1] floats32
    cdef const double[:, ::1] floats64
    cdef readonly Py_ssize_t n_rows
    cdef readonly bint is_uint8

    def __init__(self, X, Py_ssize_t n_features, dtype):
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[1] != n_features:
            raise ValueError(f"X must be a C-contiguous (n, {n_features}) array")
        self.n_rows = X.shape[0]
        self.is_uint8 = X.dtype == np.uint8
        if self.is_uint8:
            self.pixels = X
        elif np.dtype(dtype) == np.float32:
            self.floats32 = X
        else:
            self.floats64 = X


cdef inline const unsigned char* _pixels(_Rows rows) noexcept:
    return &rows.pixels[0, 0] if rows.is_uint8 and rows.n_rows else NULL


cdef inline const floating* _floats(_Rows rows, floating marker) noexcept:
    if rows.is_uint8 or rows.n_rows == 0:
        return NULL
    if floating is float:
        return &rows.floats32[0, 0]
    else:
        return &rows.floats64[0, 0]


def _private_labels(const int[::1] y not None, Py_ssize_t n_rows, Py_ssize_t n_classes):
    """A private copy of the labels, each in 0..n_classes-1: the loss indexes the logits with them."""
    labels = np.asarray(y).copy()
    if labels.shape[0] != n_rows:
        raise ValueError(f"y has {labels.shape[0]} labels for {n_rows} rows")
    if n_rows and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels out of range 0..{n_classes - 1}")
    return labels


def _private_order(const Py_ssize_t[::1] order not None, Py_ssize_t n_rows):
    """A private copy of the sample order, each row in 0..n_rows-1: the gather indexes X with it."""
    rows = np.asarray(order).copy()
    if rows.shape[0] and (rows.min() < 0 or rows.max() >= n_rows):
        raise ValueError("order holds rows outside X")
    return rows


cdef inline floating _input_scale(floating dtype_marker) noexcept nogil:
    """1/255 rounded once to the floating type (as nncore.backends.base.input_scale)."""
    return <floating> (1.0 / 255.0)


cdef OptimizerConfig _optimizer_config(int kind, hyperparameters, long long step0) except *:
    cdef OptimizerConfig config
    cdef Py_ssize_t i
    values = [float(h) for h in hyperparameters]
    if not 0 <= kind < N_OPTIMIZERS or len(values) > MAX_HYPERPARAMETERS:
        raise ValueError(f"unknown optimizer kind {kind} or more than {MAX_HYPERPARAMETERS} hyperparameters")
    config.kind = kind
    for i in range(MAX_HYPERPARAMETERS):
        config.hyperparameters[i] = values[i] if i < len(values) else 0.0
    config.step0 = step0
    return config


def _check_loss(int loss_kind):
    if not 0 <= loss_kind < N_LOSSES:
        raise ValueError(f"unknown loss kind {loss_kind}")


# ---------------------------------------------------------------- a batch's chunks over the cores

cdef enum:
    MAX_SPLIT_THREADS = 64

cdef struct Split:
    # Per-thread workspaces for a batch of several chunks split over the threads; n_threads 1: no split.
    # Thread 0 works in the call's own chunk workspaces; the others in their own.
    Py_ssize_t n_threads
    Py_ssize_t grad_size                  # entries of each thread's gradient
    void* grads                           # (n_threads, grad_size)
    void* inputs[MAX_SPLIT_THREADS]
    void* acts[MAX_SPLIT_THREADS]
    void* delta_a[MAX_SPLIT_THREADS]
    void* delta_b[MAX_SPLIT_THREADS]
    double* losses
    Py_ssize_t* correct


cdef class _Threads:
    """The workspaces of a Split: each thread's gradient, chunk buffers, loss and hits.

    A batch is split only when it has several chunks, every layer runs in the narrow kernels
    (no BLAS call inside a thread: OpenBLAS's own threads would fight ours) and nothing is drawn
    (dropout and shifts keep their one-thread path). The threads are OpenMP's, as many as
    threadpoolctl or OMP_NUM_THREADS allow, at most one per chunk.
    """

    cdef Split split
    cdef object buffers

    def __init__(self, _Plan plan, Py_ssize_t batch_rows, bint drawn, bint pixels, workspaces):
        """``workspaces``: the call's (inputs, acts, delta_a, delta_b), thread 0's; ``pixels``: X is uint8."""
        cdef Py_ssize_t chunks = (batch_rows + plan.net.chunk_rows - 1) // plan.net.chunk_rows
        self.split.n_threads = min(nncore_max_threads(), chunks, MAX_SPLIT_THREADS)
        if drawn or not plan.all_narrow or self.split.n_threads < 2:
            self.split.n_threads = 1
            return
        cdef Py_ssize_t t, n = self.split.n_threads
        cdef char[::1] view
        dtype = np.asarray(workspaces[0]).dtype
        self.split.grad_size = plan.n_working
        self.buffers = [[np.asarray(w) for w in workspaces]]
        # A narrow first layer reading pixels from chunks too large to keep them converted has no use
        # for an inputs workspace: a full-batch epoch's memory stays at one chunk per thread.
        inputs_used = not (pixels and plan.net.sizes[1] <= plan.net.narrow_forward_width
                           and plan.net.chunk_rows * plan.net.sizes[0] * dtype.itemsize > KEEP_CONVERTED_BYTES)
        self.buffers += [[np.empty_like(np.asarray(w)) if field or inputs_used else np.empty(1, dtype)
                          for field, w in enumerate(workspaces)] for t in range(1, n)]
        for t in range(n):
            for field, array in enumerate(self.buffers[t]):
                view = array.view(np.int8)
                if field == 0:
                    self.split.inputs[t] = &view[0]
                elif field == 1:
                    self.split.acts[t] = &view[0]
                elif field == 2:
                    self.split.delta_a[t] = &view[0]
                else:
                    self.split.delta_b[t] = &view[0]
        sums = [_aligned_zeros(n * plan.n_working, dtype), np.zeros(n, dtype=np.float64), np.zeros(n, dtype=np.intp)]
        self.buffers.append(sums)
        view = sums[0].view(np.int8)
        cdef double[::1] losses = sums[1]
        cdef Py_ssize_t[::1] correct = sums[2]
        self.split.grads, self.split.losses, self.split.correct = &view[0], &losses[0], &correct[0]


def split_threads(layout, Py_ssize_t n_params, Py_ssize_t batch_rows, Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS,
                  bint pixels=True, bint drawn=False):
    """How many threads train_epoch splits a batch of ``batch_rows`` over (1: no split), as it would now."""
    plan = _Plan(layout, n_params, max(1, min(chunk_rows, batch_rows)), transposed=True)
    dtype = np.float32
    workspaces = plan.workspaces(dtype)
    return (<_Threads> _Threads(plan, batch_rows, drawn, pixels, workspaces)).split.n_threads


cdef void _split_batch_gradient(const Layout* net, const Split* split, const floating* params,
                                const unsigned char* X_uint8, const floating* X_float, floating scale,
                                const int* y, const Py_ssize_t* order, Py_ssize_t first, Py_ssize_t m,
                                int loss_kind, floating* grad, double* loss_sum, Py_ssize_t* n_correct) noexcept nogil:
    """batch_gradient with the chunks split over split.n_threads threads, each into its own gradient
    (contiguous runs of chunks, so a thread count gives one result), and ONE reduction per batch."""
    cdef Py_ssize_t n_chunks = (m + net.chunk_rows - 1) // net.chunk_rows
    cdef Py_ssize_t c, t, i, rows, size = split.grad_size
    cdef floating* grads = <floating*> split.grads
    memset(grads, 0, split.n_threads * size * sizeof(floating))
    for t in range(split.n_threads):
        split.losses[t] = 0
        split.correct[t] = 0
    for c in prange(n_chunks, num_threads=split.n_threads, schedule="static"):
        t = threadid()
        rows = min(net.chunk_rows, m - c * net.chunk_rows)
        chunk_gradient(net, params, X_uint8, X_float, scale, y, order, first + c * net.chunk_rows, rows, m, loss_kind,
                       grads + t * size, True, <floating*> split.inputs[t], <floating*> split.acts[t],
                       <floating*> split.delta_a[t], <floating*> split.delta_b[t], NULL, &split.losses[t],
                       &split.correct[t])
    memcpy(grad, grads, size * sizeof(floating))
    for t in range(1, split.n_threads):
        for i in range(size):
            grad[i] += grads[t * size + i]
    for t in range(split.n_threads):
        loss_sum[0] += split.losses[t]
        n_correct[0] += split.correct[t]


# ---------------------------------------------------------------- the epoch

cdef int _run_epoch(const Layout* net, floating* params, Py_ssize_t n_params,
                    const unsigned char* X_uint8, const floating* X_float, floating scale,
                    const int* y, const Py_ssize_t* order, Py_ssize_t n_samples, Py_ssize_t batch_size,
                    int loss_kind, const OptimizerConfig* opt, floating* state_a, floating* state_b,
                    floating* grad, floating* inputs, floating* acts, floating* delta_a, floating* delta_b,
                    const Noise* noise,
                    const Split* split,          # IN  threads for batches of several chunks
                    double* loss_total,          # OUT sum of the applied batches' losses
                    Py_ssize_t* progress,        # OUT n_batches, n_correct, n_samples, diverged_batch
                    PyObject* on_progress        # IN a callable or NULL
                    ) except -1 nogil:
    """Every batch: gradient, divergence check, update; progress is current after each applied batch.

    When the GIL is re-taken for Ctrl-C, ``on_progress()`` is called too: the epoch reports
    progress at most every SIGNAL_CHECK_SECONDS without leaving its one call. What it raises
    stops the epoch there, between batches, as Ctrl-C does.
    """
    cdef Py_ssize_t start, m, batch_correct
    cdef double batch_loss
    cdef double last_check = nncore_seconds()
    cdef double now
    start = 0
    while start < n_samples:
        m = min(batch_size, n_samples - start)
        batch_loss = 0
        batch_correct = 0
        if X_uint8 != NULL and batch_size <= PREFETCH_BATCH_ROWS and start + m < n_samples:
            # The next batch's shuffled rows miss every cache: ask for them while this one computes.
            k.prefetch_rows(X_uint8, net.sizes[0], order, start + m, min(batch_size, n_samples - start - m))
        if split.n_threads > 1 and m > net.chunk_rows:
            _split_batch_gradient(net, split, params, X_uint8, X_float, scale, y, order, start, m, loss_kind, grad,
                                  &batch_loss, &batch_correct)
        else:
            batch_gradient(net, params, X_uint8, X_float, scale, y, order, start, m, loss_kind, grad,
                           inputs, acts, delta_a, delta_b, noise, &batch_loss, &batch_correct)
        # The NumPy backend sums the batch's losses in the parameters' dtype: a float32 sum
        # beyond FLT_MAX is inf there, so it counts as divergence here too.
        if not isfinite(batch_loss) or (floating is float and (batch_loss > FLT_MAX or batch_loss < -FLT_MAX)):
            progress[3] = progress[0] + 1
            return 0
        apply_update(opt, params, grad, state_a, state_b, n_params, opt.step0 + progress[0] + 1)
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
                if on_progress != NULL:
                    (<object> on_progress)()
    return 0


def train_epoch(layout, floating[::1] params not None, X, const int[::1] y not None,
                const Py_ssize_t[::1] order not None, Py_ssize_t batch_size, int loss_kind, int optimizer_kind,
                hyperparameters, long long step0, floating[::1] state_a not None, floating[::1] state_b not None,
                double[::1] loss_total not None, Py_ssize_t[::1] progress not None,
                Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS, noise=None, on_progress=None):
    """One epoch in one call, GIL released; samples in ``order``, ``batch_size`` at a time.

    ``noise`` (nncore.counters.noise_table, or None) turns on dropout and input shifts, drawn
    for each row from the table's seed and the row's position in ``order``.

    ``optimizer_kind`` and ``hyperparameters`` are an nncore.optim class's ``core_code`` and
    ``core_hyperparameters()``; ``step0`` the updates it has applied so far. ``progress``
    (n_batches, n_correct, n_samples, diverged_batch or 0) and ``loss_total`` are updated after
    every applied batch, so they are right even when a KeyboardInterrupt propagates out of
    here; the caller advances optimizer.step by progress[0]. ``on_progress`` (a callable taking
    no arguments, or None) is called between batches at most every 20 ms, when ``progress`` and
    ``loss_total`` are current; an exception it raises propagates as a KeyboardInterrupt does.
    """
    cdef Py_ssize_t n_samples = order.shape[0]
    cdef Py_ssize_t chunk = max(1, min(chunk_rows, batch_size, n_samples))
    cdef OptimizerConfig opt = _optimizer_config(optimizer_kind, hyperparameters, step0)
    cdef floating[::1] grad, inputs, acts, delta_a, delta_b
    cdef const int[::1] labels
    cdef const Py_ssize_t[::1] rows
    _check_loss(loss_kind)
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable or None, got {type(on_progress).__name__}")
    if (state_a.shape[0] != params.shape[0] or state_b.shape[0] != params.shape[0]
            or loss_total.shape[0] < 1 or progress.shape[0] < 4 or batch_size < 1 or chunk_rows < 1):
        raise ValueError("state buffers, progress or sizes do not fit")
    plan = _Plan(layout, params.shape[0], chunk, transposed=True)
    source = _Rows(X, plan.n_inputs, np.asarray(params).dtype)
    labels = _private_labels(y, source.n_rows, plan.n_outputs)
    rows = _private_order(order, source.n_rows)
    draws = _Draws(noise, plan) if noise is not None else None
    if n_samples == 0:
        return
    # The parameters and the optimizer state in training's layout for the call; copied back
    # whatever ends it (the batches applied before a Ctrl-C or a divergence are kept).
    cdef floating[::1] weights = params, moment_a = state_a, moment_b = state_b
    cdef bint one_state = &state_a[0] == &state_b[0]    # a kind with one state buffer passes it twice
    if plan.relaid:
        weights, moment_a = _working_copy(plan, params), _working_copy(plan, state_a)
        moment_b = moment_a if one_state else _working_copy(plan, state_b)
    grad = _aligned_zeros(plan.n_working, np.asarray(params).dtype)
    inputs, acts, delta_a, delta_b = plan.workspaces(np.asarray(params).dtype)
    threads = _Threads(plan, min(batch_size, n_samples), draws is not None, source.is_uint8,
                       (inputs, acts, delta_a, delta_b))
    cdef const Layout* net = &(<_Plan> plan).net
    cdef const unsigned char* pixels = _pixels(source)
    cdef const floating* floats = _floats(source, params[0])
    cdef const Noise* drawn = _noise(draws)
    try:
        with nogil:
            _run_epoch(net, &weights[0], plan.n_working, pixels, floats, _input_scale(params[0]), &labels[0],
                       &rows[0], n_samples, batch_size, loss_kind, &opt, &moment_a[0], &moment_b[0], &grad[0],
                       &inputs[0], &acts[0], &delta_a[0], &delta_b[0], drawn, &(<_Threads> threads).split,
                       &loss_total[0], &progress[0],
                       <PyObject*> on_progress if on_progress is not None else NULL)
    finally:
        if plan.relaid:
            _relayout(plan, &params[0], &weights[0], False)
            _relayout(plan, &state_a[0], &moment_a[0], False)
            if not one_state:
                _relayout(plan, &state_b[0], &moment_b[0], False)


# ---------------------------------------------------------------- inference and the full gradient

cdef tuple _run_inference(_Plan plan, const floating[::1] params, _Rows source, const int* y, int loss_kind,
                          floating* out):
    """Workspaces for one call, then ``inference`` with the GIL released: what ``forward``
    (y NULL, LOSS_NONE, probabilities into ``out``) and ``evaluate`` (``out`` NULL) share.
    Returns (loss sum, correct count)."""
    cdef floating[::1] inputs, acts
    cdef double loss_sum = 0
    cdef Py_ssize_t n_correct = 0
    inputs, acts = plan.workspaces(np.asarray(params).dtype, backward=False)
    cdef const Layout* net = &plan.net
    cdef const unsigned char* pixels = _pixels(source)
    cdef const floating* floats = _floats(source, params[0])
    with nogil:
        inference(net, &params[0], pixels, floats, _input_scale(params[0]), y, source.n_rows,
                  loss_kind, &inputs[0], &acts[0], out, &loss_sum, &n_correct)
    return loss_sum, n_correct


def forward(layout, const floating[::1] params not None, X, floating[:, ::1] out not None,
            Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS):
    """Class probabilities of every row of X into ``out`` (n_samples, n_out), GIL released."""
    plan = _Plan(layout, params.shape[0], max(1, min(chunk_rows, out.shape[0])))
    source = _Rows(X, plan.n_inputs, np.asarray(params).dtype)
    if out.shape[0] != source.n_rows or out.shape[1] != plan.n_outputs:
        raise ValueError("out must be (n_samples, n_outputs)")
    if source.n_rows:
        _run_inference(plan, params, source, NULL, LOSS_NONE, &out[0, 0])


def evaluate(layout, const floating[::1] params not None, X, const int[::1] y not None, int loss_kind,
             Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS):
    """(sum of per-sample losses, number of correct argmax predictions), GIL released."""
    cdef const int[::1] labels
    _check_loss(loss_kind)
    plan = _Plan(layout, params.shape[0], max(1, min(chunk_rows, y.shape[0])))
    source = _Rows(X, plan.n_inputs, np.asarray(params).dtype)
    labels = _private_labels(y, source.n_rows, plan.n_outputs)
    if source.n_rows == 0:
        return 0.0, 0
    return _run_inference(plan, params, source, &labels[0], loss_kind, <floating*> NULL)


def loss_and_grad(layout, const floating[::1] params not None, X, const int[::1] y not None, int loss_kind,
                  floating[::1] grad not None, Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS, noise=None):
    """The gradient of the mean data loss over all of X into ``grad``; returns the loss sum.

    With ``noise`` (as train_epoch's), the rows are a training pass's positions 0..n-1.
    """
    cdef floating[::1] inputs, acts, delta_a, delta_b
    cdef const int[::1] labels
    cdef double loss_sum = 0
    cdef Py_ssize_t n_correct = 0
    _check_loss(loss_kind)
    if grad.shape[0] != params.shape[0] or y.shape[0] == 0:
        raise ValueError("grad must match params, and X must not be empty")
    plan = _Plan(layout, params.shape[0], max(1, min(chunk_rows, y.shape[0])), transposed=True)
    source = _Rows(X, plan.n_inputs, np.asarray(params).dtype)
    labels = _private_labels(y, source.n_rows, plan.n_outputs)
    draws = _Draws(noise, plan) if noise is not None else None
    inputs, acts, delta_a, delta_b = plan.workspaces(np.asarray(grad).dtype)
    cdef const floating[::1] weights = params
    cdef floating[::1] gradient = grad
    if plan.relaid:
        weights, gradient = _working_copy(plan, params), _aligned_zeros(plan.n_working, np.asarray(grad).dtype)
    cdef const Layout* net = &(<_Plan> plan).net
    cdef const unsigned char* pixels = _pixels(source)
    cdef const floating* floats = _floats(source, params[0])
    cdef const Noise* drawn = _noise(draws)
    with nogil:
        batch_gradient(net, &weights[0], pixels, floats, _input_scale(grad[0]), &labels[0], NULL, 0,
                       labels.shape[0], loss_kind, &gradient[0], &inputs[0], &acts[0], &delta_a[0], &delta_b[0],
                       drawn, &loss_sum, &n_correct)
        if plan.relaid:
            _relayout(plan, &grad[0], &gradient[0], False)
    return loss_sum
