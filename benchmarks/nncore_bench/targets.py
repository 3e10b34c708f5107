"""The project's performance targets, as data, and how a run is held against them.

Each target names a training cell, a figure of its row (runner.run_training_cell), a bound
and the BLAS thread counts it applies to. NumPy ratios are against the FASTEST NumPy
candidate of the cell (nncore's NumPy backend, the careful loop, the seed-style step), so
they do not overstate the gain. Targets that need "the CPU's own kernels" are read from a
run without OPENBLAS_CORETYPE (this one, or the --blas-compare child).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    name: str
    network: str
    batch: str
    dtype: str
    key: str           # the row's figure
    op: str            # "<=" or ">="
    bound: float
    threads: tuple = ()  # the thread counts it applies to; () for every one in the run
    own_kernels: bool = False  # read from a run with OpenBLAS's own choice of kernels


TARGETS = (
    # issue 13: where the seed projects live (narrow layers, full batch)
    Target("compiled / FLOP floor", "784-10-10", "32", "float32", "compiled_over_flop_floor", "<=", 2.0, (1,)),
    Target("fastest NumPy / compiled", "784-10-10", "32", "float32", "numpy_over_compiled", ">=", 5.0, (1,)),
    Target("compiled / FLOP floor", "784-10-10", "full", "float32", "compiled_over_flop_floor", "<=", 1.6, (1,)),
    Target("compiled / FLOP floor", "784-10-10", "full", "float64", "compiled_over_flop_floor", "<=", 1.6, (1,)),
    Target("seed-style NumPy / compiled", "784-10-10", "full", "float32", "seed_numpy_over_compiled", ">=", 3.0, (1,)),
    Target("seed-style NumPy / compiled", "784-10-10", "full", "float64", "seed_numpy_over_compiled", ">=", 3.0, (1,)),
    Target("seed-style NumPy / compiled", "784-10-10", "full", "float32", "seed_numpy_over_compiled", ">=", 2.5, (2,)),
    Target("seed-style NumPy / compiled", "784-10-10", "full", "float64", "seed_numpy_over_compiled", ">=", 2.5, (2,)),
    Target("compiled / FLOP floor", "784-128-10", "128", "float32", "compiled_over_flop_floor", "<=", 1.12, (1,)),
    Target("fastest NumPy / compiled", "784-128-10", "128", "float32", "numpy_over_compiled", ">=", 1.0, (2,)),
    # earlier targets, NumPy ratios now against the fastest NumPy candidate
    Target("compiled / gemm floor", "784-128-10", "128", "float32", "compiled_over_gemm_floor", "<=", 1.25),
    Target("fastest NumPy / compiled", "784-128-10", "128", "float32", "numpy_over_compiled", ">=", 1.8),
    Target("PyTorch / compiled (as configured)", "784-128-10", "128", "float32", "torch_over_compiled", ">=", 2.0),
    Target("PyTorch / compiled (CPU's own kernels)", "784-128-10", "128", "float32", "torch_over_compiled", ">=", 2.5,
           own_kernels=True),
    Target("compiled / FLOP floor (CPU's own kernels)", "784-128-10", "128", "float32", "compiled_over_flop_floor",
           "<=", 2.0, own_kernels=True),
)

# The process-CPU-time twin of a figure: at 1 thread it does not count time the process spent
# descheduled, so on a shared machine it is the steadier reading of the same target.
CPU_TWINS = {
    "compiled_over_flop_floor": "compiled_cpu_over_flop_floor",
    "compiled_over_gemm_floor": "cpu_compiled_over_gemm_floor",
    "numpy_over_compiled": "cpu_numpy_over_compiled",
    "seed_numpy_over_compiled": "cpu_seed_numpy_over_compiled",
    "torch_over_compiled": "cpu_torch_over_compiled",
}

# The seeds' 5,000-iteration example, compiled vs the seed-style loop (``--seed-example``).
SEED_EXAMPLE_SPEEDUP = 3.0


def find_row(rows, network, batch_size, dtype, threads):
    for row in rows:
        if (row["network"], row["batch_size"], row["dtype"], row["threads"]) == (network, batch_size, dtype, threads):
            return row
    return None


def _check(target, source, threads, key, name):
    row = find_row(source["train"], target.network, target.batch, target.dtype, threads) if source else None
    value = row.get(key) if row else None
    holds = None if value is None else (value <= target.bound if target.op == "<=" else value >= target.bound)
    return {"target": name, "value": value, "bound": f"{target.op} {target.bound}", "holds": holds,
            "threads": threads, "cell": f"{target.network} batch {target.batch} {target.dtype}, {threads} thread(s)"}


def evaluate_targets(result, own_kernels=None):
    """Every target at every thread count of this run it applies to (wall time, and CPU time at 1 thread).

    The "CPU's own kernels" targets use ``own_kernels`` (the --blas-compare child's result), or
    this run itself when OPENBLAS_CORETYPE is not set; otherwise they are "not measured".
    """
    own = own_kernels if own_kernels is not None else (
        result if not result["environment"].get("openblas_coretype") else None)
    checks = []
    for threads in sorted({row["threads"] for row in result["train"]}):
        for target in TARGETS:
            if target.threads and threads not in target.threads:
                continue
            source = own if target.own_kernels else result
            checks.append(_check(target, source, threads, target.key, target.name))
            if threads == 1 and target.key in CPU_TWINS:
                checks.append(_check(target, source, threads, CPU_TWINS[target.key], target.name + ", CPU time"))
    return checks
