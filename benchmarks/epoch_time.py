"""Seconds per training epoch of the compiled core for the cells of issue 13, by whichever nncore
Python imports, so that two builds can be compared on the same machine in alternating runs:

    python benchmarks/epoch_time.py [--epochs 6] [--threads 1]        # this checkout's build
    PYTHONPATH=/path/to/other/checkout python benchmarks/epoch_time.py  # another build in place

Prints the median wall and process CPU microseconds per training row of each cell (``--threads``
BLAS and OpenMP threads, default 1; SGD lr 0.01, real MNIST), after a warm-up, and where nncore
was imported from. Run the
two builds in turn, twice or more: on a shared machine only repeated alternation says which is
faster.
"""
import argparse
import statistics
import time

import nncore
from nncore import _core  # noqa: F401  -- its OpenMP runtime loaded before threadpool_limits, or it escapes them
from nncore_bench.candidates import BackendTrainer
from nncore_bench.environment import load_data
from threadpoolctl import threadpool_limits

from nncore.backends import get_backend

CELLS = [((784, 10, 10), 32, "float32"), ((784, 10, 10), None, "float32"), ((784, 10, 10), None, "float64"),
         ((784, 128, 10), 128, "float32")]


def label(layer_sizes, batch_size, dtype):
    return f"{'-'.join(map(str, layer_sizes))} batch {batch_size or 'full'} {dtype}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    X, y, _ = load_data("mnist", 60_000)
    print(f"nncore from {nncore.__file__}, {args.threads} thread(s)")
    with threadpool_limits(args.threads):
        for layer_sizes, batch_size, dtype in CELLS:
            trainer = BackendTrainer(get_backend("cython"), layer_sizes, dtype, X, y, batch_size)
            trainer.warm_up(4096)
            wall, cpu = [], []
            for _ in range(args.epochs):
                began, cpu_began = time.perf_counter(), time.process_time()
                trainer.run()
                wall.append(time.perf_counter() - began)
                cpu.append(time.process_time() - cpu_began)
            per_row = 1e6 / len(X)
            print(f"{label(layer_sizes, batch_size, dtype)}: {statistics.median(wall) * per_row:.3f} us/row wall, "
                  f"{statistics.median(cpu) * per_row:.3f} CPU, min {min(wall) * per_row:.3f}", flush=True)


if __name__ == "__main__":
    main()
