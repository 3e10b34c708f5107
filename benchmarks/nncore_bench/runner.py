"""The benchmark run: which cells (network, batch, dtype) at which thread counts, and timing each one."""
import argparse
import os
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .candidates import LEARNING_RATE, NUMPY_CANDIDATES, BackendInference, BackendTrainer
from .environment import (N_FEATURES, compiled_backend, configured_threads, core_testing_module, describe_blas,
                          environment_summary, load_data)
from .flops import batch_sizes_of_epoch, epoch_flops, forward_flops
from .numpy_baselines import CarefulNumpyInference, CarefulNumpyTrainer, SeedStyleTrainer
from .report import format_training_row
from .targets import evaluate_targets
from .timers import PEAK_SIZE, FloorCandidate, GemmTimer, time_round_robin
from .onnx_candidates import OnnxRuntimeInference, import_onnxruntime
from .torch_candidates import TorchInference, TorchTrainer, import_torch

FULL_NETWORKS = ((784, 10, 10), (784, 128, 10), (784, 512, 256, 10))
FULL_BATCH_SIZES = (32, 128, 1024, None)  # None: one full batch
FULL_DTYPES = ("float32", "float64")
# The seeds' workload (784-10-10, full batch, float64) beside the two mini-batch cells.
QUICK_CELLS = (((784, 10, 10), 32, "float32"), ((784, 128, 10), 128, "float32"), ((784, 10, 10), None, "float64"))
INFERENCE_BATCH = 1024


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


def fastest_numpy(seconds):
    """(name, seconds) of the fastest NumPy candidate in ``seconds``, or (None, None)."""
    timed = {name: seconds[name] for name in NUMPY_CANDIDATES if seconds.get(name) is not None}
    if not timed:
        return None, None
    name = min(timed, key=timed.get)
    return name, timed[name]


def training_runners(cell, threads, X, y, compiled, torch):
    """The candidates of one training cell, in the order they take turns."""
    layer_sizes, batch_size, dtype = cell
    from nncore.backends import get_backend
    numpy_backend = get_backend("numpy")
    runners = {}
    if compiled is not None:
        runners["compiled"] = BackendTrainer(compiled, layer_sizes, dtype, X, y, batch_size)
    runners["numpy"] = BackendTrainer(numpy_backend, layer_sizes, dtype, X, y, batch_size)
    runners["careful_numpy"] = CarefulNumpyTrainer(layer_sizes, dtype, X, y, batch_size)
    if batch_size is None:
        runners["seed_numpy"] = SeedStyleTrainer(layer_sizes, dtype, X, y)
    if torch is not None:
        runners["torch"] = TorchTrainer(torch, layer_sizes, dtype, X, y, batch_size, threads)
    return runners


def run_training_cell(cell, threads, X, y, compiled, torch, timers, peaks, plan, log):
    layer_sizes, batch_size, dtype = cell
    n = len(X)
    runners = training_runners(cell, threads, X, y, compiled, torch)
    floor = FloorCandidate(timers[dtype], layer_sizes, n, batch_size, core_testing_module())
    warm_rows = min(n, max(4096, 2 * (batch_size or 0)))
    medians, samples, floor_s, rounds = time_round_robin(runners, plan.repeats, warm_rows, plan.cell_budget, floor,
                                                         n, plan.max_epoch_seconds)
    del runners  # the float copies of X the NumPy candidates hold are 190-380 MB each
    flops = epoch_flops(layer_sizes, n, batch_size)
    # The FLOP floor of a cell is its FLOPs at the machine's gemm peak in the cell's dtype.
    peak_name = "sgemm" if dtype == "float32" else "dgemm"
    peak = peaks[peak_name]
    compiled_s = medians.get("compiled")
    by_kind = {kind: statistics.median(entry[kind] for entry in floor.by_kind) for kind in floor.by_kind[0]}
    cpu, skipped = samples.pop("cpu_seconds"), samples.pop("skipped")
    numpy_name, numpy_s = fastest_numpy(medians)
    cpu_numpy_name, cpu_numpy_s = fastest_numpy(cpu)
    floor_cpu = statistics.median(floor.cpu) if floor.cpu else None
    row = {
        "network": label(layer_sizes), "batch_size": batch_label(batch_size), "dtype": dtype, "threads": threads,
        "n_samples": n, "n_batches": sum(batch_sizes_of_epoch(n, batch_size).values()),
        "epoch_gflop": flops / 1e9, "rounds": rounds,
        "seconds": medians, "cpu_seconds": cpu, "skipped": skipped, "all_seconds": samples,
        "samples_per_s": {name: n / seconds for name, seconds in medians.items()},
        "fastest_numpy": numpy_name, "cpu_fastest_numpy": cpu_numpy_name,
        "numpy_over_compiled": ratio(numpy_s, compiled_s),
        "numpy_backend_over_compiled": ratio(medians.get("numpy"), compiled_s),
        "seed_numpy_over_compiled": ratio(medians.get("seed_numpy"), compiled_s),
        "torch_over_compiled": ratio(medians.get("torch"), compiled_s),
        "gemm_floor_s": floor_s, "gemm_floor_by_kind_s": by_kind,
        "core_gemm_sequence_s": statistics.median(floor.sequence) if floor.sequence else None,
        "gemm_floor_cpu_s": floor_cpu,
        "cpu_compiled_over_gemm_floor": ratio(cpu.get("compiled"), floor_cpu),
        "compiled_over_gemm_floor": ratio(compiled_s, floor_s),
        "flop_floor_s": flops / (peak * 1e9),
        "compiled_over_flop_floor": ratio(compiled_s, flops / (peak * 1e9)),
        "compiled_gflops": (flops / compiled_s / 1e9) if compiled_s else None,
        "cpu_numpy_over_compiled": ratio(cpu_numpy_s, cpu.get("compiled")),
        "cpu_seed_numpy_over_compiled": ratio(cpu.get("seed_numpy"), cpu.get("compiled")),
        "cpu_torch_over_compiled": ratio(cpu.get("torch"), cpu.get("compiled")),
        "compiled_cpu_over_flop_floor": ratio(cpu.get("compiled"), flops / (peaks[peak_name + "_cpu"] * 1e9)
                                              if peak_name + "_cpu" in peaks else None),
        "peak": peak_name,
        "compiled_fraction_of_peak": (flops / compiled_s / 1e9 / peak) if compiled_s else None,
    }
    log(format_training_row(row))
    return row


def run_inference_cell(cell, threads, X, compiled, torch, plan, onnxruntime=None):
    layer_sizes, dtype = cell
    import nncore
    from nncore.backends import get_backend
    numpy_backend = get_backend("numpy")
    runners = {}
    if compiled is not None:
        runners["compiled"] = BackendInference(compiled, layer_sizes, dtype, X, INFERENCE_BATCH)
    runners["numpy"] = BackendInference(numpy_backend, layer_sizes, dtype, X, INFERENCE_BATCH)
    runners["careful_numpy"] = CarefulNumpyInference(layer_sizes, dtype, X, INFERENCE_BATCH)
    if torch is not None:
        runners["torch"] = TorchInference(torch, layer_sizes, dtype, X, INFERENCE_BATCH, threads)
    if onnxruntime is not None:
        runners["onnxruntime"] = OnnxRuntimeInference(onnxruntime, nncore.MLP(layer_sizes, dtype=dtype, seed=0), X,
                                                      INFERENCE_BATCH, threads)
    medians, samples, _, rounds = time_round_robin(runners, plan.repeats, min(len(X), 4096), plan.cell_budget,
                                                   None, len(X), plan.max_epoch_seconds)
    n = len(X)
    numpy_name, numpy_s = fastest_numpy(medians)
    return {
        "network": label(layer_sizes), "dtype": dtype, "threads": threads, "batch_size": INFERENCE_BATCH,
        "n_samples": n, "rounds": rounds, "seconds": medians, "cpu_seconds": samples.pop("cpu_seconds"),
        "skipped": samples.pop("skipped"),
        "images_per_s": {name: n / seconds for name, seconds in medians.items()},
        "gflops": {name: forward_flops(layer_sizes, n) / seconds / 1e9 for name, seconds in medians.items()},
        "fastest_numpy": numpy_name,
        "numpy_over_compiled": ratio(numpy_s, medians.get("compiled")),
        "torch_over_compiled": ratio(medians.get("torch"), medians.get("compiled")),
        "onnxruntime_over_compiled": ratio(medians.get("onnxruntime"), medians.get("compiled")),
    }


def measure_peaks(threads, timers, log):
    """The sgemm/dgemm 2048^2 rates at this thread count (and by CPU time at 1 thread)."""
    (sgemm, sgemm_cpu), (dgemm, dgemm_cpu) = timers["float32"].peak_gflops(), timers["float64"].peak_gflops()
    peaks = {"sgemm": sgemm, "dgemm": dgemm}
    if threads == 1:
        peaks.update(sgemm_cpu=sgemm_cpu, dgemm_cpu=dgemm_cpu)
    log(f"{threads} thread(s): sgemm {PEAK_SIZE}^2 {sgemm:.1f} GFLOP/s, dgemm {dgemm:.1f} GFLOP/s"
        + (f" (CPU time: sgemm {sgemm_cpu:.1f}, dgemm {dgemm_cpu:.1f})" if threads == 1 else ""))
    return peaks


def startup_notes(data_note, compiled_note, *column_notes):
    notes = [f"data: {data_note}"]
    if compiled_note:
        notes.append(f"compiled backend not timed: {compiled_note}")
    notes += [note for note in column_notes if note]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if load and load[0] > 0.5 * (os.cpu_count() or 1):
        notes.append(f"machine busy: 1-minute load average {load[0]:.1f} on {os.cpu_count()} CPUs at the start; "
                     "other processes compete for the cores, so multi-threaded figures are noisy")
    return notes, load


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
    onnxruntime, onnx_note = import_onnxruntime(plan.inference != [])
    notes, load = startup_notes(data_note, compiled_note, torch_note, onnx_note)
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
            peaks = measure_peaks(threads, timers, log)
            result["peaks"][str(threads)] = {**peaks, "size": PEAK_SIZE,
                                             "gemm_call_overhead_s": {d: t.call_overhead for d, t in timers.items()}}
            for cell in plan.cells:
                result["train"].append(run_training_cell(cell, threads, X, y, compiled, torch, timers, peaks, plan, log))
                if checkpoint:
                    checkpoint(result)
            for cell in plan.inference:
                row = run_inference_cell(cell, threads, X, compiled, torch, plan, onnxruntime)
                result["inference"].append(row)
                if checkpoint:
                    checkpoint(result)
                log(f"  inference {row['network']} {row['dtype']} t={threads}: images/s " + ", ".join(
                    f"{name} {value:,.0f}" for name, value in row["images_per_s"].items()))
    result["elapsed_s"] = time.perf_counter() - started
    result["load_average"] = {"start": load, "end": os.getloadavg() if load else None}
    result["targets"] = evaluate_targets(result)
    return result
