"""Issue 22, classes 5 and 6: errors of the right kind, and what is shown is what is there.

- ``augment="shift:²"`` (a digit ``str.isdigit`` takes and ``int`` refuses) and a 5,000-digit
  shift were raw ``int()`` errors; now the augment option's own message, of bounded length.
- Class names and dataset names from a model file are anyone's: ``evaluate``, ``predict`` and
  the CLI's notes printed escape sequences and line breaks raw (terminal injection, broken
  tables); now they are escaped.
- A loaded model, or a loaded checkpoint, said ``epochs_trained == 0``, so a model trained on
  numbered its epochs from 1 again; model files now record the count, checkpoints already did.
- ``read_csv`` left its text wrapper to the collector: a ResourceWarning per read.
"""
import gc
import warnings

import numpy as np
import pytest

import nncore
from nncore.augment import get_augment
from nncore.data import read_csv

from test_cli import data_dir, run  # noqa: F401  (data_dir is a fixture)
from test_reliability_training import blobs

HOSTILE = ("\x1b[2J\x1b[H", "two\nlines", "back\rover", "\u202eright-to-left", "bell\x07", "ok", "6", "7", "8", "9")


@pytest.mark.parametrize("augment", ["shift:²", "shift:٣", "shift:" + "9" * 5000, "shift:-1", "shift:2.5"])
def test_a_malformed_shift_is_refused_in_the_options_words(augment):
    with pytest.raises(ValueError, match=r"augment must be None, 'shift:K'") as caught:
        get_augment(augment)
    assert len(str(caught.value)) < 300
    X, y = blobs()
    with pytest.raises(ValueError, match=r"augment must be None, 'shift:K'"):
        nncore.MLP([12, 4, 3], seed=0).fit(X, y, epochs=1, verbose=0, backend="numpy", augment=augment)


@pytest.fixture
def hostile_model(tmp_path):
    model = nncore.MLP([784, 8, 10], seed=0)
    model.class_names, model.dataset_name = HOSTILE, "mnist\x1b]0;owned\x07"
    path = tmp_path / "hostile.npz"
    model.save(path)
    return path


def no_terminal_controls(text):
    return not any(character in text for character in "\x1b\r\x07\u202e")


def test_evaluate_escapes_the_class_names_it_prints(data_dir, hostile_model, capsys):  # noqa: F811
    code, out, err = run(capsys, "evaluate", hostile_model, "--data-dir", data_dir, "--backend", "numpy")
    assert code == 0, err
    assert no_terminal_controls(out) and no_terminal_controls(err)
    assert "\\x1b[2J\\x1b[H" in out and "two\\nlines" in out and "\\u202eright-to-left" in out
    matrix = out.splitlines()[1:]
    assert len(matrix) == 1 + 10 + 1  # header, one row per class, total: no name broke a row


def test_predict_escapes_the_class_names_it_prints(data_dir, hostile_model, capsys):  # noqa: F811
    code, out, err = run(capsys, "predict", hostile_model, "--data-dir", data_dir, "--backend", "numpy",
                         "--indices", *range(20))
    assert code == 0, err
    assert no_terminal_controls(out)
    assert len(out.splitlines()) == 1 + 20


def test_notes_quoting_a_model_files_dataset_name_escape_it(data_dir, hostile_model, capsys):  # noqa: F811
    code, out, err = run(capsys, "evaluate", hostile_model, "--dataset", "fashion-mnist", "--data-dir", data_dir,
                         "--backend", "numpy")
    assert "was trained on mnist\\x1b]0;owned\\x07" in err and no_terminal_controls(err)


def test_a_loaded_model_or_checkpoint_knows_its_epochs_and_goes_on_counting(tmp_path):
    X, y = blobs()
    model = nncore.MLP([12, 4, 3], seed=0)
    model.fit(X, y, epochs=3, verbose=0, backend="numpy", checkpoint_dir=tmp_path / "ck")
    model.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    assert loaded.epochs_trained == 3 and nncore.load(tmp_path / "ck" / "checkpoint.npz").epochs_trained == 3
    assert loaded.copy().epochs_trained == 3
    assert loaded.fit(X, y, epochs=2, verbose=0, backend="numpy").epoch == [4, 5]


def test_a_model_file_with_an_invalid_epoch_count_is_refused_by_writer_and_reader(tmp_path):
    from nncore.errors import ModelFileError
    from test_reliability_checkpoints import rewrite_header

    model = nncore.MLP([12, 4, 3], seed=0)
    model.epochs_trained = -1
    with pytest.raises(ValueError, match="refusing to write .*epochs_trained"):
        model.save(tmp_path / "m.npz")
    model.epochs_trained = 0
    model.save(tmp_path / "m.npz")
    rewrite_header(tmp_path / "m.npz", lambda header: header.update(epochs_trained="3"))
    with pytest.raises(ModelFileError, match="epochs_trained"):
        nncore.load(tmp_path / "m.npz")


def test_read_csv_closes_what_it_opens(tmp_path):
    path = tmp_path / "images.csv"
    path.write_text("label," + ",".join(f"pixel{k}" for k in range(784)) + "\n"
                    + "\n".join("3," + ",".join(["0"] * 784) for _ in range(3)) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        images, labels = read_csv(path)
        gc.collect()
    assert images.shape == (3, 784) and labels.tolist() == [3, 3, 3]
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
