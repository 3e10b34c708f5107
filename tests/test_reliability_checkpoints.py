"""Issue 11, checkpoints: they stay readable and O(1) per epoch (class 2), every field is
validated (4e), a resume is compared with the caller's settings (4d), and one run writes a
checkpoint directory at a time (6).

Each test here failed on the code before the fix: the history grew inside the JSON header,
load_checkpoint trusted the training fields, resume silently took over or ignored settings,
and a second run in a directory deleted the first one's temporary files.
"""
import io
import json
import math
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import nncore
from nncore.errors import CheckpointMismatch, ModelFileError, NNCoreWarning, OutputPathError
from nncore.io import CHECKPOINT_FORMAT_VERSION, MAX_HEADER_BYTES, load_checkpoint, save_checkpoint, write_npz_atomic

from test_reliability_training import blobs, subprocess_environment


def header_size(path):
    with zipfile.ZipFile(path) as archive:
        return archive.getinfo("header.npy").file_size


def rewrite_header(path, change):
    """Rewrite the checkpoint at ``path`` with ``change(header)`` applied; the arrays stay as they are."""
    with zipfile.ZipFile(path) as archive:
        members = {name[:-4]: np.load(io.BytesIO(archive.read(name)), allow_pickle=False)
                   for name in archive.namelist()}
    header = json.loads(members.pop("header").tobytes())
    change(header)
    write_npz_atomic(path, header, members)


def train(directory, epochs=2, **options):
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)
    options = {"batch_size": 16, "seed": 1, "backend": "numpy", **options}
    model.fit(X, y, epochs=epochs, checkpoint_dir=directory, **options)
    return model


# ---------------------------------------------------------------- 2: readable, O(1) per epoch

def test_the_checkpoint_header_does_not_grow_with_the_epochs(tmp_path):
    sizes = []
    X, y = blobs()
    nncore.MLP([12, 16, 3], seed=0).fit(X, y, epochs=40, batch_size=64, checkpoint_dir=tmp_path, backend="numpy",
                                        callbacks=[lambda epoch, logs: sizes.append(header_size(
                                            tmp_path / "checkpoint.npz"))])
    assert len(sizes) == 40
    assert sizes[-1] - sizes[0] <= 8, f"the header grew by {sizes[-1] - sizes[0]} bytes over 39 epochs"


def test_a_20000_epoch_history_loads_and_one_more_epoch_writes_one_record(tmp_path):
    from nncore.checkpoint import TrainingState
    from nncore.history import RECORD, HistoryLog

    train(tmp_path, epochs=1)
    path = tmp_path / "checkpoint.npz"
    checkpoint = load_checkpoint(path)
    training = checkpoint["training"]
    # The history of a 20,000-epoch full-batch run, made in one array rather than trained.
    n = 20_000
    records = np.zeros(n, dtype=RECORD)
    records["epoch"] = np.arange(1, n + 1)
    records["loss"], records["accuracy"], records["seconds"], records["lr"] = 0.5, 0.75, 0.01, training.base_lr
    records["val_loss"] = records["val_accuracy"] = np.nan
    log = HistoryLog.reopen(tmp_path / training.log)
    log.write(0, records)
    log.close()
    digest = log.digest(n)
    optimizer = nncore.Adam()
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    optimizer.step = 5 * n
    model = nncore.MLP([12, 16, 3], seed=0)
    model.params[:] = checkpoint["params"]
    save_checkpoint(path, model, optimizer, TrainingState(
        training.seed, 0, n, training.base_lr, dict(training.settings, epochs=n), training.log, False, False, None,
        log_digest=digest))
    assert len(load_checkpoint(path)["history"]) == n
    checkpoint_bytes, log_bytes = path.stat().st_size, (tmp_path / training.log).stat().st_size

    X, y = blobs()
    history = nncore.MLP([12, 16, 3], seed=3).fit(X, y, epochs=n + 2, batch_size=16, backend="numpy",
                                                  checkpoint_dir=tmp_path, resume=True)
    assert history.epoch == list(range(1, n + 3)) and history.loss[:n] == [0.5] * n
    reloaded = load_checkpoint(path)
    assert len(reloaded["history"]) == n + 2 and reloaded["history"].epoch[-1] == n + 2
    # Two more epochs: two more records in the log, and a checkpoint of the same size.
    assert (tmp_path / training.log).stat().st_size == log_bytes + 2 * RECORD.itemsize
    assert abs(path.stat().st_size - checkpoint_bytes) <= 8


def test_the_writer_refuses_a_header_the_reader_would_refuse(tmp_path):
    path = tmp_path / "big.npz"
    with pytest.raises(ValueError, match="exceeds what nncore reads back"):
        write_npz_atomic(path, {"notes": "x" * MAX_HEADER_BYTES}, {"params": np.zeros(3)})
    assert not path.exists() and list(tmp_path.iterdir()) == []


def test_a_checkpoint_write_that_would_not_load_is_refused_and_keeps_the_last_one(tmp_path):
    model = train(tmp_path)
    path = tmp_path / "checkpoint.npz"
    before = path.read_bytes()
    checkpoint = load_checkpoint(path)
    model.params[0] = np.nan
    with pytest.raises(ValueError, match="refusing to write checkpoint .*NaN or infinity"):
        save_checkpoint(path, model, model.optimizer, checkpoint["training"])
    assert path.read_bytes() == before and not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------- 4e: every field validated

FIELD_ATTACKS = [
    (("training", "history", "stopped_early"), "no", "stopped_early"),
    (("training", "base_lr"), -0.5, "base_lr"),
    (("training", "base_lr"), "0.01", "base_lr"),
    (("training", "epochs_done"), -1, "epochs_done"),
    (("training", "epochs_done"), 2.0, "epochs_done"),
    (("training", "epoch_offset"), 10**30, "epoch_offset"),
    (("training", "seed"), -5, "seed"),
    (("training", "seed"), True, "seed"),
    (("training", "history", "best_epoch"), 10**6, "best_epoch"),
    (("training", "settings", "batch_size"), 0, "batch_size"),
    (("training", "settings", "loss"), "hinge", "loss"),
    (("optimizer", "step"), -3, "step"),
    (("optimizer", "step"), 1, "step"),  # fewer updates than epochs done
    (("optimizer", "hyperparameters", "lr"), -1.0, "lr"),
    (("optimizer", "hyperparameters", "eps"), 0, "eps"),
]


@pytest.mark.parametrize("keys, value, named", FIELD_ATTACKS, ids=[f"{'.'.join(k)}={v!r}" for k, v, _ in FIELD_ATTACKS])
def test_every_checkpoint_field_is_validated(tmp_path, keys, value, named):
    train(tmp_path, optimizer=nncore.Adam(lr=0.01))
    path = tmp_path / "checkpoint.npz"

    def change(header):
        target = header
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    rewrite_header(path, change)
    with pytest.raises(ModelFileError, match=named):
        load_checkpoint(path)
    model = nncore.MLP([12, 16, 3], seed=7)
    before = model.params.copy()
    X, y = blobs()
    with pytest.raises(ModelFileError, match=named):
        model.fit(X, y, epochs=4, batch_size=16, backend="numpy", checkpoint_dir=tmp_path, resume=True)
    np.testing.assert_array_equal(model.params, before)
    assert model.epochs_trained == 0


# ---------------------------------------------------------------- 4d: resume vs the caller's settings

MISMATCHES = [
    ({"seed": 2}, "seed"),
    ({"batch_size": 32}, "batch_size"),
    ({"loss": "mse"}, "loss"),
    ({"validation_split": 0.2}, "validation_split"),
    ({"optimizer": nncore.SGD(lr=0.01)}, "trained with adam, not sgd"),
    ({"y": "permuted"}, "data"),
    ({"X": "brighter"}, "data"),
]


@pytest.mark.parametrize("change, named", MISMATCHES, ids=[n for _, n in MISMATCHES])
def test_resume_refuses_a_run_with_other_settings_naming_the_difference(tmp_path, change, named):
    train(tmp_path, optimizer=nncore.Adam(lr=0.01))
    X, y = blobs()
    options = {"batch_size": 16, "seed": 1, "backend": "numpy", **change}
    if options.pop("y", None):
        y = y[::-1].copy()
    if options.pop("X", None):
        X = X + 1
    model = nncore.MLP([12, 16, 3], seed=7)
    before = model.params.copy()
    with pytest.raises(CheckpointMismatch, match=named):
        model.fit(X, y, epochs=4, checkpoint_dir=tmp_path, resume=True, **options)
    np.testing.assert_array_equal(model.params, before)


def test_resume_follows_the_callers_optimizer_hyperparameters_with_a_warning(tmp_path):
    train(tmp_path, optimizer=nncore.Adam(lr=0.01))
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=7)
    with pytest.warns(NNCoreWarning, match="optimizer lr=0.01.* in the checkpoint, lr=0.002.* in this run"):
        history = model.fit(X, y, epochs=3, batch_size=16, seed=1, backend="numpy", checkpoint_dir=tmp_path,
                            resume=True, optimizer=nncore.Adam(lr=0.002))
    assert history.lr[-1] == 0.002 and model.optimizer.lr == 0.002
    assert model.optimizer.step == load_checkpoint(tmp_path / "checkpoint.npz")["optimizer_state"]["step"]


def test_resume_without_an_optimizer_takes_the_checkpoints_silently(tmp_path, recwarn):
    train(tmp_path, optimizer=nncore.Adam(lr=0.01))
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=7)
    model.fit(X, y, epochs=3, batch_size=16, backend="numpy", checkpoint_dir=tmp_path, resume=True)
    assert model.optimizer.lr == 0.01
    assert not [w for w in recwarn if issubclass(w.category, NNCoreWarning)]


# ---------------------------------------------------------------- 6: one writer per directory

def test_a_second_run_in_the_same_directory_is_refused_while_the_first_one_trains(tmp_path):
    X, y = blobs()
    refusals = []

    def second_run(epoch, logs):
        other = nncore.MLP([12, 16, 3], seed=1)
        with pytest.raises(OutputPathError, match=f"checkpoint directory {tmp_path} is in use by another "
                                                  "training run .another thread of this process."):
            other.fit(X, y, epochs=1, checkpoint_dir=tmp_path, backend="numpy")
        refusals.append(epoch)

    nncore.MLP([12, 16, 3], seed=0).fit(X, y, epochs=2, batch_size=16, seed=1, checkpoint_dir=tmp_path,
                                        backend="numpy", callbacks=[second_run])
    assert refusals == [1, 2]
    assert load_checkpoint(tmp_path / "checkpoint.npz")["training"].epochs_done == 2
    # Released at the end: the next run may use the directory.
    train(tmp_path, epochs=3, resume=True)


HOLD_THE_DIRECTORY = textwrap.dedent("""
    import sys, time, nncore
    sys.path.insert(0, sys.argv[2])
    from test_reliability_training import blobs
    X, y = blobs()
    def wait(epoch, logs):
        print("ready", flush=True)
        time.sleep(60)
    nncore.MLP([12, 16, 3], seed=0).fit(X, y, epochs=1, checkpoint_dir=sys.argv[1], backend="numpy",
                                        callbacks=[wait], verbose=0)  # its stdout is the "ready" line
""")


def test_a_second_process_is_refused_naming_the_first_and_its_files_are_left_alone(tmp_path):
    directory = tmp_path / "run"
    tests = str(__import__("pathlib").Path(__file__).parent)
    process = subprocess.Popen([sys.executable, "-c", HOLD_THE_DIRECTORY, str(directory), tests],
                               env=subprocess_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "ready", process.stderr.read()
        files = sorted(p.name for p in directory.iterdir())
        (directory / ".checkpoint.npz.other-writer.tmp").write_bytes(b"in progress")
        X, y = blobs()
        with pytest.raises(OutputPathError, match=f"in use by another training run .process {process.pid} on "):
            nncore.MLP([12, 16, 3], seed=0).fit(X, y, epochs=1, checkpoint_dir=directory, backend="numpy")
        assert (directory / ".checkpoint.npz.other-writer.tmp").read_bytes() == b"in progress"
        assert sorted(p.name for p in directory.iterdir()) == sorted(files + [".checkpoint.npz.other-writer.tmp"])
    finally:
        process.kill()
        process.wait(timeout=30)
        process.stdout.close()
        process.stderr.close()
    # Its holder died: the lock went with it, and the leftover is cleaned by the next run, which resumes its checkpoint.
    nncore.MLP([12, 16, 3], seed=0).fit(*blobs(), epochs=2, checkpoint_dir=directory, backend="numpy", resume=True)
    assert not list(directory.glob(".checkpoint.npz.*.tmp"))


def test_a_full_disk_during_a_checkpoint_names_the_file_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    import os

    train(tmp_path, epochs=2)
    path = tmp_path / "checkpoint.npz"
    real_fsync, calls = os.fsync, []

    def fsync_until_full(descriptor):
        calls.append(descriptor)
        if len(calls) > 2:  # the first epoch's log record and checkpoint are written, then the disk is full
            raise OSError(28, "No space left on device")
        return real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync_until_full)
    with pytest.raises(OutputPathError, match=f"{tmp_path}.*: cannot write .*No space left on device"):
        train(tmp_path, epochs=5, resume=True)
    monkeypatch.undo()
    assert load_checkpoint(path)["training"].epochs_done == 3
    assert not list(tmp_path.glob(".checkpoint.npz.*.tmp"))
    model = train(tmp_path, epochs=5, resume=True)  # the lock was released; the run goes on from epoch 3
    assert model.epochs_trained == 5 and len(load_checkpoint(path)["history"]) == 5


@pytest.mark.parametrize("flag", [True, False])
def test_a_validation_flag_that_contradicts_the_log_is_refused(tmp_path, flag):
    train(tmp_path, **({} if flag else {"validation_split": 0.25}))
    rewrite_header(tmp_path / "checkpoint.npz", lambda header: header["training"]["history"].update(has_validation=flag))
    with pytest.raises(ModelFileError, match="val_loss holds"):
        load_checkpoint(tmp_path / "checkpoint.npz")


def test_validation_outputs_that_overflow_are_recorded_as_inf_and_nan_and_the_checkpoint_loads(tmp_path):
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)
    huge = np.full_like(X, 3e38)  # finite float32 inputs whose logits overflow
    with pytest.warns(NNCoreWarning, match="val_loss is recorded as inf, val_accuracy as NaN"):
        history = model.fit(X, y, epochs=1, batch_size=16, backend="numpy", validation_data=(huge, y),
                            checkpoint_dir=tmp_path)
    assert history.val_loss == [math.inf] and math.isnan(history.val_accuracy[0])
    reloaded = load_checkpoint(tmp_path / "checkpoint.npz")["history"]
    assert reloaded.val_loss == [math.inf] and math.isnan(reloaded.val_accuracy[0])


def test_a_version_2_checkpoint_with_its_history_in_the_header_is_still_resumed(tmp_path):
    train(tmp_path, epochs=2)
    path = tmp_path / "checkpoint.npz"
    checkpoint = load_checkpoint(path)
    training = checkpoint["training"]

    def as_version_2(header):  # as the previous release wrote it: the history as JSON lists
        header["format_version"] = 2
        header["training"] = {"seed": training.seed, "epoch_offset": 0, "epochs_done": 2, "base_lr": training.base_lr,
                              "history": checkpoint["history"].to_dict(),
                              "settings": {"batch_size": 16, "loss": "cross_entropy", "epochs": 2, "backend": "numpy",
                                           "validation_split": None}}

    rewrite_header(path, as_version_2)
    for log in tmp_path.glob("history-*.bin"):
        log.unlink()
    with pytest.warns(NNCoreWarning, match="written by an older nncore"):
        resumed = train(tmp_path, epochs=4, resume=True)
    straight = nncore.MLP([12, 16, 3], seed=0)
    straight.fit(*blobs(), epochs=4, batch_size=16, seed=1, backend="numpy")
    np.testing.assert_array_equal(resumed.params, straight.params)
    reloaded = load_checkpoint(path)
    assert reloaded["header"]["format_version"] == CHECKPOINT_FORMAT_VERSION
    assert reloaded["history"].epoch == [1, 2, 3, 4]
    np.testing.assert_array_equal(reloaded["history"].loss, straight.history.loss)
