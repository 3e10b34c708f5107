"""``nncore demo`` on the command line, and the default model it trains on first use and caches.

The command's mistakes are reported before any server starts; Ctrl-C (and ``kill``) stop a
running server cleanly. The default model's caching is tested offline with a stand-in
trainer; training it for real on MNIST is in tests/test_demo_network.py.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from _demo_helpers import start_demo
from _drawn_digits import drawn_digits_model, drawn_test_set

from nncore.demo import default_model_path, load_default_model
from nncore.demo.default_model import RECIPE_VERSION
from nncore.model import MLP, load


def _run_demo(*arguments, timeout=60):
    return subprocess.run([sys.executable, "-m", "nncore", "demo", *arguments], capture_output=True, text=True,
                          timeout=timeout)


def _one_error_line(completed):
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nncore: error: "), completed.stderr
    assert "http://" not in completed.stdout  # no server was started
    return lines[0]


def test_a_model_file_that_fails_to_load_is_reported_before_the_server_starts(tmp_path):
    damaged = tmp_path / "model.npz"
    damaged.write_bytes(b"PK\x03\x04 not really a zip")
    completed = _run_demo(str(damaged), "--port", "0")
    assert completed.returncode == 1
    assert "model.npz" in _one_error_line(completed)
    completed = _run_demo(str(tmp_path / "missing.npz"))
    assert completed.returncode == 1 and "missing.npz" in _one_error_line(completed)


def test_a_model_for_other_images_is_reported_before_the_server_starts(tmp_path):
    path = tmp_path / "small.npz"
    MLP([100, 10], seed=0).save(path)
    completed = _run_demo(str(path))
    assert completed.returncode == 1
    assert "small.npz takes 100 pixels per image; the demo draws 28x28 digits" in _one_error_line(completed)


def test_a_port_in_use_is_reported_before_the_server_starts(tmp_path):
    path = tmp_path / "digits.npz"
    drawn_digits_model().save(path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        completed = _run_demo(str(path), "--port", str(port))
    assert completed.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in _one_error_line(completed)


def test_a_port_out_of_range_is_a_usage_error():
    completed = _run_demo("--port", "70000")
    assert completed.returncode == 2 and "0..65535" in completed.stderr


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_stops_the_server_cleanly(tmp_path, stop_signal):
    path = tmp_path / "digits.npz"
    drawn_digits_model().save(path)
    process, url, _ = start_demo([str(path), "--port", "0"])
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "api/model", timeout=10) as response:
            assert response.status == 200
        process.send_signal(stop_signal)
        _, errors = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, errors
    assert errors.strip().splitlines()[-1] == "nncore demo: stopped"
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_open_opens_the_page_in_the_web_browser(tmp_path):
    path = tmp_path / "digits.npz"
    drawn_digits_model().save(path)
    opened = tmp_path / "opened.txt"
    # Python's webbrowser runs $BROWSER with %s replaced by the URL: here, a browser that writes it down.
    browser = f'{sys.executable} -c "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2])" {opened} %s'
    process, url, _ = start_demo([str(path), "--open"], env=dict(os.environ, BROWSER=browser))
    try:
        for _ in range(100):
            if opened.exists() and opened.read_text():
                break
            time.sleep(0.1)
        assert opened.read_text() == url
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)


def test_data_dir_gives_the_test_images_of_the_random_test_image_button(tmp_path):
    from nncore.data import write_idx

    path = tmp_path / "digits.npz"
    drawn_digits_model().save(path)
    folder = tmp_path / "my-digits"
    folder.mkdir()
    test_set = drawn_test_set(seed=5, per_class=1)
    write_idx(folder / "t10k-images-idx3-ubyte", test_set.images.reshape(-1, 28, 28))
    write_idx(folder / "t10k-labels-idx1-ubyte", test_set.labels)
    process, url, _ = start_demo([str(path), "--data-dir", str(folder)])
    try:
        with urllib.request.urlopen(url + "api/test-image", timeout=10) as response:
            reply = json.load(response)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert reply["image"] == test_set.images[reply["index"]].tolist()
    assert reply["label"] == test_set.labels[reply["index"]]


# ---------------------------------------------------------------- the default model's cache

class _Trainer:
    """Stands in for training on MNIST: counts its calls, returns a small trained model, or fails as told."""

    def __init__(self, fails_with=None):
        self.calls, self.fails_with = 0, fails_with

    def __call__(self, say):
        self.calls += 1
        if self.fails_with is not None:
            raise self.fails_with
        return drawn_digits_model().copy()


def test_the_default_model_is_trained_once_then_read_from_the_cache(tmp_path):
    trainer, messages = _Trainer(), []
    first = load_default_model(cache_dir=tmp_path, say=messages.append, train=trainer)
    second = load_default_model(cache_dir=tmp_path, say=messages.append, train=trainer)
    assert trainer.calls == 1
    path = default_model_path(tmp_path)
    assert path == tmp_path / "models" / f"demo-mnist-v{RECIPE_VERSION}.npz" and path.is_file()
    assert (second.params == first.params).all() and (load(path).params == first.params).all()
    assert any("training one on MNIST, once" in message for message in messages)


def test_a_damaged_cached_default_model_is_trained_again(tmp_path):
    path = default_model_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    trainer, messages = _Trainer(), []
    model = load_default_model(cache_dir=tmp_path, say=messages.append, train=trainer)
    assert trainer.calls == 1 and (load(path).params == model.params).all()
    assert any("does not load" in message for message in messages)


def test_an_interrupted_training_caches_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        load_default_model(cache_dir=tmp_path, say=lambda message: None, train=_Trainer(KeyboardInterrupt()))
    assert [path.name for path in (tmp_path / "models").iterdir()] == [".lock"]
