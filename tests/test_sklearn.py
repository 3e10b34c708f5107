"""MLPClassifier: scikit-learn's estimator checks, any label values, partial_fit, warm_start."""
import subprocess
import sys

import numpy as np
import pytest
from test_model import BACKENDS, blobs

import nncore
from nncore.estimator import MLPClassifier

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks

#: Checks MLPClassifier is expected to fail, with the reason (listed in the README).
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks([MLPClassifier(backend="numpy", max_iter=50), MLPClassifier(max_iter=50),
                          MLPClassifier(activation="tanh", backend="numpy", max_iter=50),
                          MLPClassifier(activation="tanh", max_iter=50)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_passes_the_scikit_learn_estimator_checks(estimator, check):
    check(estimator)  # the cython estimators import the compiled core: a missing build fails here


def test_importing_nncore_does_not_import_scikit_learn():
    code = "import nncore, nncore.estimator, sys; print('sklearn' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_label_values_and_feature_counts(backend):
    X, y = blobs(300, n_features=7, n_classes=3)
    labels = np.array(["cat", "dog", "emu"])[y]
    classifier = MLPClassifier(hidden_layer_sizes=(16,), max_iter=40, random_state=0, backend=backend)
    assert classifier.fit(X, labels) is classifier
    assert list(classifier.classes_) == ["cat", "dog", "emu"] and classifier.n_features_in_ == 7
    assert classifier.score(X, labels) > 0.9
    assert set(classifier.predict(X)) <= set(labels)
    assert classifier.predict_proba(X).shape == (300, 3)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_each_of_scikit_learns_activations_trains_the_hidden_layers(backend, activation):
    X, y = blobs(300, n_features=7, n_classes=3)
    classifier = MLPClassifier(hidden_layer_sizes=(16,), activation=activation, max_iter=40, random_state=0,
                               backend=backend).fit(X, y)
    assert classifier.model_.network.activation_names == (activation,)
    assert classifier.score(X, y) > 0.9


def test_an_unknown_activation_or_solver_is_refused_naming_the_choices():
    X, y = blobs(40)
    with pytest.raises(ValueError, match="activation must be one of .*'tanh'"):
        MLPClassifier(activation="softplus", backend="numpy").fit(X, y)
    with pytest.raises(ValueError, match="solver must be one of .*'sgd'"):
        MLPClassifier(solver="lbfgs", backend="numpy").fit(X, y)


def test_partial_fit_runs_one_epoch_per_call():
    X, y = blobs(200)
    classifier = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, backend="numpy")
    with pytest.raises(ValueError, match="classes"):
        classifier.partial_fit(X, y)
    classifier.partial_fit(X[:100], y[:100], classes=[0, 1, 2, 3])
    classifier.partial_fit(X[100:], y[100:])
    assert classifier.n_iter_ == 2 and len(classifier.loss_curve_) == 2


def test_warm_start_continues_and_cold_start_restarts():
    X, y = blobs(200)
    classifier = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, tol=-1, random_state=0, backend="numpy")
    classifier.fit(X, y)
    first = classifier.model_
    classifier.fit(X, y)
    assert classifier.model_ is not first and classifier.n_iter_ == 3
    classifier.set_params(warm_start=True).fit(X, y)
    assert classifier.n_iter_ == 6


def test_early_stopping_holds_out_a_validation_fraction():
    X, y = blobs(300)
    classifier = MLPClassifier(early_stopping=True, n_iter_no_change=2, max_iter=100, random_state=0,
                               backend="numpy").fit(X, y)
    assert classifier.n_iter_ < 100 and classifier.best_validation_score_ > 0.9


def test_is_the_top_level_export():
    assert nncore.MLPClassifier is MLPClassifier
