"""The command line of ``nncore bench`` (and ``python -m nncore_bench``, ``python benchmarks/run.py``)."""
import argparse
import os
import sys
from pathlib import Path

from .blas_compare import argv_without, blas_compare
from .report import markdown_report, write_results
from .runner import make_plan, parse_batch, parse_network, run
from .seed_example import run_seed_example, seed_markdown
from .targets import evaluate_targets
from .thread_scaling import markdown as threads_markdown
from .thread_scaling import run_thread_scaling
from .timers import N_SAMPLES

#: What ``--threads`` alone means: the thread-scaling run (1 thread against the default, idle and busy).
THREAD_SCALING = "scaling"

RESULTS_VARIABLE = "NNCORE_BENCH_RESULTS"


def default_results_directory():
    """``$NNCORE_BENCH_RESULTS`` if set, else the per-user data directory's ``nncore/bench``.

    Not the working directory: a run started anywhere must not scatter result files there.
    Linux: ``$XDG_DATA_HOME/nncore/bench`` (by default ``~/.local/share/nncore/bench``);
    macOS: ``~/Library/Application Support/nncore/bench``; Windows: ``%LOCALAPPDATA%\\nncore\\bench``.
    """
    configured = os.environ.get(RESULTS_VARIABLE)
    if configured:
        return Path(configured).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "nncore" / "bench"


def build_parser():
    parser = argparse.ArgumentParser(
        prog="nncore bench",
        description="Time a training epoch of the compiled core against NumPy (nncore's reference, a careful "
                    "loop, the seeds' formulation) and PyTorch, beside the gemm and FLOP floors.")
    parser.add_argument("--quick", action="store_true", help="a small grid (about a minute): the CI smoke run")
    parser.add_argument("--seed-example", action="store_true",
                        help="time examples/mnist_784_10_10_gd.py's run (compiled vs seed-style NumPy) instead")
    parser.add_argument("--iterations", type=int, default=200,
                        help="--seed-example: iterations measured, scaled to 5000 (default 200)")
    parser.add_argument("--block", type=int, default=25, help="--seed-example: iterations per interleaved turn")
    parser.add_argument("--out", default=None,
                        help=f"results directory (default: ${RESULTS_VARIABLE}, else {default_results_directory()})")
    parser.add_argument("--threads", nargs="?", const=THREAD_SCALING, type=_thread_counts, metavar="N,M",
                        help="alone: time 1 thread against the default, on this machine idle and made busy by two "
                             "competitor processes the benchmark starts (wall and CPU time); with counts: run the "
                             "grid at those thread counts (default: 1 and the configured count)")
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


def _thread_counts(text):
    return THREAD_SCALING if text == THREAD_SCALING else [int(t) for t in text.split(",")]


def run_threads(args, argv, log):
    """``--threads`` alone: the thread-scaling run; returns (result, Markdown)."""
    from nncore import info
    result = run_thread_scaling(args.quick, args.repeats or 5, not args.no_torch, log)
    command = "nncore bench " + " ".join(argv)
    return result, threads_markdown(result, info.format_report(info.collect()), command)


def run_grid(args, argv, out, log):
    """The training/inference grid; returns (result, exit code)."""
    plan = make_plan(args)
    plan.extra["argv"] = argv

    def checkpoint(partial):
        write_results({**partial, "targets": evaluate_targets(partial), "elapsed_s": None, "partial": True}, out)

    result = run(plan, args.data, args.samples, not args.no_torch, log, checkpoint)
    if args.blas_compare:
        child_argv = [arg for arg in argv_without(argv, "--out", takes_value=True) if arg != "--blas-compare"]
        if not args.threads:
            child_argv += ["--threads", ",".join(str(t) for t in plan.threads)]
        result["blas_compare"] = blas_compare(result, child_argv, log)
        if result["blas_compare"].get("own_kernel_targets"):
            result["targets"] = [t for t in result["targets"] if "own kernels" not in t["target"]] + [
                t for t in result["blas_compare"]["own_kernel_targets"] if "own kernels" in t["target"]]
    return result, markdown_report(result)


def main(argv=None):
    """``nncore bench``: run, print the table, write JSON and Markdown. Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    log = (lambda *a, **k: None) if args.no_print else (lambda text="": print(text, flush=True))
    out = Path(args.out) if args.out else default_results_directory()
    if args.threads == THREAD_SCALING:
        result, markdown = run_threads(args, argv, log)
    elif args.seed_example:
        if args.iterations < 1 or args.block < 1:
            build_parser().error("--iterations and --block must be positive")
        result = run_seed_example(args.iterations, args.block, args.threads or [1], args.data, log)
        markdown = seed_markdown(result)
    else:
        result, markdown = run_grid(args, argv, out, log)
    json_path, md_path = write_results(result, out, markdown)
    log("")
    log(markdown)
    log(f"wrote {json_path} and {md_path}")
    return 0
