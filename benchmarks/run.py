"""Run the nncore benchmark (the same as ``nncore bench``); results go to benchmarks/results/.

    python benchmarks/run.py            # the full grid, 1 and N BLAS threads (~10 minutes)
    python benchmarks/run.py --quick    # the CI smoke subset (under a minute)
    python benchmarks/run.py --blas-compare   # also rerun without OPENBLAS_CORETYPE, in a child

See ``python benchmarks/run.py --help`` for the options.
"""
import sys

from nncore.bench import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
