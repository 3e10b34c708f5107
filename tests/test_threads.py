"""The package's own threads: one setting wherever it comes from, deterministic per thread count,
held to the NumPy reference at 1, 2 and 3 threads, fork-safe, and BLAS left as it was found.

Thread counts above the machine's cores still run (the pool starts the threads asked for), so
these tests hold on any machine; they check results and settings, never speed (benchmarks/).
"""
import multiprocessing
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_info, threadpool_limits

import nncore
from nncore import _core
from nncore.backends import get_backend
from nncore.backends.threads import MAX_THREADS, checked_threads

from _time_limit import time_limit


def _data(n=600, features=64, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, features), dtype=np.uint8), rng.integers(0, classes, n)


def _trained(n_threads, sizes=(64, 96, 48, 10), dtype="float64", backend="cython", epochs=2, **fit):
    X, y = _data(features=sizes[0], classes=sizes[-1])
    model = nncore.MLP(sizes, dtype=dtype, seed=1, dropout=fit.pop("dropout", 0.0))
    model.fit(X, y, epochs=epochs, batch_size=fit.pop("batch_size", 128), seed=2, verbose=0, n_threads=n_threads,
              backend=backend, **fit)
    return model


def test_a_big_enough_step_is_split_and_a_tiny_one_is_not():
    big = nncore.MLP((784, 512, 10)).network
    tiny = nncore.MLP((784, 10, 10)).network
    assert _core.step_threads(big.table, big.n_params, 128, 2)[0] == 2
    assert _core.step_threads(big.table, big.n_params, 128, 1) == (1, 128)
    assert _core.step_threads(tiny.table, tiny.n_params, 32, 2)[0] == 1  # ~15 us of work: no meeting pays


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_results_are_bit_identical_run_to_run_for_a_thread_count(n_threads):
    first, second = _trained(n_threads, dropout=0.2), _trained(n_threads, dropout=0.2)
    assert np.array_equal(first.params, second.params)


@pytest.mark.parametrize("augment", [None, (2, (8, 8))])
@pytest.mark.parametrize("n_threads", [2, 3])
def test_split_steps_hold_to_the_numpy_reference_in_float64(n_threads, augment):
    """Dropout and shifts are drawn per row, so cutting a step into chunks changes no draw."""
    shift = None if augment is None else nncore.Shift(*augment)
    reference = _trained(None, backend="numpy", dropout=0.25, augment=shift)
    compiled = _trained(n_threads, dropout=0.25, augment=shift)
    assert _core.step_threads(compiled.network.table, compiled.network.n_params, 128, n_threads)[0] > 1
    np.testing.assert_allclose(compiled.params, reference.params, rtol=1e-10, atol=1e-12)


def test_inference_is_the_same_for_any_thread_count():
    model = _trained(1)
    X, y = _data(n=5000, seed=4)
    one = model.predict_proba(X, n_threads=1)
    assert np.array_equal(model.predict_proba(X, n_threads=2), one)
    assert np.array_equal(model.predict_proba(X, n_threads=3, batch_size=700), one)
    assert model.evaluate(X, y, n_threads=1) == model.evaluate(X, y, n_threads=3)


def test_n_threads_must_be_a_count_the_pool_can_run():
    for bad in (0, -1, 1.5, True, 2**32 + 1, MAX_THREADS + 1, "2"):
        with pytest.raises(ValueError, match="n_threads"):
            checked_threads(bad)
    X, y = _data(n=20)
    with pytest.raises(ValueError, match="n_threads"):
        nncore.MLP((64, 10)).fit(X, y, epochs=1, verbose=0, n_threads=2**32 + 1)
    assert MAX_THREADS == _core.MAX_THREADS


def test_threadpoolctl_sets_the_pools_count_and_lists_it():
    listed = [entry for entry in threadpool_info() if entry["internal_api"] == "nncore"]
    assert len(listed) == 1 and listed[0]["num_threads"] == _core.get_num_threads()
    before = _core.get_num_threads()
    with threadpool_limits(limits=1):
        assert _core.get_num_threads() == 1
        assert get_backend("cython").step_threads(nncore.MLP((784, 512, 10)).network, 128) == 1
    with threadpool_limits(limits=3, user_api="openmp"):
        assert _core.get_num_threads() == 3
    assert _core.get_num_threads() == before


def _in_a_fresh_interpreter(code, **environment):
    env = dict(os.environ, **environment)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_omp_num_threads_sets_the_default_count():
    assert _in_a_fresh_interpreter("import nncore._core as c; print(c.get_num_threads())", OMP_NUM_THREADS="3") == "3"
    assert _in_a_fresh_interpreter("import nncore._core as c; print(c.get_num_threads())",
                                   OMP_NUM_THREADS="1,4") == "1"


def test_a_limit_set_after_import_reaches_a_first_fit_in_a_fresh_process():
    code = ("import numpy as np, nncore; from threadpoolctl import threadpool_limits; from nncore import _core\n"
            "with threadpool_limits(limits=1):\n"
            "    m = nncore.MLP((784, 512, 10)); print(m.fit(np.zeros((256, 784), np.uint8), np.zeros(256, int),"
            " epochs=1, verbose=0) is not None, _core.pool_workers())\n")
    assert _in_a_fresh_interpreter(code) == "True 0"  # no worker was ever started


def _blas_threads():
    return [entry["num_threads"] for entry in ThreadpoolController().select(user_api="blas").info()]


def test_blas_is_held_at_one_thread_inside_the_core_and_restored_after():
    before = _blas_threads()
    seen = []
    X, y = _data()
    nncore.MLP((64, 96, 10)).fit(X, y, epochs=1, verbose=0, callbacks=[lambda epoch, logs: seen.append(_blas_threads())])
    assert _blas_threads() == before
    assert seen  # the callback runs outside the core: BLAS is as it was there too
    with nncore.backends.threads.single_threaded_blas:
        assert set(_blas_threads()) == {1}
    assert _blas_threads() == before


def test_two_python_threads_training_at_once_leave_blas_as_they_found_it():
    before = _blas_threads()
    errors = []

    def train(n_threads):
        try:
            for _ in range(3):
                _trained(n_threads, epochs=1)
        except BaseException as error:  # reported below: an assertion in a thread would be lost
            errors.append(error)

    workers = [threading.Thread(target=train, args=(n,)) for n in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not errors and not any(worker.is_alive() for worker in workers)
    assert _blas_threads() == before


def test_concurrent_fits_get_their_own_threads_and_their_own_results():
    alone = _trained(2).params
    results = [None, None]

    def train(index):
        results[index] = _trained(2).params

    workers = [threading.Thread(target=train, args=(i,)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert all(result is not None and np.array_equal(result, alone) for result in results)


def _train_in_child(seed):
    X, y = _data(seed=seed)
    model = nncore.MLP((64, 96, 10), seed=seed)
    model.fit(X, y, epochs=1, verbose=0, n_threads=2)
    return float(model.params.sum()), _core.pool_workers()


@pytest.mark.skipif(not _core.THREADED or "fork" not in multiprocessing.get_all_start_methods(),
                    reason="no fork() here, or a build without threads")
def test_a_forked_child_of_a_process_that_trained_on_threads_trains_too():
    _trained(2)  # the parent's pool now has workers, which a fork does not copy
    assert _core.pool_workers() >= 1
    expected = _train_in_child(7)[0]
    with time_limit(120, "training in forked children"):
        with multiprocessing.get_context("fork").Pool(2) as pool:
            results = pool.map(_train_in_child, [7, 7])
    assert [total for total, _ in results] == [expected, expected]
    assert all(workers >= 1 for _, workers in results)  # each child started its own


def test_a_checkpoint_records_the_thread_count_and_a_resume_with_another_says_so(tmp_path):
    X, y = _data()
    model = nncore.MLP((64, 512, 10), seed=0)
    model.fit(X, y, epochs=1, verbose=0, n_threads=2, checkpoint_dir=tmp_path)
    resumed = nncore.MLP((64, 512, 10), seed=0)
    with pytest.warns(UserWarning, match="step_threads 2 in the checkpoint, 1 in this run"):
        resumed.fit(X, y, epochs=2, verbose=0, n_threads=1, checkpoint_dir=tmp_path, resume=True)
