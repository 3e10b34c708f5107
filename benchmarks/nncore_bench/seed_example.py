"""``nncore bench --seed-example``: the seeds' workload as a user sees it, end to end.

examples/mnist_784_10_10_gd.py trains 784-10-10 (Xavier init, seed 0) with full-batch
gradient descent, lr 0.25, for 5,000 iterations through the public API (``MLP.fit``, one
epoch per iteration). Here the same run, from the same initial weights, goes through:

* compiled, float32: the example exactly as shipped (``nncore.MLP`` defaults to float32);
* compiled, float64: the same in the seeds' precision;
* seed-style NumPy, float64: the seeds' own loop (numpy_baselines.SeedStyleTrainer).

The candidates take turns in blocks of iterations (interleaved, so machine drift hits them
alike); the seconds per iteration are the median over blocks, and "seconds for 5,000" is
that times 5,000 (say ``--iterations 5000`` to run them all). The float64 runs compute the
same maths from the same start, so their final parameters are compared as a check that the
baseline does the same work.
"""
import statistics
import time
from datetime import datetime, timezone

import numpy as np

import nncore

from .environment import describe_blas, environment_summary, load_data
from .numpy_baselines import SeedStyleTrainer
from .report import fmt
from .targets import SEED_EXAMPLE_SPEEDUP

LAYER_SIZES = (784, 10, 10)
EXAMPLE_ITERATIONS = 5000
EXAMPLE_LR = 0.25


class CompiledExample:
    """The example's own calls: an MLP and ``fit`` for a block of full-batch epochs."""

    def __init__(self, dtype, X, y):
        self.model = nncore.MLP(list(LAYER_SIZES), init="xavier", seed=0, dtype=dtype)
        self.optimizer = nncore.SGD(lr=EXAMPLE_LR)
        self.X, self.y = X, y

    def run(self, iterations):
        self.model.fit(self.X, self.y, epochs=iterations, batch_size=None, optimizer=self.optimizer,
                       loss="cross_entropy", backend="cython")

    def accuracy(self):
        return float(np.mean(self.model.predict(self.X, backend="cython") == self.y))


class SeedStyleExample:
    """The seeds' loop from the example's initial weights, one step per iteration."""

    def __init__(self, X, y, initial_params):
        self.trainer = SeedStyleTrainer(LAYER_SIZES, "float64", X, y, lr=EXAMPLE_LR, params=initial_params)
        self.y = y

    def run(self, iterations):
        for _ in range(iterations):
            self.trainer.run()

    def accuracy(self):
        probabilities = self.trainer.forward(self.trainer.X)[2]
        return float(np.mean(probabilities.argmax(axis=0) == self.y))


def time_blocks(candidates, iterations, block):
    """Interleaved blocks; returns {name: (median wall s per iteration, median CPU s per iteration)}."""
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    for candidate in candidates.values():
        candidate.run(1)  # warm-up: page the data in, start BLAS
    done = 0
    while done < iterations:
        count = min(block, iterations - done)
        for name, candidate in candidates.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            candidate.run(count)
            wall[name].append((time.perf_counter() - start) / count)
            cpu[name].append((time.process_time() - cpu_start) / count)
        done += count
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in candidates}


def run_seed_example(iterations, block, threads, data_choice, log=print):
    """The measurement at each thread count; returns the result dictionary."""
    from threadpoolctl import threadpool_limits
    X, y, data_note = load_data(data_choice, 60_000)
    result = {"mode": "seed-example", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "environment": environment_summary(), "data": data_note, "iterations_measured": iterations,
              "block": block, "scaled_to": EXAMPLE_ITERATIONS, "rows": []}
    log(f"seed example: {iterations} iterations in blocks of {block}, scaled to {EXAMPLE_ITERATIONS}; "
        f"BLAS: {describe_blas(result['environment'])}")
    for thread_count in threads:
        with threadpool_limits(limits=thread_count):
            compiled64 = CompiledExample("float64", X, y)
            candidates = {"compiled float32": CompiledExample("float32", X, y), "compiled float64": compiled64,
                          "seed-style NumPy float64": SeedStyleExample(X, y, compiled64.model.params.copy())}
            timings = time_blocks(candidates, iterations, block)
            seed_params = candidates["seed-style NumPy float64"].trainer.flat_params()
            difference = float(np.max(np.abs(compiled64.model.params - seed_params)) / np.max(np.abs(seed_params)))
            row = {"threads": thread_count, "parameter_difference_f64": difference,
                   "candidates": {name: {"seconds_per_iteration": wall, "cpu_seconds_per_iteration": cpu_s,
                                         "seconds_for_example": wall * EXAMPLE_ITERATIONS,
                                         "train_accuracy_after": candidate.accuracy()}
                                  for (name, (wall, cpu_s)), candidate in zip(timings.items(), candidates.values())}}
            seed = row["candidates"]["seed-style NumPy float64"]["seconds_per_iteration"]
            for name in ("compiled float32", "compiled float64"):
                row["candidates"][name]["seed_style_over_this"] = seed / row["candidates"][name]["seconds_per_iteration"]
            result["rows"].append(row)
            log(format_seed_row(row))
    return result


def format_seed_row(row):
    parts = [f"{name} {fmt(c['seconds_for_example'], '.1f')} s" for name, c in row["candidates"].items()]
    return (f"  {row['threads']} thread(s): " + ", ".join(parts)
            + f" | seed-style / compiled f32 {fmt(row['candidates']['compiled float32']['seed_style_over_this'], '.2f')}"
            + f", f64 {fmt(row['candidates']['compiled float64']['seed_style_over_this'], '.2f')}")


def seed_markdown(result):
    lines = [f"# nncore seed example ({result['created']})", "",
             f"- examples/mnist_784_10_10_gd.py's run: 784-10-10, Xavier init (seed 0), full-batch GD, lr {EXAMPLE_LR}, "
             f"through `MLP.fit`; {result['iterations_measured']} iterations measured in interleaved blocks of "
             f"{result['block']}, seconds scaled to {result['scaled_to']} iterations",
             f"- BLAS: {describe_blas(result['environment'])}; data: {result['data']}", "",
             "| threads | candidate | s for 5,000 iterations | ms per iteration | CPU ms per iteration "
             "| seed-style / this | train accuracy after the measured iterations |", "|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        for name, c in row["candidates"].items():
            lines.append(f"| {row['threads']} | {name} | {fmt(c['seconds_for_example'], '.1f')} "
                         f"| {fmt(1e3 * c['seconds_per_iteration'], '.2f')} "
                         f"| {fmt(1e3 * c['cpu_seconds_per_iteration'], '.2f')} "
                         f"| {fmt(c.get('seed_style_over_this'), '.2f')} | {c['train_accuracy_after']:.2%} |")
    lines += ["", f"Target: the example (compiled, as shipped) >= {SEED_EXAMPLE_SPEEDUP}x faster than seed-style NumPy. "
              "Largest parameter difference, compiled float64 vs seed-style float64, relative to the largest "
              "parameter: " + ", ".join(f"{fmt(row['parameter_difference_f64'], '.1e')} at {row['threads']} thread(s)"
                                      for row in result["rows"]), ""]
    return "\n".join(lines)
