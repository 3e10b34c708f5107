"""scikit-learn's conventions in MLPClassifier (issue 15 item 7): a ConvergenceWarning when
``max_iter`` ends training before ``tol`` is met (scikit-learn's class when it is loaded),
``predict_proba`` in float64, and integer pixels read by the same rule as ``MLP.fit``."""
import subprocess
import sys
import warnings

import numpy as np
import pytest
from test_model import BACKENDS, blobs, blobs_uint8

import nncore
from nncore.estimator import MLPClassifier


def convergence_warnings(caught):
    return [w for w in caught if w.category.__name__ == "ConvergenceWarning"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_iter_ending_training_before_tol_is_met_warns(backend):
    X, y = blobs(200)
    sklearn = pytest.importorskip("sklearn.exceptions")
    with pytest.warns(sklearn.ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, backend=backend, random_state=0).fit(X, y)


def test_stopping_because_tol_is_met_does_not_warn():
    X, y = blobs(200)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # no epoch improves the loss by 10: training stops after n_iter_no_change epochs
        classifier = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, tol=10.0, n_iter_no_change=2,
                                   backend="numpy", random_state=0).fit(X, y)
    assert classifier.n_iter_ == 3 and convergence_warnings(caught) == []


def test_partial_fit_does_not_warn():
    X, y = blobs(100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, backend="numpy").partial_fit(X, y, classes=np.arange(4))
    assert convergence_warnings(caught) == []


def test_without_scikit_learn_the_warning_is_a_user_warning_of_the_same_name():
    code = ("import warnings, numpy as np, nncore\n"
            "with warnings.catch_warnings(record=True) as caught:\n"
            "    warnings.simplefilter('always')\n"
            "    nncore.MLPClassifier(max_iter=1, backend='numpy').fit(np.eye(4), np.arange(4))\n"
            "w = [w for w in caught if w.category.__name__ == 'ConvergenceWarning']\n"
            "import sys; print(len(w), issubclass(w[0].category, UserWarning), 'sklearn' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["1", "True", "False"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predict_proba_is_float64_as_in_scikit_learn(backend, dtype):
    X, y = blobs(80)
    classifier = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, dtype=dtype, backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier.fit(X, y)
    proba = classifier.predict_proba(X)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(proba, classifier.model_.predict_proba(X, backend=backend), rtol=tolerance, atol=1e-7)
    one_by_one = np.vstack([classifier.predict_proba(X[i:i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(one_by_one, proba, rtol=1e-12)  # float64 results, not widened float32 ones
    assert classifier.predict_log_proba(X).dtype == np.float64


@pytest.mark.parametrize("convert", [lambda X: X.astype(np.int64), lambda X: X.astype(np.int16),
                                     lambda X: X.tolist()], ids=["int64", "int16", "list"])
def test_integer_pixels_train_the_estimator_exactly_as_they_train_mlp_fit(convert):
    X, y = blobs_uint8(120)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        classifier = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0, backend="numpy",
                                   n_iter_no_change=5).fit(convert(X), y)
    model = nncore.MLP([16, 8, 4], seed=0)
    model.optimizer = classifier._optimizer()
    model.fit(X, y, epochs=2, batch_size=128, backend="numpy", verbose=0)
    np.testing.assert_array_equal(classifier.model_.params, model.params)
