"""`nncore info`: what it reports, and the plain warning when OpenBLAS runs below the CPU's kernels."""
import json
import os
import subprocess
import sys

import pytest

from nncore import info

CHILD = ("import json, nncore.info as i; f = i.collect(); "
         "print(json.dumps({'note': f['kernel_note'], 'isa': f['cpu']['isa'], "
         "'kernel': (f['scipy_blas'] or {}).get('kernel_isa')}))")


def collect_in_child(coretype):
    """collect() in a fresh process (OpenBLAS reads OPENBLAS_CORETYPE once, when it loads)."""
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    out = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_collect_reports_build_libraries_and_cpu():
    facts = info.collect()
    for key in ("nncore_version", "compiled_core", "numpy_version", "scipy_version", "scipy_blas",
                "blas_libraries", "openmp_libraries", "cpu", "environment", "kernel_note"):
        assert key in facts
    core = facts["compiled_core"]
    assert set(core) >= {"available", "threads", "narrow_isa", "debug_build"}
    if core["available"]:
        from nncore import _core
        assert core["path"].endswith((".so", ".pyd")) and core["narrow_isa"] in ("scalar", "vector128", "avx2", "avx512")
        assert core["threads"]["default_count"] == _core.get_num_threads()
        assert "passive" in core["threads"]["wait"] and core["threads"]["blas_inside_the_core"] == 1
    # nncore's own pool is listed as nncore's, not as an OpenMP runtime
    assert all(entry["internal_api"] != "nncore" for entry in facts["openmp_libraries"])
    blas = facts["scipy_blas"]
    assert blas is not None, "threadpoolctl should see SciPy's BLAS"
    for key in ("internal_api", "filepath", "version", "architecture", "num_threads"):
        assert key in blas
    assert set(facts["cpu"]) >= {"model", "logical_cpus", "flags", "isa"}


def test_main_prints_the_report(capsys):
    assert info.main() == 0
    out = capsys.readouterr().out
    assert "compiled core" in out and "BLAS" in out and "CPU" in out


def test_kernel_note_names_the_variable_when_it_forces_older_kernels():
    cpu = {"isa": "avx512"}
    blas = {"architecture": "Haswell", "kernel_isa": "avx2", "version": "0.3.30"}
    note = info.kernel_note(cpu, blas, "Haswell")
    assert "below what the CPU supports" in note and "OPENBLAS_CORETYPE=Haswell" in note
    assert "OPENBLAS_CORETYPE is not set" in info.kernel_note(cpu, blas, None)
    assert info.kernel_note({"isa": "avx2"}, blas, "Haswell") is None
    assert info.kernel_note(cpu, {**blas, "architecture": "SkylakeX", "kernel_isa": "avx512"}, None) is None


def test_forcing_haswell_on_an_avx512_cpu_is_reported():
    if not info.cpu_facts()["flags"].get("avx512f"):
        pytest.skip("this CPU lacks AVX-512, so Haswell (AVX2) kernels are what it supports")
    forced = collect_in_child("Haswell")
    assert forced["kernel"] == "avx2"
    assert "below what the CPU supports" in forced["note"] and "OPENBLAS_CORETYPE=Haswell" in forced["note"]
    own = collect_in_child(None)
    assert own["note"] is None or "OPENBLAS_CORETYPE=" not in own["note"]


def test_forcing_sandybridge_on_an_avx2_cpu_is_reported():
    """The same check one level down, so it runs on AVX2-only machines too."""
    if not info.cpu_facts()["flags"].get("avx2"):
        pytest.skip("this CPU lacks AVX2")
    forced = collect_in_child("Sandybridge")
    if forced["kernel"] != "avx":
        pytest.skip(f"this OpenBLAS did not accept OPENBLAS_CORETYPE=Sandybridge (kernel {forced['kernel']})")
    assert "below what the CPU supports" in forced["note"] and "OPENBLAS_CORETYPE=Sandybridge" in forced["note"]
    own = collect_in_child(None)
    assert own["note"] is None or "OPENBLAS_CORETYPE=" not in own["note"]
