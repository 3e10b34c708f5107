"""Command-line habits (issue 15 item 6): a mistyped option is reported as such (not as a bad
dataset name), ``--epochs 0`` is refused instead of "training" and reporting an accuracy, and
``predict``'s columns stay aligned for long class names."""
import pytest
from test_cli import tiny_images

import nncore
from nncore.cli import main
from nncore.data import write_idx
from nncore.data.fetch import FASHION_MNIST_CLASS_NAMES


def usage_error(capsys, *argv):
    with pytest.raises(SystemExit) as caught:
        main([str(a) for a in argv])
    assert caught.value.code == 2
    return capsys.readouterr().err.strip()


@pytest.mark.parametrize("argv, option, suggestion", [
    (["train", "--hiden", "64"], "--hiden", "--hidden"),
    (["train", "--hiden", "64", "--epochs", "2"], "--hiden", "--hidden"),
    (["evaluate", "m.npz", "--splt", "train"], "--splt", "--split"),
    (["predict", "m.npz", "--indices", "1", "--bakend", "numpy"], "--bakend", "--backend"),
    (["fetch", "--form", "/data/mnist", "mnist"], "--form", "--from"),
])
def test_a_mistyped_option_is_reported_as_an_unknown_option(capsys, argv, option, suggestion):
    err = usage_error(capsys, *argv)
    assert len(err.splitlines()) == 1 and "invalid choice" not in err
    assert f"unrecognized option {option}" in err and f"did you mean {suggestion}?" in err


@pytest.mark.parametrize("command", ["train", "fetch"])
def test_an_unknown_dataset_is_still_named_as_such(capsys, command):
    err = usage_error(capsys, command, "emnist")
    assert "argument dataset: invalid choice: 'emnist'" in err and "mnist" in err


def test_an_unknown_option_with_nothing_close_is_reported_without_a_guess(capsys):
    err = usage_error(capsys, "train", "--frobnicate", "7")
    assert "unrecognized option --frobnicate" in err and "did you mean" not in err


def test_epochs_0_is_refused_instead_of_reporting_an_untrained_accuracy(capsys):
    err = usage_error(capsys, "train", "--epochs", "0")
    assert err == ("nncore train: error: argument --epochs: expected a positive integer, got '0' "
                   "(see `nncore train --help`)")


def test_predict_columns_align_for_long_class_names(tmp_path, capsys):
    images, labels = tiny_images(6, 3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    model = nncore.MLP([784, 8, 10], seed=0)
    model.class_names = FASHION_MNIST_CLASS_NAMES
    model.save(tmp_path / "fashion.npz")
    assert main(["predict", str(tmp_path / "fashion.npz"), "--indices", "0", "1", "2", "3", "4", "5",
                 "--data-dir", str(tmp_path), "--backend", "numpy"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["index", "predicted", "probability", "label"]
    predicted_at, label_at = header.index("predicted"), header.index("label")
    probability_end = header.index("probability") + len("probability")
    predicted = model.predict(images.reshape(6, -1), backend="numpy")
    assert len(rows) == 6
    for row, k, label in zip(rows, predicted, labels, strict=True):
        assert row[predicted_at:].startswith(FASHION_MNIST_CLASS_NAMES[k] + " ")
        assert row[probability_end - 1].isdigit() and row[probability_end] == " "
        assert row[label_at:].startswith(FASHION_MNIST_CLASS_NAMES[label])
