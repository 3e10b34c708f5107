"""Every script in examples/ runs end to end (on tiny stand-in data, with few iterations), and
says in one line what is missing when its data or an optional package is not there."""
import dataclasses
import runpy
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_cli import tiny_images

import nncore
from nncore.data import fetch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def tiny_dataset(split, *args, **kwargs):
    images, labels = tiny_images(300 if split == "train" else 100, 0 if split == "train" else 1)
    return nncore.Dataset(images.reshape(len(images), -1), labels, [str(d) for d in range(10)], name=split)


@pytest.fixture
def run_example(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(nncore, "load_mnist", tiny_dataset)
    monkeypatch.setattr(nncore, "load_fashion_mnist", tiny_dataset)
    monkeypatch.chdir(tmp_path)

    def run(name, *argv):
        monkeypatch.setattr(sys, "argv", [name, *map(str, argv), "--backend", "numpy"])
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
        return capsys.readouterr().out.splitlines()

    return run


@pytest.mark.parametrize("name, argv, final", [
    ("mnist_784_10_10_gd.py", ["--iterations", 50], "784-10-10 full-batch GD, 50 iterations"),
    ("mnist_784_10_10_mse.py", ["--iterations", 50], "784-10-10 MSE full-batch GD, 50 iterations"),
    ("mnist_minibatch_nll.py", ["--epochs", 2, "--hidden", 16], "784-16-10 NLL, batch 64, 2 epochs"),
    ("mnist_deep_he.py", ["--epochs", 2], "784-512-256-128-10 He/Adam"),
    ("fashion_mnist.py", ["--epochs", 2], "Fashion-MNIST 784-256-128-10, 2 epochs"),
    ("regularized_recipes.py", ["mnist", "--epochs", 2, "--hidden", 32, 16],
     "mnist 784-32-16-10 dropout 0.3 input dropout 0.0 shift 2 seed 0, 2 epochs"),
    ("regularized_recipes.py", ["fashion-mnist", "--epochs", 1, "--hidden", 16, "--input-dropout", 0.2],
     "fashion-mnist 784-16-10 dropout 0.2 input dropout 0.2 shift 0 seed 0, 1 epochs"),
])
def test_example_runs_and_reports_its_accuracy(run_example, name, argv, final):
    lines = run_example(name, *argv)
    assert lines[-1].startswith(final) and "test " in lines[-1]


def test_kaggle_csv_example_reads_a_csv_with_a_header(run_example, tmp_path):
    images, labels = tiny_images(200, 3)
    rows = np.column_stack([labels, images.reshape(200, -1)])
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    np.savetxt(tmp_path / "train.csv", rows, fmt="%d", delimiter=",", header=header, comments="")
    lines = run_example("kaggle_csv.py", tmp_path / "train.csv", "--epochs", 2)
    assert lines[-1].startswith("CSV (180 training rows), 2 epochs: held-out accuracy")
    assert nncore.load(tmp_path / "kaggle_csv_model.npz").layer_sizes == (784, 256, 128, 10)


def test_every_training_example_is_tested():
    # make_pictures.py is tested below, dask_sweep.py in test_dask_sweep.py, demo_pictures.py in
    # test_demo_browser.py.
    tested = {"mnist_784_10_10_gd.py", "mnist_784_10_10_mse.py", "mnist_minibatch_nll.py", "mnist_deep_he.py",
              "fashion_mnist.py", "kaggle_csv.py", "regularized_recipes.py"}
    others = {"make_pictures.py", "dask_sweep.py", "demo_pictures.py"}
    assert {path.name for path in EXAMPLES.glob("*.py")} - others == tested


def test_an_example_whose_dataset_no_source_provides_says_the_fixing_command_in_one_line(monkeypatch, tmp_path,
                                                                                          capsys):
    # A machine without the Debian package and without a way to the mirrors: the only source fails.
    debian_only = fetch.LocalDirectorySource(tmp_path / "not-installed", "Debian package dataset-fashion-mnist")
    monkeypatch.setitem(fetch.DATASETS, "fashion-mnist",
                        dataclasses.replace(fetch.FASHION_MNIST, sources=(debian_only,)))
    monkeypatch.setenv("NNCORE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", ["fashion_mnist.py", "--epochs", "1"])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(EXAMPLES / "fashion_mnist.py"), run_name="__main__")
    message = str(exited.value.code)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith("fashion_mnist.py: fashion-mnist is not on this machine")
    assert "apt-get install dataset-fashion-mnist" in message and "nncore fetch fashion-mnist --from DIR" in message


@pytest.mark.parametrize("name, missing, extra", [
    ("dask_sweep.py", "dask.distributed", "nncore[dask]"),
    ("make_pictures.py", "matplotlib", "nncore[plot]"),
])
def test_an_example_without_its_optional_packages_names_the_extra_in_one_line(monkeypatch, name, missing, extra):
    monkeypatch.setitem(sys.modules, missing, None)  # import raises ImportError, as when not installed
    monkeypatch.setattr(sys, "argv", [name])
    with pytest.raises(SystemExit) as exited:
        runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    message = str(exited.value.code)
    assert message.startswith(name) and f'pip install "{extra}"' in message and "\n" not in message


def test_make_pictures_writes_into_a_new_temporary_folder_unless_told_where_never_into_docs(monkeypatch, tmp_path,
                                                                                            capsys):
    pytest.importorskip("matplotlib")
    docs_images = EXAMPLES.parent / "docs" / "images"
    before = {path.name: path.stat().st_mtime_ns for path in docs_images.glob("*.png")}
    monkeypatch.setattr(nncore.data, "load_dataset", lambda name, split: tiny_dataset(split))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp makes its folders
    monkeypatch.chdir(tmp_path)
    for argv in ([], ["--out", "chosen"]):
        monkeypatch.setattr(sys, "argv", ["make_pictures.py", "--epochs", "1", "--hidden", "8", "--backend", "numpy",
                                          *argv])
        runpy.run_path(str(EXAMPLES / "make_pictures.py"), run_name="__main__")
        folder = Path(capsys.readouterr().out.splitlines()[-1].removeprefix("pictures in "))
        expected = tmp_path / "chosen" if argv else next(tmp_path.glob("nncore-pictures-*"))
        assert folder.resolve() == expected.resolve()
        assert sorted(path.name for path in folder.iterdir()) == sorted(
            f"{name}.png" for name in ("training_curves", "predictions", "prediction_errors", "confusion_matrix",
                                       "first_layer_weights"))
    assert {path.name: path.stat().st_mtime_ns for path in docs_images.glob("*.png")} == before
