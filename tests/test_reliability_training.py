"""Reliability of training: divergence, bad inputs, SIGKILL, threads and memory.

- Divergence: a NaN/inf loss stops ``fit`` with ``TrainingDiverged`` naming the epoch and
  batch, the model keeps finite parameters, and the checkpoint directory keeps the last good
  epoch, from which ``resume`` continues -- both backends, both losses, SGD and Adam.
- Inputs with NaN or infinity are refused before anything is trained or written.
- Interruption: training processes are SIGKILLed at random moments (mid-epoch and
  mid-checkpoint-write); the checkpoint left behind always loads, and resuming from it ends
  bit-identical to an uninterrupted run. A process that only writes checkpoints in a tight
  loop is killed too: the file is always one whole checkpoint, never a mix. (The dataset
  cache's SIGKILL-mid-download test is tests/test_data_fetch.py::
  test_a_process_killed_mid_download_leaves_no_partial_file_and_the_next_load_works.)
- Threads: the kernels release the GIL; ``predict`` from 8 threads on one model equals serial
  calls; training and prediction of different models in parallel threads equal serial runs.
- Memory: 20 epochs on MNIST-sized data (60,000 x 784 uint8) do not grow resident memory
  after the first epochs (bound: ``RSS_GROWTH_LIMIT_MB``); a network-marked test measures the
  peak resident memory of ``nncore train`` on the real MNIST (bound: ``PEAK_RSS_LIMIT_MB``).
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import nncore
from nncore.backends import compiled_core_status
from nncore.io import load_checkpoint

CORE_AVAILABLE, CORE_DETAIL = compiled_core_status()
BACKENDS = [pytest.param("cython", marks=pytest.mark.skipif(not CORE_AVAILABLE, reason=CORE_DETAIL)), "numpy"]
RSS_GROWTH_LIMIT_MB = 5
PEAK_RSS_LIMIT_MB = 400


# Children import the nncore this suite tests (the installed one in CI, the checkout when
# installed editable), not whatever a relative path would find.
TESTED_NNCORE_ROOT = str(Path(nncore.__file__).resolve().parent.parent)


def subprocess_environment(**extra):
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [TESTED_NNCORE_ROOT, os.environ.get("PYTHONPATH")])),
        OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    environment.update(extra)
    return environment


def blobs(n=240, n_features=12, n_classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (n_classes, n_features))
    y = rng.integers(0, n_classes, n)
    return (centers[y] + rng.normal(0, 1, (n, n_features))).astype(dtype), y


# ---------------------------------------------------------------- divergence

def explode_from(epoch_index, lr):
    """A schedule keeping the base rate, then a rate that makes the loss overflow from ``epoch_index``."""
    return lambda epoch, epochs, base_lr: base_lr if epoch < epoch_index else lr


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_names_epoch_and_batch_keeps_the_last_good_checkpoint_and_resume_works(
        tmp_path, backend, loss, optimizer, dtype):
    X, y = blobs(dtype=dtype)
    huge = 1e30 if dtype == "float32" else 1e250
    model = nncore.MLP([12, 16, 3], dtype=dtype, seed=0)
    params_by_epoch = {}

    def remember(epoch, logs):
        params_by_epoch[epoch] = model.params.copy()

    make = (lambda: nncore.SGD(lr=0.05, momentum=0.9)) if optimizer == "sgd" else (lambda: nncore.Adam(lr=1e-2))
    with pytest.raises(nncore.TrainingDiverged) as caught:
        model.fit(X, y, epochs=6, batch_size=16, optimizer=make(), loss=loss, backend=backend, seed=1,
                  checkpoint_dir=tmp_path, lr_schedule=explode_from(2, huge), callbacks=[remember])
    error = caught.value
    assert error.epoch == 3 and error.batch is not None and 1 <= error.batch <= 15
    assert f"epoch 3, batch {error.batch}" in str(error)
    assert np.all(np.isfinite(model.params)), "the diverging batch's update was applied"
    assert len(error.history) == 2 and all(np.isfinite(error.history.loss))

    # The checkpoint is the last good epoch, whole and loadable.
    checkpoint = load_checkpoint(tmp_path / "checkpoint.npz")
    assert checkpoint["header"]["training"]["epochs_done"] == 2
    np.testing.assert_array_equal(checkpoint["params"], params_by_epoch[2])
    np.testing.assert_array_equal(nncore.load(tmp_path / "checkpoint.npz").params, params_by_epoch[2])
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]

    # Resuming with a sane rate continues from epoch 2 to the end, as a run that never diverged.
    resumed = nncore.MLP([12, 16, 3], dtype=dtype, seed=5)
    history = resumed.fit(X, y, epochs=4, batch_size=16, loss=loss, backend=backend, checkpoint_dir=tmp_path,
                          resume=True)
    assert history.epoch == [1, 2, 3, 4] and all(np.isfinite(history.loss))
    reference = nncore.MLP([12, 16, 3], dtype=dtype, seed=0)
    reference.fit(X, y, epochs=4, batch_size=16, optimizer=make(), loss=loss, backend=backend, seed=1)
    np.testing.assert_allclose(resumed.params, reference.params, rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-6 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_nan_in_the_data_given_to_the_backend_stops_the_epoch_at_that_batch_without_applying_it(backend):
    # fit refuses NaN inputs; the backends themselves treat them as a non-finite loss.
    from _backends import epoch

    from nncore.backends import get_backend
    X, y = blobs(n=64)
    X[37, 4] = np.nan
    model = nncore.MLP([12, 8, 3], seed=0)
    results = {}
    for name in ("numpy", backend):
        work = model.params.copy()
        optimizer = nncore.Adam(lr=1e-2)
        result = epoch(get_backend(name), model.network, work, optimizer, X, y, 8, 3)
        results[name] = (result, work, optimizer.step)
    order = np.random.default_rng(3).permutation(64)
    expected_batch = int(np.argmax(order == 37)) // 8 + 1
    for result, work, steps in results.values():
        assert result.diverged_batch == expected_batch and steps == expected_batch - 1
        assert result.n_batches == expected_batch - 1 and np.all(np.isfinite(work))
    np.testing.assert_allclose(results[backend][1], results["numpy"][1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("where", ["X", "validation X", "y"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_refused_before_anything_is_trained_or_written(tmp_path, backend, where, bad):
    X, y = blobs()
    X_val, y_val = blobs(n=30, seed=1)
    y_float = y.astype(np.float64)
    if where == "X":
        X[100, 3] = bad
    elif where == "validation X":
        X_val[7, 0] = bad
    else:
        y_float[5] = bad
    model = nncore.MLP([12, 16, 3], seed=0)
    before = model.params.copy()
    with pytest.raises(ValueError, match="NaN or infinity") as caught:
        model.fit(X, y_float, epochs=3, backend=backend, validation_data=(X_val, y_val), checkpoint_dir=tmp_path)
    assert ("validation" in str(caught.value)) == (where == "validation X")
    np.testing.assert_array_equal(model.params, before)
    assert model.optimizer is None and model.epochs_trained == 0
    assert not (tmp_path / "checkpoint.npz").exists() and not any(tmp_path.glob(".*tmp"))


# ---------------------------------------------------------------- SIGKILL

TRAIN_FOREVER = textwrap.dedent("""
    import sys, numpy as np, nncore
    checkpoint_dir, backend = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (3000, 64), dtype=np.uint8)
    y = (X[:, :8].sum(axis=1) % 10).astype(np.int64)
    model = nncore.MLP([64, 48, 10], seed=0)
    model.fit(X, y, epochs=100000, batch_size=50, backend=backend, checkpoint_dir=checkpoint_dir,
              resume=True, n_threads=1, seed=11,
              callbacks=[lambda epoch, logs: print(epoch, flush=True)])
""")


def synthetic_training_data():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (3000, 64), dtype=np.uint8)
    return X, (X[:, :8].sum(axis=1) % 10).astype(np.int64)


def start_training(checkpoint_dir, backend):
    return subprocess.Popen([sys.executable, "-c", TRAIN_FOREVER, str(checkpoint_dir), backend],
                            env=subprocess_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_first_epoch(process):
    """Wait until the process has finished (and checkpointed) an epoch; return its number."""
    line = process.stdout.readline()
    assert line.strip().isdigit(), (line, process.stderr.read() if process.poll() is not None else "")
    return int(line)


def kill(process):
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    process.stdout.close()
    process.stderr.close()


def assert_one_whole_checkpoint(directory):
    """The directory holds a checkpoint that loads; anything else is a temporary file of a killed write."""
    names = sorted(p.name for p in Path(directory).iterdir())
    assert "checkpoint.npz" in names
    assert all(name == "checkpoint.npz" or (name.startswith(".checkpoint.npz.") and name.endswith(".tmp"))
               for name in names), names
    checkpoint = load_checkpoint(Path(directory) / "checkpoint.npz")
    nncore.load(Path(directory) / "checkpoint.npz")
    done = checkpoint["header"]["training"]["epochs_done"]
    assert done >= 1 and len(checkpoint["header"]["training"]["history"]["epoch"]) == done
    return done


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_training_process_killed_at_random_moments_leaves_a_checkpoint_resume_continues_exactly(
        tmp_path, backend):
    randomness = random.Random(20240611)
    checkpoint_dir = tmp_path / "run"
    done_before = 0
    for trial in range(6):
        # Each trial resumes the previous one's checkpoint, then is killed again.
        process = start_training(checkpoint_dir, backend)
        try:
            wait_for_first_epoch(process)
            time.sleep(randomness.uniform(0.0, 0.4))
        finally:
            kill(process)
        done = assert_one_whole_checkpoint(checkpoint_dir)
        assert done > done_before, "a resumed run lost epochs"
        done_before = done

    # Finish the run in this process, and compare with one that was never interrupted.
    X, y = synthetic_training_data()
    resumed = nncore.MLP([64, 48, 10], seed=99)
    history = resumed.fit(X, y, epochs=done + 2, batch_size=50, backend=backend, checkpoint_dir=checkpoint_dir,
                          resume=True, n_threads=1)
    assert history.epoch == list(range(1, done + 3))
    assert sorted(p.name for p in checkpoint_dir.iterdir()) == ["checkpoint.npz"], "temporary files piled up"
    reference = nncore.MLP([64, 48, 10], seed=0)
    reference.fit(X, y, epochs=done + 2, batch_size=50, backend=backend, seed=11, n_threads=1)
    np.testing.assert_array_equal(resumed.params, reference.params)
    np.testing.assert_array_equal(np.array(history.loss), np.array(reference.history.loss))


WRITE_FOREVER = textwrap.dedent("""
    import sys, numpy as np, nncore
    from nncore.io import save_checkpoint
    path = sys.argv[1]
    model = nncore.MLP([200, 100, 10], seed=0)
    optimizer = nncore.Adam()
    optimizer.ensure_state(model.n_parameters, model.dtype)
    i = 0
    while True:
        i += 1
        model.params[:] = i
        for buffer in optimizer.state_buffers().values():
            buffer[:] = i
        optimizer.step = i
        save_checkpoint(path, model, optimizer, {"seed": 0, "epoch_offset": 0, "epochs_done": i, "base_lr": 0.001,
                                                 "history": {}, "i": i}, best_params=model.params)
        if i == 1:
            print("first", flush=True)
""")


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_process_killed_while_writing_checkpoints_in_a_tight_loop_always_leaves_one_whole_checkpoint(tmp_path):
    randomness = random.Random(7)
    path = tmp_path / "checkpoint.npz"
    seen = set()
    for trial in range(10):
        process = subprocess.Popen([sys.executable, "-c", WRITE_FOREVER, str(path)], env=subprocess_environment(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert process.stdout.readline().strip() == "first", process.stderr.read()
            time.sleep(randomness.uniform(0.0, 0.3))
        finally:
            kill(process)
        checkpoint = load_checkpoint(path)
        i = checkpoint["header"]["training"]["i"]
        # One write, whole: every array and the header come from the same iteration.
        assert checkpoint["optimizer_state"]["step"] == i
        buffers = checkpoint["optimizer_state"]["buffers"].values()
        for array in (checkpoint["params"], checkpoint["best_params"], *buffers):
            assert np.all(array == i)
        seen.add(i)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.npz"]
        assert all(name.startswith(".checkpoint.npz.") and name.endswith(".tmp") for name in leftovers), leftovers
    assert len(seen) >= 5, "the kills did not land at different moments"


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs SIGINT")
@pytest.mark.parametrize("backend", BACKENDS)
def test_ctrl_c_in_a_training_process_returns_the_history_and_keeps_the_checkpoint(tmp_path, backend):
    script = TRAIN_FOREVER.replace("model.fit(", "history = model.fit(") + textwrap.dedent("""
        print("interrupted", history.interrupted, len(history), model.epochs_trained, flush=True)
    """)
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path), backend], env=subprocess_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_first_epoch(process)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    last = stdout.strip().splitlines()[-1].split()
    assert last[:2] == ["interrupted", "True"] and last[2] == last[3], stdout
    assert assert_one_whole_checkpoint(tmp_path) == int(last[2])
    assert "training interrupted" in stderr


# ---------------------------------------------------------------- threads

@pytest.fixture
def one_blas_thread():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1):
        yield


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_from_8_threads_on_one_model_equals_serial_calls(backend):
    rng = np.random.default_rng(0)
    model = nncore.MLP([784, 128, 10], seed=0)
    inputs = [rng.integers(0, 256, (int(n), 784), dtype=np.uint8) for n in rng.integers(1, 3000, 16)]
    serial = [model.predict_proba(X, backend=backend) for X in inputs]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(3):
            parallel = list(pool.map(lambda X: model.predict_proba(X, backend=backend), inputs))
            for got, want in zip(parallel, serial):
                np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(not CORE_AVAILABLE, reason=CORE_DETAIL)
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two cores to run two threads at once")
@pytest.mark.parametrize("call", ["forward", "train_epoch"])
def test_the_compiled_kernels_release_the_gil(one_blas_thread, call):
    # A pure-Python thread counts while the main thread is inside one long kernel call. A call
    # holding the GIL would stop it dead; released, it keeps a good part of its own speed
    # (the bound is loose: these machines are shared, and train_epoch re-takes the GIL
    # briefly every 20 ms to check for Ctrl-C).
    from _backends import epoch, forward

    from nncore.backends import get_backend
    backend = get_backend("cython")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (20000, 784), dtype=np.uint8)
    y = rng.integers(0, 10, 20000)
    model = nncore.MLP([784, 256, 10], seed=0)

    def kernel_call():
        if call == "forward":
            forward(backend, model.network, model.params, X)
        else:
            epoch(backend, model.network, model.params.copy(), nncore.SGD(lr=0.01), X, y, 64, 0)

    def count(stop, counted):
        n = 0
        while not stop.is_set():
            n += 1
        counted.append(n)

    def counting_rate(body):
        stop, counted = threading.Event(), []
        counter = threading.Thread(target=count, args=(stop, counted))
        counter.start()
        began = time.perf_counter()
        body()
        seconds = time.perf_counter() - began
        stop.set()
        counter.join()
        return counted[0] / seconds, seconds

    kernel_call()  # warm up
    rate_during, seconds = counting_rate(kernel_call)
    rate_alone, _ = counting_rate(lambda: time.sleep(seconds))
    assert rate_during > 0.2 * rate_alone, (f"a Python thread ran at {rate_during / rate_alone:.0%} of its speed "
                                            f"during {call}: the GIL is held")


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_and_predicting_different_models_in_parallel_threads_equals_serial_runs(backend, one_blas_thread):
    datasets = [blobs(n=600, n_features=32, n_classes=5, seed=seed) for seed in range(4)]
    probe = np.random.default_rng(9).standard_normal((500, 32)).astype(np.float32)

    def train(index):
        X, y = datasets[index]
        model = nncore.MLP([32, 64, 5], seed=index)
        history = model.fit(X, y, epochs=4, batch_size=32, backend=backend, seed=index,
                            optimizer=nncore.SGD(lr=0.05, momentum=0.9) if index % 2 else nncore.Adam())
        return model.params.copy(), history.loss

    predictor = nncore.MLP([32, 64, 5], seed=42)

    def predict(_):
        return predictor.predict_proba(probe, backend=backend)

    serial_train = [train(i) for i in range(4)]
    serial_predict = predict(0)
    with ThreadPoolExecutor(8) as pool:
        trained = [pool.submit(train, i) for i in range(4)]
        predicted = [pool.submit(predict, i) for i in range(8)]
        for future, (params, losses) in zip(trained, serial_train):
            got_params, got_losses = future.result()
            np.testing.assert_array_equal(got_params, params)
            assert got_losses == losses
        for future in predicted:
            np.testing.assert_array_equal(future.result(), serial_predict)


# ---------------------------------------------------------------- memory

MEASURE_EPOCHS = textwrap.dedent("""
    import json, sys, numpy as np, nncore
    backend, epochs = sys.argv[1], int(sys.argv[2])

    def rss_mb():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (60000, 784), dtype=np.uint8)
    y = rng.integers(0, 10, 60000)
    X_val = rng.integers(0, 256, (10000, 784), dtype=np.uint8)
    y_val = rng.integers(0, 10, 10000)
    # A narrow hidden layer keeps the run short; the data, the workspaces per batch and the
    # checkpoint and validation work per epoch are those of a real MNIST run.
    model = nncore.MLP([784, int(sys.argv[4]), 10], seed=0)
    rss = [rss_mb()]
    model.fit(X, y, epochs=epochs, batch_size=128, backend=backend, validation_data=(X_val, y_val),
              checkpoint_dir=sys.argv[3], callbacks=[lambda epoch, logs: rss.append(rss_mb())])
    model.predict(X_val, backend=backend)
    rss.append(rss_mb())
    print(json.dumps({"rss_mb": rss}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
@pytest.mark.skipif(not CORE_AVAILABLE, reason=CORE_DETAIL)
def test_twenty_epochs_on_mnist_sized_data_do_not_grow_resident_memory(tmp_path):
    done = subprocess.run([sys.executable, "-c", MEASURE_EPOCHS, "cython", "20", str(tmp_path), "128"],
                          env=subprocess_environment(),
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    rss = json.loads(done.stdout.strip().splitlines()[-1])["rss_mb"]
    # rss[0]: before training; rss[e]: after epoch e; rss[21]: after a final predict.
    growth = max(rss[2:]) - rss[2]
    print(f"VmRSS MB: start {rss[0]:.1f}, epoch 1 {rss[1]:.1f}, epoch 2 {rss[2]:.1f}, "
          f"epoch 20 {rss[20]:.1f}, max after epoch 2 {max(rss[2:]):.1f}; growth {growth:.2f} MB")
    assert growth < RSS_GROWTH_LIMIT_MB, rss


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmRSS from /proc")
def test_numpy_backend_epochs_do_not_grow_resident_memory(tmp_path):
    done = subprocess.run([sys.executable, "-c", MEASURE_EPOCHS.replace("(60000, 784)", "(6000, 784)")
                           .replace("60000)", "6000)"), "numpy", "6", str(tmp_path), "128"],
                          env=subprocess_environment(), capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    rss = json.loads(done.stdout.strip().splitlines()[-1])["rss_mb"]
    assert max(rss[2:]) - rss[2] < RSS_GROWTH_LIMIT_MB, rss


PEAK_RSS_OF_CHILD = textwrap.dedent("""
    import resource, subprocess, sys
    done = subprocess.run(sys.argv[1:])
    # ru_maxrss of the children of this wrapper: the command alone (kB on Linux).
    print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
""")


@pytest.mark.network
@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in kB on Linux")
@pytest.mark.skipif(shutil.which("nncore") is None and not (Path(sys.executable).parent / "nncore").exists(),
                    reason="the nncore command is not installed")
def test_peak_resident_memory_of_nncore_train_on_mnist_stays_under_400_mb(tmp_path):
    command = shutil.which("nncore") or str(Path(sys.executable).parent / "nncore")
    done = subprocess.run([sys.executable, "-c", PEAK_RSS_OF_CHILD, command, "train", "mnist", "--epochs", "2",
                           "--checkpoint-dir", str(tmp_path / "run"), "--save", str(tmp_path / "model.npz"),
                           "--quiet"], capture_output=True, text=True, check=False, timeout=1800)
    returncode, peak_kb = (int(v) for v in done.stdout.strip().splitlines()[-1].split())
    assert returncode == 0, done.stderr
    print(f"nncore train mnist (784-256-128-10, 2 epochs): peak RSS {peak_kb / 1024:.0f} MB")
    assert peak_kb / 1024 < PEAK_RSS_LIMIT_MB
