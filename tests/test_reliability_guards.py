"""Issue 11, the training side's guards: output paths checked before training (class 3), no NaN
parameters returned and the pre-batch parameters kept on divergence (4b), no answer from NaN
logits (4c), schedules, batch size 0 and concurrent fits (4f), and errors of the right kind in
one line (7).

Each test here failed on the code before the fix (trained then failed on a temporary file's
name, returned inf parameters, reported an accuracy from NaN logits, trained with a negative
rate, took --batch-size 0 as full batch, interleaved two fits, raised OverflowError or
MemoryError, or failed predict on a wide layer).
"""
import math
import threading

import numpy as np
import pytest

import nncore
from nncore.cli import main
from nncore.data import write_idx
from nncore.errors import NonFiniteOutputError, OutputPathError, TrainingDiverged
from nncore.estimator import MLPClassifier
from nncore.schedules import StepDecay

from test_reliability_training import BACKENDS, blobs


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A tiny MNIST-shaped data set in the official file names."""
    directory = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 50)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 2 * k + 2:2 * k + 6, :] = 255
        write_idx(directory / f"{prefix}-images-idx3-ubyte", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte", labels)
    return directory


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- 3: nothing trained for nothing

@pytest.mark.parametrize("option, target, message", [
    ("--save", "missing/m.npz", "--save {path}: directory {parent} does not exist"),
    ("--save", "a-directory", "--save {path}: is a directory"),
    ("--plots", "a-file", "--plots {path}: is a file"),
    ("--checkpoint-dir", "a-file", "checkpoint directory {path}: is a file"),
])
def test_cli_output_paths_are_checked_before_training(data_dir, tmp_path, capsys, option, target, message):
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("not a directory")
    path = tmp_path / target
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 8,
                         "--epochs", 2, option, path)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert message.format(path=path, parent=path.parent) in err
    assert not any(line.startswith("epoch") for line in out.splitlines()) and "test accuracy" not in out, \
        "it trained before finding out"
    assert ".tmp" not in err and ".nncore-write-test" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory", "a-file"]


@pytest.mark.parametrize("layout", ["checkpoint_dir is a file", "checkpoint.npz is a directory"])
def test_fit_checks_the_checkpoint_directory_before_the_first_epoch(tmp_path, layout):
    directory = tmp_path / "run"
    if layout == "checkpoint_dir is a file":
        directory.write_text("a file")
        named = f"checkpoint directory {directory}: is a file"
    else:
        (directory / "checkpoint.npz").mkdir(parents=True)
        named = f"checkpoint {directory / 'checkpoint.npz'}: is a directory"
    X, y = blobs()
    epochs = []
    model = nncore.MLP([12, 16, 3], seed=0)
    with pytest.raises(OutputPathError) as caught:
        model.fit(X, y, epochs=2, checkpoint_dir=directory, backend="numpy",
                  callbacks=[lambda epoch, logs: epochs.append(epoch)])
    assert named in str(caught.value) and ".tmp" not in str(caught.value)
    assert epochs == [] and model.epochs_trained == 0


def test_saving_a_model_with_a_failing_write_names_the_destination(tmp_path, monkeypatch):
    import nncore._atomic as atomic

    model = nncore.MLP([4, 3, 2], seed=0)

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OutputPathError, match=f"{tmp_path / 'm.npz'}: cannot write it .No space left on device"):
        model.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- 4d: the CLI says which settings it used

def test_cli_resume_with_other_settings_says_which_it_follows_or_refuses(data_dir, tmp_path, capsys):
    args = ["train", "--data-dir", data_dir, "--backend", "numpy", "--hidden", 8, "--epochs", 2,
            "--checkpoint-dir", tmp_path / "ck", "--lr", "0.002"]
    assert run(capsys, *args)[0] == 0
    code, out, err = run(capsys, *args[:-1], "0.001", "--epochs", 3, "--resume")
    banner = next(line for line in out.splitlines() if line.startswith("training "))
    assert code == 0 and "lr=0.001" in banner, out
    assert "nncore: warning: resuming from" in err and "lr=0.002" in err and "lr=0.001 in this run" in err, err
    code, _, err = run(capsys, *args, "--epochs", 4, "--resume", "--seed", 5)
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "cannot resume this run from it: seed 0 in the checkpoint, 5 in this run" in err


# ---------------------------------------------------------------- 4b: no NaN parameters returned

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("batch_size", [None, 16])
def test_an_update_that_overflows_is_divergence_and_the_model_keeps_its_pre_batch_parameters(backend, batch_size):
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)
    before = model.params.copy()
    # lr 1e39 is finite in float64 but infinite in float32: the first update overflows while
    # the first batch's loss is finite.
    with pytest.raises(TrainingDiverged, match="epoch 1, batch 1 made the parameters NaN or infinite") as caught:
        model.fit(X, y, epochs=1, batch_size=batch_size, optimizer=nncore.SGD(lr=1e39), backend=backend, seed=1)
    assert caught.value.epoch == 1 and caught.value.batch == 1
    np.testing.assert_array_equal(model.params, before)


@pytest.mark.parametrize("backend", BACKENDS)
def test_divergence_in_a_later_epoch_keeps_the_previous_epochs_parameters(backend):
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)
    kept = {}
    with pytest.raises(TrainingDiverged, match="epoch 3, batch 1"):
        model.fit(X, y, epochs=4, batch_size=None, optimizer=nncore.Adam(lr=0.01), backend=backend, seed=1,
                  lr_schedule=lambda epoch, epochs, lr: lr if epoch < 2 else 1e39,
                  callbacks=[lambda epoch, logs: kept.update({epoch: model.params.copy()})])
    np.testing.assert_array_equal(model.params, kept[2])
    assert np.all(np.isfinite(model.optimizer.state_buffers()["m"]))


@pytest.mark.parametrize("hyperparameters", [{"eps": 0}, {"eps": -1e-8}, {"eps": math.nan}, {"lr": math.inf},
                                             {"betas": (0.9, 1.0)}, {"betas": 0.9}])
def test_invalid_adam_hyperparameters_are_refused(hyperparameters):
    with pytest.raises(ValueError, match=next(iter(hyperparameters))):
        nncore.Adam(**hyperparameters)


def test_an_eps_that_is_zero_in_float32_is_refused_before_training():
    X, y = blobs()
    with pytest.raises(ValueError, match="eps=1e-50 is 0 in float32"):
        nncore.MLP([12, 16, 3], seed=0).fit(X, y, epochs=1, optimizer=nncore.Adam(eps=1e-50))


def test_a_callback_that_writes_nan_into_the_parameters_is_named():
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)

    def poison(epoch, logs):
        model.params[3] = np.nan

    with pytest.raises(ValueError, match="callback .*poison left NaN or infinity in the model's parameters in "
                                         "on_epoch_end of epoch 1"):
        model.fit(X, y, epochs=2, backend="numpy", callbacks=[poison])


# ---------------------------------------------------------------- 4c: no answer from NaN logits

@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_that_overflow_are_refused_not_reported(backend):
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)
    model.params[:] *= 1e36  # finite float32 parameters whose logits overflow to inf - inf
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite for .* rows of X"):
        model.predict(X, backend=backend)
    with pytest.raises(NonFiniteOutputError):
        model.predict_proba(X, backend=backend)
    with pytest.raises(NonFiniteOutputError, match="so an accuracy cannot be computed"):
        model.evaluate(X, y, backend=backend)


# ---------------------------------------------------------------- 4f: rates, batch size 0, two fits

@pytest.mark.parametrize("rate", [-0.01, math.nan, math.inf, "0.1"])
def test_a_schedule_returning_an_invalid_rate_is_refused_naming_the_epoch(rate):
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)
    with pytest.raises(ValueError, match="lr_schedule returned .* for epoch 2"):
        model.fit(X, y, epochs=3, backend="numpy", lr_schedule=lambda epoch, epochs, lr: lr if epoch < 1 else rate)
    assert model.epochs_trained == 1


def test_batch_size_zero_is_refused_by_the_cli_as_by_the_api(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["train", "--batch-size", "0"])
    assert caught.value.code == 2 and "expected a positive integer or 'full', got '0'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        nncore.MLP([12, 16, 3]).fit(*blobs(), batch_size=0)


def test_a_second_fit_on_a_model_that_is_training_is_refused():
    X, y = blobs()
    model = nncore.MLP([12, 16, 3], seed=0)
    started, release, errors = threading.Event(), threading.Event(), []

    def wait(epoch, logs):
        started.set()
        release.wait(30)

    def first():
        try:
            model.fit(X, y, epochs=1, backend="numpy", callbacks=[wait])
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert started.wait(30)
        params = model.params.copy()
        with pytest.raises(RuntimeError, match="fit is already running on this model"):
            model.fit(X, y, epochs=1, backend="numpy")
        np.testing.assert_array_equal(model.params, params)
    finally:
        release.set()
        thread.join(30)
    assert errors == [] and model.epochs_trained == 1
    model.fit(X, y, epochs=1, backend="numpy")  # free again once the first one returned
    assert model.epochs_trained == 2


# ---------------------------------------------------------------- 7: errors of the right kind

def test_step_decay_with_a_huge_gamma_is_a_value_error_naming_the_epoch():
    assert StepDecay(step_size=1, gamma=1e300)(5, 10, 0.1) == math.inf
    X, y = blobs()
    with pytest.raises(ValueError, match="lr_schedule returned inf for epoch 3"):
        nncore.MLP([12, 16, 3], seed=0).fit(X, y, epochs=3, backend="numpy", optimizer=nncore.SGD(lr=0.0),
                                           lr_schedule=StepDecay(step_size=1, gamma=1e300))


@pytest.mark.parametrize("options, named", [({"hidden_layer_sizes": (math.inf,)}, "hidden_layer_sizes"),
                                            ({"hidden_layer_sizes": (10**400,)}, "hidden_layer_sizes"),
                                            ({"max_iter": math.inf}, "max_iter"),
                                            ({"n_iter_no_change": math.nan}, "n_iter_no_change"),
                                            ({"hidden_layer_sizes": (10**9,)}, "parameters")])
def test_estimator_arguments_out_of_range_are_value_errors(options, named):
    X, y = blobs()
    with pytest.raises(ValueError, match=named):
        MLPClassifier(**options, backend="numpy").fit(X, y)


def test_a_network_too_large_to_allocate_is_refused_before_allocating():
    with pytest.raises(ValueError, match=r"need 8,000,000,002 parameters, more than the 536,870,912"):
        nncore.MLP([5, 10**9, 2])


def test_cli_hidden_too_large_is_one_line(data_dir, capsys):
    code, out, err = run(capsys, "train", "--data-dir", data_dir, "--hidden", 1000000000, "--epochs", 1)
    assert code == 1 and err.startswith("nncore: error: layer_sizes") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and "MemoryError" not in err


def test_a_layer_wider_than_the_32_bit_blas_index_allows_at_1024_rows_predicts():
    width = 2_200_000  # 1024 rows x this > 2**31 - 1
    model = nncore.MLP([1, width, 2], seed=0)
    X = np.linspace(-1, 1, 1100, dtype=np.float32).reshape(-1, 1)
    probabilities = model.predict_proba(X, backend="cython")
    assert probabilities.shape == (1100, 2) and np.all(np.isfinite(probabilities))
    reference = model.predict_proba(X[::100], backend="numpy", batch_size=4)
    np.testing.assert_allclose(probabilities[::100], reference, rtol=1e-4, atol=1e-6)
