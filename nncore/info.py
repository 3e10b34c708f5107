"""``nncore info``: the build, the libraries and the machine a timing depends on.

Above all it answers "which BLAS kernels run here, and are they the best this CPU can run?":
OpenBLAS picks its kernels by CPU type at load time, and ``OPENBLAS_CORETYPE`` in the
environment overrides that choice (CI machines set it to Haswell, so an AVX-512 CPU runs AVX2
kernels at about half the sgemm rate). The setting is respected, only reported.
"""
import os
import platform
import sys
from pathlib import Path

# OpenBLAS kernel (core) names, lower-case, by the widest vector extension their kernels use.
# Names not listed make no claim either way.
OPENBLAS_CORE_ISA = {
    **dict.fromkeys(("skylakex", "cooperlake", "sapphirerapids"), "avx512"),
    **dict.fromkeys(("haswell", "zen"), "avx2"),
    **dict.fromkeys(("sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"), "avx"),
    **dict.fromkeys(("nehalem", "core2", "penryn", "dunnington", "atom", "prescott", "opteron",
                     "opteron_sse3", "barcelona", "bobcat", "katmai", "coppermine", "northwood",
                     "banias", "athlon", "generic"), "sse"),
}
ISA_RANK = {"sse": 0, "avx": 1, "avx2": 2, "avx512": 3}
ISA_NAMES = {"sse": "SSE", "avx": "AVX", "avx2": "AVX2", "avx512": "AVX-512"}
REPORTED_FLAGS = ("sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                  "avx512_bf16", "amx_tile")


def cpu_facts(cpuinfo_path="/proc/cpuinfo"):
    """CPU model, logical CPU counts, selected feature flags and the widest vector ISA."""
    model, flags = platform.processor() or platform.machine(), set()
    ids = {}
    try:
        text = Path(cpuinfo_path).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model in ("", platform.machine(), platform.processor()):
            model = value.strip()
        elif key in ("vendor_id", "cpu family", "model") and key not in ids:
            ids[key] = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    isa = ("avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "avx" if "avx" in flags
           else "sse" if flags else None)
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {"model": model, "vendor": ids.get("vendor_id"), "family": ids.get("cpu family"),
            "model_number": ids.get("model"), "logical_cpus": os.cpu_count(), "usable_cpus": usable,
            "flags": {flag: flag in flags for flag in REPORTED_FLAGS} if flags else {},
            "isa": isa}


def _library_entry(info):
    keys = ("user_api", "internal_api", "prefix", "filepath", "version", "architecture", "threading_layer",
            "num_threads")
    entry = {key: info.get(key) for key in keys}
    architecture = (info.get("architecture") or "").lower()
    entry["kernel_isa"] = OPENBLAS_CORE_ISA.get(architecture) if info.get("internal_api") == "openblas" else None
    return entry


def _inside(path, directory):
    try:
        Path(path).resolve().relative_to(Path(directory).resolve())
        return True
    except (ValueError, OSError):
        return False


def blas_libraries():
    """(all BLAS libraries loaded, the one SciPy uses, OpenMP libraries), per threadpoolctl."""
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401 - loads SciPy's BLAS, the one the compiled core calls
    from threadpoolctl import threadpool_info
    entries = [_library_entry(info) for info in threadpool_info()]
    blas = [entry for entry in entries if entry["user_api"] == "blas"]
    openmp = [entry for entry in entries if entry["user_api"] == "openmp" and entry["internal_api"] != "nncore"]
    scipy_dir = Path(scipy.__file__).resolve().parent
    scipy_roots = (scipy_dir, scipy_dir.parent / "scipy.libs")
    scipy_blas = next((entry for entry in blas if any(_inside(entry["filepath"], root) for root in scipy_roots)),
                      None)
    if scipy_blas is None and blas:
        numpy_dir = Path(sys.modules["numpy"].__file__).resolve().parent if "numpy" in sys.modules else None
        not_numpy = [entry for entry in blas if not (numpy_dir and (
            _inside(entry["filepath"], numpy_dir) or _inside(entry["filepath"], numpy_dir.parent / "numpy.libs")))]
        scipy_blas = (not_numpy or blas)[0]
    for entry in blas:
        entry["used_by"] = "scipy (the compiled core)" if entry is scipy_blas else "numpy (the NumPy backend)"
    return blas, scipy_blas, openmp


def kernel_note(cpu, scipy_blas, coretype):
    """A plain sentence when OpenBLAS runs kernels below what the CPU supports (and why); else None."""
    if not scipy_blas or not scipy_blas.get("kernel_isa") or not cpu.get("isa"):
        return None
    kernel, machine = scipy_blas["kernel_isa"], cpu["isa"]
    if ISA_RANK[kernel] >= ISA_RANK[machine]:
        return None
    what = (f"OpenBLAS runs {scipy_blas['architecture']} ({ISA_NAMES[kernel]}) kernels, below what the CPU "
            f"supports ({ISA_NAMES[machine]})")
    if coretype:
        return (f"{what}: OPENBLAS_CORETYPE={coretype} is set in the environment. The setting is respected; "
                "unset it to run the CPU's own kernels (`nncore bench --blas-compare` shows what it costs).")
    return (f"{what}, although OPENBLAS_CORETYPE is not set: this OpenBLAS build "
            f"({scipy_blas.get('version')}) may not know this CPU model, or the virtual machine hides a feature.")


def compiled_core_facts():
    from .backends import compiled_core_status
    available, detail = compiled_core_status()
    facts = {"available": available, "path" if available else "error": detail,
             "debug_build": None, "source_hash": None, "threads": None, "narrow_isa": None}
    if available:
        from . import _core, _testing
        facts["debug_build"] = bool(_core.DEBUG_BUILD)
        facts["source_hash"] = _core.SOURCE_HASH
        facts["narrow_isa"] = _testing.narrow_isa()
        facts["threads"] = {"pool": "nncore's own (POSIX threads)" if _core.THREADED else "none (one thread)",
                            "default_count": _core.get_num_threads(), "workers_started": _core.pool_workers(),
                            "wait": f"spin up to {_core.spin_microseconds()} us, then sleep (passive)",
                            "blas_inside_the_core": 1}
    return facts


def collect():
    """Everything ``nncore info`` reports, as a dictionary."""
    import numpy
    import scipy
    from . import __version__
    cpu = cpu_facts()
    core = compiled_core_facts()
    blas, scipy_blas, openmp = blas_libraries()
    coretype = os.environ.get("OPENBLAS_CORETYPE") or None
    return {
        "nncore_version": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "compiled_core": core,
        "numpy_version": numpy.__version__,
        "scipy_version": scipy.__version__,
        "scipy_blas": scipy_blas,
        "blas_libraries": blas,
        "openmp_libraries": openmp,
        "environment": {name: os.environ.get(name) for name in
                        ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
        "cpu": cpu,
        "kernel_note": kernel_note(cpu, scipy_blas, coretype),
    }


def format_report(facts):
    """The human-readable text ``nncore info`` prints."""
    core = facts["compiled_core"]
    lines = [f"nncore {facts['nncore_version']}",
             f"python        {facts['python']}",
             f"platform      {facts['platform']}"]
    if core["available"]:
        threads = core["threads"]
        lines += [f"compiled core {core['path']}",
                  f"              debug build (bounds checks on): {'yes' if core['debug_build'] else 'no'}; "
                  f"narrow-layer kernels: {core['narrow_isa']}",
                  f"threads       {threads['pool']}: {threads['default_count']} by default "
                  f"({threads['workers_started']} workers started); waits: {threads['wait']}; "
                  f"BLAS at {threads['blas_inside_the_core']} thread inside the core"]
    else:
        lines.append(f"compiled core NOT AVAILABLE: {core['error']}")
    lines += [f"numpy         {facts['numpy_version']}", f"scipy         {facts['scipy_version']}"]
    for entry in facts["blas_libraries"]:
        lines += [f"BLAS          {entry['internal_api']} {entry['version']}, {entry['architecture']} kernels, "
                  f"{entry['num_threads']} thread(s), {entry['threading_layer']} -- used by {entry['used_by']}",
                  f"              {entry['filepath']}"]
    if not facts["blas_libraries"]:
        lines.append("BLAS          (threadpoolctl found none)")
    for entry in facts["openmp_libraries"]:
        lines.append(f"OpenMP        {entry['internal_api']} {entry['version'] or ''}, {entry['num_threads']} "
                     f"thread(s): {entry['filepath']}")
    if not facts["openmp_libraries"]:
        lines.append("OpenMP        no OpenMP runtime loaded (nncore needs none)")
    cpu = facts["cpu"]
    flags = ", ".join(f"{flag}={'yes' if present else 'no'}" for flag, present in cpu["flags"].items()
                      if flag in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni"))
    ident = f" ({cpu['vendor']} family {cpu['family']} model {cpu['model_number']})" if cpu.get("family") else ""
    lines += [f"CPU           {cpu['model']}{ident}, {cpu['logical_cpus']} logical CPUs ({cpu['usable_cpus']} usable)",
              f"              {flags or 'flags unknown'}"]
    settings = ", ".join(f"{name}={value}" for name, value in facts["environment"].items() if value)
    lines.append(f"environment   {settings or 'no BLAS/OpenMP variables set'}")
    blas = facts["scipy_blas"] or {}
    if facts["kernel_note"]:
        lines.append(f"NOTE          {facts['kernel_note']}")
    elif blas.get("kernel_isa") and cpu.get("isa"):
        lines.append(f"kernels       OpenBLAS {blas['architecture']} kernels use {ISA_NAMES[blas['kernel_isa']]}; "
                     f"the CPU's widest is {ISA_NAMES[cpu['isa']]}")
    return "\n".join(lines)


def main(argv=None):
    """``nncore info``: print the report; returns the exit code."""
    print(format_report(collect()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
