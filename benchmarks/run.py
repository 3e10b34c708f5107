"""Run the nncore benchmark from a checkout (the same as ``nncore bench``).

    python benchmarks/run.py            # the full grid, 1 and N BLAS threads (~10 minutes)
    python benchmarks/run.py --quick    # the CI smoke subset (about a minute)
    python benchmarks/run.py --blas-compare   # also rerun without OPENBLAS_CORETYPE, in a child
    python benchmarks/run.py --seed-example   # examples/mnist_784_10_10_gd.py's run, compiled vs seed-style

Results go to $NNCORE_BENCH_RESULTS, else the per-user data directory (``--out DIR`` to choose;
``--out benchmarks/results`` to refresh the recorded ones). The package is benchmarks/nncore_bench,
imported from here even when nncore was installed without it.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nncore_bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
