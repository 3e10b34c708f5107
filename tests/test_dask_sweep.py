"""Sweeps on Dask: MLPClassifier travels to the workers of a 2-process LocalCluster, a grid search
run there through joblib's dask backend gives the scores of the same search run here, and
BLAS threads inside the workers are what the estimator asks for (one each by default)."""
import os
import pickle
import runpy
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason='dask is not installed (pip install "nncore[dask]")')
sklearn_model_selection = pytest.importorskip("sklearn.model_selection", reason="scikit-learn is not installed")
import cloudpickle  # noqa: E402 (distributed depends on it)
import joblib  # noqa: E402 (scikit-learn depends on it)

import nncore  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "dask_sweep.py"

# The tasks below are this module's functions: the workers cannot import the tests, so they are
# shipped by value (as a user's own helpers must be, unless installed on every worker).
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        yield client


def blobs(n=240, n_features=64, seed=0):
    """uint8 'pixels' whose class (0..2) sets which third of the features is bright."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.integers(0, 90, (n, n_features), dtype=np.uint8)
    third = n_features // 3
    for k in range(3):
        X[y == k, k * third:(k + 1) * third] += 120
    return X, y


def small_classifier(**params):
    return nncore.MLPClassifier(hidden_layer_sizes=(16,), max_iter=4, batch_size=32, random_state=0,
                                n_threads=1, **params)


def predict_on_worker(estimator, X):
    return os.getpid(), estimator.predict_proba(X)


def test_a_fitted_classifier_pickles_and_predicts_the_same_on_a_worker(client):
    X, y = blobs()
    fitted = small_classifier().fit(X, y)
    copy = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(copy.predict_proba(X), fitted.predict_proba(X))
    worker_pid, worker_proba = client.submit(predict_on_worker, fitted, X, pure=False).result()
    assert worker_pid != os.getpid()
    np.testing.assert_array_equal(worker_proba, fitted.predict_proba(X))


@pytest.mark.parametrize("search_class", ["GridSearchCV", "RandomizedSearchCV"])
def test_a_search_on_the_workers_scores_as_the_same_search_here(client, search_class):
    X, y = blobs()
    grid = {"hidden_layer_sizes": [(8,), (16,)], "learning_rate_init": [1e-3, 1e-2]}
    make = getattr(sklearn_model_selection, search_class)
    options = {"n_iter": 3, "random_state": 0} if search_class == "RandomizedSearchCV" else {}
    here = make(small_classifier(), grid, cv=2, **options).fit(X, y)
    there = make(small_classifier(), grid, cv=2, n_jobs=-1, **options)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask", scatter=[X, y]):
        there.fit(X, y)
    workers = {task["worker"] for task in stream.data}
    assert workers <= set(client.scheduler_info()["workers"]) and len(workers) == 2
    # Same seeds and one BLAS thread everywhere: the same arithmetic, so the same scores.
    np.testing.assert_array_equal(there.cv_results_["mean_test_score"], here.cv_results_["mean_test_score"])
    assert there.best_params_ == here.best_params_
    np.testing.assert_array_equal(there.predict_proba(X), here.predict_proba(X))


def threads_in_a_fit(n_threads):
    """(nncore's default thread count, the threads a large step would use with ``n_threads``, and the
    BLAS thread counts after a fit with it), in this process."""
    from threadpoolctl import threadpool_info

    from nncore import _core
    from nncore.backends import get_backend

    X, y = blobs(n=64)
    nncore.MLP([64, 8, 3], seed=0).fit(X, y, epochs=1, n_threads=n_threads, verbose=0)
    large = nncore.MLP([784, 512, 10]).network
    blas = {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}
    return _core.get_num_threads(), get_backend("cython", n_threads).step_threads(large, 128), blas


@pytest.mark.parametrize("n_threads, expected", [(None, 1), (1, 1), (2, 2)])
def test_nncores_threads_in_a_worker_are_one_unless_the_fit_asks(client, n_threads, expected):
    # Dask's nanny starts workers with OMP_NUM_THREADS=1 (nncore's default count) and
    # OPENBLAS_NUM_THREADS=1; n_threads sets the count for a fit, and BLAS stays as it was.
    default, used, blas = client.submit(threads_in_a_fit, n_threads, pure=False).result()
    assert (default, used, blas) == (1, expected, {1})


def test_the_example_sweeps_on_a_two_process_local_cluster_and_says_once_that_fits_stop_at_max_iter(monkeypatch,
                                                                                                      capfd):
    def tiny_mnist(split="train", *args, **kwargs):
        X, y = blobs(n=300 if split == "train" else 90, n_features=784, seed=0 if split == "train" else 1)
        return nncore.Dataset(X, y.astype(np.uint8), ["0", "1", "2"], name=split)

    monkeypatch.setattr(nncore, "load_mnist", tiny_mnist)
    monkeypatch.setattr(sys, "argv", ["dask_sweep.py", "--n-samples", "300", "--max-iter", "2"])
    with warnings.catch_warnings():
        # pytest's own filter (pyproject.toml) hides the warning, and scikit-learn hands the filters
        # to the workers: start from Python's defaults, as a user's run does.
        warnings.simplefilter("default")
        runpy.run_path(str(EXAMPLE), run_name="__main__")
    captured = capfd.readouterr()  # the workers' stderr too: that is where their warnings went
    lines = captured.out.splitlines()
    assert sum(line.startswith("each fit trains exactly 2 epochs") for line in lines) == 1
    assert "Maximum iterations" not in captured.err and "ConvergenceWarning" not in captured.err
    assert sum(line.startswith("worker tcp://") and "BLAS threads at rest" in line for line in lines) == 2
    assert lines[-1].startswith("best {") and "12 fits on 2 workers" in lines[-1]
    assert float(lines[-1].split("test accuracy ")[1].split(";")[0]) > 0.9
