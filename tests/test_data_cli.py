"""The command line's data reading goes through the data layer: --data-dir reads the folder as
it is (nncore.data.local), --idx reads images with read_images, and every mistake in the
user's files is one line on stderr with exit code 1 (issue 11 item 7, issue 15 items 1-2)."""
import os

import numpy as np
import pytest
from test_cli import tiny_images

from nncore.cli import load_split, main
from nncore.data import ImageSet, write_idx


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    import nncore
    path = tmp_path_factory.mktemp("model") / "m.npz"
    nncore.MLP([784, 8, 10], seed=0).save(path)
    return path


def one_line_error(code, err, message):
    assert code == 1
    assert err.startswith("nncore: error: ") and message in err and len(err.strip().splitlines()) == 1, err


def test_predict_on_an_empty_idx_file_says_it_holds_no_images(model_path, tmp_path, capsys):
    write_idx(tmp_path / "empty-idx3-ubyte", np.zeros((0, 28, 28), np.uint8))
    code, _, err = run(capsys, "predict", model_path, "--idx", tmp_path / "empty-idx3-ubyte")
    one_line_error(code, err, "empty-idx3-ubyte: holds no images")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_predict_on_a_fifo_says_what_it_is_instead_of_no_such_file(model_path, tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe")
    code, _, err = run(capsys, "predict", model_path, "--idx", tmp_path / "pipe")
    one_line_error(code, err, "pipe: is a FIFO (named pipe), not a regular file")


def test_predict_reads_a_csv_file_of_images_given_to_idx(model_path, tmp_path, capsys):
    images, _ = tiny_images(2, 0)
    rows = "\n".join(",".join(map(str, image.ravel())) for image in images)
    (tmp_path / "two.csv").write_text(",".join(f"pixel{i}" for i in range(784)) + "\n" + rows + "\n")
    code, out, err = run(capsys, "predict", model_path, "--idx", tmp_path / "two.csv", "--backend", "numpy")
    assert code == 0, err
    assert len(out.splitlines()) == 3


def test_data_dir_with_kaggles_pair_gives_an_unlabeled_test_split(tmp_path):
    images, labels = tiny_images(20, 1)
    header = ",".join(f"pixel{i}" for i in range(784))
    (tmp_path / "train.csv").write_text("label," + header + "\n" + "\n".join(
        ",".join(map(str, [label, *image.ravel()])) for label, image in zip(labels, images, strict=True)) + "\n")
    (tmp_path / "test.csv").write_text(header + "\n" + "\n".join(
        ",".join(map(str, image.ravel())) for image in images[:5]) + "\n")
    train, test = load_split("mnist", "train", tmp_path), load_split("mnist", "test", tmp_path)
    assert len(train) == 20 and train.labeled
    assert isinstance(test, ImageSet) and not test.labeled and len(test) == 5
    assert str(tmp_path / "test.csv") in test.summary


@pytest.mark.parametrize("make, message", [
    (lambda d: (d / "train.csv").mkdir(), "train.csv: is a directory, not a regular file"),
    (lambda d: (d / "train.csv").write_text(",".join(f"pixel{i}" for i in range(785)) + "\n" + "0," * 784 + "0\n"),
     "which column is the label"),
])
def test_data_dir_mistakes_are_one_line(tmp_path, capsys, make, message):
    make(tmp_path)
    code, _, err = run(capsys, "train", "--data-dir", tmp_path, "--epochs", 1, "--backend", "numpy")
    one_line_error(code, err, message)
