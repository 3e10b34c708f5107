"""The benchmark's report: one line per cell while it runs, then Markdown and JSON files."""
import json
from pathlib import Path

from nncore._atomic import atomic_write_bytes

from .candidates import NUMPY_CANDIDATES
from .environment import describe_blas
from .timers import PEAK_SIZE

NUMPY_LABELS = {"numpy": "NumPy backend", "careful_numpy": "careful NumPy", "seed_numpy": "seed-style NumPy"}


def fmt(value, spec=".3g", none="-"):
    return none if value is None else format(value, spec)


def format_training_row(row):
    s = row["seconds"]
    numpy_part = ", ".join(f"{name} {fmt(s.get(name))} s" for name in NUMPY_CANDIDATES if name in s)
    return (f"  {row['network']:>14} b={row['batch_size']:>5} {row['dtype']} t={row['threads']}: "
            f"compiled {fmt(s.get('compiled'))} s, {numpy_part}, torch {fmt(s.get('torch'))} s, "
            f"floor {fmt(row['gemm_floor_s'])} s | fastest numpy/compiled {fmt(row['numpy_over_compiled'])}, "
            f"torch/compiled {fmt(row['torch_over_compiled'])}, compiled/floor {fmt(row['compiled_over_gemm_floor'])}"
            f" ({row['rounds']} rounds)")


def _header(result):
    env = result["environment"]
    lines = [f"# nncore benchmark ({result['mode']} run, {result['created']})", "",
             f"- command: `{result['command']}`",
             f"- CPU: {env['cpu_model']}, {env['cpu_count']} logical CPUs, avx2={env['cpu_flags'].get('avx2')}, "
             f"avx512f={env['cpu_flags'].get('avx512f')}",
             f"- BLAS (SciPy's, used by the compiled core): {describe_blas(env)}",
             f"- nncore {env['nncore_version']}, NumPy {env['numpy']}, SciPy {env['scipy']}, "
             f"PyTorch {result['torch_version'] or 'not installed'}, Python {env['python']}",
             f"- data: {result['data']}",
             f"- training: SGD lr={result['learning_rate']}, cross-entropy; one epoch over all samples, "
             "median of interleaved rounds after a warm-up",
             "- NumPy candidates: nncore's NumPy backend (the specification); careful NumPy (float copy of X made "
             "once, `X[rows] @ W`, in-place ReLU, softmax and update); seed-style NumPy (full batch only: X as "
             "(784, N), one-hot Y, `W @ X + b`, one step per epoch). NumPy / compiled is the FASTEST of them "
             "over compiled",
             "- gemm floor: the epoch's matrix products (forward X.W, dW = A^T.dZ per layer, dX = dZ.W^T past the "
             "first layer, one call per batch, last partial batch included) at this machine's measured rate per "
             "shape through SciPy's BLAS, wrapper overhead removed; core products-only: the compiled epoch's own "
             "products (BLAS and narrow kernels, in its layout, order and chunks) with nothing else, "
             "`nncore._core.train_epoch(products_only=True)` on one thread; FLOP floor: the epoch's FLOPs at the 2048² gemm peak of the "
             "cell's dtype (sgemm for float32, dgemm for float64)", ""]
    if result.get("partial"):
        lines += ["> PARTIAL: the run is still going (or was interrupted); these are the cells done so far.", ""]
    if env.get("kernel_note"):
        lines += [f"> {env['kernel_note']}", ""]
    for note in result["notes"][1:]:
        lines += [f"> {note}", ""]
    return lines


def _training_table(rows):
    lines = ["| network | batch | dtype | compiled s/epoch | NumPy backend s | careful NumPy s | seed-style NumPy s "
             "| fastest NumPy / compiled | PyTorch s | PyTorch / compiled | gemm floor s | compiled / gemm floor "
             "| core gemm-only s | compiled / FLOP floor | compiled GFLOP/s | % of peak | rounds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        s = row["seconds"]
        fraction = row["compiled_fraction_of_peak"]
        lines.append(
            f"| {row['network']} | {row['batch_size']} | {row['dtype']} | {fmt(s.get('compiled'), '.4f')} "
            f"| {fmt(s.get('numpy'), '.4f')} | {fmt(s.get('careful_numpy'), '.4f')} "
            f"| {fmt(s.get('seed_numpy'), '.4f')} | {fmt(row['numpy_over_compiled'], '.2f')} "
            f"| {fmt(s.get('torch'), '.4f')} | {fmt(row['torch_over_compiled'], '.2f')} "
            f"| {fmt(row['gemm_floor_s'], '.4f')} | {fmt(row['compiled_over_gemm_floor'], '.2f')} "
            f"| {fmt(row.get('core_gemm_sequence_s'), '.4f')} | {fmt(row['compiled_over_flop_floor'], '.2f')} "
            f"| {fmt(row['compiled_gflops'], '.1f')} | {fmt(None if fraction is None else 100 * fraction, '.0f')} "
            f"| {row['rounds']} |")
    for row in rows:
        for name, why in (row.get("skipped") or {}).items():
            lines.append(f"\n> {row['network']} batch {row['batch_size']} {row['dtype']}: {name} {why}")
    return lines


def _inference_table(rows, threads):
    lines = ["", f"### Inference (forward only, batch {rows[0]['batch_size']}), {threads} thread(s)", "",
             "| network | dtype | compiled images/s | NumPy backend images/s | careful NumPy images/s "
             "| PyTorch images/s | ONNX Runtime images/s | fastest NumPy / compiled | PyTorch / compiled "
             "| ONNX Runtime / compiled |", "|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        ips = row["images_per_s"]
        lines.append(f"| {row['network']} | {row['dtype']} | {fmt(ips.get('compiled'), ',.0f')} "
                     f"| {fmt(ips.get('numpy'), ',.0f')} | {fmt(ips.get('careful_numpy'), ',.0f')} "
                     f"| {fmt(ips.get('torch'), ',.0f')} | {fmt(ips.get('onnxruntime'), ',.0f')} "
                     f"| {fmt(row['numpy_over_compiled'], '.2f')} | {fmt(row['torch_over_compiled'], '.2f')} "
                     f"| {fmt(row.get('onnxruntime_over_compiled'), '.2f')} |")
    return lines


def _cpu_table(rows):
    lines = ["## CPU-time cross-check, 1 thread", "",
             "Process CPU seconds per epoch: unlike wall time, they do not count time spent waiting for a "
             "core that other processes hold, so on a busy machine these ratios are the steadier ones. "
             "FLOP floor: the epoch's gemm FLOPs at the CPU-time 2048² gemm rate of the cell's dtype.", "",
             "| network | batch | dtype | compiled CPU s | fastest NumPy CPU s (which) | PyTorch CPU s "
             "| fastest NumPy / compiled | seed-style / compiled | PyTorch / compiled | gemm floor CPU s "
             "| compiled / gemm floor | compiled / FLOP floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cpu = row["cpu_seconds"]
        fastest = row.get("cpu_fastest_numpy")
        lines.append(f"| {row['network']} | {row['batch_size']} | {row['dtype']} | {fmt(cpu.get('compiled'), '.4f')} "
                     f"| {fmt(cpu.get(fastest), '.4f')} ({NUMPY_LABELS.get(fastest, '-')}) "
                     f"| {fmt(cpu.get('torch'), '.4f')} | {fmt(row.get('cpu_numpy_over_compiled'), '.2f')} "
                     f"| {fmt(row.get('cpu_seed_numpy_over_compiled'), '.2f')} "
                     f"| {fmt(row.get('cpu_torch_over_compiled'), '.2f')} | {fmt(row.get('gemm_floor_cpu_s'), '.4f')} "
                     f"| {fmt(row.get('cpu_compiled_over_gemm_floor'), '.2f')} "
                     f"| {fmt(row.get('compiled_cpu_over_flop_floor'), '.2f')} |")
    return lines + [""]


def _blas_compare_table(compare):
    lines = ["## OpenBLAS kernels: as configured vs OPENBLAS_CORETYPE unset (child process)", "", compare["note"], ""]
    if compare.get("rows"):
        lines += ["| network | batch | dtype | threads | compiled s (configured) | compiled s (unset) "
                  "| configured / unset | PyTorch / compiled (unset) |", "|---|---|---|---|---|---|---|---|"]
        for row in compare["rows"]:
            lines.append(f"| {row['network']} | {row['batch_size']} | {row['dtype']} | {row['threads']} "
                         f"| {fmt(row['configured_s'], '.4f')} | {fmt(row['unset_s'], '.4f')} "
                         f"| {fmt(row['configured_over_unset'], '.2f')} "
                         f"| {fmt(row['unset_torch_over_compiled'], '.2f')} |")
        lines.append("")
    return lines


def _targets_table(targets):
    lines = ["## Targets", "", "| target | cell | value | bound | holds |", "|---|---|---|---|---|"]
    for target in targets:
        holds = {True: "yes", False: "**no**", None: "not measured"}[target["holds"]]
        lines.append(f"| {target['target']} | {target['cell']} | {fmt(target['value'], '.2f')} "
                     f"| {target['bound']} | {holds} |")
    return lines


def markdown_report(result):
    lines = _header(result)
    for threads, peak in result["peaks"].items():
        lines += [f"## Training, {threads} thread(s)", "",
                  f"Peak reference: sgemm {PEAK_SIZE}² {peak['sgemm']:.1f} GFLOP/s, dgemm {peak['dgemm']:.1f} GFLOP/s"
                  + (f" (by CPU time, what an uncontended core does: sgemm {peak['sgemm_cpu']:.1f}, "
                     f"dgemm {peak['dgemm_cpu']:.1f})." if "sgemm_cpu" in peak else "."), ""]
        lines += _training_table([row for row in result["train"] if str(row["threads"]) == threads])
        inference = [row for row in result["inference"] if str(row["threads"]) == threads]
        if inference:
            lines += _inference_table(inference, threads)
        lines.append("")
    single = [row for row in result["train"] if row["threads"] == 1 and row.get("cpu_seconds")]
    if single:
        lines += _cpu_table(single)
    if result.get("blas_compare"):
        lines += _blas_compare_table(result["blas_compare"])
    lines += _targets_table(result["targets"])
    lines += ["", "Ratios are within one process (interleaved, so drift cancels); absolute seconds swing "
              "up to 1.5x between processes on shared machines.", ""]
    return "\n".join(lines)


def write_results(result, out, markdown=None):
    """``<out>/bench-<mode>.json`` and ``.md`` (``markdown``, else the grid's report), each written
    atomically; returns their paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{result['mode']}"
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    atomic_write_bytes(json_path, (json.dumps(result, indent=1, default=str) + "\n").encode())
    atomic_write_bytes(md_path, (markdown if markdown is not None else markdown_report(result)).encode())
    return json_path, md_path
