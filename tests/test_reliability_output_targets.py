"""Issue 22, classes 2 and 5: output paths are never clobbered, and every write error names the user's path.

Every writer (model files, ONNX graphs, Kaggle submissions, figures, IDX files, checkpoints)
asks ``nncore._output_paths.output_target`` what its path is. A symbolic link to a file is
refused (a rename would replace the link, not its target); a device or a pipe the user names
is written through in place (``/dev/null`` stays a device, a FIFO's reader gets the bytes); a
FIFO nobody reads, a directory or a socket is refused at once; the checkpoint directory's lock
file is never followed. Errors name the path the user gave, never the temporary file, and the
command line checks its output paths before it reads the model or trains.

Each test failed on the code before: links and FIFOs were replaced by regular files, a planted
``.lock`` link had its target truncated, and errors named ``.nncore-partial-...`` or nothing.
The tests never aim the old behaviour at the machine's own devices: they write through links
to ``/dev/null`` and ``/dev/full`` in a temporary directory, and through ``/proc/self/fd/1``.
"""
import os
import socket
import stat
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from _time_limit import time_limit

import nncore
from nncore.cli import main
from nncore.data import write_idx, write_submission
from nncore.errors import OutputPathError

from test_reliability_training import blobs, subprocess_environment

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX files: links, FIFOs, devices")


def figure():
    from nncore.plot import training_curves
    return training_curves({"loss": [1.0, 0.5], "accuracy": [0.5, 0.7]})


WRITERS = {
    "MLP.save": lambda path: nncore.MLP([4, 3, 2], seed=0).save(path),
    "MLP.to_onnx": lambda path: nncore.MLP([4, 3, 2], seed=0).to_onnx(path),
    "write_submission": lambda path: write_submission(path, [1, 2, 3]),
    "save_figure": lambda path: __import__("nncore.plot").plot.save_figure(figure(), path),
    "write_idx": lambda path: write_idx(path, np.arange(12, dtype=np.uint8).reshape(3, 4)),
}


def named_without_temporary_files(error, path):
    message = str(error)
    return str(path) in message and ".nncore-partial" not in message and ".tmp" not in message


@pytest.mark.parametrize("writer", WRITERS)
def test_a_link_to_a_file_is_refused_and_neither_the_link_nor_its_target_changes(tmp_path, writer):
    target, link = tmp_path / "precious.png", tmp_path / "out.png"
    target.write_bytes(b"precious")
    link.symlink_to(target)
    with pytest.raises(OutputPathError, match="is a symbolic link to .*precious.png") as caught:
        WRITERS[writer](link)
    assert named_without_temporary_files(caught.value, link)
    assert link.is_symlink() and target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png", "precious.png"]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_link_to_the_null_device_is_written_through_and_stays_a_link(tmp_path, writer):
    link = tmp_path / "out.png"
    link.symlink_to(os.devnull)
    WRITERS[writer](link)
    assert link.is_symlink() and stat.S_ISCHR(os.stat(os.devnull).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]


@pytest.mark.parametrize("writer", WRITERS)
def test_a_fifo_with_a_reader_gets_the_bytes_and_stays_a_fifo(tmp_path, writer):
    fifo, reference = tmp_path / "out.png", tmp_path / "reference" / "out.png"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader, before any writer
    received, written = [], threading.Event()

    def drain():
        while True:
            done = written.is_set()  # before the read: an end of file read after it is the writer's
            try:
                chunk = os.read(reader, 1 << 16)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            if chunk:
                received.append(chunk)
            elif done:  # end of file once the writer is done, not before it opened
                return

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        with time_limit(30, f"{writer} into a FIFO"):
            WRITERS[writer](fifo)
    finally:
        written.set()
        thread.join(30)
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    reference.parent.mkdir()
    WRITERS[writer](reference)
    streamed = tmp_path / "streamed" / "out.png"
    streamed.parent.mkdir()
    streamed.write_bytes(b"".join(received))
    if writer == "save_figure":  # a figure's bytes need not repeat; a PNG it must be
        assert streamed.read_bytes().startswith(b"\x89PNG")
    elif writer == "MLP.save":  # a zip written to a pipe puts each member's sizes after it: other bytes, one model
        np.testing.assert_array_equal(nncore.load(streamed).params, nncore.load(reference).params)
    else:
        assert streamed.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize("writer", WRITERS)
def test_a_fifo_nobody_reads_is_refused_at_once(tmp_path, writer):
    fifo = tmp_path / "out.png"
    os.mkfifo(fifo)
    with time_limit(10, f"{writer} into a FIFO without a reader"), \
            pytest.raises(OutputPathError, match="is a FIFO .named pipe. that no process reads"):
        WRITERS[writer](fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("make, kind", [
    (lambda path: path.mkdir(), "is a directory"),
    (lambda path: socket.socket(socket.AF_UNIX).bind(str(path)), "is a socket"),
])
def test_a_directory_or_a_socket_is_refused_naming_the_path(tmp_path, writer, make, kind):
    path = tmp_path / "out.png"
    make(path)
    with pytest.raises(OutputPathError, match=kind) as caught:
        WRITERS[writer](path)
    assert named_without_temporary_files(caught.value, path)


@pytest.mark.parametrize("writer", [name for name in WRITERS if name != "save_figure"])  # it makes directories
def test_a_missing_directory_or_an_empty_path_is_an_output_path_error(tmp_path, writer):
    with pytest.raises(OutputPathError, match="directory .*missing does not exist") as caught:
        WRITERS[writer](tmp_path / "missing" / "out.png")
    assert named_without_temporary_files(caught.value, tmp_path / "missing" / "out.png")
    with pytest.raises(OutputPathError, match="an empty path names no file"):
        WRITERS[writer]("")


@pytest.mark.parametrize("writer", WRITERS)
def test_a_full_device_is_reported_naming_the_path(tmp_path, writer):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    link = tmp_path / "out.png"
    link.symlink_to("/dev/full")
    with pytest.raises(OutputPathError, match="out.png: cannot write it .No space left on device") as caught:
        WRITERS[writer](link)
    assert named_without_temporary_files(caught.value, link)
    assert link.is_symlink()


def test_a_directory_that_takes_no_new_files_is_named_not_the_temporary_file(tmp_path, monkeypatch):
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".nncore-partial-out.onnx.x1y2"))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(OutputPathError, match=r"out.onnx: cannot write in .* \(Permission denied\)") as caught:
        nncore.MLP([4, 3, 2], seed=0).to_onnx(tmp_path / "out.onnx")
    assert named_without_temporary_files(caught.value, tmp_path / "out.onnx")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes read-only files")
def test_a_read_only_file_is_not_replaced(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"kept")
    path.chmod(0o444)
    with pytest.raises(OutputPathError, match="is read-only"):
        nncore.MLP([4, 3, 2], seed=0).save(path)
    assert path.read_bytes() == b"kept"


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "m.npz"
    model = nncore.MLP([4, 3, 2], seed=0)
    model.save(path)
    path.chmod(0o600)  # a model its owner keeps private stays private when saved again
    model.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    model.save(tmp_path / "new.npz")
    assert stat.S_IMODE((tmp_path / "new.npz").stat().st_mode) == 0o644


# ---------------------------------------------------------------- the checkpoint directory

@pytest.mark.parametrize("plant", ["link", "fifo", "directory"])
def test_a_planted_lock_file_is_refused_and_its_target_untouched(tmp_path, plant):
    directory, victim = tmp_path / "ck", tmp_path / "victim"
    directory.mkdir()
    victim.write_bytes(b"victim data")
    if plant == "link":
        (directory / ".lock").symlink_to(victim)
    elif plant == "fifo":
        os.mkfifo(directory / ".lock")
    else:
        (directory / ".lock").mkdir()
    X, y = blobs()
    model = nncore.MLP([12, 4, 3], seed=0)
    with time_limit(10, "fit with a planted lock file"), pytest.raises(OutputPathError, match=r"\.lock: is "):
        model.fit(X, y, epochs=1, verbose=0, backend="numpy", checkpoint_dir=directory)
    assert victim.read_bytes() == b"victim data" and model.epochs_trained == 0


def test_a_link_as_the_checkpoint_is_refused_before_the_first_epoch(tmp_path):
    directory, victim = tmp_path / "ck", tmp_path / "victim"
    directory.mkdir()
    victim.write_bytes(b"victim data")
    (directory / "checkpoint.npz").symlink_to(victim)
    X, y = blobs()
    epochs = []
    with pytest.raises(OutputPathError, match="checkpoint .*checkpoint.npz: is a symbolic link"):
        nncore.MLP([12, 4, 3], seed=0).fit(X, y, epochs=2, verbose=0, backend="numpy", checkpoint_dir=directory,
                                           callbacks=[lambda epoch, logs: epochs.append(epoch)])
    assert epochs == [] and victim.read_bytes() == b"victim data"


# ---------------------------------------------------------------- the command line

@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "m.npz"
    nncore.MLP([784, 8, 10], seed=0).save(path)
    return path


@pytest.mark.parametrize("argv, named", [
    (["predict", "{missing_model}", "--csv", "x.csv", "--submission", "{directory}"], "--submission {directory}"),
    (["predict", "{missing_model}", "--csv", "x.csv", "--submission", "{directory}/missing/s.csv"],
     "--submission {directory}/missing/s.csv: directory {directory}/missing does not exist"),
    (["export", "{missing_model}", "--onnx", "{directory}"], "--onnx {directory}: is a directory"),
])
def test_the_cli_checks_output_paths_before_it_reads_anything(tmp_path, capsys, argv, named):
    values = {"missing_model": tmp_path / "no-such-model.npz", "directory": tmp_path}
    code = main([part.format(**values) for part in argv])
    err = capsys.readouterr().err
    assert code == 1 and named.format(**values) in err, err
    assert ".nncore-partial" not in err and "no-such-model" not in err


@pytest.mark.parametrize("argv, named", [
    (["export", "{model}", "--onnx", "{model}"], "--onnx {model} is {model}"),
    (["predict", "{model}", "--csv", "{csv}", "--submission", "{csv}"], "--submission {csv} is {csv}"),
    # the checkpoint the run is about to write, replaced by the model file at its end
    (["train", "--data-dir", "{tmp}/none", "--checkpoint-dir", "{tmp}/ck", "--save", "{tmp}/ck/checkpoint.npz"],
     "--save {tmp}/ck/checkpoint.npz is {tmp}/ck/checkpoint.npz"),
])
def test_the_cli_refuses_to_write_over_what_it_reads(tmp_path, capsys, model_file, argv, named):
    values = {"model": model_file, "csv": tmp_path / "test.csv", "tmp": tmp_path}
    values["csv"].write_text(",".join(f"pixel{k}" for k in range(784)) + "\n" + ",".join(["0"] * 784) + "\n")
    kept = {path: path.read_bytes() for path in (model_file, values["csv"])}
    code = main([part.format(**values) for part in argv])
    err = capsys.readouterr().err
    assert code == 1 and named.format(**values) in err and "would destroy it" in err, err
    assert all(path.read_bytes() == content for path, content in kept.items())


def test_the_cli_checks_each_figure_file_before_it_evaluates(tmp_path, capsys, model_file):
    plots, victim = tmp_path / "plots", tmp_path / "victim"
    plots.mkdir()
    victim.write_bytes(b"victim")
    (plots / "confusion_matrix.png").symlink_to(victim)
    code = main(["evaluate", str(model_file), "--plots", str(plots), "--data-dir", str(tmp_path / "no-data")])
    err = capsys.readouterr().err
    assert code == 1 and "confusion_matrix.png: is a symbolic link" in err and "no-data" not in err, err
    assert victim.read_bytes() == b"victim"


def test_export_to_stdout_writes_the_graph_there_and_its_messages_to_stderr(model_file, tmp_path):
    onnx = pytest.importorskip("onnx")
    if not os.path.exists("/proc/self/fd/1"):
        pytest.skip("no /proc/self/fd")
    for destination in ("pipe", "file"):
        output = tmp_path / f"{destination}.onnx"
        with open(output, "wb") as file:
            result = subprocess.run([sys.executable, "-m", "nncore", "export", str(model_file), "--onnx",
                                     "/proc/self/fd/1"], env=subprocess_environment(), timeout=120,
                                    stdout=subprocess.PIPE if destination == "pipe" else file, stderr=subprocess.PIPE)
        if destination == "pipe":
            output.write_bytes(result.stdout)
        assert result.returncode == 0, result.stderr.decode()
        assert b"wrote /proc/self/fd/1" in result.stderr
        graph = onnx.load_from_string(output.read_bytes())
        assert [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim][1:] == [784]


def test_save_through_a_descriptor_path_loads(tmp_path):
    if not os.path.exists("/proc/self/fd/1"):
        pytest.skip("no /proc/self/fd")
    code = "import nncore; nncore.MLP([4, 3, 2], seed=0).save('/proc/self/fd/1')"
    result = subprocess.run([sys.executable, "-c", code], env=subprocess_environment(), capture_output=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    (tmp_path / "m.npz").write_bytes(result.stdout)
    assert nncore.load(tmp_path / "m.npz").layer_sizes == (4, 3, 2)
