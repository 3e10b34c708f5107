"""`nncore bench` (the nncore_bench package): the gemm-floor arithmetic, the NumPy baselines'
maths, the targets, and quick runs that write sane results where they are told to."""
import json
import math

import numpy as np
import pytest
from nncore_bench import cli as bench_cli
from nncore_bench import flops, targets
from nncore_bench.candidates import he_init
from nncore_bench.numpy_baselines import CarefulNumpyTrainer, SeedStyleTrainer
from nncore_bench.timers import GemmTimer

import nncore
from nncore import cli
from nncore.backends import get_backend
from nncore.losses import get_loss
from nncore.network import Network


def test_epoch_flops_of_784_128_10_match_a_hand_count():
    # per sample: forward 784*128 + 128*10, dW the same, dX only for the second layer (128*10)
    per_sample_macs = 2 * (784 * 128 + 128 * 10) + 128 * 10
    assert flops.epoch_flops((784, 128, 10), 60_000, 128) == 2 * 60_000 * per_sample_macs == 24_545_280_000


def test_epoch_gemm_calls_include_the_last_partial_batch():
    # 10 samples in batches of 4: two full batches and one of 2
    assert flops.batch_sizes_of_epoch(10, 4) == {4: 2, 2: 1}
    assert flops.batch_sizes_of_epoch(10, None) == {10: 1}
    assert flops.batch_sizes_of_epoch(8, 4) == {4: 2}
    calls = flops.epoch_gemm_calls((4, 3, 2), 10, 4)
    partial = [(c.kind, c.layer, c.trans_a, c.trans_b, c.M, c.N, c.K) for c, count in calls if count == 1]
    assert partial == [("forward", 0, "n", "n", 3, 2, 4), ("forward", 1, "n", "n", 2, 2, 3),
                       ("dW", 1, "n", "t", 2, 3, 2), ("dX", 1, "t", "n", 3, 2, 2),
                       ("dW", 0, "n", "t", 3, 4, 2)]
    by_hand = 10 * 2 * (4 * 3 + 3 * 2 + 3 * 2 + 4 * 3 + 3 * 2)
    assert flops.epoch_flops((4, 3, 2), 10, 4) == by_hand


def test_gemm_timer_times_a_shape_and_the_floor_adds_up():
    timer = GemmTimer("float32")
    seconds, by_kind = timer.epoch_floor((784, 16, 10), 1000, 500)
    assert set(by_kind) == {"forward", "dW", "dX"}
    assert seconds > 0 and math.isclose(seconds, sum(by_kind.values()))


def _reference_step(layer_sizes, X, y, lr):
    """One full-batch SGD step of nncore's NumPy backend from the benchmark's He init (float64)."""
    params, network = he_init(layer_sizes, np.float64), Network(layer_sizes, dtype="float64")
    optimizer = nncore.SGD(lr=lr)
    optimizer.ensure_state(network.n_params, network.dtype)
    get_backend("numpy").train_epoch(network, params, optimizer, X, np.ascontiguousarray(y, dtype=np.int32), len(X), 0,
                                     get_loss("cross_entropy"))
    return params


def _small_problem():
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (40, 784), dtype=np.uint8), rng.integers(0, 10, 40, dtype=np.uint8)


def test_seed_style_step_is_the_reference_step():
    # Same maths in the seeds' layout (X (784, N), W (out, in), one-hot Y): after one full-batch
    # step the parameters agree with nncore's specification to float64 rounding.
    X, y = _small_problem()
    seed = SeedStyleTrainer((784, 16, 10), np.float64, X, y, lr=0.5)
    seed.run()
    np.testing.assert_allclose(seed.flat_params(), _reference_step((784, 16, 10), X, y, 0.5), rtol=1e-10, atol=1e-12)


def test_careful_numpy_full_batch_step_is_the_reference_step():
    X, y = _small_problem()
    careful = CarefulNumpyTrainer((784, 16, 10), np.float64, X, y, batch_size=None)
    careful.lr = np.float64(0.5)
    careful.run()
    flat = np.concatenate([part for W, b in careful.layers for part in (W.ravel(), b)])
    np.testing.assert_allclose(flat, _reference_step((784, 16, 10), X, y, 0.5), rtol=1e-10, atol=1e-12)


def test_the_seed_targets_read_the_cells_they_name():
    row = {"network": "784-10-10", "batch_size": "full", "dtype": "float64", "threads": 1,
           "seed_numpy_over_compiled": 3.5, "cpu_seed_numpy_over_compiled": 2.0}
    checks = targets.evaluate_targets({"train": [row], "environment": {}})
    seed_checks = {c["target"]: c for c in checks if c["target"].startswith("seed-style") and "float64" in c["cell"]}
    assert seed_checks["seed-style NumPy / compiled"]["holds"] is True
    assert seed_checks["seed-style NumPy / compiled, CPU time"]["holds"] is False
    assert all(c["holds"] is None for c in checks if "784-128-10" in c["cell"])


def test_results_go_to_the_configured_directory_not_the_working_directory(monkeypatch, tmp_path):
    monkeypatch.setenv("NNCORE_BENCH_RESULTS", str(tmp_path / "results"))
    assert bench_cli.default_results_directory() == tmp_path / "results"
    monkeypatch.delenv("NNCORE_BENCH_RESULTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    default = bench_cli.default_results_directory()
    assert default.is_absolute() and "nncore" in default.parts


def _positive_finite(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_quick_run_writes_json_and_markdown(tmp_path, monkeypatch):
    monkeypatch.setenv("NNCORE_BENCH_RESULTS", str(tmp_path))
    code = cli.main(["bench", "--quick", "--repeats", "1", "--data", "random", "--samples", "6000",
                     "--threads", "1", "--no-print", "--no-torch"])
    assert code == 0
    result = json.loads((tmp_path / "bench-quick.json").read_text())
    assert (tmp_path / "bench-quick.md").read_text().startswith("# nncore benchmark")
    for key in ("environment", "data", "peaks", "train", "inference", "targets", "command"):
        assert key in result
    assert "random" in result["data"]
    for peak in result["peaks"].values():
        assert _positive_finite(peak["sgemm"]) and _positive_finite(peak["dgemm"])
    assert {(row["network"], row["batch_size"], row["dtype"]) for row in result["train"]} == {
        ("784-10-10", "32", "float32"), ("784-128-10", "128", "float32"), ("784-10-10", "full", "float64")}
    for row in result["train"]:
        assert _positive_finite(row["seconds"]["numpy"]) and _positive_finite(row["seconds"]["careful_numpy"])
        assert ("seed_numpy" in row["seconds"]) == (row["batch_size"] == "full")
        assert _positive_finite(row["gemm_floor_s"]) and _positive_finite(row["core_gemm_sequence_s"])
        fastest = min(row["seconds"][name] for name in ("numpy", "careful_numpy", "seed_numpy") if name in row["seconds"])
        assert row["numpy_over_compiled"] == pytest.approx(fastest / row["seconds"]["compiled"])
        for key in ("compiled_over_gemm_floor", "compiled_over_flop_floor", "compiled_gflops"):
            assert _positive_finite(row[key]), key
    assert any(t["holds"] is not None for t in result["targets"])


@pytest.mark.slow
def test_seed_example_mode_times_the_example_and_checks_the_baseline(tmp_path):
    code = bench_cli.main(["--seed-example", "--iterations", "2", "--block", "1", "--data", "random",
                           "--threads", "1", "--out", str(tmp_path), "--no-print"])
    assert code == 0
    result = json.loads((tmp_path / "bench-seed-example.json").read_text())
    (row,) = result["rows"]
    assert set(row["candidates"]) == {"compiled float32", "compiled float64", "seed-style NumPy float64"}
    for candidate in row["candidates"].values():
        assert _positive_finite(candidate["seconds_for_example"])
    # Same start, same maths in float64: the baseline did the same work.
    assert row["parameter_difference_f64"] < 1e-9


def test_the_thread_scaling_run_times_both_machines_and_writes_its_table(tmp_path, monkeypatch):
    """`nncore bench --threads` alone: 1 thread against the default, idle and with the competitors it
    starts (and stops: none is left running), wall and CPU time, the command and `nncore info`."""
    from nncore_bench import thread_scaling
    monkeypatch.setattr(thread_scaling, "QUICK_CELLS", [((64, 96, 10), 64, "float32", 2_000, 1)])
    started = []
    original = thread_scaling.Competitors.__enter__

    def remember(self):
        entered = original(self)
        started.extend(self.processes)
        return entered

    monkeypatch.setattr(thread_scaling.Competitors, "__enter__", remember)
    assert bench_cli.main(["--threads", "--quick", "--no-torch", "--repeats", "1", "--out", str(tmp_path),
                           "--no-print"]) == 0
    result = json.loads((tmp_path / "bench-threads.json").read_text())
    assert [row["condition"] for row in result["rows"]] == ["idle", "busy"]
    for row in result["rows"]:
        wall, cpu = row["ratios"]["nncore"]
        assert wall > 0 and cpu > 0 and set(row["seconds"]) == {"nncore 1 thread", "nncore default (%d)"
                                                                % result["default_threads"]}
    assert len(started) == thread_scaling.COMPETITORS and all(p.poll() is not None for p in started)
    markdown = (tmp_path / "bench-threads.md").read_text()
    assert "Command: `nncore bench --threads --quick" in markdown and "compiled core" in markdown
