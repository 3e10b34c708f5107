# cython: language_level=3
# distutils: extra_compile_args = -fno-math-errno
"""nncore's compiled core: a whole training epoch, inference and the full-batch gradient in C.

The callers (nncore.backends.cython_backend) pass arguments that nncore.inputs has already
checked. What is left here are the checks that keep the loops memory-safe whoever calls:
shapes against the layout, and private copies of everything the nogil loops index with (the
layout table, the labels, the sample order), each bounds-checked once, so that another thread
or process changing the caller's arrays meanwhile cannot send an index out of bounds. Then
workspaces are allocated once per call and the GIL is released for the whole loop. The
per-op kernels live in _kernels.pxd, the BLAS shim in _blas.pxd, the network passes in
_network.pxd, the op codes in ops.h. Test and benchmark wrappers of single kernels live in a
module of their own, nncore._testing (src_c/_testing.pyx).

Configuration crosses by name: the optimizer as a mapping of ops.h's nncore_optimizer_config
fields ({"kind": "adam", "lr": ..., ...}) with its state buffers in a list, the loss by its name.

Threads are the package's own (src_c/pool.c): a step's rows are cut into chunks, and runs of
chunks are handed out to the threads as they come for them, each computing its runs' forward,
loss and gradient alone (BLAS at one thread: the caller holds it there). The threads meet
twice a step: when every run's gradient is in, then each adds up the runs' gradients over
pieces of the parameters it takes and applies the update there; and when the update is done.
Waits are passive (pool.h). For a thread count, the cut and the order of the additions are
fixed, so results are the same run to run whichever thread computed what. Inference splits
rows the same way, with one meeting at the end.

Compiled with -fno-math-errno (the distutils comment above): sqrt then needs no errno
branch, so the Adam loop vectorizes (4x faster); nothing here reads errno.
"""
import numpy as np

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from cython cimport floating
from libc.float cimport FLT_MAX
from libc.math cimport isfinite
from libc.string cimport memcpy, memset

cimport _kernels as k
cimport _narrow as narrow
from _counters cimport KEEP_BITS
from _network cimport (Layout, Noise, Pass, Rows, Tally, Workspace, forward_chunk, gather_inputs, loss_chunk,
                       run_gradient, runs_narrow_forward)
from _ops cimport (NNCORE_ACTIVATION_COUNT, NNCORE_LOSS_COUNT, NNCORE_MAX_OPTIMIZER_STATES, NNCORE_OPTIMIZER_COUNT,
                   OptimizerConfig, nncore_activation_names, nncore_activation_reads_input, nncore_loss_names,
                   nncore_optimizer_names, nncore_optimizer_states)

cdef extern from *:
    """
    #ifndef NNCORE_SOURCE_HASH
    #define NNCORE_SOURCE_HASH "unknown"
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
    #if defined(__GNUC__) || defined(__clang__)
    static Py_ssize_t nncore_take(Py_ssize_t* counter) { return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED); }
    #else
    static Py_ssize_t nncore_take(Py_ssize_t* counter) { return (*counter)++; }  /* one thread: pool.c */
    #endif
    """
    const char* NNCORE_SOURCE_HASH
    const int NNCORE_DEBUG_BUILD
    double nncore_seconds() noexcept nogil
    Py_ssize_t nncore_take(Py_ssize_t* counter) noexcept nogil

cdef extern from "pool.h" nogil:
    enum:
        NNCORE_POOL_MAX_THREADS
    ctypedef struct nncore_team:
        pass
    ctypedef void (*nncore_job)(void* context, nncore_team* team, int thread) noexcept nogil
    int nncore_pool_run(int n_threads, nncore_job job, void* context)
    void nncore_team_barrier(nncore_team* team)
    int nncore_team_size(const nncore_team* team)
    int nncore_get_num_threads()
    void nncore_set_num_threads(int n_threads)
    int nncore_pool_workers()
    int nncore_pool_threaded()
    int nncore_pool_spin_microseconds()
    void nncore_pool_set_spin_microseconds(int microseconds)

cdef extern from "Python.h":
    # Without an exception clause: called while the GIL is taken inside a nogil job, whose
    # thread 0 leaves a raised exception set for train_epoch to propagate once the job is done.
    int PyErr_CheckSignals()
    PyObject* PyObject_CallObject(PyObject* callable, PyObject* arguments)
    void Py_XDECREF(PyObject* value)

SOURCE_HASH = NNCORE_SOURCE_HASH.decode("ascii")
DEBUG_BUILD = bool(NNCORE_DEBUG_BUILD)
#: Whether this build runs jobs on several threads (POSIX threads; elsewhere one thread).
THREADED = bool(nncore_pool_threaded())
MAX_THREADS = NNCORE_POOL_MAX_THREADS

#: ops.h's codes by name: {"activation": {...}, "loss": {...}, "optimizer": {...}} and each
#: optimizer's state count. The Python registries hold the same (tests/test_ops.py).
OP_CODES = {
    "activation": {nncore_activation_names[i].decode(): i for i in range(NNCORE_ACTIVATION_COUNT)},
    "loss": {nncore_loss_names[i].decode(): i for i in range(NNCORE_LOSS_COUNT)},
    "optimizer": {nncore_optimizer_names[i].decode(): i for i in range(NNCORE_OPTIMIZER_COUNT)},
}
OPTIMIZER_STATES = {nncore_optimizer_names[i].decode(): nncore_optimizer_states[i] for i in range(NNCORE_OPTIMIZER_COUNT)}
#: The fields of an optimizer's configuration (ops.h's nncore_optimizer_config), read by name.
cdef OptimizerConfig _NO_CONFIG
memset(&_NO_CONFIG, 0, sizeof(OptimizerConfig))
OPTIMIZER_FIELDS = tuple(name for name in _NO_CONFIG if name != "kind")

# Rows the workspaces hold: larger chunks are never made.
DEFAULT_CHUNK_ROWS = 1024
# Layers with at most NARROW_MAX_WIDTH outputs run dW and dA in the narrow kernels (src_c/narrow.c),
# and their forward too up to NARROW_FORWARD_MAX_WIDTH outputs; wider products stay on BLAS. Where the
# two cross (benchmarks/narrow_crossover.py): a narrow forward loses to BLAS past ~12 columns,
# dW and dA past ~24 (float64; float32 ~32). Read when a call starts; tests set them to 0 (all BLAS)
# or large values (all narrow) to hold every path to the reference.
NARROW_MAX_WIDTH = 24
NARROW_FORWARD_MAX_WIDTH = 12
# A step is split over threads only when a thread's share of it is at least this many
# multiply-adds (forward, dW and dA of its rows): below, the two meetings cost more than the
# share saves. Where 1 and 2 threads cross: benchmarks/thread_pool.py (README, Performance).
MIN_THREAD_WORK = 400_000
# A split step cuts its batch into about CHUNKS_PER_THREAD chunks per thread, of at least
# MIN_CHUNK_ROWS rows: more chunks let a thread that runs take a descheduled one's share.
CHUNKS_PER_THREAD = 1
MIN_CHUNK_ROWS = 16
# Run every training team on the calling thread alone, with the cut it would have (a measurement:
# what results identical across thread counts would cost, cutting every step as for N threads;
# benchmarks/thread_pool.py --identity).
SERIAL_TEAMS = False
# Threads add the runs' gradients and apply the update over pieces of this many parameters.
cdef Py_ssize_t UPDATE_PIECE = 16384
# The GIL is re-taken to check for Ctrl-C (and to report progress) after a batch only when this
# long has passed since the last check: re-taking it costs up to the interpreter's switch
# interval (5 ms) when another Python thread is running, more than a whole small batch.
cdef double SIGNAL_CHECK_SECONDS = 0.02
# Batches up to this many rows have their uint8 rows requested a batch ahead (larger ones prefetch
# within the pass: their rows would not stay in cache until their turn).
cdef Py_ssize_t PREFETCH_BATCH_ROWS = 128
INT_MAX = 2 ** 31 - 1


# ---------------------------------------------------------------- threads

def get_num_threads():
    """The threads a call uses when given none: OMP_NUM_THREADS, else the CPUs this process may use."""
    return nncore_get_num_threads()


def set_num_threads(int n_threads):
    """Set the process-wide thread count (threadpoolctl's nncore controller calls this)."""
    if not 1 <= n_threads <= NNCORE_POOL_MAX_THREADS:
        raise ValueError(f"n_threads must be 1..{NNCORE_POOL_MAX_THREADS}, got {n_threads}")
    nncore_set_num_threads(n_threads)


def pool_workers():
    """Worker threads started in this process so far (a forked child starts its own)."""
    return nncore_pool_workers()


def spin_microseconds(microseconds=None):
    """How long a waiting thread spins before it sleeps; sets it when given (benchmarks compare)."""
    if microseconds is not None:
        nncore_pool_set_spin_microseconds(int(microseconds))
    return nncore_pool_spin_microseconds()


cdef int _threads(n_threads) except -1:
    """``n_threads`` as a count (None: the process-wide one), checked."""
    if n_threads is None:
        return nncore_get_num_threads()
    if isinstance(n_threads, bool) or int(n_threads) != n_threads or not 1 <= n_threads <= NNCORE_POOL_MAX_THREADS:
        raise ValueError(f"n_threads must be an integer in 1..{NNCORE_POOL_MAX_THREADS} or None, got {n_threads!r}")
    return int(n_threads)


def _work_per_row(sizes):
    """Multiply-adds of one row's forward, dW and dA through layers ``sizes``."""
    return 3 * sum(a * b for a, b in zip(sizes[:len(sizes) - 1], sizes[1:]))


def step_threads(layout, Py_ssize_t n_params, Py_ssize_t batch_rows, n_threads=None):
    """(threads, chunk rows) of a training step of ``batch_rows`` rows, as train_epoch would cut it."""
    return _step_cut(_Plan(layout, n_params, 1).sizes, max(1, batch_rows), _threads(n_threads))


def _affordable_threads(work):
    """How many threads ``work`` multiply-adds keep busy with MIN_THREAD_WORK each (0: any number)."""
    return work // MIN_THREAD_WORK if MIN_THREAD_WORK > 0 else NNCORE_POOL_MAX_THREADS


cdef tuple _step_cut(sizes, Py_ssize_t batch_rows, int wanted):
    """(threads, chunk rows) for steps of ``batch_rows`` rows: one thread with chunks of up to
    DEFAULT_CHUNK_ROWS, or as many threads as have MIN_THREAD_WORK each, about CHUNKS_PER_THREAD
    chunks apiece. A function of the network, the batch and the thread count asked for only, so
    a thread count gives one result."""
    cdef Py_ssize_t threads = max(1, min(wanted, _affordable_threads(_work_per_row(sizes) * batch_rows)))
    if threads == 1:
        return 1, max(1, min(DEFAULT_CHUNK_ROWS, batch_rows))
    chunk = -(-batch_rows // (threads * CHUNKS_PER_THREAD))
    chunk = max(1, min(DEFAULT_CHUNK_ROWS, batch_rows, max(MIN_CHUNK_ROWS, chunk)))
    chunks = -(-batch_rows // chunk)
    return int(min(threads, chunks)), int(chunk)


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
    cdef object table, act_offsets, kept_offsets, packed_offsets, packed, working_table
    cdef readonly Py_ssize_t acts_size, delta_size, packed_size, n_working
    cdef readonly bint relaid
    cdef readonly object sizes
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
            if not 0 <= activations[l] < NNCORE_ACTIVATION_COUNT:
                raise ValueError(f"layer {l} has an unknown activation code {activations[l]}")
        self.sizes = tuple(sizes)
        act_offsets, kept_offsets, self.acts_size = [], [], 0
        for l, fan_out in enumerate(sizes[1:]):
            act_offsets.append(self.acts_size)
            self.acts_size += chunk_rows * fan_out
        for l, fan_out in enumerate(sizes[1:]):    # an activation whose f' reads its input keeps it
            kept_offsets.append(self.acts_size if nncore_activation_reads_input(activations[l]) else -1)
            self.acts_size += chunk_rows * fan_out if kept_offsets[l] >= 0 else 0
        self.delta_size = chunk_rows * max(sizes[1:n_layers], default=1)
        self.act_offsets = np.array(act_offsets, dtype=np.intp)
        self.kept_offsets = np.array(kept_offsets, dtype=np.intp)
        self._plan_narrow_layers(sizes)
        cdef const Py_ssize_t[::1] table = self.table
        cdef const Py_ssize_t[::1] offsets = self.act_offsets
        cdef const Py_ssize_t[::1] kept = self.kept_offsets
        cdef const Py_ssize_t[::1] packed_offsets = self.packed_offsets
        self.net.n_layers = n_layers
        self.net.sizes = &table[0]
        self.net.w_offsets = &table[n_layers + 1]
        self.net.b_offsets = &table[2 * n_layers + 1]
        self.net.activations = &table[3 * n_layers + 1]
        self.net.act_offsets = &offsets[0]
        self.net.kept_offsets = &kept[0]
        self.net.chunk_rows = chunk_rows
        self.net.packed_offsets = &packed_offsets[0]
        self.net.packed = NULL
        self.net.narrow_forward_width = NARROW_FORWARD_MAX_WIDTH
        self.net.weights_transposed = transposed
        self.net.products_only = False
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

    @property
    def n_inputs(self):
        return self.net.sizes[0]

    @property
    def n_outputs(self):
        return self.net.sizes[self.net.n_layers]


cdef void _pack(_Plan plan, const floating[::1] params):
    """Inference: every narrow layer's W^T, packed once for the whole call (the threads share it)."""
    cdef floating[::1] packed = _aligned_zeros(max(1, plan.packed_size), np.asarray(params).dtype)
    cdef Py_ssize_t l
    plan.packed = np.asarray(packed)
    for l in range(plan.net.n_layers):
        if plan.net.packed_offsets[l] >= 0:
            narrow.pack(&packed[0] + plan.net.packed_offsets[l], &params[0] + plan.net.w_offsets[l],
                        plan.net.sizes[l + 1], plan.net.sizes[l], plan.net.sizes[l + 1])
    plan.net.packed = &packed[0]


cdef class _Workspaces:
    """Each thread's chunk buffers (``Workspace``), made once per call, in the parameters' dtype."""

    cdef Workspace* each
    cdef readonly Py_ssize_t count
    cdef object arrays

    def __init__(self, _Plan plan, dtype, Py_ssize_t count, bint backward=True):
        self.each = <Workspace*> PyMem_Malloc(count * sizeof(Workspace))
        if self.each == NULL:
            raise MemoryError()
        self.count = count
        self.arrays = []
        sizes = [plan.net.chunk_rows * plan.net.sizes[0], plan.acts_size]
        if backward:
            sizes += [plan.delta_size, plan.delta_size]
        memset(self.each, 0, count * sizeof(Workspace))
        for t in range(count):
            buffers = [np.empty(size, dtype=dtype) for size in sizes]
            self.arrays.append(buffers)
            self.each[t].inputs = _address(buffers[0])
            self.each[t].acts = _address(buffers[1])
            if backward:
                self.each[t].delta_a = _address(buffers[2])
                self.each[t].delta_b = _address(buffers[3])

    def __dealloc__(self):
        PyMem_Free(self.each)


cdef void* _address(array) except NULL:
    """Where a C-contiguous, writeable NumPy array's data start (the caller holds the array)."""
    cdef char[::1] view = array.view(np.int8)
    return &view[0]


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


cdef class _Samples:
    """The samples of a call as ``Rows``: X checked against the layout, its buffer held (so it stays
    where it is), private copies of the labels and the order, each index checked once.

    uint8 rows are pixels, scaled by 1/255 while read; float rows must have the parameters' dtype.
    """

    cdef Rows rows
    cdef const unsigned char[:, ::1] pixels
    cdef const float[:, ::1] floats32
    cdef const double[:, ::1] floats64
    cdef const int[::1] labels
    cdef const Py_ssize_t[::1] order
    cdef readonly Py_ssize_t n_rows

    def __init__(self, X, _Plan plan, dtype, y=None, order=None):
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[1] != plan.n_inputs:
            raise ValueError(f"X must be a C-contiguous (n, {plan.n_inputs}) array")
        dtype = np.dtype(dtype)
        self.n_rows = X.shape[0]
        memset(&self.rows, 0, sizeof(Rows))
        # 1/255 rounded once to the parameters' dtype (as nncore.backends.base.input_scale).
        self.rows.scale = float(dtype.type(1.0) / dtype.type(255.0))
        if X.dtype == np.uint8:
            self.pixels = X
            self.rows.pixels = &self.pixels[0, 0] if self.n_rows else NULL
        elif dtype == np.float32:
            self.floats32 = X
            self.rows.floats = &self.floats32[0, 0] if self.n_rows else NULL
        else:
            self.floats64 = X
            self.rows.floats = &self.floats64[0, 0] if self.n_rows else NULL
        if y is not None:
            self.labels = _private_labels(y, self.n_rows, plan.n_outputs)
            self.rows.labels = &self.labels[0] if self.n_rows else NULL
        if order is not None:
            self.order = _private_order(order, self.n_rows)
            self.rows.order = &self.order[0] if self.order.shape[0] else NULL


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


cdef int _loss_code(loss) except -1:
    """The code of the loss called ``loss`` (ops.h's names)."""
    codes = OP_CODES["loss"]
    if loss not in codes:
        raise ValueError(f"unknown loss {loss!r}; the core knows {tuple(codes)}")
    return codes[loss]


cdef class _Optimizer:
    """An optimizer's configuration read by name from ``config`` (ops.h's nncore_optimizer_config
    fields, "kind" a name) and its state buffers, each the size of the parameters, in the kind's order."""

    cdef OptimizerConfig config
    cdef void* states[NNCORE_MAX_OPTIMIZER_STATES]
    cdef readonly object buffers

    def __init__(self, config, states, Py_ssize_t n_params, dtype):
        fields = dict(config)
        kind = fields.pop("kind", None)
        if kind not in OP_CODES["optimizer"]:
            raise ValueError(f"unknown optimizer kind {kind!r}; the core knows {tuple(OP_CODES['optimizer'])}")
        unknown = set(fields) - set(OPTIMIZER_FIELDS)
        if unknown:
            raise ValueError(f"unknown optimizer fields {sorted(unknown)}; the core reads {OPTIMIZER_FIELDS}")
        values = {name: 0 for name in OPTIMIZER_FIELDS}
        values.update(fields)
        values["kind"] = OP_CODES["optimizer"][kind]
        self.config = values    # by name: Cython fills each field of the struct from its key
        states = list(states)
        needed = OPTIMIZER_STATES[kind]
        if len(states) != needed:
            raise ValueError(f"a {kind} optimizer has {needed} state buffer(s), got {len(states)}")
        self.buffers = [np.asarray(state) for state in states]
        for i, state in enumerate(self.buffers):
            if state.shape != (n_params,) or state.dtype != dtype or not state.flags.c_contiguous \
                    or not state.flags.writeable:
                raise ValueError(f"optimizer state {i} must be a writeable, C-contiguous ({n_params},) {dtype} array")
            self.states[i] = _address(state)


# ---------------------------------------------------------------- the epoch: steps split over a team

cdef struct EpochJob:
    Pass run
    void* params                  # the working layout's parameters
    void* grads                   # (runs_per_step, n_working): each run's gradient, run 0's first
    Py_ssize_t n_working
    const OptimizerConfig* opt    # NULL: no update (the full-data gradient, the floor)
    void* states[NNCORE_MAX_OPTIMIZER_STATES]
    Py_ssize_t n_states
    Py_ssize_t n_samples, batch_size
    Py_ssize_t runs_per_step      # how many runs a whole batch is cut into (the grads it has)
    Workspace* workspaces         # one per thread
    Tally* tallies                # one per run
    Py_ssize_t next_run           # handed out to the threads (nncore_take), reset between meetings
    Py_ssize_t next_piece
    bint stop                     # thread 0: stop at the next meeting (Ctrl-C, an error, the end)
    bint failed                   # thread 0 holds a Python exception for the caller
    double* loss_total            # OUT
    Py_ssize_t* progress          # OUT n_batches, n_correct, n_samples, diverged_batch
    PyObject* on_progress
    double last_check


cdef inline void _step_runs(EpochJob* job, Py_ssize_t m, Py_ssize_t run, Py_ssize_t* begin,
                            Py_ssize_t* end) noexcept nogil:
    """Rows [begin, end) of a batch of m rows that run ``run`` computes: whole chunks, in order."""
    cdef Py_ssize_t chunk = job.run.net.chunk_rows
    cdef Py_ssize_t chunks = (m + chunk - 1) // chunk
    cdef Py_ssize_t runs = min(chunks, job.runs_per_step)
    begin[0] = min(m, run * chunks // runs * chunk)
    end[0] = min(m, (run + 1) * chunks // runs * chunk)


cdef inline bint _check_in(EpochJob* job) noexcept nogil:
    """Thread 0, between steps: at most every SIGNAL_CHECK_SECONDS take the GIL for Ctrl-C and the
    progress report. Returns whether to stop (an exception is then set for train_epoch)."""
    cdef double now = nncore_seconds()
    cdef PyObject* result
    if now - job.last_check < SIGNAL_CHECK_SECONDS:
        return False
    job.last_check = now
    with gil:
        if PyErr_CheckSignals() != 0:
            job.failed = True
        elif job.on_progress != NULL:
            result = PyObject_CallObject(job.on_progress, NULL)
            if result == NULL:
                job.failed = True
            Py_XDECREF(result)
    return job.failed


cdef void _epoch_thread(EpochJob* job, nncore_team* team, int thread, floating marker) noexcept nogil:
    """Every step of the epoch, as thread ``thread`` of ``team`` sees it (see the module docstring)."""
    cdef const Pass* run = &job.run
    cdef Workspace* ws = &job.workspaces[thread]
    cdef floating* params = <floating*> job.params
    cdef floating* grads = <floating*> job.grads
    cdef floating* piece_states[NNCORE_MAX_OPTIMIZER_STATES]
    cdef Py_ssize_t start = 0, m, runs, r, i, s, piece, first, last, begin, end, batch_correct
    cdef Py_ssize_t pieces = (job.n_working + UPDATE_PIECE - 1) // UPDATE_PIECE
    cdef Py_ssize_t chunk = run.net.chunk_rows
    cdef double batch_loss
    cdef floating* target
    cdef const floating* source
    while start < job.n_samples:
        m = min(job.batch_size, job.n_samples - start)
        runs = min((m + chunk - 1) // chunk, job.runs_per_step)
        if thread == 0:
            job.next_piece = 0    # nobody is past this step's first meeting yet
            if (run.rows.pixels != NULL and run.rows.order != NULL and job.batch_size <= PREFETCH_BATCH_ROWS
                    and start + m < job.n_samples):
                # The next batch's shuffled rows miss every cache: ask for them while this one computes.
                k.prefetch_rows(run.rows.pixels, run.net.sizes[0], run.rows.order, start + m,
                                min(job.batch_size, job.n_samples - start - m))
        # Meeting 1 ends this: every run's gradient, each run taken by whichever thread comes for it.
        r = nncore_take(&job.next_run) if not job.stop else runs    # thread 0 stops the job: nothing to take
        while r < runs:
            _step_runs(job, m, r, &begin, &end)
            job.tallies[r].loss = 0
            job.tallies[r].correct = 0
            run_gradient(run, params, start, m, begin, end, grads + r * job.n_working, ws, &job.tallies[r])
            r = nncore_take(&job.next_run)
        nncore_team_barrier(team)
        if job.stop:
            return
        batch_loss = 0
        batch_correct = 0
        for r in range(runs):    # in run order, whoever computed them: one result for a thread count
            batch_loss += job.tallies[r].loss
            batch_correct += job.tallies[r].correct
        # The NumPy backend sums the batch's losses in the parameters' dtype: a float32 sum
        # beyond FLT_MAX is inf there, so it counts as divergence here too.
        if job.opt != NULL and (not isfinite(batch_loss) or (floating is float and (batch_loss > FLT_MAX or
                                                                                     batch_loss < -FLT_MAX))):
            if thread == 0:
                job.progress[3] = job.progress[0] + 1
            return    # every thread sees the same sum and leaves here
        if thread == 0:
            job.next_run = 0    # everyone is past taking runs
        # Meeting 2 ends this: the runs' gradients added up into run 0's, and the update, piece by piece.
        piece = nncore_take(&job.next_piece)
        while piece < pieces:
            first = piece * UPDATE_PIECE
            last = min(job.n_working, first + UPDATE_PIECE)
            target = grads + first
            for r in range(1, runs):
                source = grads + r * job.n_working + first
                for i in range(last - first):
                    target[i] = target[i] + source[i]
            if job.opt != NULL:
                for s in range(job.n_states):
                    piece_states[s] = <floating*> job.states[s] + first
                k.apply_update(job.opt, params + first, target, piece_states, last - first,
                               job.opt.steps_taken + job.progress[0] + 1)
            piece = nncore_take(&job.next_piece)
        nncore_team_barrier(team)
        if thread == 0:
            job.loss_total[0] += batch_loss
            job.progress[0] += 1
            job.progress[1] += batch_correct
            job.progress[2] += m
            job.stop = _check_in(job)    # read by all after the next step's first meeting
        start += m


cdef void _epoch_job_f32(void* context, nncore_team* team, int thread) noexcept nogil:
    _epoch_thread(<EpochJob*> context, team, thread, <float> 0)


cdef void _epoch_job_f64(void* context, nncore_team* team, int thread) noexcept nogil:
    _epoch_thread(<EpochJob*> context, team, thread, <double> 0)


cdef int _raise_pending() except -1:
    """Propagate the exception thread 0 left set (Ctrl-C, or what on_progress raised)."""
    return -1


cdef class _Epoch:
    """A job's buffers: the runs' gradients, the tallies, the workspaces, and the job itself."""

    cdef EpochJob job
    cdef Tally* tallies
    cdef object held

    def __cinit__(self):
        self.tallies = NULL

    def __dealloc__(self):
        PyMem_Free(self.tallies)

    def __init__(self, _Plan plan, _Samples samples, _Draws draws, int loss_code, _Optimizer optimizer,
                 Py_ssize_t batch_size, Py_ssize_t n_samples, int threads, Py_ssize_t runs_per_step, dtype):
        memset(&self.job, 0, sizeof(EpochJob))
        self.tallies = <Tally*> PyMem_Malloc(runs_per_step * sizeof(Tally))
        if self.tallies == NULL:
            raise MemoryError()
        grads = _aligned_zeros(runs_per_step * plan.n_working, dtype)
        workspaces = _Workspaces(plan, dtype, threads)
        self.held = [plan, samples, draws, optimizer, grads, workspaces]
        self.job.run.net = &plan.net
        self.job.run.rows = &samples.rows
        self.job.run.noise = _noise(draws)
        self.job.run.loss_kind = loss_code
        self.job.grads = _address(grads)
        self.job.n_working = plan.n_working
        self.job.opt = &optimizer.config if optimizer is not None else NULL
        if optimizer is not None:
            self.job.n_states = len(optimizer.buffers)
            for s in range(self.job.n_states):
                self.job.states[s] = optimizer.states[s]
        self.job.n_samples = n_samples
        self.job.batch_size = batch_size
        self.job.runs_per_step = runs_per_step
        self.job.workspaces = workspaces.each
        self.job.tallies = self.tallies

    cdef int run(self, void* params, int threads, bint double_precision, double* loss_total,
                 Py_ssize_t* progress, on_progress) except -1:
        """The job on ``threads`` threads, GIL released; a Python exception thread 0 met propagates."""
        self.job.params = params
        self.job.loss_total = loss_total
        self.job.progress = progress
        self.job.on_progress = <PyObject*> on_progress if on_progress is not None else NULL
        self.job.last_check = nncore_seconds()
        if SERIAL_TEAMS:
            threads = 1
        with nogil:
            nncore_pool_run(threads, _epoch_job_f64 if double_precision else _epoch_job_f32, &self.job)
        if self.job.failed:
            _raise_pending()
        return 0

    @property
    def gradient(self):
        """Run 0's gradient: after a job without an update, the whole batch's."""
        return self.held[4][:self.job.n_working]


def train_epoch(layout, floating[::1] params not None, X, const int[::1] y not None,
                const Py_ssize_t[::1] order not None, *, Py_ssize_t batch_size, str loss, optimizer, states,
                double[::1] loss_total not None, Py_ssize_t[::1] progress not None,
                Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS, noise=None, on_progress=None, n_threads=None,
                bint products_only=False):
    """One epoch in one call, GIL released; samples in ``order``, ``batch_size`` at a time.

    ``loss`` is a loss's name (ops.h). ``optimizer`` maps ops.h's optimizer fields by name
    ({"kind": "adam", "lr": ..., "beta1": ..., "steps_taken": ...}: the fields a kind does not
    read may be left out) and ``states`` lists its state buffers in the kind's order, each like
    ``params``. ``noise`` (nncore.counters.noise_table, or None) turns on dropout and input
    shifts, drawn for each row from the table's seed and the row's position in ``order``.
    ``n_threads`` (None: get_num_threads()) is how many threads a step may use; a step too small
    to pay for the meetings uses one (``step_threads``).

    ``progress`` (n_batches, n_correct, n_samples, diverged_batch or 0) and ``loss_total`` are
    updated after every applied batch, so they are right even when a KeyboardInterrupt
    propagates out of here; the caller advances its optimizer's step by progress[0].
    ``on_progress`` (a callable taking no arguments, or None) is called between batches at most
    every 20 ms, when ``progress`` and ``loss_total`` are current; an exception it raises
    propagates as a KeyboardInterrupt does.

    ``products_only``: the benchmark's floor, the same steps with the products alone (no loss,
    no element-wise work, no update: _network.pxd).
    """
    cdef Py_ssize_t n_samples = order.shape[0]
    cdef int wanted = _threads(n_threads)
    cdef int threads
    if on_progress is not None and not callable(on_progress):
        raise TypeError(f"on_progress must be callable or None, got {type(on_progress).__name__}")
    if loss_total.shape[0] < 1 or progress.shape[0] < 4 or batch_size < 1 or chunk_rows < 1:
        raise ValueError("progress or sizes do not fit")
    dtype = np.asarray(params).dtype
    cdef int loss_code = _loss_code(loss)
    sizes = _Plan(layout, params.shape[0], 1).sizes
    threads, chunk = _step_cut(sizes, max(1, min(batch_size, n_samples)), wanted)
    chunk = min(chunk, chunk_rows)
    plan = _Plan(layout, params.shape[0], chunk, transposed=True)
    plan.net.products_only = products_only
    samples = _Samples(X, plan, dtype, y, order)
    draws = _Draws(noise, plan) if noise is not None else None
    settings = _Optimizer(optimizer, states, params.shape[0], dtype)
    if n_samples == 0:
        return
    runs_per_step = threads * CHUNKS_PER_THREAD if threads > 1 else 1
    # The parameters and the optimizer state in training's layout for the call; copied back
    # whatever ends it (the batches applied before a Ctrl-C or a divergence are kept).
    cdef floating[::1] weights = params
    working = settings
    if plan.relaid:
        weights = _working_copy(plan, params)
        working = _Optimizer(optimizer, [_working_state(plan, state, params[0]) for state in settings.buffers],
                             plan.n_working, dtype)
    cdef _Epoch epoch = _Epoch(plan, samples, draws, loss_code, None if products_only else working, batch_size,
                               n_samples, threads, runs_per_step, dtype)
    try:
        epoch.run(&weights[0], threads, floating is double, &loss_total[0], &progress[0], on_progress)
    finally:
        if plan.relaid:
            _relayout(plan, &params[0], &weights[0], False)
            for state, working_state in zip(settings.buffers, working.buffers):
                _copy_back(plan, state, working_state, params[0])


cdef object _working_state(_Plan plan, state, floating marker):
    """An optimizer state in the working layout: a new buffer."""
    cdef floating[::1] flat = state
    return np.asarray(_working_copy(plan, flat))


cdef void _copy_back(_Plan plan, state, working_state, floating marker):
    """An optimizer state from the working layout back into the caller's buffer."""
    cdef floating[::1] flat = state
    cdef floating[::1] working = working_state
    _relayout(plan, &flat[0], &working[0], False)


def loss_and_grad(layout, const floating[::1] params not None, X, const int[::1] y not None, str loss,
                  floating[::1] grad not None, Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS, noise=None, n_threads=None):
    """The gradient of the mean data loss over all of X into ``grad``; returns the loss sum.

    With ``noise`` (as train_epoch's), the rows are a training pass's positions 0..n-1.
    """
    cdef int loss_code = _loss_code(loss)
    cdef int wanted = _threads(n_threads)
    cdef int threads
    cdef double loss_sum = 0
    cdef Py_ssize_t[::1] progress = np.zeros(4, dtype=np.intp)
    if grad.shape[0] != params.shape[0] or y.shape[0] == 0:
        raise ValueError("grad must match params, and X must not be empty")
    dtype = np.asarray(params).dtype
    sizes = _Plan(layout, params.shape[0], 1).sizes
    threads, chunk = _step_cut(sizes, y.shape[0], wanted)
    plan = _Plan(layout, params.shape[0], min(chunk, chunk_rows), transposed=True)
    samples = _Samples(X, plan, dtype, y)
    draws = _Draws(noise, plan) if noise is not None else None
    weights = _working_copy(plan, params) if plan.relaid else np.asarray(params).copy()
    cdef floating[::1] working = weights
    cdef _Epoch epoch = _Epoch(plan, samples, draws, loss_code, None, y.shape[0], y.shape[0], threads,
                               threads * CHUNKS_PER_THREAD if threads > 1 else 1, dtype)
    epoch.run(&working[0], threads, floating is double, &loss_sum, &progress[0], None)
    cdef floating[::1] gradient = epoch.gradient
    if plan.relaid:
        _relayout(plan, &grad[0], &gradient[0], False)
    else:
        grad[:] = gradient
    return loss_sum


# ---------------------------------------------------------------- inference: rows split over a team

cdef struct InferenceJob:
    Pass run
    const void* params
    void* out                     # (n_rows, n_out) probabilities, or NULL: losses
    Py_ssize_t n_rows
    Workspace* workspaces         # one per thread
    Tally* tallies                # one per chunk
    Py_ssize_t next_chunk


cdef void _inference_thread(InferenceJob* job, nncore_team* team, int thread, floating marker) noexcept nogil:
    """Forward chunk by chunk, each taken as it comes: probabilities into ``out``, or each chunk's
    loss sum and correct count into its tally (added up in chunk order by the caller)."""
    cdef const Layout* net = job.run.net
    cdef Workspace* ws = &job.workspaces[thread]
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[net.n_layers]
    cdef Py_ssize_t c, start, count, i, argmax
    cdef const floating* inputs
    cdef floating* logits = <floating*> ws.acts + net.act_offsets[net.n_layers - 1]
    c = nncore_take(&job.next_chunk)
    while c * net.chunk_rows < job.n_rows:
        start = c * net.chunk_rows
        count = min(net.chunk_rows, job.n_rows - start)
        if job.run.rows.pixels != NULL and runs_narrow_forward(net, 0):
            inputs = NULL
        elif job.run.rows.pixels != NULL:
            gather_inputs(&job.run, start, count, <floating*> ws.inputs)
            inputs = <floating*> ws.inputs
        else:
            inputs = <const floating*> job.run.rows.floats + start * n_in    # contiguous rows: no copy
        forward_chunk(&job.run, <const floating*> job.params, start, count, inputs, ws)
        if job.out != NULL:
            for i in range(count):
                k.softmax_forward(logits + i * n_out, n_out, &argmax)
            memcpy(<floating*> job.out + start * n_out, logits, count * n_out * sizeof(floating))
        else:
            job.tallies[c].loss = 0
            job.tallies[c].correct = 0
            loss_chunk(&job.run, logits, start, count, 1, &job.tallies[c])
        c = nncore_take(&job.next_chunk)


cdef void _inference_job_f32(void* context, nncore_team* team, int thread) noexcept nogil:
    _inference_thread(<InferenceJob*> context, team, thread, <float> 0)


cdef void _inference_job_f64(void* context, nncore_team* team, int thread) noexcept nogil:
    _inference_thread(<InferenceJob*> context, team, thread, <double> 0)


cdef tuple _run_inference(layout, const floating[::1] params, X, y, str loss, Py_ssize_t chunk_rows, n_threads,
                          floating* out):
    """Forward over X on a team: probabilities into ``out`` (y None), or (loss sum, correct count)."""
    cdef InferenceJob job
    cdef Tally* tallies = NULL
    cdef int wanted = _threads(n_threads)
    dtype = np.asarray(params).dtype
    plan = _Plan(layout, params.shape[0], max(1, chunk_rows))
    samples = _Samples(X, plan, dtype, y)
    cdef Py_ssize_t n_rows = samples.n_rows
    if out == NULL and (y is None or len(y) != n_rows):
        raise ValueError("evaluate needs one label per row")
    if n_rows == 0:
        return 0.0, 0
    cdef Py_ssize_t chunks = (n_rows + plan.net.chunk_rows - 1) // plan.net.chunk_rows
    cdef int threads = max(1, min(wanted, chunks, _affordable_threads(_work_per_row(plan.sizes) // 3 * n_rows)))
    _pack(plan, params)
    workspaces = _Workspaces(plan, dtype, threads, backward=False)
    memset(&job, 0, sizeof(InferenceJob))
    job.run.net = &plan.net
    job.run.rows = &samples.rows
    job.run.loss_kind = _loss_code(loss) if out == NULL else 0
    job.params = &params[0]
    job.out = out
    job.n_rows = n_rows
    job.workspaces = workspaces.each
    tallies = <Tally*> PyMem_Malloc(chunks * sizeof(Tally))
    if tallies == NULL:
        raise MemoryError()
    job.tallies = tallies
    cdef double loss_sum = 0
    cdef Py_ssize_t n_correct = 0, c
    try:
        with nogil:
            nncore_pool_run(threads, _inference_job_f64 if floating is double else _inference_job_f32, &job)
        if out == NULL:
            for c in range(chunks):    # in chunk order: one result for any thread count
                loss_sum += tallies[c].loss
                n_correct += tallies[c].correct
    finally:
        PyMem_Free(tallies)
    return loss_sum, n_correct


def forward(layout, const floating[::1] params not None, X, floating[:, ::1] out not None,
            Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS, n_threads=None):
    """Class probabilities of every row of X into ``out`` (n_samples, n_out), GIL released."""
    plan = _Plan(layout, params.shape[0], 1)
    # X is a Python object: with boundscheck off, X.shape[0] of a 0-d array would read past the tuple.
    if not isinstance(X, np.ndarray) or X.ndim != 2 or out.shape[0] != X.shape[0] or out.shape[1] != plan.n_outputs:
        raise ValueError("X must be (n_samples, n_inputs) and out (n_samples, n_outputs)")
    if out.shape[0]:
        _run_inference(layout, params, X, None, "cross_entropy", max(1, min(chunk_rows, out.shape[0])), n_threads,
                       &out[0, 0])


def evaluate(layout, const floating[::1] params not None, X, const int[::1] y not None, str loss,
             Py_ssize_t chunk_rows=DEFAULT_CHUNK_ROWS, n_threads=None):
    """(sum of per-sample losses, number of correct argmax predictions), GIL released."""
    _loss_code(loss)
    return _run_inference(layout, params, X, y, loss, max(1, min(chunk_rows, y.shape[0])), n_threads,
                          <floating*> NULL)
