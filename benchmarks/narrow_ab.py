"""What the narrow-layer kernels buy: the compiled core's epoch with them (its defaults) and with
every product on BLAS (as before them), interleaved in one process, 1 BLAS thread.

    python benchmarks/narrow_ab.py [--rounds 5]

Prints the median wall and CPU seconds per epoch of each and their ratio, per cell. The two
compute the same epoch from the same start; only the kernels differ.
"""
import argparse
import statistics
import time

import numpy as np
from nncore_bench.candidates import BackendTrainer
from nncore_bench.environment import load_data
from threadpoolctl import threadpool_limits

from nncore import _core
from nncore.backends import get_backend

CELLS = [((784, 10, 10), 32, "float32"), ((784, 10, 10), None, "float32"), ((784, 10, 10), None, "float64"),
         ((784, 128, 10), 128, "float32")]
PATHS = {"narrow": (_core.NARROW_MAX_WIDTH, _core.NARROW_FORWARD_MAX_WIDTH), "blas": (0, 0)}


def timed_epoch(trainer, path):
    _core.NARROW_MAX_WIDTH, _core.NARROW_FORWARD_MAX_WIDTH = PATHS[path]
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.run()
    return time.perf_counter() - wall, time.process_time() - cpu


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    X, y, _ = load_data("mnist", 60_000)
    backend = get_backend("cython")
    print("| network | batch | dtype | narrow s (CPU s) | BLAS-only s (CPU s) | BLAS-only / narrow (CPU) |")
    print("|---|---|---|---|---|---|")
    with threadpool_limits(limits=1, user_api="blas"):
        for layer_sizes, batch_size, dtype in CELLS:
            trainers = {path: BackendTrainer(backend, layer_sizes, dtype, X, y, batch_size) for path in PATHS}
            times = {path: [] for path in PATHS}
            for path, trainer in trainers.items():
                timed_epoch(trainer, path)  # warm-up
            for _ in range(args.rounds):
                for path, trainer in trainers.items():
                    times[path].append(timed_epoch(trainer, path))
            wall = {p: statistics.median(t[0] for t in times[p]) for p in PATHS}
            cpu = {p: statistics.median(t[1] for t in times[p]) for p in PATHS}
            # Same work: after the epochs the two agree as the backend contract measures (max |diff| / max |value|).
            difference = np.abs(trainers["narrow"].params - trainers["blas"].params).max()
            assert difference <= (1e-3 if dtype == "float32" else 1e-8) * np.abs(trainers["blas"].params).max()
            print(f"| {'-'.join(map(str, layer_sizes))} | {batch_size or 'full'} | {dtype} | {wall['narrow']:.4f} "
                  f"({cpu['narrow']:.4f}) | {wall['blas']:.4f} ({cpu['blas']:.4f}) | "
                  f"{wall['blas'] / wall['narrow']:.2f} ({cpu['blas'] / cpu['narrow']:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
