"""nncore's benchmark (``nncore bench``): the compiled core against NumPy and PyTorch, and the floors.

It lives beside the library, not inside it (benchmarks/nncore_bench in the source tree; a
``pip install`` of nncore installs it as the top-level package ``nncore_bench``). What it
measures, in ONE process, candidates interleaved round-robin after a warm-up, medians:

* seconds per training epoch (SGD, cross-entropy) for the compiled backend, nncore's NumPy
  backend, a careful NumPy loop, the seeds' full-batch NumPy step and PyTorch CPU (when
  installed), over a grid of networks, batch sizes and dtypes, at each BLAS thread count;
* the epoch's gemm floor (this machine's BLAS doing only the epoch's products) and FLOP floor;
* forward-only inference (images/s);
* the machine's sgemm/dgemm 2048^2 rates, the peaks the GFLOP/s are quoted against;
* with ``--seed-example``, examples/mnist_784_10_10_gd.py's run end to end.

Modules: flops (the products of an epoch), timers, candidates / numpy_baselines /
torch_candidates, runner (the grid), targets (the project's bounds), report, blas_compare,
seed_example, cli.
"""
from .cli import main

__all__ = ["main"]
