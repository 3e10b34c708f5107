"""Progress on long runs (issue 15 item 5): the compiled epoch reports progress between batches
(throttled, without leaving its one call), ``fit`` passes it to callbacks' ``on_epoch_progress``,
and ``ProgressBar`` (``verbose=1``, the default) shows a tqdm bar with rate and ETA over the epochs
and, for long epochs, over the batches; one line per epoch when the output is not a terminal."""
import io
import math
import re
import time

import numpy as np
import pytest
from test_model import BACKENDS, blobs

import nncore
from nncore import _core
from nncore.backends import get_backend
from nncore.callbacks import Callback
from nncore.progress import ProgressBar


class Terminal(io.StringIO):
    """What tqdm writes to a terminal, kept."""

    def isatty(self):
        return True


def long_epoch_data(n=6000, n_features=784):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, n_features), dtype=np.uint8), rng.integers(0, 10, n)


def test_the_compiled_epoch_calls_its_progress_hook_between_batches_at_most_every_20_ms():
    X, y = long_epoch_data(30_000)  # 15,000 batches of 2: well over 0.1 s on a fast machine
    model = nncore.MLP([784, 64, 10], seed=0)
    optimizer = nncore.SGD(lr=0.01)
    optimizer.ensure_state(model.n_parameters, model.dtype)
    progress, loss_total = np.zeros(4, np.intp), np.zeros(1)
    order = np.arange(len(X), dtype=np.intp)
    calls = []
    began = time.perf_counter()
    _core.train_epoch(model.network.table, model.params, X, y.astype(np.int32), order, batch_size=2,
                      loss="cross_entropy", optimizer=optimizer.core_config(),
                      states=[optimizer.state_buffers()["velocity"]], loss_total=loss_total, progress=progress,
                      on_progress=lambda: calls.append((time.perf_counter(), int(progress[0]), int(progress[2]))))
    elapsed = time.perf_counter() - began
    assert elapsed > 0.1, "the epoch must outlast several 20 ms intervals for this test to mean anything"
    assert progress[0] == len(X) // 2 and len(calls) >= 1
    assert len(calls) <= elapsed / 0.02 + 1
    times, batches, samples = map(np.array, zip(*calls))
    assert np.all(np.diff(times) >= 0.019)  # throttled
    assert np.all(np.diff(batches) > 0) and np.all(batches < len(X) // 2) and np.all(samples == 2 * batches)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_progress_hook_that_raises_stops_the_epoch_between_batches(n_threads):
    X, y = long_epoch_data(6000 if n_threads == 1 else 60_000)  # each well over 20 ms

    class Stop(Exception):
        pass

    def stop():
        raise Stop

    model = nncore.MLP([784, 64, 10], seed=0)
    optimizer = nncore.Adam()
    optimizer.ensure_state(model.n_parameters, model.dtype)
    backend = get_backend("cython", n_threads)
    from nncore.losses import get_loss
    batch_size = 2 if n_threads == 1 else 64  # 64 rows of 784-64-10: a step split over two threads
    assert backend.step_threads(model.network, batch_size) == n_threads
    with pytest.raises(Stop):
        backend.train_epoch(model.network, model.params, optimizer, X, y.astype(np.int32), batch_size, 0,
                            get_loss("cross_entropy"), on_progress=lambda *counts: stop())
    assert 0 < optimizer.step < len(X) // batch_size  # the batches applied before it, counted
    assert np.all(np.isfinite(model.params))


def test_a_progress_hook_that_is_not_callable_is_refused():
    X, y = long_epoch_data(10)
    model = nncore.MLP([784, 4, 10], seed=0)
    optimizer = nncore.SGD()
    optimizer.ensure_state(model.n_parameters, model.dtype)
    with pytest.raises(TypeError, match="on_progress"):
        _core.train_epoch(model.network.table, model.params, X, y.astype(np.int32), np.arange(10, dtype=np.intp),
                          batch_size=2, loss="cross_entropy", optimizer=optimizer.core_config(),
                          states=[optimizer.state_buffers()["velocity"]], loss_total=np.zeros(1),
                          progress=np.zeros(4, np.intp), on_progress=3)


class Recorder(Callback):
    def __init__(self):
        self.seen = []

    def on_epoch_progress(self, epoch, logs):
        self.seen.append((epoch, dict(logs)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_passes_progress_within_an_epoch_to_callbacks(backend):
    X, y = long_epoch_data(4000) if backend == "cython" else long_epoch_data(300)
    recorder = Recorder()
    nncore.MLP([784, 64, 10], seed=0).fit(X, y, epochs=2, batch_size=2, backend=backend, verbose=0,
                                         callbacks=[recorder], optimizer=nncore.SGD(lr=0.01))
    assert {epoch for epoch, _ in recorder.seen} == {1, 2}
    for _, logs in recorder.seen:
        assert set(logs) == {"batches", "samples", "loss"}
        assert 0 < logs["batches"] <= len(X) // 2 and logs["samples"] == 2 * logs["batches"]
        assert math.isfinite(logs["loss"]) and logs["loss"] > 0


def test_without_a_progress_listener_the_core_gets_no_hook(monkeypatch):
    from nncore.backends.cython_backend import CythonBackend
    seen = []
    original = CythonBackend.train_epoch

    def spy(self, *args, **kwargs):
        seen.append(kwargs.get("on_progress"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(CythonBackend, "train_epoch", spy)
    X, y = blobs(50)
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=1, verbose=0)
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=1, verbose=2)
    assert seen == [None, None]


def test_fit_shows_progress_by_default_one_line_per_epoch_when_not_a_terminal(capsys):
    X, y = blobs(100)
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=3, backend="numpy", validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all(line.startswith("epoch ") and "val_accuracy" in line and "\r" not in line for line in lines)
    assert re.search(r"ETA \d\d:\d\d$", lines[0]) and lines[-1].endswith(" s")


def test_verbose_0_is_quiet_and_verbose_2_is_one_plain_line_per_epoch(capsys):
    X, y = blobs(100)
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=2, backend="numpy", verbose=0)
    assert capsys.readouterr().out == ""
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=2, backend="numpy", verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("epoch 2/2  loss ") and lines[1].endswith(" s")


def test_in_a_terminal_the_bar_shows_rate_and_eta_over_epochs():
    X, y = blobs(100)
    terminal = Terminal()
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=4, backend="numpy", verbose=0,
                                    callbacks=[ProgressBar(file=terminal)])
    shown = terminal.getvalue()
    assert "\r" in shown and "4/4" in shown
    assert re.search(r"epoch/s|s/epoch", shown) and re.search(r"<\d\d:\d\d", shown)  # rate, ETA
    assert re.search(r"epoch 4/4  loss \d", shown)


def test_in_a_terminal_a_long_epoch_gets_a_bar_over_its_batches():
    X, y = long_epoch_data(3000)
    terminal = Terminal()
    nncore.MLP([784, 64, 10], seed=0).fit(X, y, epochs=1, batch_size=2, verbose=0,
                                         optimizer=nncore.SGD(lr=0.01),
                                         callbacks=[ProgressBar(file=terminal, batch_bar_after=0)])
    shown = terminal.getvalue()
    assert re.search(r"\d+/1500 \[", shown) and re.search(r"batch/s|s/batch", shown)


def test_the_full_batch_example_shows_progress(monkeypatch, capsys):
    import runpy
    import sys
    from pathlib import Path

    from test_examples import tiny_dataset
    monkeypatch.setattr(nncore, "load_mnist", tiny_dataset)
    monkeypatch.setattr(sys, "argv", ["mnist_784_10_10_gd.py", "--iterations", "30", "--backend", "numpy"])
    runpy.run_path(str(Path(__file__).resolve().parent.parent / "examples" / "mnist_784_10_10_gd.py"),
                   run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("epoch ")] == [f"{i}/30" for i in range(1, 31)]
