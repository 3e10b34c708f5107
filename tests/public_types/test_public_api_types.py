"""The public API as users' code meets it: these tests run (on small data), and `mypy` checks
them (pyproject.toml's [tool.mypy] takes tests/public_types/), so a type hint that says something
else than the code does fails one or the other. ``assert_type`` is checked by mypy only."""
from __future__ import annotations

import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

import nncore
import nncore.data
import nncore.metrics
import nncore.onnx_export
import nncore.optim
import nncore.plot

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


def bands(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 rows of 64 pixels whose class (0..3) lights one quarter."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.integers(0, 60, (n, 64)).astype(np.uint8)
    for k in range(4):
        X[y == k, 16 * k:16 * (k + 1)] = 255
    return X, y


def test_a_model_trains_predicts_and_saves_with_the_types_its_hints_say(tmp_path: Path) -> None:
    X, y = bands()
    model = nncore.MLP([64, 16, 4], seed=0)
    history = model.fit(X, y, epochs=2, optimizer=nncore.SGD(lr=0.5), lr_schedule=nncore.Cosine(), verbose=0)
    assert_type(history, nncore.History)
    last_loss: float = history.loss[-1]
    assert isinstance(last_loss, float) and history.best_epoch is None
    evaluation = model.evaluate(X, y)
    assert_type(evaluation, nncore.Evaluation)
    assert isinstance(evaluation.accuracy, float)
    probabilities = model.predict_proba(X)
    assert probabilities.shape == (len(X), 4) and model.predict(X).dtype.kind == "i"
    weights, biases = model.layers[0]
    assert weights.shape == (64, 16) and biases.shape == (16,)
    model.save(tmp_path / "model.npz")
    again = nncore.load(str(tmp_path / "model.npz"))
    assert_type(again, nncore.MLP)
    assert again.layer_sizes == (64, 16, 4)


def test_callbacks_and_schedules_typed_as_users_write_them() -> None:
    seen: list[float] = []

    class Record(nncore.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, object] | None = None) -> bool | None:
            seen.append(self.model.history.loss[-1] if self.model.history else 0.0)
            return None

    def halve(epoch: int, epochs: int, base_lr: float) -> float:
        return base_lr * 0.5 ** epoch

    X, y = bands()
    nncore.MLP([64, 8, 4], seed=0).fit(X, y, epochs=3, verbose=0, lr_schedule=halve,
                                      callbacks=[Record(), nncore.EarlyStopping(monitor="loss", patience=5),
                                                 lambda epoch, logs: None])
    assert len(seen) == 3


def test_the_estimator_and_the_data_helpers_typed_as_users_write_them(tmp_path: Path) -> None:
    X, y = bands()
    classifier = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    with pytest.warns(UserWarning, match="Maximum iterations"):
        fitted = classifier.fit(X, y)
    assert_type(fitted, nncore.MLPClassifier)
    assert [W.shape for W in fitted.coefs_] == [(64, 8), (8, 4)] and fitted.n_layers_ == 3
    score: float = fitted.score(X, y)
    assert 0 <= score <= 1
    dataset = nncore.Dataset(X, y.astype(np.uint8), [str(k) for k in range(4)], name="bands")
    train, validation = dataset.split(0.25, seed=0)
    assert_type(train, nncore.Dataset)
    assert len(train) + len(validation) == len(dataset)
    path = nncore.data.write_submission(tmp_path / "submission.csv", fitted.predict(X))
    assert path.read_text().startswith("ImageId,Label\n")
    matrix = nncore.metrics.confusion_matrix(y, fitted.predict(X), 4)
    assert matrix.sum() == len(X)


def test_loading_from_the_cache_is_a_dataset_and_from_a_folder_may_be_unlabeled(tmp_path: Path) -> None:
    if False:  # never run: what the overloads promise a type checker
        assert_type(nncore.load_mnist("train"), nncore.Dataset)
        assert_type(nncore.load_mnist("test", data_dir=tmp_path), "nncore.Dataset | nncore.data.ImageSet")
    with pytest.raises(nncore.data.FetchError, match="download=False"):
        nncore.load_mnist("train", cache_dir=tmp_path, download=False)


PUBLIC_MODULES = (nncore, nncore.data, nncore.metrics, nncore.plot, nncore.onnx_export, nncore.errors)


def public_names(module):
    """``__all__``, else the public names the module defines itself."""
    if hasattr(module, "__all__"):
        return module.__all__
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module.__name__]


#: What an optimizer offers the backends (its state buffers, the NumPy update, the core's
#: hyperparameters) is their protocol, not the user's API: users construct optimizers and pass them.
OPTIMIZER_PROTOCOL = {name for name in vars(nncore.optim.Optimizer) if name != "__init__"}


def public_callables():
    """Every function, class constructor and public method or property the public modules export."""
    for module in PUBLIC_MODULES:
        for name in public_names(module):
            value = getattr(module, name)
            if inspect.isfunction(value):
                yield f"{module.__name__}.{name}", value
            elif inspect.isclass(value) and value.__module__.startswith("nncore"):
                for attribute, member in vars(value).items():
                    if attribute.startswith("_") and attribute not in ("__init__", "__call__"):
                        continue
                    if issubclass(value, nncore.optim.Optimizer) and attribute in OPTIMIZER_PROTOCOL:
                        continue
                    function = member.fget if isinstance(member, property) else member
                    if inspect.isfunction(function):
                        yield f"{module.__name__}.{name}.{attribute}", function


def test_every_public_function_and_method_is_fully_annotated() -> None:
    missing = []
    for qualified_name, function in public_callables():
        signature = inspect.signature(function)
        parameters = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
        if any(p.annotation is inspect.Parameter.empty for p in parameters) or \
                signature.return_annotation is inspect.Signature.empty:
            missing.append(qualified_name)
    assert missing == []
