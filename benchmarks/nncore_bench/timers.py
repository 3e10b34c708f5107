"""Timers: the BLAS's own rate per gemm shape, the epoch's gemm floor, and interleaved rounds of candidates.

Everything is timed in ONE process, candidates interleaved round-robin after a warm-up so
that machine drift (timings swing up to 1.5x between processes on shared machines) hits
them all alike; every figure is a median over the rounds, or, for floors, the fastest loop.
"""
import math
import statistics
import time

import numpy as np
# Loaded now, before any threadpool_limits: a BLAS loaded inside the limit would escape it.
import scipy.linalg.blas as scipy_blas
import scipy.linalg.cython_blas  # noqa: F401 - SciPy's BLAS, the library the compiled core calls

from .candidates import he_init
from .flops import GemmCall, epoch_gemm_calls

PEAK_SIZE = 2048
N_SAMPLES = 60_000


def _operand_key(call):
    return (call.trans_a, call.trans_b, call.M, call.N, call.K)


class GemmTimer:
    """Times single gemm calls through SciPy's BLAS (the library the compiled core links).

    Operands are Fortran-ordered so the f2py wrapper passes them straight through (no copies)
    with the same transposes and leading dimensions the core uses. The wrapper's own cost per
    call, measured on a 1x1x1 product, is subtracted, so small shapes are not charged for
    Python (the compiled core calls BLAS from C).
    """

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)
        self.gemm = scipy_blas.sgemm if self.dtype == np.float32 else scipy_blas.dgemm
        self._operands = {}
        self.call_overhead = self.call_overhead_cpu = 0.0
        self.call_overhead, self.call_overhead_cpu = self._loop_timing(GemmCall("probe", 0, "n", "n", 1, 1, 1),
                                                                       min_seconds=0.002)
        self.last_cpu_seconds = None

    def _arrays(self, call):
        key = _operand_key(call)
        if key not in self._operands:
            rng = np.random.default_rng(0)
            a_shape = (call.M, call.K) if call.trans_a == "n" else (call.K, call.M)
            b_shape = (call.K, call.N) if call.trans_b == "n" else (call.N, call.K)
            a = np.asfortranarray(rng.random(a_shape, dtype=np.float64).astype(self.dtype) - 0.5)
            b = np.asfortranarray(rng.random(b_shape, dtype=np.float64).astype(self.dtype) - 0.5)
            c = np.zeros((call.M, call.N), dtype=self.dtype, order="F")
            self._operands[key] = (a, b, c, int(call.trans_a == "t"), int(call.trans_b == "t"))
        return self._operands[key]

    def _loop_timing(self, call, min_seconds=0.004, loops=3):
        """(wall, CPU) seconds per call: the fastest of ``loops`` timed loops of at least ``min_seconds``.

        The fastest, not the median: this is a floor, and on a shared machine a loop that a
        scheduler tick interrupted only adds time.
        """
        a, b, c, ta, tb = self._arrays(call)
        gemm = self.gemm
        gemm(1.0, a, b, 0.0, c, ta, tb, 1)
        start = time.perf_counter()
        gemm(1.0, a, b, 0.0, c, ta, tb, 1)
        single = time.perf_counter() - start
        n_calls = max(1, min(2000, int(min_seconds / max(single, 1e-7))))
        wall, cpu = [], []
        for _ in range(loops):
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(n_calls):
                gemm(1.0, a, b, 0.0, c, ta, tb, 1)
            wall.append((time.perf_counter() - start) / n_calls)
            cpu.append((time.process_time() - cpu_start) / n_calls)
        return max(min(wall) - self.call_overhead, 1e-9), max(min(cpu) - self.call_overhead_cpu, 1e-9)

    def call_seconds(self, call):
        """Seconds one call of this shape takes, wrapper overhead removed."""
        return self._loop_timing(call)[0]

    def epoch_floor(self, layer_sizes, n_samples, batch_size):
        """(seconds, {kind: seconds}): the epoch's products at this machine's measured rate per shape.

        The CPU-time twin of the sum is left in ``last_cpu_seconds``.
        """
        by_kind, cpu = {}, 0.0
        for call, count in epoch_gemm_calls(layer_sizes, n_samples, batch_size):
            wall_per_call, cpu_per_call = self._loop_timing(call)
            by_kind[call.kind] = by_kind.get(call.kind, 0.0) + count * wall_per_call
            cpu += count * cpu_per_call
        self.last_cpu_seconds = cpu
        return sum(by_kind.values()), by_kind

    def peak_gflops(self, size=PEAK_SIZE, repeats=4):
        """(wall, CPU) best GFLOP/s of a size x size x size product: the machine's reference peak.

        The CPU-time rate counts only the time the process ran, so at one thread it is the
        rate of an uncontended core even when other processes share the machine.
        """
        call = GemmCall("peak", 0, "n", "n", size, size, size)
        a, b, c, ta, tb = self._arrays(call)
        self.gemm(1.0, a, b, 0.0, c, ta, tb, 1)
        best, best_cpu = math.inf, math.inf
        for _ in range(repeats):
            start, cpu_start = time.perf_counter(), time.process_time()
            self.gemm(1.0, a, b, 0.0, c, ta, tb, 1)
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - cpu_start)
        del self._operands[_operand_key(call)]  # 2048^2 operands are 16-32 MB each: free them
        return call.flops / best / 1e9, call.flops / max(best_cpu, 1e-9) / 1e9


class FloorCandidate:
    """The gemm floor as one more round-robin entry, so it is measured under the same drift.

    Besides the per-shape sum (``GemmTimer.epoch_floor``), it times the compiled core's own
    products when the core is built: ``nncore._core.train_epoch(products_only=True)`` on one
    thread, the epoch's very calls (BLAS and narrow kernels, in the core's layout, order and
    chunking) with everything else left out, so the floor cannot drift from the core.
    """

    def __init__(self, timer, layer_sizes, n_samples, batch_size, core=None):
        self.timer, self.args = timer, (layer_sizes, n_samples, batch_size)
        self.by_kind, self.sequence, self.cpu = [], [], []
        self.core = core  # nncore._core or None
        if core is not None:
            rng = np.random.default_rng(0)
            self.network = _network(layer_sizes, timer.dtype)
            self.params = he_init(layer_sizes, timer.dtype)
            self.X = rng.integers(0, 256, (n_samples, layer_sizes[0]), dtype=np.uint8)
            self.y = rng.integers(0, layer_sizes[-1], n_samples).astype(np.int32)

    def measure(self):
        seconds, by_kind = self.timer.epoch_floor(*self.args)
        self.by_kind.append(by_kind)
        self.cpu.append(self.timer.last_cpu_seconds)
        if self.core is not None:
            self.sequence.append(self._core_products())
        return seconds

    def _core_products(self):
        _, n_samples, batch_size = self.args
        order = np.random.default_rng(1).permutation(n_samples).astype(np.intp)
        began = time.perf_counter()
        self.core.train_epoch(self.network.table, self.params, self.X, self.y, order,
                              batch_size=batch_size or n_samples, loss="cross_entropy", optimizer={"kind": "sgd"},
                              states=[np.zeros_like(self.params)], loss_total=np.zeros(1),
                              progress=np.zeros(4, np.intp), products_only=True, n_threads=1)
        return time.perf_counter() - began


def _network(layer_sizes, dtype):
    from nncore.network import Network
    return Network(layer_sizes, "relu", dtype)


# A pause before each timed run: the previous candidate's BLAS worker threads busy-wait for about
# 0.1 s after their last call (OpenBLAS's thread timeout) before they sleep. Timed inside that
# window, a candidate running threads of its own shares the cores with them (measured: the
# compiled full batch at 2 threads took 1.3x its 1-thread time right after NumPy's turn).
SETTLE_SECONDS = 0.25


def time_round_robin(runners, repeats, warm_up_rows, budget_seconds, floor=None, n_rows=N_SAMPLES,
                     max_epoch_seconds=math.inf):
    """Warm each runner up, then time them in turn for up to ``repeats`` rounds; medians.

    A runner whose warm-up (on ``warm_up_rows`` of ``n_rows``) predicts more than
    ``max_epoch_seconds`` per epoch is left out of the cell (say, PyTorch's OpenMP threads on
    a machine whose other processes hold the cores). Rounds stop early (never before two, when one fits the budget) once ``budget_seconds``
    is spent, so slow cells get fewer repeats. Returns ({name: median seconds},
    {name: [seconds...], "cpu_seconds": {name: median process CPU seconds}}, floor median or None,
    rounds done). CPU seconds include busy-waiting BLAS/OpenMP threads; at 1 thread they are a
    cross-check that does not count time the process spent descheduled on a busy machine.
    """
    skipped = {}
    for name, runner in list(runners.items()):
        start = time.perf_counter()
        runner.warm_up(warm_up_rows)
        estimate = (time.perf_counter() - start) * n_rows / max(warm_up_rows, 1)
        if estimate > max_epoch_seconds:
            skipped[name] = f"skipped: warm-up predicts {estimate:.0f} s per epoch (limit {max_epoch_seconds:.0f} s)"
            del runners[name]
    samples = {name: [] for name in runners}
    cpu_samples = {name: [] for name in runners}
    floors = []
    spent, rounds = 0.0, 0
    while rounds < repeats:
        round_start = time.perf_counter()
        for name, runner in runners.items():
            time.sleep(SETTLE_SECONDS)
            start, cpu_start = time.perf_counter(), time.process_time()
            runner.run()
            samples[name].append(time.perf_counter() - start)
            cpu_samples[name].append(time.process_time() - cpu_start)
        if floor is not None:
            floors.append(floor.measure())
        for name in [name for name, values in samples.items() if name in runners and values[-1] > max_epoch_seconds]:
            skipped[name] = f"timed once only: {samples[name][-1]:.0f} s per epoch (limit {max_epoch_seconds:.0f} s)"
            del runners[name]
        rounds += 1
        round_seconds = time.perf_counter() - round_start
        spent += round_seconds
        if rounds >= 2 and spent + round_seconds > budget_seconds:
            break
        if rounds == 1 and round_seconds * 2 > budget_seconds * 1.5:
            break
    medians = {name: statistics.median(values) for name, values in samples.items()}
    samples["cpu_seconds"] = {name: statistics.median(values) for name, values in cpu_samples.items()}
    samples["skipped"] = skipped
    return medians, samples, (statistics.median(floors) if floors else None), rounds
