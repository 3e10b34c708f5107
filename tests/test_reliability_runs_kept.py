"""Issue 22, class 3: a run is never lost without a word.

- A run without ``resume`` refuses a checkpoint directory holding another run's checkpoint,
  saying how to resume or start over (before, it silently replaced checkpoint and history);
  a model continuing the checkpoint it wrote may still write on.
- A reader of the command's output that goes away (``| head -1``) no longer ends training: the
  rest of the output is discarded, the model is trained and saved (before, ``nncore train``
  exited 0 at the first line it could not print, having saved nothing).
- A history log that is missing, damaged or another run's no longer strands a checkpoint whose
  parameters and optimizer state are intact: resuming continues from them, with a warning that
  names what was lost; a log copied from another run is recognised by the digest the
  checkpoint records (before, it was accepted as this run's history).
- A display (EpochLogger, ProgressBar) whose output fails stops showing, with a warning; the run
  goes on (before, a BrokenPipeError from a progress line ended ``fit``).
"""
import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

import nncore
from nncore.cli import main
from nncore.errors import HistoryLogError, NNCoreWarning, OutputPathError
from nncore.io import load_checkpoint

from test_cli import data_dir, run  # noqa: F401  (data_dir is a fixture)
from test_reliability_training import blobs, subprocess_environment


def train(directory, epochs=3, seed=0, **options):
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=seed)
    model.fit(X, y, epochs=epochs, batch_size=16, seed=1, backend="numpy", verbose=0, checkpoint_dir=directory,
              **options)
    return model


def directory_contents(directory):
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir()) if path.name != ".lock"}


# ---------------------------------------------------------------- another run's checkpoint

@pytest.mark.parametrize("other", [{"seed": 5}, {"seed": 0, "epochs": 1}])
def test_a_run_without_resume_refuses_another_runs_checkpoint_and_keeps_it(tmp_path, other):
    train(tmp_path, epochs=3)
    before = directory_contents(tmp_path)
    with pytest.raises(OutputPathError, match="holds the checkpoint of another run .12-16-3, 3 epochs trained.*"
                                              "resume=True .nncore train --resume.*start over"):
        train(tmp_path, **other)
    assert directory_contents(tmp_path) == before


def test_a_model_continuing_its_own_checkpoint_writes_on(tmp_path):
    model = train(tmp_path, epochs=2)
    X, y = blobs()
    history = model.fit(X, y, epochs=2, batch_size=16, seed=1, backend="numpy", verbose=0, checkpoint_dir=tmp_path)
    assert history.epoch == [3, 4]
    checkpoint = load_checkpoint(tmp_path / "checkpoint.npz")
    assert checkpoint["training"].epoch_offset + checkpoint["training"].epochs_done == 4
    np.testing.assert_array_equal(checkpoint["params"], model.params)


def test_an_unreadable_file_in_the_checkpoints_place_is_not_replaced(tmp_path):
    (tmp_path / "checkpoint.npz").write_bytes(b"not a checkpoint, but someone's")
    with pytest.raises(OutputPathError, match="holds checkpoint.npz, which this run would replace but cannot read"):
        train(tmp_path)
    assert (tmp_path / "checkpoint.npz").read_bytes() == b"not a checkpoint, but someone's"


def test_the_cli_run_again_without_resume_says_how_to_continue(data_dir, tmp_path, capsys):  # noqa: F811
    args = ["train", "--data-dir", data_dir, "--backend", "numpy", "--epochs", 2, "--checkpoint-dir", tmp_path / "ck"]
    assert run(capsys, *args, "--hidden", 8)[0] == 0
    before = directory_contents(tmp_path / "ck")
    code, out, err = run(capsys, *args, "--hidden", 16)
    assert code == 1 and "holds the checkpoint of another run" in err and "--resume" in err, err
    assert directory_contents(tmp_path / "ck") == before
    code, out, err = run(capsys, *args, "--hidden", 8, "--epochs", 3, "--resume")
    assert code == 0 and "resuming from" in out, err


# ---------------------------------------------------------------- a reader that goes away

class GoneReader:
    """A stream whose reader has left: every write and flush is a BrokenPipeError."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")

    def isatty(self):
        return False


def test_train_whose_reader_is_gone_still_trains_and_saves(data_dir, tmp_path):  # noqa: F811
    path = tmp_path / "m.npz"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader left before the first line, as `| head -0` would
    try:
        result = subprocess.run([sys.executable, "-m", "nncore", "train", "--data-dir", str(data_dir), "--backend",
                                 "numpy", "--hidden", "8", "--epochs", "2", "--save", str(path)],
                                stdout=write_end, stderr=subprocess.PIPE, env=subprocess_environment(), timeout=300)
    finally:
        os.close(write_end)
    assert result.returncode == 0, result.stderr.decode()
    assert nncore.load(path).epochs_trained == 2
    assert b"Broken pipe" not in result.stderr and b"Exception ignored" not in result.stderr


def test_an_in_process_command_whose_stdout_breaks_goes_on(data_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(sys, "stdout", GoneReader())
    code = main(["train", "--data-dir", str(data_dir), "--backend", "numpy", "--hidden", "8", "--epochs", "1",
                 "--save", str(tmp_path / "m.npz")])
    assert code == 0 and nncore.load(tmp_path / "m.npz").epochs_trained == 1


# ---------------------------------------------------------------- a lost history log

def the_log(directory):
    return directory / load_checkpoint(directory / "checkpoint.npz")["training"].log


@pytest.mark.parametrize("damage", ["deleted", "truncated", "garbled", "a directory", "another run's"])
def test_a_checkpoint_whose_log_is_lost_resumes_from_its_intact_state(tmp_path, damage):
    train(tmp_path / "run", epochs=2)
    log = the_log(tmp_path / "run")
    if damage == "deleted":
        log.unlink()
    elif damage == "truncated":
        log.write_bytes(log.read_bytes()[:-10])
    elif damage == "garbled":
        log.write_bytes(log.read_bytes()[:-8] + b"\xff" * 8)
    elif damage == "a directory":
        log.unlink()
        log.mkdir()
    else:  # the same epoch count, another run's records, under this run's log name
        train(tmp_path / "other", epochs=2, seed=9)
        shutil.copyfile(the_log(tmp_path / "other"), log)
    with pytest.raises(HistoryLogError, match="parameters and optimizer state are intact: resuming"):
        load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    with pytest.warns(NNCoreWarning, match="resuming from its parameters and optimizer state, which are intact; "
                                           "the history of epochs 1..2 is lost"):
        resumed = train(tmp_path / "run", epochs=4, resume=True)
    straight = train(tmp_path / "straight", epochs=4)
    np.testing.assert_array_equal(resumed.params, straight.params)
    assert resumed.history.epoch == [3, 4] and resumed.epochs_trained == 4
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    assert checkpoint["history"].epoch == [3, 4] and checkpoint["training"].first_logged_epoch == 3
    np.testing.assert_array_equal(checkpoint["history"].loss, straight.history.loss[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new log is whole: resuming again warns of nothing
        assert train(tmp_path / "run", epochs=5, resume=True).history.epoch == [3, 4, 5]


def test_a_log_copied_from_another_run_is_recognised(tmp_path):
    train(tmp_path / "run", epochs=2)
    train(tmp_path / "other", epochs=2, seed=9)
    shutil.copyfile(the_log(tmp_path / "other"), the_log(tmp_path / "run"))
    with pytest.raises(HistoryLogError, match="does not hold the epochs this checkpoint counts"):
        load_checkpoint(tmp_path / "run" / "checkpoint.npz")


def test_a_log_planted_as_a_link_is_not_written_into(tmp_path):
    train(tmp_path / "run", epochs=2)
    log, victim = the_log(tmp_path / "run"), tmp_path / "victim.bin"
    shutil.copyfile(log, victim)  # a valid log, so that nothing but the link gives it away
    kept = victim.read_bytes()
    log.unlink()
    log.symlink_to(victim)
    with pytest.warns(NNCoreWarning, match="is a symbolic link"):
        train(tmp_path / "run", epochs=3, resume=True)
    assert victim.read_bytes() == kept


# ---------------------------------------------------------------- a display whose output fails

@pytest.mark.parametrize("display", ["EpochLogger", "ProgressBar lines", "ProgressBar live"])
def test_a_display_whose_output_fails_does_not_end_training(tmp_path, monkeypatch, display):
    from nncore.progress import ProgressBar

    X, y = blobs()
    options = {"verbose": 0}
    if display == "EpochLogger":
        monkeypatch.setattr(sys, "stdout", GoneReader())
        options = {"verbose": 2}
    else:
        options["callbacks"] = [ProgressBar(file=GoneReader(), batch_bar_after=0, live=display.endswith("live"))]
    model = nncore.MLP([12, 4, 3], seed=0)
    with pytest.warns(NNCoreWarning, match="stopped showing the run: its output failed .*Broken pipe.*goes on"):
        history = model.fit(X, y, epochs=3, batch_size=16, backend="numpy", checkpoint_dir=tmp_path, **options)
    assert history.epoch == [1, 2, 3] and model.epochs_trained == 3
