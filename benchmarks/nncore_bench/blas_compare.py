"""--blas-compare: the same grid in a child process without OPENBLAS_CORETYPE, merged into the report."""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import fmt
from .runner import ratio
from .targets import evaluate_targets, find_row


def blas_compare(result, child_argv, log=print):
    """Run the same plan in a child process with OPENBLAS_CORETYPE unset; merge what it found."""
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    if not coretype:
        return {"note": "OPENBLAS_CORETYPE is not set: the figures above already use the kernels OpenBLAS "
                        "picks for this CPU; nothing to compare.", "rows": []}
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_CORETYPE"}
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "nncore_bench", *child_argv, "--out", tmp, "--no-print"]
        log(f"--blas-compare: running the grid again without OPENBLAS_CORETYPE={coretype} (child process)")
        completed = subprocess.run(command, env=env, cwd=os.getcwd(), check=False)
        if completed.returncode != 0:
            return {"note": f"the child run failed (exit {completed.returncode})", "rows": []}
        child = json.loads(Path(tmp, f"bench-{result['mode']}.json").read_text())
    rows = []
    for row in result["train"]:
        other = find_row(child["train"], row["network"], row["batch_size"], row["dtype"], row["threads"])
        if other is None:
            continue
        configured, unset = row["seconds"].get("compiled"), other["seconds"].get("compiled")
        rows.append({"network": row["network"], "batch_size": row["batch_size"], "dtype": row["dtype"],
                     "threads": row["threads"], "configured_s": configured, "unset_s": unset,
                     "configured_over_unset": ratio(configured, unset),
                     "unset_torch_over_compiled": other.get("torch_over_compiled")})
    child_blas = child["environment"]["scipy_blas"] or {}
    builds = [(env.get("compiled_core") or {}).get("source_hash") for env in (result["environment"], child["environment"])]
    rebuilt = (f" WARNING: the compiled core was rebuilt between the runs (source {builds[0][:12]} here, "
               f"{builds[1][:12]} in the child): the comparison mixes two builds.") if all(builds) and builds[0] != builds[1] else ""
    peaks = {threads: {"configured": result["peaks"].get(threads, {}).get("sgemm"), "unset": peak["sgemm"]}
             for threads, peak in child["peaks"].items()}
    peak_text = "; ".join(f"{t} thread(s) sgemm {fmt(p['configured'], '.0f')} vs {fmt(p['unset'], '.0f')} GFLOP/s"
                          for t, p in peaks.items())
    note = (f"As configured: OPENBLAS_CORETYPE={coretype} ({(result['environment']['scipy_blas'] or {}).get('architecture')}"
            f" kernels). Child without it: {child_blas.get('architecture')} kernels. {peak_text}. "
            "Across two processes absolute times drift (up to 1.5x here); compare the peaks and ratios." + rebuilt)
    return {"note": note, "rows": rows, "peaks": peaks, "child_environment": child["environment"],
            "child_train": child["train"], "child_targets": child["targets"],
            "own_kernel_targets": evaluate_targets(result, own_kernels=child)}


def argv_without(argv, option, takes_value):
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == option:
            skip = takes_value
            continue
        if arg.startswith(option + "="):
            continue
        kept.append(arg)
    return kept
