"""Issue 22, class 4: the estimator trains what ``get_params()`` reports.

With ``warm_start`` (and in ``partial_fit``) ``MLPClassifier`` continues its fitted network.
What can be applied to it is, as scikit-learn applies it: the optimizer's hyperparameters and
kind, the dtype, the dropout rates. A changed architecture (hidden layers, activation) is
refused, naming the change, and leaves the fitted estimator as it was. Before, ``fit`` kept
training the old network and optimizer while ``get_params()`` reported the new values.
"""
import warnings

import numpy as np
import pytest

from nncore.estimator import MLPClassifier

from test_reliability_training import blobs


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def fitted(**params):
    X, y = blobs(120)
    options = {"hidden_layer_sizes": (6,), "max_iter": 2, "random_state": 0, "backend": "numpy", "tol": -1,
               "warm_start": True, **params}
    return MLPClassifier(**options).fit(X, y), X, y


@pytest.mark.parametrize("change", [{"hidden_layer_sizes": (7,)}, {"hidden_layer_sizes": (6, 6)},
                                    {"activation": "tanh"}])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_a_changed_architecture_is_refused_and_the_fitted_network_kept(change, method):
    classifier, X, y = fitted()
    model, params, n_iter = classifier.model_, classifier.model_.params.copy(), classifier.n_iter_
    classifier.set_params(**change)
    with pytest.raises(ValueError, match=f"cannot continue its fitted network .*{next(iter(change))} from .*"
                                         "Set warm_start=False"):
        getattr(classifier, method)(X, y)
    assert classifier.model_ is model and np.array_equal(model.params, params) and classifier.n_iter_ == n_iter


@pytest.mark.parametrize("change, trained", [
    ({"dropout": 0.25}, lambda model: model.dropout == (0.25,)),
    ({"input_dropout": 0.1}, lambda model: model.input_dropout == 0.1),
    ({"dtype": "float64"}, lambda model: model.dtype == np.float64 and model.params.dtype == np.float64),
    ({"solver": "sgd", "momentum": 0.5}, lambda model: model.optimizer.kind == "sgd"
     and model.optimizer.momentum == 0.5),
    ({"learning_rate_init": 0.02}, lambda model: model.optimizer.lr == 0.02),
    ({"alpha": 1e-3}, lambda model: model.optimizer.weight_decay == 1e-3),
])
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_what_can_be_applied_to_the_fitted_network_is(change, trained, method):
    classifier, X, y = fitted()
    classifier.set_params(**change)
    getattr(classifier, method)(X, y)
    assert trained(classifier.model_), classifier.model_
    assert classifier.n_iter_ == 2 + (2 if method == "fit" else 1)
    assert classifier.model_.epochs_trained == classifier.n_iter_


def test_the_optimizer_state_continues_when_only_its_rate_changes():
    classifier, X, y = fitted()
    steps, moments = classifier.model_.optimizer.step, classifier.model_.optimizer.state_buffers()["m"].copy()
    assert steps > 0 and np.any(moments)
    classifier.set_params(learning_rate_init=0.0).fit(X, y)
    optimizer = classifier.model_.optimizer
    assert optimizer.lr == 0.0 and optimizer.step == 2 * steps
    # With a rate of zero the parameters stay; the moments went on from the first fit's, not from zero.
    assert not np.array_equal(optimizer.state_buffers()["m"], moments)


def test_a_changed_dtype_converts_the_parameters_it_continues_from():
    classifier, X, y = fitted()
    params = classifier.model_.params.copy()
    classifier.set_params(dtype="float64", learning_rate_init=0.0).fit(X, y)
    assert classifier.model_.params.dtype == np.float64
    np.testing.assert_array_equal(classifier.model_.params, params.astype(np.float64))
    assert classifier.predict_proba(X).dtype == np.float64
