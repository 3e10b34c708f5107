"""The nncore command line on a tiny local dataset (IDX files the tests write): train, evaluate,
predict, exit codes, one-line errors."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import nncore
from nncore.cli import EXIT_DIVERGED, EXIT_INTERRUPTED, main
from nncore.data import write_idx


def tiny_images(n, seed):
    """28x28 uint8 images where class k lights a horizontal band at rows 2k..2k+4, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        images[i, 2 * k + 2:2 * k + 6, :] = 255
    return images, labels


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny-mnist")
    train_images, train_labels = tiny_images(400, 0)
    test_images, test_labels = tiny_images(100, 1)
    write_idx(directory / "train-images-idx3-ubyte", train_images)
    write_idx(directory / "train-labels-idx1-ubyte.gz", train_labels)
    write_idx(directory / "t10k-images-idx3-ubyte", test_images)
    write_idx(directory / "t10k-labels-idx1-ubyte", test_labels)
    return directory


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.npz"
    code = main(["train", "--data-dir", str(data_dir), "--backend", "numpy", "--hidden", "32",
                 "--epochs", "4", "--batch-size", "32", "--lr", "0.005", "--save", str(path)])
    assert code == 0
    return path


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_prints_one_line_per_epoch_then_the_test_accuracy(data_dir, tmp_path, capsys):
    path = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 32, 16,
                         "--epochs", 3, "--batch-size", 32, "--save", path, "--lr", "0.005")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("mnist/train: 400 labeled images from ") and lines[1].startswith("mnist/test: 100 ")
    assert lines[2].startswith("training 784-32-16-10 on mnist (360 train, 40 validation)")
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 3 and "val_accuracy" in epoch_lines[0]
    assert re.search(r" s  ETA \d\d:\d\d$", epoch_lines[0]) and epoch_lines[-1].endswith(" s")
    final = [line for line in lines if line.startswith("test accuracy ")]
    assert len(final) == 1 and float(final[0].split()[2].rstrip("%")) > 80
    assert nncore.load(path).layer_sizes == (784, 32, 16, 10)


@pytest.mark.parametrize("activation", ["tanh", "logistic", "identity"])
def test_train_takes_an_activation_for_the_hidden_layers_and_saves_it(data_dir, tmp_path, capsys, activation):
    path = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 16, 8,
                         "--epochs", 2, "--activation", activation, "--save", path)
    assert code == 0, err
    assert f"{activation} hidden layers" in next(line for line in out.splitlines() if line.startswith("training "))
    assert nncore.load(path).network.activation_names == (activation, activation)
    with pytest.raises(SystemExit) as caught:
        main(["train", "--data-dir", str(data_dir), "--activation", "softsign"])
    assert caught.value.code == 2 and "--activation" in capsys.readouterr().err


def test_train_quiet_prints_only_the_result(data_dir, capsys):
    code, out, _ = run(capsys, "train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 8,
                       "--epochs", 1, "--quiet", "--validation-split", 0, "--optimizer", "sgd", "--loss", "mse",
                       "--batch-size", "full", "--schedule", "constant")
    assert code == 0 and out.startswith("test accuracy ") and len(out.splitlines()) == 1


def test_train_with_checkpoints_resumes(data_dir, tmp_path, capsys):
    args = ["train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 8, "--epochs", 2,
            "--checkpoint-dir", tmp_path / "ck", "--save", tmp_path / "a.npz"]
    assert run(capsys, *args)[0] == 0
    code, out, _ = run(capsys, *args[:8], 3, *args[9:], "--resume")
    assert code == 0 and "resuming from" in out and len([l for l in out.splitlines() if l.startswith("epoch")]) == 1


def test_evaluate_prints_accuracy_loss_and_a_confusion_matrix(trained, data_dir, capsys):
    code, out, err = run(capsys, "evaluate", trained, "--data-dir", data_dir, "--backend", "numpy")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("mnist test: 100 images, accuracy ")
    # header, matrix header, 10 class rows, the overall-accuracy line
    assert "predicted" in lines[1] and len(lines) == 2 + 10 + 1
    assert lines[-1].startswith("accuracy ") and "of 100)" in lines[-1]


def test_predict_on_dataset_indices_and_on_an_idx_file(trained, data_dir, tmp_path, capsys):
    code, out, err = run(capsys, "predict", trained, "--indices", 0, 5, 99, "--data-dir", data_dir,
                         "--backend", "numpy")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["index", "predicted", "probability", "label"] and len(lines) == 4
    assert lines[2].split()[0] == "5"
    images, _ = tiny_images(3, 5)
    write_idx(tmp_path / "three.idx", images)
    code, out, err = run(capsys, "predict", trained, "--idx", tmp_path / "three.idx", "--backend", "numpy")
    assert code == 0, err and len(out.splitlines()) == 4


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "{tmp}/absent.npz"], "absent.npz: no such file"),
    (["predict", "{model}", "--indices", "100", "--data-dir", "{data}"], "index 100 is out of range"),
    (["predict", "{model}", "--idx", "{tmp}/absent.idx"], "no such file"),
    (["train", "--data-dir", "{tmp}/nowhere"], "no such directory"),
    (["train", "--data-dir", "{tmp}"], "holds neither"),
    (["evaluate", "{junk}", "--data-dir", "{data}"], "not an nncore model file"),
    (["train", "--resume", "--data-dir", "{data}"], "--resume needs --checkpoint-dir"),
    (["train", "--data-dir", "{broken}"], "broken"),
])
def test_user_mistakes_print_one_line_and_exit_1(argv, message, trained, data_dir, tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"not a model")
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        (broken / name).write_bytes(b"\x00\x00\x08\x03\x00\x00")
    argv = [a.format(tmp=tmp_path, model=trained, data=data_dir, junk=tmp_path / "junk.npz", broken=broken)
            for a in argv]
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.startswith("nncore: error: ") and message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [["train", "--epochs", "-1"], ["train", "--lr", "fast"],
                                  ["train", "--optimizer", "lbfgs"], ["train", "--hidden", "0"],
                                  ["predict", "m.npz"], ["frobnicate"], []])
def test_bad_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and "error" in capsys.readouterr().err


def test_divergence_exits_with_its_own_code(data_dir, capsys):
    code, _, err = run(capsys, "train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 16,
                         "--optimizer", "sgd", "--lr", 1e10, "--epochs", 3, "--schedule", "constant")
    assert code == EXIT_DIVERGED == 3
    assert "diverged" in err and "epoch 1, batch" in err and len(err.strip().splitlines()) == 1


def test_ctrl_c_during_training_exits_130_keeping_the_checkpoint(data_dir, tmp_path, capsys, monkeypatch):
    from nncore.backends.numpy_backend import NumpyBackend

    calls = []
    original = NumpyBackend.train_epoch

    def interrupted_on_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(NumpyBackend, "train_epoch", interrupted_on_second_epoch)
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 8,
                         "--epochs", 5, "--checkpoint-dir", tmp_path)
    assert code == EXIT_INTERRUPTED == 130
    assert "interrupted after 1 complete epoch" in err and "test accuracy" not in out
    assert (tmp_path / "checkpoint.npz").exists()


def test_ctrl_c_anywhere_exits_130(monkeypatch, capsys):
    import nncore.cli

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nncore.cli, "load_split", interrupt)
    assert main(["train"]) == 130 and capsys.readouterr().err.strip() == "nncore: interrupted"


def test_plots_without_matplotlib_is_a_clear_error(trained, data_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = run(capsys, "evaluate", trained, "--data-dir", data_dir, "--backend", "numpy",
                       "--plots", "figs")
    assert code == 1 and "matplotlib" in err


def test_plots_writes_figures(trained, data_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    code, _, err = run(capsys, "evaluate", trained, "--data-dir", data_dir, "--backend", "numpy",
                         "--plots", tmp_path / "figs")
    assert code == 0, err
    assert len(list((tmp_path / "figs").iterdir())) >= 3


def test_python_m_nncore_runs_with_help_for_each_subcommand():
    for command in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"],
                    ["fetch", "--help"], ["info", "--help"]):
        result = subprocess.run([sys.executable, "-m", "nncore", *command], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0 and "usage: nncore" in result.stdout, (command, result.stderr)


def test_errors_from_a_real_process_have_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nncore", "evaluate", str(tmp_path / "nope.npz")],
                            capture_output=True, text=True, env={**os.environ, "NNCORE_DEBUG": ""}, check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"nncore: error: {tmp_path / 'nope.npz'}: no such file"


def test_info_prints_the_report(capsys):
    code, out, _ = run(capsys, "info")
    assert code == 0 and out.startswith("nncore ")


@pytest.mark.network
def test_default_train_reaches_97_percent_on_real_mnist_in_2_epochs(capsys):
    code, out, err = run(capsys, "train", "--epochs", 2, "--quiet")
    assert code == 0, err
    assert out.startswith("test accuracy ")
    assert float(out.split()[2].rstrip("%")) >= 97.0, out


def test_a_bad_option_value_is_one_line_too(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", "--epochs", "-3"])
    err = capsys.readouterr().err
    assert caught.value.code == 2
    expected = ("nncore train: error: argument --epochs: expected a positive integer, got '-3' "
                "(see `nncore train --help`)")
    assert err.strip().splitlines() == [expected]
