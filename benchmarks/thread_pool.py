"""Where splitting a step over threads starts to pay, and how long a waiting thread should spin.

    python benchmarks/thread_pool.py [--threads 2] [--spins 0,20,100] [--rounds 5]

For networks of growing width and batches of growing size, times an epoch of the compiled core
with the step forced onto one thread and forced onto ``--threads`` (MIN_THREAD_WORK = 0, so
even tiny steps split), alternating, and prints the step's multiply-adds per thread beside the
speed-up: nncore._core.MIN_THREAD_WORK is set just above the largest work per thread that
still lost. Then the same split steps with each barrier spin of ``--spins`` microseconds
(nncore._core.spin_microseconds), wall and CPU time. Run it on an idle machine; run it again
with competitors (``--busy``: two CPU-bound processes) to see what a spin costs there.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import nncore  # noqa: E402
from nncore import _core  # noqa: E402
from nncore.backends import get_backend  # noqa: E402
from nncore.losses import get_loss  # noqa: E402
from nncore_bench.thread_scaling import Competitors  # noqa: E402

NETWORKS = [(784, 10, 10), (784, 32, 10), (784, 64, 10), (784, 128, 10), (784, 256, 128, 10)]
BATCHES = [16, 32, 64, 128, 256]


def epoch_seconds(network, X, y, batch_size, n_threads, epoch):
    """(wall, CPU) seconds of one Adam epoch over X on ``n_threads``."""
    model = nncore.MLP(network, seed=0)
    optimizer = nncore.Adam()
    optimizer.ensure_state(model.n_parameters, model.dtype)
    backend = get_backend("cython", n_threads)
    wall, cpu = time.perf_counter(), time.process_time()
    backend.train_epoch(model.network, model.params, optimizer, X, y, batch_size, epoch, get_loss("cross_entropy"))
    return time.perf_counter() - wall, time.process_time() - cpu


def crossover(threads, rounds, rows):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (rows, 784), dtype=np.uint8)
    y = rng.integers(0, 10, rows).astype(np.int32)
    _core.MIN_THREAD_WORK = 0
    print(f"{'network':>16} {'batch':>5} {'work/thread':>12} {'1 thread s':>10} {threads} threads s  speed-up")
    for network in NETWORKS:
        per_row = 3 * sum(a * b for a, b in zip(network[:-1], network[1:]))
        for batch in BATCHES:
            samples = {1: [], threads: []}
            for round_ in range(rounds + 1):
                for n in (1, threads):
                    seconds = epoch_seconds(network, X, y, batch, n, round_)[0]
                    if round_:  # the first round warms up
                        samples[n].append(seconds)
            one, many = statistics.median(samples[1]), statistics.median(samples[threads])
            print(f"{'-'.join(map(str, network)):>16} {batch:>5} {per_row * batch // threads:>12,} {one:>10.4f} "
                  f"{many:>10.4f}  {one / many:6.2f}x", flush=True)


def spins(threads, spin_values, rounds, rows):
    rng = np.random.default_rng(1)
    X = rng.integers(0, 256, (rows, 784), dtype=np.uint8)
    y = rng.integers(0, 10, rows).astype(np.int32)
    for network, batch in [((784, 256, 128, 10), 128), ((784, 128, 10), 128), ((784, 10, 10), 128)]:
        samples = {spin: [] for spin in spin_values}
        for round_ in range(rounds + 1):
            for spin in spin_values:
                _core.spin_microseconds(spin)
                seconds = epoch_seconds(network, X, y, batch, threads, round_)
                if round_:
                    samples[spin].append(seconds)
        line = ", ".join(f"spin {spin} us: {statistics.median(w for w, _ in s):.4f} s wall "
                         f"{statistics.median(c for _, c in s):.4f} s CPU" for spin, s in samples.items())
        print(f"{'-'.join(map(str, network)):>16} b={batch}: {line}", flush=True)


def identity(threads, rounds, rows):
    """What making results identical across thread counts would cost at one thread: each step cut
    as for ``threads`` threads (chunks, runs, their gradients added in order) but run on one."""
    rng = np.random.default_rng(2)
    X = rng.integers(0, 256, (rows, 784), dtype=np.uint8)
    y = rng.integers(0, 10, rows).astype(np.int32)
    for network, batch in [((784, 1024, 1024, 10), 128), ((784, 256, 128, 10), 128), ((784, 128, 10), 128),
                           ((784, 10, 10), 32), ((784, 10, 10), rows)]:
        samples = {"1 thread's cut": [], f"{threads} threads' cut on 1": []}
        for round_ in range(rounds + 1):
            for name in samples:
                _core.SERIAL_TEAMS = name != "1 thread's cut"
                seconds = epoch_seconds(network, X, y, batch, 1 if not _core.SERIAL_TEAMS else threads, round_)[0]
                if round_:
                    samples[name].append(seconds)
        _core.SERIAL_TEAMS = False
        own, other = (statistics.median(s) for s in samples.values())
        print(f"{'-'.join(map(str, network)):>16} b={batch}: 1 thread's cut {own:.4f} s, {threads} threads' cut on one "
              f"thread {other:.4f} s: {100 * (other / own - 1):+.1f}%", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--spins", default="0,5,20,100")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rows", type=int, default=12_800)
    parser.add_argument("--busy", action="store_true", help="two CPU-bound competitor processes meanwhile")
    parser.add_argument("--no-crossover", action="store_true")
    parser.add_argument("--identity", action="store_true", help="only: the cost of one cut for every thread count")
    args = parser.parse_args()
    default_spin = _core.spin_microseconds()
    if args.identity:
        identity(args.threads, args.rounds, args.rows)
        return
    with Competitors() if args.busy else _Nothing():
        if not args.no_crossover:
            crossover(args.threads, args.rounds, args.rows)
        spins(args.threads, [int(s) for s in args.spins.split(",")], args.rounds, args.rows)
    _core.spin_microseconds(default_spin)


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


if __name__ == "__main__":
    main()
