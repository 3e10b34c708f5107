"""`nncore bench`: the gemm-floor arithmetic, and a quick run that writes sane results."""
import json
import math

import pytest

from nncore import bench


def test_epoch_flops_of_784_128_10_match_a_hand_count():
    # per sample: forward 784*128 + 128*10, dW the same, dX only for the second layer (128*10)
    per_sample_macs = 2 * (784 * 128 + 128 * 10) + 128 * 10
    assert bench.epoch_flops((784, 128, 10), 60_000, 128) == 2 * 60_000 * per_sample_macs == 24_545_280_000


def test_epoch_gemm_calls_include_the_last_partial_batch():
    # 10 samples in batches of 4: two full batches and one of 2
    assert bench.batch_sizes_of_epoch(10, 4) == {4: 2, 2: 1}
    assert bench.batch_sizes_of_epoch(10, None) == {10: 1}
    assert bench.batch_sizes_of_epoch(8, 4) == {4: 2}
    calls = bench.epoch_gemm_calls((4, 3, 2), 10, 4)
    partial = [(c.kind, c.layer, c.trans_a, c.trans_b, c.M, c.N, c.K) for c, count in calls if count == 1]
    assert partial == [("forward", 0, "n", "n", 3, 2, 4), ("forward", 1, "n", "n", 2, 2, 3),
                       ("dW", 1, "n", "t", 2, 3, 2), ("dX", 1, "t", "n", 3, 2, 2),
                       ("dW", 0, "n", "t", 3, 4, 2)]
    by_hand = 10 * 2 * (4 * 3 + 3 * 2 + 3 * 2 + 4 * 3 + 3 * 2)
    assert bench.epoch_flops((4, 3, 2), 10, 4) == by_hand


def test_gemm_timer_times_a_shape_and_the_floor_adds_up():
    timer = bench.GemmTimer("float32")
    seconds, by_kind = timer.epoch_floor((784, 16, 10), 1000, 500)
    assert set(by_kind) == {"forward", "dW", "dX"}
    assert seconds > 0 and math.isclose(seconds, sum(by_kind.values()))


def _positive_finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_run_writes_json_and_markdown(tmp_path):
    code = bench.main(["--quick", "--out", str(tmp_path), "--repeats", "1", "--data", "random",
                       "--samples", "6000", "--threads", "1", "--no-print"])
    assert code == 0
    result = json.loads((tmp_path / "bench-quick.json").read_text())
    assert (tmp_path / "bench-quick.md").read_text().startswith("# nncore benchmark")
    for key in ("environment", "data", "peaks", "train", "inference", "targets", "command"):
        assert key in result
    assert "random" in result["data"]
    for peak in result["peaks"].values():
        assert _positive_finite(peak["sgemm"]) and _positive_finite(peak["dgemm"])
    assert {(row["network"], row["batch_size"]) for row in result["train"]} == {("784-10-10", "32"),
                                                                              ("784-128-10", "128")}
    compiled = any("compiled" in row["seconds"] for row in result["train"])
    for row in result["train"]:
        assert _positive_finite(row["seconds"]["numpy"]) and _positive_finite(row["gemm_floor_s"])
        assert _positive_finite(row["epoch_gflop"])
        if compiled:
            for key in ("numpy_over_compiled", "compiled_over_gemm_floor", "compiled_gflops"):
                assert _positive_finite(row[key]), key
            if "torch" in row["seconds"]:
                assert _positive_finite(row["torch_over_compiled"])
    if not compiled:
        pytest.skip("compiled backend not available: only the NumPy side was checked")
