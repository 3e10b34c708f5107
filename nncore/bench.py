"""The benchmark behind ``nncore bench``: compiled core vs NumPy reference vs PyTorch, and the gemm floor.

What it measures, in ONE process, candidates interleaved round-robin after a warm-up so that
machine drift (timings swing up to 1.5x between processes here) hits them all alike; every
figure is a median over the rounds:

* seconds per ``train_epoch`` (SGD, cross-entropy) for the compiled and the NumPy backend, and
  for the same network in PyTorch CPU when it is installed, over a grid of networks, batch
  sizes and dtypes, at each requested BLAS thread count;
* the epoch's *gemm floor*: the time this machine's BLAS (SciPy's, the one the compiled core
  calls) needs for exactly the matrix products of an epoch, shape by shape, nothing else;
* forward-only inference (images/s);
* the machine's sgemm/dgemm rate on 2048 x 2048 matrices, the peak the achieved GFLOP/s are
  quoted against.

Results go to ``<out>/bench-<mode>.json`` and ``.md``. ``--blas-compare`` reruns the same grid
in a child process with ``OPENBLAS_CORETYPE`` removed from its environment, so the cost of a
forced (older) OpenBLAS kernel type shows next to the figures as configured.
"""
import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
# Loaded now, before any threadpool_limits: a BLAS loaded inside the limit would escape it.
import scipy.linalg.blas as scipy_blas
import scipy.linalg.cython_blas  # noqa: F401 - SciPy's BLAS, the library the compiled core calls

from .losses import get_loss
from .network import Network
from .optim import SGD

DEFAULT_OUT = Path("benchmarks") / "results"
FULL_NETWORKS = ((784, 10, 10), (784, 128, 10), (784, 512, 256, 10))
FULL_BATCH_SIZES = (32, 128, 1024, None)  # None: one full batch
FULL_DTYPES = ("float32", "float64")
QUICK_CELLS = (((784, 10, 10), 32, "float32"), ((784, 128, 10), 128, "float32"))
INFERENCE_BATCH = 1024
LEARNING_RATE = 0.01  # small enough that no epoch diverges (a diverged epoch stops early)
N_SAMPLES = 60_000
N_FEATURES = 784
PEAK_SIZE = 2048
CANDIDATES = ("compiled", "numpy", "torch")


# ---------------------------------------------------------------- the gemm floor arithmetic

@dataclass(frozen=True)
class GemmCall:
    """One column-major BLAS call C(M, N) = op(A)(M, K) . op(B)(K, N), as the core issues it.

    Row-major products are computed as their column-major transposes (ARCHITECTURE.md):
    forward Z = A.W is gemm('n','n', fan_out, m, fan_in); dW = A^T.dZ is
    gemm('n','t', fan_out, fan_in, m); dX = dZ.W^T is gemm('t','n', fan_in, m, fan_out).
    """

    kind: str  # "forward", "dW" or "dX"
    layer: int
    trans_a: str
    trans_b: str
    M: int
    N: int
    K: int

    @property
    def flops(self):
        return 2 * self.M * self.N * self.K


def batch_gemm_calls(layer_sizes, m):
    """The gemm calls of one training step on a batch of m rows: forward, dW per layer, dX past the first."""
    calls = []
    pairs = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    for layer, (fan_in, fan_out) in enumerate(pairs):
        calls.append(GemmCall("forward", layer, "n", "n", fan_out, m, fan_in))
    for layer, (fan_in, fan_out) in reversed(list(enumerate(pairs))):
        calls.append(GemmCall("dW", layer, "n", "t", fan_out, fan_in, m))
        if layer > 0:
            calls.append(GemmCall("dX", layer, "t", "n", fan_in, m, fan_out))
    return calls


def batch_sizes_of_epoch(n_samples, batch_size):
    """{batch rows: how many batches of that size} for one epoch; the last batch may be partial."""
    batch_size = n_samples if batch_size is None else min(batch_size, n_samples)
    full, rest = divmod(n_samples, batch_size)
    counts = {batch_size: full} if full else {}
    if rest:
        counts[rest] = counts.get(rest, 0) + 1
    return counts


def epoch_gemm_calls(layer_sizes, n_samples, batch_size):
    """[(GemmCall, count)] for one training epoch, last partial batch included."""
    return [(call, count) for m, count in batch_sizes_of_epoch(n_samples, batch_size).items()
            for call in batch_gemm_calls(layer_sizes, m)]


def epoch_flops(layer_sizes, n_samples, batch_size):
    """Floating-point operations of an epoch's matrix products (2 M N K per gemm)."""
    return sum(call.flops * count for call, count in epoch_gemm_calls(layer_sizes, n_samples, batch_size))


def forward_flops(layer_sizes, n_samples):
    """Floating-point operations of the forward products over n_samples (inference)."""
    return sum(2 * n_samples * fan_in * fan_out for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]))


# ---------------------------------------------------------------- timing the BLAS itself

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


# ---------------------------------------------------------------- the candidates

def he_init(layer_sizes, dtype, seed=0):
    """A flat parameter buffer with He-normal weights and zero biases."""
    return Network(layer_sizes, dtype=dtype).initial_params(seed, ("he",) * (len(layer_sizes) - 1))


class BackendTrainer:
    """One epoch of an nncore backend (``train_epoch``), with its own parameters and optimizer."""

    def __init__(self, backend, layer_sizes, dtype, X, y, batch_size):
        self.backend, self.network, self.X = backend, Network(layer_sizes, dtype=dtype), X
        self.y, self.batch_size = np.ascontiguousarray(y, dtype=np.int32), batch_size
        self.params = he_init(layer_sizes, dtype)
        self.optimizer = SGD(lr=LEARNING_RATE)
        self.optimizer.ensure_state(self.network.n_params, self.network.dtype)
        self.epoch = 0

    def run(self, X=None, y=None):
        X = self.X if X is None else X
        y = self.y if y is None else y
        result = self.backend.train_epoch(self.network, self.params, self.optimizer, X, y,
                                          self.batch_size or len(X), self.epoch, get_loss("cross_entropy"))
        self.epoch += 1
        if result.diverged_batch is not None:
            raise RuntimeError(f"{self.backend.name} diverged at batch {result.diverged_batch}: timing is void")
        return result

    def warm_up(self, n_rows):
        self.run(self.X[:n_rows], self.y[:n_rows])


class BackendInference:
    """Forward-only probabilities over X with an nncore backend."""

    def __init__(self, backend, layer_sizes, dtype, X, batch_size):
        self.backend, self.network, self.X, self.batch_size = backend, Network(layer_sizes, dtype=dtype), X, batch_size
        self.params = he_init(layer_sizes, dtype)

    def run(self, X=None):
        return self.backend.forward(self.network, self.params, self.X if X is None else X, self.batch_size)

    def warm_up(self, n_rows):
        self.run(self.X[:n_rows])


class TorchTrainer:
    """The same network in PyTorch CPU: a typical loop, uint8 images scaled per batch like ours."""

    def __init__(self, torch, layer_sizes, dtype, X, y, batch_size, threads):
        self.torch, self.threads = torch, threads
        self.torch_dtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
        layers = []
        for fan_in, fan_out in zip(layer_sizes[:-1], layer_sizes[1:]):
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1]).to(self.torch_dtype)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.X = torch.from_numpy(X)  # uint8, shared with NumPy: no copy
        self.y = torch.from_numpy(y.astype(np.int64))
        self.batch_size = len(X) if batch_size is None else batch_size
        self.scale = 1.0 / 255.0
        self.epoch = 0

    def run(self, n_rows=None):
        torch = self.torch
        torch.set_num_threads(self.threads)
        n = len(self.X) if n_rows is None else n_rows
        generator = torch.Generator().manual_seed(self.epoch)
        order = torch.randperm(n, generator=generator)
        loss_sum, n_correct = 0.0, 0
        self.model.train()
        for start in range(0, n, self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = self.X[rows].to(self.torch_dtype).mul_(self.scale)
            labels = self.y[rows]
            logits = self.model(batch)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.item() * len(rows)
            n_correct += int((logits.argmax(dim=1) == labels).sum())
        self.epoch += 1
        return loss_sum, n_correct

    def warm_up(self, n_rows):
        self.run(n_rows)


class TorchInference:
    def __init__(self, torch, layer_sizes, dtype, X, batch_size, threads):
        self.trainer = TorchTrainer(torch, layer_sizes, dtype, X, np.zeros(len(X), np.int64), batch_size, threads)

    def run(self, n_rows=None):
        trainer, torch = self.trainer, self.trainer.torch
        torch.set_num_threads(trainer.threads)
        n = len(trainer.X) if n_rows is None else n_rows
        trainer.model.eval()
        with torch.inference_mode():
            for start in range(0, n, trainer.batch_size):
                batch = trainer.X[start:start + trainer.batch_size].to(trainer.torch_dtype).mul_(trainer.scale)
                torch.softmax(trainer.model(batch), dim=1)

    def warm_up(self, n_rows):
        self.run(n_rows)


class FloorCandidate:
    """The gemm floor as one more round-robin entry, so it is measured under the same drift.

    Besides the per-shape sum (``GemmTimer.epoch_floor``), it times the compiled core's own
    ``gemm_floor_seconds`` when there is one: the epoch's gemm calls issued back to back from C,
    in the core's order and chunking (batches above its chunk size run as 1024-row pieces).
    """

    def __init__(self, timer, layer_sizes, n_samples, batch_size, core=None):
        self.timer, self.args = timer, (layer_sizes, n_samples, batch_size)
        self.by_kind, self.sequence, self.cpu = [], [], []
        self.core_floor = getattr(core, "gemm_floor_seconds", None)
        self.params = he_init(layer_sizes, timer.dtype) if self.core_floor else None

    def measure(self):
        seconds, by_kind = self.timer.epoch_floor(*self.args)
        self.by_kind.append(by_kind)
        self.cpu.append(self.timer.last_cpu_seconds)
        if self.core_floor is not None:
            layer_sizes, n_samples, batch_size = self.args
            self.sequence.append(self.core_floor(self.params, layer_sizes, n_samples, batch_size or n_samples))
        return seconds


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


# ---------------------------------------------------------------- environment

def load_data(choice, n_samples):
    """(X uint8 (n, 784), y uint8 (n,), description): real MNIST if available, else random pixels."""
    reason = "random data requested"
    if choice in ("auto", "mnist"):
        try:
            from .data import load_mnist
            dataset = load_mnist()
            X, y = np.ascontiguousarray(dataset.images), np.ascontiguousarray(dataset.labels)
            if len(X) < n_samples:
                raise ValueError(f"MNIST has {len(X)} training images, fewer than {n_samples}")
            return X[:n_samples], y[:n_samples], f"MNIST training images ({n_samples} x {X.shape[1]} uint8)"
        except Exception as error:  # noqa: BLE001 - any failure means: fall back, and say why
            if choice == "mnist":
                raise
            reason = f"MNIST unavailable ({type(error).__name__}: {error})"
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n_samples, N_FEATURES), dtype=np.uint8)
    y = rng.integers(0, 10, size=n_samples, dtype=np.uint8)
    return X, y, f"random uint8 pixels, MNIST-shaped ({n_samples} x {N_FEATURES}); {reason}"


def compiled_backend():
    """(module, None) or (None, why the compiled backend cannot be timed)."""
    try:
        from .backends import get_backend
        module = get_backend("cython")
    except Exception as error:  # noqa: BLE001
        return None, f"{type(error).__name__}: {error}"
    return module, None


def core_module():
    """nncore._core when it imports, else None."""
    try:
        from . import _core
    except ImportError:
        return None
    return _core


def import_torch(wanted):
    if not wanted:
        return None, "PyTorch column turned off (--no-torch)"
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed: column skipped (pip install torch, the CPU build)"
    return torch, None


def environment_summary():
    """The machine and library facts a figure depends on (see ``nncore info``)."""
    from . import info
    facts = info.collect()
    return {
        "nncore_version": facts["nncore_version"],
        "python": platform.python_version(),
        "numpy": facts["numpy_version"],
        "scipy": facts["scipy_version"],
        "cpu_model": facts["cpu"]["model"],
        "cpu_count": facts["cpu"]["logical_cpus"],
        "cpu_flags": {flag: facts["cpu"]["flags"].get(flag) for flag in ("avx2", "avx512f")},
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "scipy_blas": facts["scipy_blas"],
        "blas_libraries": facts["blas_libraries"],
        "kernel_note": facts["kernel_note"],
        "compiled_core": facts["compiled_core"],
    }


def configured_threads():
    """The BLAS thread count as configured (threadpoolctl's view of SciPy's BLAS)."""
    from . import info
    blas = info.collect()["scipy_blas"]
    return int(blas["num_threads"]) if blas and blas.get("num_threads") else (os.cpu_count() or 1)


# ---------------------------------------------------------------- the run

@dataclass
class Plan:
    cells: list  # [(layer_sizes, batch_size, dtype)]
    threads: list
    inference: list  # [(layer_sizes, dtype)]
    repeats: int
    cell_budget: float
    mode: str
    max_epoch_seconds: float = 60.0
    extra: dict = field(default_factory=dict)


def parse_network(text):
    sizes = tuple(int(part) for part in text.split("-"))
    if len(sizes) < 2 or sizes[0] != N_FEATURES or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"network must look like 784-128-10, got {text!r}")
    return sizes


def parse_batch(text):
    return None if text in ("full", "none", "None") else int(text)


def make_plan(args):
    if args.quick:
        cells = list(QUICK_CELLS)
        inference = [((784, 128, 10), "float32")]
        repeats = args.repeats or 3
        mode, budget = "quick", 6.0
    else:
        cells = [(net, batch, dtype) for net in FULL_NETWORKS for batch in FULL_BATCH_SIZES for dtype in FULL_DTYPES]
        inference = [(net, dtype) for net in FULL_NETWORKS for dtype in FULL_DTYPES]
        repeats = args.repeats or 3
        mode, budget = "full", 9.0
    if args.networks:
        cells = [c for c in cells if c[0] in args.networks] or [
            (net, batch, dtype) for net in args.networks for batch in (args.batch_sizes or [128])
            for dtype in (args.dtypes or ["float32"])]
        inference = [i for i in inference if i[0] in args.networks]
    if args.batch_sizes:
        cells = [c for c in cells if c[1] in args.batch_sizes] or cells
    if args.dtypes:
        cells = [c for c in cells if c[2] in args.dtypes]
        inference = [i for i in inference if i[1] in args.dtypes]
    if args.no_inference:
        inference = []
    if args.threads:
        threads = args.threads
    else:
        configured = configured_threads()
        threads = [configured] if args.quick else sorted({1, configured})
    return Plan(cells, threads, inference, repeats, args.cell_budget or budget, mode,
                args.max_epoch_seconds or (20.0 if args.quick else 60.0))


def label(layer_sizes):
    return "-".join(str(s) for s in layer_sizes)


def batch_label(batch_size):
    return "full" if batch_size is None else str(batch_size)


def ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def run_training_cell(cell, threads, X, y, compiled, torch, timers, peaks, plan, log):
    layer_sizes, batch_size, dtype = cell
    from .backends import get_backend
    numpy_backend = get_backend("numpy")
    n = len(X)
    runners = {}
    if compiled is not None:
        runners["compiled"] = BackendTrainer(compiled, layer_sizes, dtype, X, y, batch_size)
    runners["numpy"] = BackendTrainer(numpy_backend, layer_sizes, dtype, X, y, batch_size)
    if torch is not None:
        runners["torch"] = TorchTrainer(torch, layer_sizes, dtype, X, y, batch_size, threads)
    floor = FloorCandidate(timers[dtype], layer_sizes, n, batch_size, core_module())
    warm_rows = min(n, max(4096, 2 * (batch_size or 0)))
    medians, samples, floor_s, rounds = time_round_robin(runners, plan.repeats, warm_rows, plan.cell_budget, floor,
                                                         n, plan.max_epoch_seconds)
    flops = epoch_flops(layer_sizes, n, batch_size)
    peak = peaks["sgemm"]
    compiled_s = medians.get("compiled")
    by_kind = {kind: statistics.median(entry[kind] for entry in floor.by_kind) for kind in floor.by_kind[0]}
    cpu, skipped = samples.pop("cpu_seconds"), samples.pop("skipped")
    row = {
        "network": label(layer_sizes), "batch_size": batch_label(batch_size), "dtype": dtype, "threads": threads,
        "n_samples": n, "n_batches": sum(batch_sizes_of_epoch(n, batch_size).values()),
        "epoch_gflop": flops / 1e9, "rounds": rounds,
        "seconds": medians, "cpu_seconds": cpu, "skipped": skipped, "all_seconds": samples,
        "samples_per_s": {name: n / seconds for name, seconds in medians.items()},
        "numpy_over_compiled": ratio(medians.get("numpy"), compiled_s),
        "torch_over_compiled": ratio(medians.get("torch"), compiled_s),
        "gemm_floor_s": floor_s, "gemm_floor_by_kind_s": by_kind,
        "core_gemm_sequence_s": statistics.median(floor.sequence) if floor.sequence else None,
        "gemm_floor_cpu_s": statistics.median(floor.cpu) if floor.cpu else None,
        "cpu_compiled_over_gemm_floor": ratio(cpu.get("compiled"), statistics.median(floor.cpu) if floor.cpu else None),
        "compiled_over_gemm_floor": ratio(compiled_s, floor_s),
        "flop_floor_s": flops / (peak * 1e9),
        "compiled_over_flop_floor": ratio(compiled_s, flops / (peak * 1e9)),
        "compiled_gflops": (flops / compiled_s / 1e9) if compiled_s else None,
        "cpu_numpy_over_compiled": ratio(cpu.get("numpy"), cpu.get("compiled")),
        "cpu_torch_over_compiled": ratio(cpu.get("torch"), cpu.get("compiled")),
        "compiled_cpu_over_flop_floor": ratio(cpu.get("compiled"),
                                              flops / (peaks["sgemm_cpu"] * 1e9) if "sgemm_cpu" in peaks else None),
        "compiled_fraction_of_sgemm_peak": (flops / compiled_s / 1e9 / peak) if compiled_s else None,
    }
    log(format_training_row(row))
    return row


def run_inference_cell(cell, threads, X, compiled, torch, plan):
    layer_sizes, dtype = cell
    from .backends import get_backend
    numpy_backend = get_backend("numpy")
    runners = {}
    if compiled is not None:
        runners["compiled"] = BackendInference(compiled, layer_sizes, dtype, X, INFERENCE_BATCH)
    runners["numpy"] = BackendInference(numpy_backend, layer_sizes, dtype, X, INFERENCE_BATCH)
    if torch is not None:
        runners["torch"] = TorchInference(torch, layer_sizes, dtype, X, INFERENCE_BATCH, threads)
    medians, samples, _, rounds = time_round_robin(runners, plan.repeats, min(len(X), 4096), plan.cell_budget,
                                                   None, len(X), plan.max_epoch_seconds)
    n = len(X)
    return {
        "network": label(layer_sizes), "dtype": dtype, "threads": threads, "batch_size": INFERENCE_BATCH,
        "n_samples": n, "rounds": rounds, "seconds": medians, "cpu_seconds": samples.pop("cpu_seconds"),
        "skipped": samples.pop("skipped"),
        "images_per_s": {name: n / seconds for name, seconds in medians.items()},
        "gflops": {name: forward_flops(layer_sizes, n) / seconds / 1e9 for name, seconds in medians.items()},
        "numpy_over_compiled": ratio(medians.get("numpy"), medians.get("compiled")),
        "torch_over_compiled": ratio(medians.get("torch"), medians.get("compiled")),
    }


def fmt(value, spec=".3g", none="-"):
    return none if value is None else format(value, spec)


def format_training_row(row):
    s = row["seconds"]
    return (f"  {row['network']:>14} b={row['batch_size']:>5} {row['dtype']} t={row['threads']}: "
            f"compiled {fmt(s.get('compiled'))} s, numpy {fmt(s.get('numpy'))} s, torch {fmt(s.get('torch'))} s, "
            f"floor {fmt(row['gemm_floor_s'])} s | numpy/compiled {fmt(row['numpy_over_compiled'])}, "
            f"torch/compiled {fmt(row['torch_over_compiled'])}, compiled/floor {fmt(row['compiled_over_gemm_floor'])}"
            f" ({row['rounds']} rounds)")


def run(plan, data_choice, n_samples, want_torch, log=print, checkpoint=None):
    """Run the plan; returns the result dictionary (what the JSON holds).

    ``checkpoint(result)``, when given, is called after every cell, so a long run that is
    interrupted still leaves its figures so far on disk.
    """
    from threadpoolctl import threadpool_limits
    started = time.perf_counter()
    X, y, data_note = load_data(data_choice, n_samples)
    compiled, compiled_note = compiled_backend()
    torch, torch_note = import_torch(want_torch)
    notes = [f"data: {data_note}"]
    if compiled_note:
        notes.append(f"compiled backend not timed: {compiled_note}")
    if torch_note:
        notes.append(torch_note)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load and load[0] > 0.5 * (os.cpu_count() or 1):
        notes.append(f"machine busy: 1-minute load average {load[0]:.1f} on {os.cpu_count()} CPUs at the start; "
                     "other processes compete for the cores, so multi-threaded figures are noisy")
    for note in notes:
        log(note)
    result = {
        "mode": plan.mode, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "nncore bench " + " ".join(plan.extra.get("argv", [])),
        "environment": environment_summary(), "data": data_note, "notes": notes,
        "torch_version": getattr(torch, "__version__", None),
        "learning_rate": LEARNING_RATE, "optimizer": "SGD (no momentum)", "loss": "cross_entropy",
        "peaks": {}, "train": [], "inference": [],
    }
    log(f"BLAS: {describe_blas(result['environment'])}")
    for threads in plan.threads:
        with threadpool_limits(limits=threads):
            timers = {dtype: GemmTimer(dtype) for dtype in FULL_DTYPES}
            (sgemm, sgemm_cpu), (dgemm, dgemm_cpu) = timers["float32"].peak_gflops(), timers["float64"].peak_gflops()
            peaks = {"sgemm": sgemm, "dgemm": dgemm}
            if threads == 1:
                peaks.update(sgemm_cpu=sgemm_cpu, dgemm_cpu=dgemm_cpu)
            result["peaks"][str(threads)] = {**peaks, "size": PEAK_SIZE,
                                             "gemm_call_overhead_s": {d: t.call_overhead for d, t in timers.items()}}
            log(f"{threads} thread(s): sgemm {PEAK_SIZE}^2 {sgemm:.1f} GFLOP/s, dgemm {dgemm:.1f} GFLOP/s"
                + (f" (CPU time: sgemm {sgemm_cpu:.1f}, dgemm {dgemm_cpu:.1f})" if threads == 1 else ""))
            for cell in plan.cells:
                result["train"].append(run_training_cell(cell, threads, X, y, compiled, torch, timers, peaks, plan, log))
                if checkpoint:
                    checkpoint(result)
            for cell in plan.inference:
                row = run_inference_cell(cell, threads, X, compiled, torch, plan)
                result["inference"].append(row)
                if checkpoint:
                    checkpoint(result)
                log(f"  inference {row['network']} {row['dtype']} t={threads}: images/s " + ", ".join(
                    f"{name} {value:,.0f}" for name, value in row["images_per_s"].items()))
    result["elapsed_s"] = time.perf_counter() - started
    result["load_average"] = {"start": load, "end": os.getloadavg() if load else None}
    result["targets"] = evaluate_targets(result)
    return result


# ---------------------------------------------------------------- targets and reports

def find_row(rows, network, batch_size, dtype, threads):
    for row in rows:
        if (row["network"], row["batch_size"], row["dtype"], row["threads"]) == (network, batch_size, dtype, threads):
            return row
    return None


def evaluate_targets(result, own_kernels=None):
    """The project's performance targets, checked at every thread count of this run.

    The "CPU's own kernels" targets use ``own_kernels`` (the --blas-compare child's result), or
    this run itself when OPENBLAS_CORETYPE is not set; otherwise they are "not measured".
    """
    own = own_kernels if own_kernels is not None else (
        result if not result["environment"].get("openblas_coretype") else None)
    here = {"train": result["train"]}
    checks = []
    for threads in sorted({row["threads"] for row in result["train"]}):
        def check(name, source, network, batch, key, op, bound):
            row = find_row(source["train"], network, batch, "float32", threads) if source else None
            value = row.get(key) if row else None
            holds = None if value is None else (value <= bound if op == "<=" else value >= bound)
            checks.append({"target": name, "value": value, "bound": f"{op} {bound}", "holds": holds,
                           "threads": threads, "cell": f"{network} batch {batch} float32, {threads} thread(s)"})

        check("compiled / gemm floor", here, "784-128-10", "128", "compiled_over_gemm_floor", "<=", 1.25)
        check("NumPy / compiled", here, "784-128-10", "128", "numpy_over_compiled", ">=", 1.8)
        check("NumPy / compiled", here, "784-10-10", "32", "numpy_over_compiled", ">=", 4.0)
        check("PyTorch / compiled (as configured)", here, "784-128-10", "128", "torch_over_compiled", ">=", 2.0)
        check("PyTorch / compiled (CPU's own kernels)", own, "784-128-10", "128", "torch_over_compiled", ">=", 2.5)
        check("compiled / FLOP floor (CPU's own kernels)", own, "784-128-10", "128", "compiled_over_flop_floor",
              "<=", 2.0)
        if threads == 1:  # the same, by CPU time: steadier on a machine other processes share
            check("compiled / gemm floor, CPU time", here, "784-128-10", "128", "cpu_compiled_over_gemm_floor",
                  "<=", 1.25)
            check("NumPy / compiled, CPU time", here, "784-128-10", "128", "cpu_numpy_over_compiled", ">=", 1.8)
            check("NumPy / compiled, CPU time", here, "784-10-10", "32", "cpu_numpy_over_compiled", ">=", 4.0)
            check("PyTorch / compiled, CPU time (as configured)", here, "784-128-10", "128",
                  "cpu_torch_over_compiled", ">=", 2.0)
            check("PyTorch / compiled, CPU time (CPU's own kernels)", own, "784-128-10", "128",
                  "cpu_torch_over_compiled", ">=", 2.5)
            check("compiled / FLOP floor, CPU time (CPU's own kernels)", own, "784-128-10", "128",
                  "compiled_cpu_over_flop_floor", "<=", 2.0)
    return checks


def describe_blas(environment):
    blas = environment.get("scipy_blas") or {}
    coretype = environment.get("openblas_coretype")
    return (f"{blas.get('internal_api', '?')} {blas.get('version', '?')} ({blas.get('architecture', '?')} kernels), "
            f"OPENBLAS_CORETYPE={coretype if coretype else '(unset)'}")


def markdown_report(result):
    env = result["environment"]
    lines = [f"# nncore benchmark ({result['mode']} run, {result['created']})", "",
             f"- command: `{result['command']}`",
             f"- CPU: {env['cpu_model']}, {env['cpu_count']} logical CPUs, avx2={env['cpu_flags'].get('avx2')}, "
             f"avx512f={env['cpu_flags'].get('avx512f')}",
             f"- BLAS (SciPy's, used by the compiled core): {describe_blas(env)}",
             f"- nncore {env['nncore_version']}, NumPy {env['numpy']}, SciPy {env['scipy']}, "
             f"PyTorch {result['torch_version'] or 'not installed'}, Python {env['python']}",
             f"- data: {result['data']}",
             f"- training: SGD lr={result['learning_rate']}, cross-entropy; one epoch over all samples, "
             "median of interleaved rounds after a warm-up",
             "- gemm floor: the epoch's matrix products (forward X.W, dW = A^T.dZ per layer, dX = dZ.W^T past the "
             "first layer, one call per batch, last partial batch included) at this machine's measured rate per "
             "shape through SciPy's BLAS, wrapper overhead removed; core gemm-only: the same products issued "
             "back to back from C by `nncore._core.gemm_floor_seconds` (batches above 1024 rows in 1024-row "
             "chunks, as the core runs them)", ""]
    if result.get("partial"):
        lines += ["> PARTIAL: the run is still going (or was interrupted); these are the cells done so far.", ""]
    if env.get("kernel_note"):
        lines += [f"> {env['kernel_note']}", ""]
    for note in result["notes"][1:]:
        lines += [f"> {note}", ""]
    for threads, peak in result["peaks"].items():
        lines += [f"## Training, {threads} thread(s)", "",
                  f"Peak reference: sgemm {PEAK_SIZE}² {peak['sgemm']:.1f} GFLOP/s, dgemm {peak['dgemm']:.1f} GFLOP/s"
                  + (f" (by CPU time, what an uncontended core does: sgemm {peak['sgemm_cpu']:.1f}, "
                     f"dgemm {peak['dgemm_cpu']:.1f})." if "sgemm_cpu" in peak else "."),
                  "",
                  "| network | batch | dtype | compiled s/epoch | compiled samples/s | NumPy s/epoch | NumPy / compiled "
                  "| PyTorch s/epoch | PyTorch / compiled | gemm floor s | compiled / gemm floor | core gemm-only s "
                  "| compiled GFLOP/s | % of sgemm peak | rounds |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in result["train"]:
            if str(row["threads"]) != threads:
                continue
            s, sps = row["seconds"], row["samples_per_s"]
            fraction = row["compiled_fraction_of_sgemm_peak"]
            lines.append(
                f"| {row['network']} | {row['batch_size']} | {row['dtype']} | {fmt(s.get('compiled'), '.4f')} "
                f"| {fmt(sps.get('compiled'), ',.0f')} | {fmt(s.get('numpy'), '.4f')} "
                f"| {fmt(row['numpy_over_compiled'], '.2f')} | {fmt(s.get('torch'), '.4f')} "
                f"| {fmt(row['torch_over_compiled'], '.2f')} | {fmt(row['gemm_floor_s'], '.4f')} "
                f"| {fmt(row['compiled_over_gemm_floor'], '.2f')} | {fmt(row.get('core_gemm_sequence_s'), '.4f')} "
                f"| {fmt(row['compiled_gflops'], '.1f')} "
                f"| {fmt(None if fraction is None else 100 * fraction, '.0f')} | {row['rounds']} |")
        for row in result["train"]:
            for name, why in (row.get("skipped") or {}).items() if str(row["threads"]) == threads else ():
                lines.append(f"\n> {row['network']} batch {row['batch_size']} {row['dtype']}: {name} {why}")
        inference = [row for row in result["inference"] if str(row["threads"]) == threads]
        if inference:
            lines += ["", f"### Inference (forward only, batch {INFERENCE_BATCH}), {threads} thread(s)", "",
                      "| network | dtype | compiled images/s | NumPy images/s | PyTorch images/s | NumPy / compiled "
                      "| PyTorch / compiled |", "|---|---|---|---|---|---|---|"]
            for row in inference:
                ips = row["images_per_s"]
                lines.append(f"| {row['network']} | {row['dtype']} | {fmt(ips.get('compiled'), ',.0f')} "
                             f"| {fmt(ips.get('numpy'), ',.0f')} | {fmt(ips.get('torch'), ',.0f')} "
                             f"| {fmt(row['numpy_over_compiled'], '.2f')} | {fmt(row['torch_over_compiled'], '.2f')} |")
        lines.append("")
    single = [row for row in result["train"] if row["threads"] == 1 and row.get("cpu_seconds")]
    if single:
        lines += ["## CPU-time cross-check, 1 thread", "",
                  "Process CPU seconds per epoch: unlike wall time, they do not count time spent waiting for a "
                  "core that other processes hold, so on a busy machine these ratios are the steadier ones. "
                  "FLOP floor: the epoch's gemm FLOPs at the CPU-time sgemm 2048² rate.", "",
                  "| network | batch | dtype | compiled CPU s | NumPy CPU s | PyTorch CPU s | NumPy / compiled "
                  "| PyTorch / compiled | gemm floor CPU s | compiled / gemm floor | compiled / FLOP floor |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in single:
            cpu = row["cpu_seconds"]
            lines.append(f"| {row['network']} | {row['batch_size']} | {row['dtype']} | {fmt(cpu.get('compiled'), '.4f')} "
                         f"| {fmt(cpu.get('numpy'), '.4f')} | {fmt(cpu.get('torch'), '.4f')} "
                         f"| {fmt(ratio(cpu.get('numpy'), cpu.get('compiled')), '.2f')} "
                         f"| {fmt(ratio(cpu.get('torch'), cpu.get('compiled')), '.2f')} "
                         f"| {fmt(row.get('gemm_floor_cpu_s'), '.4f')} "
                         f"| {fmt(ratio(cpu.get('compiled'), row.get('gemm_floor_cpu_s')), '.2f')} "
                         f"| {fmt(row.get('compiled_cpu_over_flop_floor'), '.2f')} |")
        lines.append("")
    compare = result.get("blas_compare")
    if compare:
        lines += ["## OpenBLAS kernels: as configured vs OPENBLAS_CORETYPE unset (child process)", "",
                  f"{compare['note']}", ""]
        if compare.get("rows"):
            lines += ["| network | batch | dtype | threads | compiled s (configured) | compiled s (unset) "
                      "| configured / unset | PyTorch / compiled (unset) |", "|---|---|---|---|---|---|---|---|"]
            for row in compare["rows"]:
                lines.append(f"| {row['network']} | {row['batch_size']} | {row['dtype']} | {row['threads']} "
                             f"| {fmt(row['configured_s'], '.4f')} | {fmt(row['unset_s'], '.4f')} "
                             f"| {fmt(row['configured_over_unset'], '.2f')} "
                             f"| {fmt(row['unset_torch_over_compiled'], '.2f')} |")
            lines.append("")
    lines += ["## Targets", "", "| target | cell | value | bound | holds |", "|---|---|---|---|---|"]
    for target in result["targets"]:
        holds = {True: "yes", False: "**no**", None: "not measured"}[target["holds"]]
        lines.append(f"| {target['target']} | {target['cell']} | {fmt(target['value'], '.2f')} "
                     f"| {target['bound']} | {holds} |")
    lines += ["", "Ratios are within one process (interleaved, so drift cancels); absolute seconds swing "
              "up to 1.5x between processes on shared machines.", ""]
    return "\n".join(lines)


def print_table(result, log=print):
    log("")
    log(markdown_report(result))


def write_results(result, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{result['mode']}"
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    md_path.write_text(markdown_report(result))
    return json_path, md_path


# ---------------------------------------------------------------- --blas-compare: a child without the variable

def blas_compare(result, child_argv, log=print):
    """Run the same plan in a child process with OPENBLAS_CORETYPE unset; merge what it found."""
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if not coretype:
        return {"note": "OPENBLAS_CORETYPE is not set: the figures above already use the kernels OpenBLAS "
                        "picks for this CPU; nothing to compare.", "rows": []}
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_CORETYPE"}
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "nncore.bench", *child_argv, "--out", tmp, "--no-print"]
        log(f"--blas-compare: running the grid again without OPENBLAS_CORETYPE={coretype} (child process)")
        completed = subprocess.run(command, env=env, cwd=os.getcwd())
        if completed.returncode != 0:
            return {"note": f"the child run failed (exit {completed.returncode})", "rows": []}
        child = json.loads(Path(tmp, f"bench-{result['mode']}.json").read_text())
    rows = []
    for row in result["train"]:
        other = find_row(child["train"], row["network"], row["batch_size"], row["dtype"], row["threads"])
        if other is None:
            continue
        configured, unset = row["seconds"].get("compiled"), other["seconds"].get("compiled")
        rows.append({"network": row["network"], "batch_size": row["batch_size"], "dtype": row["dtype"],
                     "threads": row["threads"], "configured_s": configured, "unset_s": unset,
                     "configured_over_unset": ratio(configured, unset),
                     "unset_torch_over_compiled": other.get("torch_over_compiled")})
    child_blas = child["environment"]["scipy_blas"] or {}
    builds = [(env.get("compiled_core") or {}).get("source_hash") for env in (result["environment"], child["environment"])]
    rebuilt = (f" WARNING: the compiled core was rebuilt between the runs (source {builds[0][:12]} here, "
               f"{builds[1][:12]} in the child): the comparison mixes two builds.") if all(builds) and builds[0] != builds[1] else ""
    peaks = {threads: {"configured": result["peaks"].get(threads, {}).get("sgemm"), "unset": peak["sgemm"]}
             for threads, peak in child["peaks"].items()}
    peak_text = "; ".join(f"{t} thread(s) sgemm {fmt(p['configured'], '.0f')} vs {fmt(p['unset'], '.0f')} GFLOP/s"
                          for t, p in peaks.items())
    note = (f"As configured: OPENBLAS_CORETYPE={coretype} ({(result['environment']['scipy_blas'] or {}).get('architecture')}"
            f" kernels). Child without it: {child_blas.get('architecture')} kernels. {peak_text}. "
            "Across two processes absolute times drift (up to 1.5x here); compare the peaks and ratios." + rebuilt)
    return {"note": note, "rows": rows, "peaks": peaks, "child_environment": child["environment"],
            "child_train": child["train"], "child_targets": child["targets"],
            "own_kernel_targets": evaluate_targets(result, own_kernels=child)}


# ---------------------------------------------------------------- command line

def build_parser():
    parser = argparse.ArgumentParser(prog="nncore bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small grid (under a minute): the CI smoke run")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="results directory (default: benchmarks/results)")
    parser.add_argument("--threads", type=lambda text: [int(t) for t in text.split(",")],
                        help="BLAS thread counts, comma-separated (default: 1 and the configured count)")
    parser.add_argument("--repeats", type=int, help="timed rounds per cell (default 3; slow cells get fewer)")
    parser.add_argument("--cell-budget", type=float, help="seconds of rounds per cell before it stops early")
    parser.add_argument("--max-epoch-seconds", type=float,
                        help="leave out a candidate whose warm-up predicts a slower epoch (default 60; quick 20)")
    parser.add_argument("--data", choices=("auto", "mnist", "random"), default="auto",
                        help="auto: MNIST if it loads, else random uint8 pixels of the same shape")
    parser.add_argument("--samples", type=int, default=N_SAMPLES, help="training samples per epoch (default 60000)")
    parser.add_argument("--networks", type=lambda text: [parse_network(n) for n in text.split(",")],
                        help="only these networks, e.g. 784-128-10,784-10-10")
    parser.add_argument("--batch-sizes", type=lambda text: [parse_batch(b) for b in text.split(",")],
                        help="only these batch sizes, e.g. 32,128,full")
    parser.add_argument("--dtypes", type=lambda text: text.split(","), help="only these dtypes: float32,float64")
    parser.add_argument("--no-torch", action="store_true", help="leave the PyTorch column out")
    parser.add_argument("--no-inference", action="store_true", help="skip the forward-only measurements")
    parser.add_argument("--blas-compare", action="store_true",
                        help="also run the grid in a child process with OPENBLAS_CORETYPE unset")
    parser.add_argument("--no-print", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv=None):
    """``nncore bench``: run, print the table, write JSON and Markdown. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    log = (lambda *a, **k: None) if args.no_print else (lambda text="": print(text, flush=True))
    plan = make_plan(args)
    plan.extra["argv"] = argv
    def checkpoint(partial):
        write_results({**partial, "targets": evaluate_targets(partial), "elapsed_s": None, "partial": True}, args.out)

    result = run(plan, args.data, args.samples, not args.no_torch, log, checkpoint)
    if args.blas_compare:
        child_argv = [arg for arg in _argv_without(argv, "--out", takes_value=True) if arg != "--blas-compare"]
        if not args.threads:
            child_argv += ["--threads", ",".join(str(t) for t in plan.threads)]
        result["blas_compare"] = blas_compare(result, child_argv, log)
        if result["blas_compare"].get("own_kernel_targets"):
            result["targets"] = [t for t in result["targets"] if "own kernels" not in t["target"]] + [
                t for t in result["blas_compare"]["own_kernel_targets"] if "own kernels" in t["target"]]
    json_path, md_path = write_results(result, args.out)
    if not args.no_print:
        print_table(result, log)
        log(f"wrote {json_path} and {md_path} ({result['elapsed_s']:.0f} s)")
    return 0


def _argv_without(argv, option, takes_value):
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = takes_value
            continue
        if arg.startswith(option + "="):
            continue
        kept.append(arg)
    return kept


if __name__ == "__main__":
    sys.exit(main())
