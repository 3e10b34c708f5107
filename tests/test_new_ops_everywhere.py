"""Leaky ReLU, GELU, RMSprop and AdamW, added through the one seam (src_c/ops.h and the Python
registries), work through every door: both backends, model files, checkpoints and a resumed run,
the estimator, the command line and ONNX (tests/test_export_onnx.py). The backend contract and the
gradient checks cover them by iterating over the registries (test_core_contract.py,
test_core_gradients.py)."""
import numpy as np
import pytest

import nncore
from nncore.cli import main

from test_cli import tiny_images  # noqa: F401 - the CLI tests' data, reused
from test_cli import data_dir  # noqa: F401 - a pytest fixture


def _data(n=256, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.normal(size=(n, 20)) + 2.5 * np.eye(3, 20)[y]).astype(np.float32)
    return X, y


@pytest.mark.parametrize("activation", ["leaky_relu", "gelu"])
def test_a_model_of_a_new_activation_saves_loads_and_predicts_the_same(activation, tmp_path):
    X, y = _data()
    model = nncore.MLP((20, 16, 3), activation=activation, seed=0)
    model.fit(X, y, epochs=10, batch_size=32, optimizer=nncore.Adam(lr=1e-2), verbose=0)
    assert model.evaluate(X, y).accuracy > 0.9
    model.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    assert loaded.network.activation_names == (activation,)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


@pytest.mark.parametrize("optimizer", ["rmsprop", "adamw"])
def test_a_run_of_a_new_optimizer_resumed_from_its_checkpoint_ends_where_an_uninterrupted_one_does(optimizer,
                                                                                                   tmp_path):
    X, y = _data()
    whole = nncore.MLP((20, 16, 3), activation="gelu", seed=0)
    whole.fit(X, y, epochs=3, batch_size=32, optimizer=optimizer, seed=1, verbose=0)
    first = nncore.MLP((20, 16, 3), activation="gelu", seed=0)
    first.fit(X, y, epochs=2, batch_size=32, optimizer=optimizer, seed=1, verbose=0, checkpoint_dir=tmp_path)
    resumed = nncore.MLP((20, 16, 3), activation="gelu", seed=0)
    resumed.fit(X, y, epochs=3, batch_size=32, seed=1, verbose=0, checkpoint_dir=tmp_path, resume=True)
    assert resumed.optimizer.kind == optimizer
    np.testing.assert_array_equal(resumed.params, whole.params)
    for name, buffer in whole.optimizer.state_buffers().items():
        np.testing.assert_array_equal(resumed.optimizer.state_buffers()[name], buffer)


@pytest.mark.parametrize("solver, activation", [("rmsprop", "leaky_relu"), ("adamw", "gelu")])
def test_the_estimator_takes_the_new_solvers_and_activations(solver, activation):
    X, y = _data()
    classifier = nncore.MLPClassifier(hidden_layer_sizes=(16,), activation=activation, solver=solver,
                                      learning_rate_init=1e-2, alpha=1e-3, batch_size=32, max_iter=20,
                                      random_state=0)
    classifier.fit(X, y)
    assert classifier.model_.optimizer.kind == solver
    assert classifier.model_.network.activation_names == (activation,)
    assert classifier.score(X, y) > 0.9


@pytest.mark.parametrize("optimizer, activation", [("rmsprop", "gelu"), ("adamw", "leaky_relu")])
def test_the_command_line_trains_with_them_and_the_model_file_keeps_the_activation(optimizer, activation,
                                                                                    data_dir, tmp_path,  # noqa: F811
                                                                                    capsys):
    path = tmp_path / "m.npz"
    code = main(["train", "--data-dir", str(data_dir), "--hidden", "16", "--epochs", "2", "--batch-size", "32",
                 "--optimizer", optimizer, "--activation", activation, "--lr", "0.003", "--save", str(path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{activation} hidden layers" in out
    assert nncore.load(path).network.activation_names == (activation,)


def test_the_command_lines_optimizer_defaults_are_each_kinds_own():
    from nncore.cli import _optimizer, build_parser
    parse = lambda *argv: _optimizer(build_parser().parse_args(["train", *argv]))  # noqa: E731
    assert parse("--optimizer", "sgd").momentum == 0.9  # the CLI's SGD default
    assert parse("--optimizer", "rmsprop").momentum == 0.0  # PyTorch's, not SGD's
    assert parse("--optimizer", "adamw").weight_decay == 0.01
    assert parse("--optimizer", "rmsprop", "--momentum", "0.5").momentum == 0.5


@pytest.mark.parametrize("kind, name", [("adam", "v"), ("adamw", "v"), ("rmsprop", "square_avg")])
def test_a_state_with_a_negative_mean_of_squares_is_refused(kind, name):
    optimizer = nncore.optim.OPTIMIZERS[kind]()
    optimizer.ensure_state(4, "float64")
    state = optimizer.state_dict()
    state["buffers"][name] = np.array([0.0, 1.0, -1e-3, 2.0])
    with pytest.raises(ValueError, match=f"state buffer '{name}' holds negative values"):
        optimizer.load_state_dict(state)
