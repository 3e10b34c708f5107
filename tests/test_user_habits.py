"""Habits users bring from Keras, scikit-learn and Jupyter (issue 23): ``model.summary()``,
the estimator's fitted-network attributes under scikit-learn's names and shapes, a progress
widget in notebooks, a reshape hint for image-shaped X, and a public-only ``help(nncore)``."""
import io
import pydoc
import sys
import types
import warnings

import numpy as np
import pytest
from test_model import blobs

import nncore
from nncore.progress import ProgressBar, notebook_bar_class


# ---------------------------------------------------------------- summary()

def summary_of(model):
    lines = []
    model.summary(print_fn=lines.append)
    return lines


def test_summary_lists_each_layer_with_its_output_shape_activation_weight_shapes_and_parameters():
    model = nncore.MLP([784, 256, 128, 10], activation=["tanh", "relu"], seed=0)
    lines = summary_of(model)
    assert lines[0] == "MLP 784-256-128-10, float32"
    rows = {line.split("  ")[0].strip(): line.split() for line in lines if line.startswith(("input", "hidden", "output"))}
    assert rows["input"][1:3] == ["(None,", "784)"] and rows["input"][-1] == "0"
    assert rows["hidden 1"][2:] == ["(None,", "256)", "tanh", "(784,", "256)", "(256,)", "200,960"]
    assert rows["hidden 2"][2:] == ["(None,", "128)", "relu", "(256,", "128)", "(128,)", "32,896"]
    assert rows["output"][1:] == ["(None,", "10)", "softmax", "(128,", "10)", "(10,)", "1,290"]
    assert "total parameters: 235,146 (918.5 KB as float32)" in lines
    assert 200_960 + 32_896 + 1_290 == model.n_parameters
    assert lines[-1] == "not trained yet"


def test_summary_shows_dropout_only_when_some_layer_drops_and_what_training_the_model_had():
    plain = summary_of(nncore.MLP([4, 3, 2], seed=0))
    assert not any("dropout" in line for line in plain)
    model = nncore.MLP([4, 3, 3, 2], dropout=[0.5, 0.0], input_dropout=0.2, dtype="float64", seed=0)
    X, y = blobs(40, n_features=4, n_classes=2)
    model.fit(X, y, epochs=2, optimizer=nncore.SGD(lr=0.1), backend="numpy", verbose=0)
    lines = summary_of(model)
    header = next(line for line in lines if line.startswith("layer"))
    assert header.split()[:5] == ["layer", "output", "shape", "activation", "dropout"]
    dropout_of = {line.split("  ")[0]: line.split()[5 if line.startswith("hidden") else 4]
                  for line in lines if line.startswith(("input", "hidden", "output"))}
    assert dropout_of == {"input": "0.2", "hidden 1": "0.5", "hidden 2": "-", "output": "-"}
    assert "total parameters: 35 (280 bytes as float64)" == next(line for line in lines if line.startswith("total"))
    assert lines[-1].startswith("trained 2 epochs with SGD(lr=0.1")


def test_summary_prints_by_default(capsys):
    assert nncore.MLP([3, 2], seed=0).summary() is None
    assert capsys.readouterr().out.splitlines()[0] == "MLP 3-2, float32"


# ---------------------------------------------------------------- the estimator, as scikit-learn names it

@pytest.mark.parametrize("early_stopping", [False, True])
def test_the_estimator_exposes_the_fitted_network_with_scikit_learns_names_and_shapes(early_stopping):
    neural_network = pytest.importorskip("sklearn.neural_network")
    X, y = blobs(300, n_features=6, n_classes=3)
    settings = dict(hidden_layer_sizes=(7, 5), max_iter=15, random_state=0, early_stopping=early_stopping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both warn that 15 epochs did not converge
        ours = nncore.MLPClassifier(**settings, backend="numpy").fit(X, y)
        theirs = neural_network.MLPClassifier(**settings).fit(X, y)
    for name in ("coefs_", "intercepts_"):
        assert [a.shape for a in getattr(ours, name)] == [a.shape for a in getattr(theirs, name)]
    assert ours.n_layers_ == theirs.n_layers_ == 4 and ours.n_outputs_ == theirs.n_outputs_ == 3
    assert ours.out_activation_ == theirs.out_activation_ == "softmax"
    for name in ("best_loss_", "validation_scores_", "best_validation_score_"):
        assert (getattr(ours, name) is None) == (getattr(theirs, name) is None), name
    if early_stopping:
        assert len(ours.validation_scores_) == ours.n_iter_
        assert ours.best_validation_score_ == max(ours.validation_scores_)
    else:
        assert ours.best_loss_ == min(ours.loss_curve_)


def test_coefs_and_intercepts_are_the_models_parameters_and_predict_as_they_say():
    X, y = blobs(120, n_features=5, n_classes=3)
    classifier = nncore.MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0, dtype="float64",
                                      backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.fit(X, y)
    (W1, W2), (b1, b2) = classifier.coefs_, classifier.intercepts_
    logits = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    expected = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(classifier.predict_proba(X), expected / expected.sum(axis=1, keepdims=True),
                               rtol=1e-10)
    W1[:] = 0  # views: scikit-learn users set coefs_ in place and expect the model to follow
    assert np.all(classifier.model_.layers[0][0] == 0)


def test_the_fitted_network_attributes_do_not_exist_before_fit():
    classifier = nncore.MLPClassifier()
    for name in ("coefs_", "intercepts_", "n_layers_", "n_outputs_", "out_activation_"):
        assert not hasattr(classifier, name)


# ---------------------------------------------------------------- progress in a notebook

@pytest.fixture
def jupyter_kernel(monkeypatch):
    """This process as a Jupyter kernel's front end sees it (tqdm.autonotebook's test)."""
    import tqdm.notebook  # noqa: F401 -- imported before IPython is replaced, as in a kernel

    class ZMQInteractiveShell:
        pass

    ipython = types.ModuleType("IPython")
    ipython.get_ipython = ZMQInteractiveShell
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "ipykernel.zmqshell", types.ModuleType("ipykernel.zmqshell"))
    for name in ("QT_API", "SPYDER_ARGS"):
        monkeypatch.delenv(name, raising=False)


def fit_with(bar):
    X, y = blobs(100, n_features=5, n_classes=2)
    nncore.MLP([5, 4, 2], seed=0).fit(X, y, epochs=2, callbacks=[bar], backend="numpy", verbose=0)


def test_in_a_notebook_with_ipywidgets_the_progress_bar_is_tqdms_widget(jupyter_kernel, capsys):
    pytest.importorskip("ipywidgets")
    import tqdm.notebook
    bar = ProgressBar()
    fit_with(bar)
    assert bar._tqdm is tqdm.notebook.tqdm
    out = capsys.readouterr().out
    assert "epoch 1/2  loss" in out and "epoch 2/2  loss" in out


def test_in_a_notebook_without_ipywidgets_progress_is_one_line_per_epoch(jupyter_kernel, monkeypatch, capsys):
    import tqdm.notebook
    monkeypatch.setattr(tqdm.notebook, "IProgress", None)
    assert notebook_bar_class() is None
    fit_with(ProgressBar())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "ETA" in lines[0]


def test_outside_a_notebook_there_is_no_widget_and_an_explicit_file_wins(jupyter_kernel, monkeypatch):
    pytest.importorskip("ipywidgets")
    assert notebook_bar_class() is not None  # this fixture is a notebook, yet:
    stream = io.StringIO()
    bar = ProgressBar(file=stream)
    fit_with(bar)
    assert bar._tqdm.__module__ == "tqdm.std" and stream.getvalue().count("\n") == 2
    monkeypatch.delitem(sys.modules, "ipykernel.zmqshell")  # IPython in a terminal
    assert notebook_bar_class() is None


# ---------------------------------------------------------------- errors that say the fix

def test_image_shaped_x_is_refused_with_the_reshape_that_fixes_it():
    images = np.zeros((6, 28, 28), np.uint8)
    model = nncore.MLP([784, 10], seed=0)
    with pytest.raises(ValueError, match=r"got shape \(6, 28, 28\): flatten each sample with "
                                         r"X\.reshape\(len\(X\), -1\)"):
        model.predict(images)
    assert model.predict(images.reshape(len(images), -1)).shape == (6,)
    with pytest.raises(ValueError, match=r"one sample is X\.reshape\(1, -1\)"):
        model.predict(images[0].ravel())


# ---------------------------------------------------------------- help(nncore)

def test_help_nncore_starts_with_an_overview_of_the_public_api_and_documents_only_public_names():
    text = pydoc.render_doc(nncore, renderer=pydoc.plaintext)
    description = text.split("DESCRIPTION", 1)[1].split("PACKAGE CONTENTS", 1)[0]
    for name in set(nncore.__all__) - {"__version__"}:
        assert f"{name}" in description, f"the overview does not mention {name}"
    documented = text.split("CLASSES", 1)[1]
    for private in ("_atomic", "_guards", "Samples", "Wording", "Snapshot"):
        assert private not in documented
