"""The backend contract: for the same seed and data, the compiled backend does what numpy_backend does.

After one epoch the parameters, optimizer state, EpochResult and optimizer.step agree:
float64 to 1e-10 relative (max |difference| / max |value|), float32 to 1e-4. n_correct is
equal in float64; in float32 it may differ by 2: the two backends round the gemm sums in
different orders (~1e-7 relative), which can flip an argmax between two logits that tie to
that precision, or a ReLU whose input is within that distance of 0.
"""
import threading
import time
import tracemalloc
import _thread

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from nncore.backends import cython_backend as cb
from nncore.backends import numpy_backend as nb
from nncore.backends._common import count_parameters, epoch_order, layer_views
from nncore.optim import SGD, Adam

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
# The SGD velocity is a momentum-weighted sum of recent gradients with much cancellation: in
# float32 over 150 single-sample steps at momentum 0.9 its relative drift reaches ~1e-4
# while the parameters stay within ~6e-5 (float64 agrees to 1e-13 on the same runs).
STATE_RTOL = {np.float32: 3e-4, np.float64: 1e-10}
CORRECT_SLACK = {np.float32: 2, np.float64: 0}
LAYER_SHAPES = [(20, 3), (20, 16, 5), (20, 12, 9, 7, 4)]
OPTIMIZERS = {
    "sgd": lambda: SGD(lr=0.1),
    "momentum": lambda: SGD(lr=0.05, momentum=0.9),
    "nesterov-wd": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: Adam(lr=3e-3, weight_decay=1e-4),
}


def make_problem(layer_sizes, dtype, inputs, n_samples=150, seed=0):
    rng = np.random.default_rng(seed)
    params = np.concatenate([
        np.r_[rng.standard_normal(fi * fo) * np.sqrt(2.0 / fi), rng.standard_normal(fo) * 0.1]
        for fi, fo in zip(layer_sizes[:-1], layer_sizes[1:])]).astype(dtype)
    if inputs == "uint8":
        X = rng.integers(0, 256, (n_samples, layer_sizes[0]), dtype=np.uint8)
    else:
        X = rng.random((n_samples, layer_sizes[0])).astype(dtype)
    y = rng.integers(0, layer_sizes[-1], n_samples)
    return params, X, y


def relative_difference(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1e-300))


def assert_same_epoch(dtype, ref, ref_params, ref_opt, got, got_params, got_opt):
    rtol = RTOL[dtype]
    assert relative_difference(got_params, ref_params) <= rtol
    for name, buffer in ref_opt.state_buffers().items():
        assert relative_difference(got_opt.state_buffers()[name], buffer) <= STATE_RTOL[dtype], name
    assert got_opt.step == ref_opt.step
    assert got.loss_sum == pytest.approx(ref.loss_sum, rel=rtol)
    assert abs(got.n_correct - ref.n_correct) <= CORRECT_SLACK[dtype]
    assert (got.n_samples, got.n_batches, got.diverged_batch) == (ref.n_samples, ref.n_batches, ref.diverged_batch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inputs", ["uint8", "float"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 7, 128, None])
@pytest.mark.parametrize("shape", range(len(LAYER_SHAPES)))
def test_one_epoch_agrees_with_the_numpy_backend(dtype, inputs, loss, optimizer, batch_size, shape):
    layer_sizes = LAYER_SHAPES[shape]
    params, X, y = make_problem(layer_sizes, dtype, inputs, seed=shape)
    ref_params, ref_opt = params.copy(), OPTIMIZERS[optimizer]()
    got_params, got_opt = params.copy(), OPTIMIZERS[optimizer]()
    ref = nb.train_epoch(ref_params, layer_sizes, ref_opt, X, y, batch_size, seed=11, loss=loss)
    got = cb.train_epoch(got_params, layer_sizes, got_opt, X, y, batch_size, seed=11, loss=loss)
    assert isinstance(got, type(ref))
    assert_same_epoch(dtype, ref, ref_params, ref_opt, got, got_params, got_opt)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_three_epochs_agree_and_the_step_count_carries_over(dtype, optimizer):
    layer_sizes = (20, 16, 5)
    params, X, y = make_problem(layer_sizes, dtype, "uint8")
    ref_params, ref_opt = params.copy(), OPTIMIZERS[optimizer]()
    got_params, got_opt = params.copy(), OPTIMIZERS[optimizer]()
    for epoch in range(3):
        ref = nb.train_epoch(ref_params, layer_sizes, ref_opt, X, y, 32, seed=epoch)
        got = cb.train_epoch(got_params, layer_sizes, got_opt, X, y, 32, seed=epoch)
        assert_same_epoch(dtype, ref, ref_params, ref_opt, got, got_params, got_opt)
    assert got_opt.step == 3 * 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [None, 40])
def test_batches_larger_than_the_workspace_are_chunked_without_changing_the_result(monkeypatch, dtype,
                                                                                   batch_size):
    monkeypatch.setattr(cb, "CHUNK_ROWS", 16)
    layer_sizes = (20, 12, 9, 4)
    params, X, y = make_problem(layer_sizes, dtype, "uint8", n_samples=150)
    ref_params, ref_opt = params.copy(), SGD(lr=0.1, momentum=0.5)
    got_params, got_opt = params.copy(), SGD(lr=0.1, momentum=0.5)
    ref = nb.train_epoch(ref_params, layer_sizes, ref_opt, X, y, batch_size, seed=2)
    got = cb.train_epoch(got_params, layer_sizes, got_opt, X, y, batch_size, seed=2)
    assert_same_epoch(dtype, ref, ref_params, ref_opt, got, got_params, got_opt)


def test_a_full_batch_epoch_does_not_copy_the_data_to_floats():
    """60,000 x 784 would need 188 MB of float32; the chunked core needs ~4 MB of workspace."""
    layer_sizes = (784, 32, 10)
    params, X, y = make_problem(layer_sizes, np.float32, "uint8", n_samples=20_000)
    optimizer = SGD(lr=0.1)
    cb.train_epoch(params.copy(), layer_sizes, optimizer, X[:10], y[:10])  # optimizer state made here
    tracemalloc.start()
    try:
        cb.train_epoch(params, layer_sizes, optimizer, X, y, batch_size=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    as_floats = X.size * 4  # 62.7 MB
    assert peak < as_floats / 8, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inputs", ["uint8", "float"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_forward_and_evaluate_agree_with_the_numpy_backend(monkeypatch, dtype, inputs, loss, batch_size):
    monkeypatch.setattr(cb, "CHUNK_ROWS", 64)  # 150 rows: chunks of 64, 64, 22
    layer_sizes = (20, 12, 9, 4)
    params, X, y = make_problem(layer_sizes, dtype, inputs)
    np.testing.assert_allclose(cb.forward(params, layer_sizes, X, batch_size),
                               nb.forward(params, layer_sizes, X, batch_size),
                               rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)
    got_loss, got_correct = cb.evaluate(params, layer_sizes, X, y, loss, batch_size)
    ref_loss, ref_correct = nb.evaluate(params, layer_sizes, X, y, loss, batch_size)
    assert isinstance(got_loss, float) and isinstance(got_correct, int)
    assert got_loss == pytest.approx(ref_loss, rel=RTOL[dtype])
    assert abs(got_correct - ref_correct) <= CORRECT_SLACK[dtype]


def test_empty_inputs_behave_like_the_numpy_backend():
    layer_sizes = (20, 5, 3)
    params, X, y = make_problem(layer_sizes, np.float64, "uint8")
    X, y = X[:0], y[:0]
    assert cb.forward(params, layer_sizes, X).shape == nb.forward(params, layer_sizes, X).shape == (0, 3)
    assert cb.evaluate(params, layer_sizes, X, y) == nb.evaluate(params, layer_sizes, X, y) == (0.0, 0)
    assert cb.train_epoch(params, layer_sizes, SGD(), X, y) == nb.train_epoch(params, layer_sizes, SGD(), X, y)
    with pytest.raises(ValueError, match="empty"):
        cb.loss_and_grad(params, layer_sizes, X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_diverging_batch_is_not_applied_and_ends_the_epoch_as_in_numpy(dtype, optimizer):
    layer_sizes = (20, 16, 5)
    params, X, y = make_problem(layer_sizes, dtype, "float")
    # one poisoned sample: its logits overflow to inf, its loss is NaN
    X[epoch_order(len(X), 4)[3 * 10 + 2]] = np.finfo(dtype).max
    make = {"sgd": lambda: SGD(lr=0.1), "adam": lambda: Adam(lr=1e-2)}[optimizer]
    ref_params, ref_opt, got_params, got_opt = params.copy(), make(), params.copy(), make()
    with np.errstate(over="ignore", invalid="ignore"):
        ref = nb.train_epoch(ref_params, layer_sizes, ref_opt, X, y, 10, seed=4)
    got = cb.train_epoch(got_params, layer_sizes, got_opt, X, y, 10, seed=4)
    assert ref.diverged_batch == 4 and ref.n_batches == 3 and ref_opt.step == 3
    assert_same_epoch(dtype, ref, ref_params, ref_opt, got, got_params, got_opt)
    assert np.all(np.isfinite(got_params))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_absurd_learning_rate_diverges_at_the_same_batch(dtype):
    layer_sizes = (20, 16, 5)
    params, X, y = make_problem(layer_sizes, dtype, "uint8")
    lr = 1e30 if dtype == np.float32 else 1e200
    ref_params, ref_opt, got_params, got_opt = params.copy(), SGD(lr=lr), params.copy(), SGD(lr=lr)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = nb.train_epoch(ref_params, layer_sizes, ref_opt, X, y, 5, seed=1)
    got = cb.train_epoch(got_params, layer_sizes, got_opt, X, y, 5, seed=1)
    assert ref.diverged_batch is not None
    assert got.diverged_batch == ref.diverged_batch and got_opt.step == ref_opt.step
    assert got.n_samples == ref.n_samples and got.n_batches == ref.n_batches
    assert relative_difference(got_params, ref_params) <= RTOL[dtype]


def _replay_with_numpy(params, layer_sizes, optimizer, X, y, batch_size, seed, n_batches):
    """The first n_batches updates of an epoch, done by the reference one batch at a time."""
    order = epoch_order(len(X), seed)
    grad = np.empty_like(params)
    optimizer.ensure_state(len(params), params.dtype)
    for index in range(n_batches):
        rows = order[index * batch_size:(index + 1) * batch_size]
        nb._batch_loss_and_grad(params, layer_sizes, nb.gather_scale(X, rows, params.dtype), y[rows],
                                "cross_entropy", grad)
        nb.apply_update(params, grad, optimizer)


def test_ctrl_c_stops_after_a_whole_batch_and_the_state_stays_consistent():
    layer_sizes = (784, 256, 10)
    params, X, y = make_problem(layer_sizes, np.float64, "uint8", n_samples=40_000)
    start_params = params.copy()
    optimizer = Adam(lr=1e-3)
    n_batches = len(X) // 8
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            cb.train_epoch(params, layer_sizes, optimizer, X, y, batch_size=8, seed=5)
    finally:
        timer.cancel()
    assert 0 < optimizer.step < n_batches
    replay_params, replay_opt = start_params.copy(), Adam(lr=1e-3)
    _replay_with_numpy(replay_params, layer_sizes, replay_opt, X, y, 8, 5, optimizer.step)
    assert relative_difference(params, replay_params) <= 1e-10
    assert relative_difference(optimizer.state_buffers()["m"], replay_opt.state_buffers()["m"]) <= 1e-10
    assert relative_difference(optimizer.state_buffers()["v"], replay_opt.state_buffers()["v"]) <= 1e-10


def test_train_epoch_releases_the_gil():
    layer_sizes = (784, 128, 10)
    params, X, y = make_problem(layer_sizes, np.float32, "uint8", n_samples=30_000)
    counter = {"ticks": 0, "stop": False}

    def count():
        while not counter["stop"]:
            counter["ticks"] += 1

    thread = threading.Thread(target=count)
    thread.start()
    try:
        time.sleep(0.05)
        before = counter["ticks"]
        started = time.perf_counter()
        # One BLAS thread: a second one would busy-wait against the counting thread for the cores.
        with threadpool_limits(limits=1, user_api="blas"):
            cb.train_epoch(params, layer_sizes, SGD(lr=0.01), X, y, batch_size=64)
        elapsed = time.perf_counter() - started
        during = counter["ticks"] - before
    finally:
        counter["stop"] = True
        thread.join()
    assert elapsed > 0.05
    # Holding the GIL for the whole call would leave the counter where it was.
    assert during > 10_000, f"{during} ticks in {elapsed:.2f} s"


BAD_CALLS = {
    "params wrong dtype": lambda p, X, y: dict(params=p.astype(np.int64)),
    "params wrong length": lambda p, X, y: dict(params=p[:-1].copy()),
    "params not contiguous": lambda p, X, y: dict(params=np.repeat(p, 2)[::2]),
    "params read-only": lambda p, X, y: dict(params=_read_only(p)),
    "X wrong dtype": lambda p, X, y: dict(X=X.astype(np.float32)),
    "X wrong width": lambda p, X, y: dict(X=X[:, :-1].copy()),
    "X not contiguous": lambda p, X, y: dict(X=np.asfortranarray(X)),
    "X one-dimensional": lambda p, X, y: dict(X=X[0].copy()),
    "y out of range": lambda p, X, y: dict(y=np.where(np.arange(len(y)) == 3, 5, y)),
    "y negative": lambda p, X, y: dict(y=np.where(np.arange(len(y)) == 3, -1, y)),
    "y float": lambda p, X, y: dict(y=y.astype(float)),
    "y wrong length": lambda p, X, y: dict(y=y[:-1]),
    "bad loss": lambda p, X, y: dict(loss="hinge"),
    "bad batch size": lambda p, X, y: dict(batch_size=0),
    "bool batch size": lambda p, X, y: dict(batch_size=True),
    "bad layer sizes": lambda p, X, y: dict(layer_sizes=(20, 0, 5)),
    "bad optimizer": lambda p, X, y: dict(optimizer=object()),
}


def _read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_train_epoch_rejects_bad_arguments_exactly_as_the_numpy_backend(case):
    layer_sizes = (20, 16, 5)
    errors = []
    for backend in (nb, cb):
        params, X, y = make_problem(layer_sizes, np.float64, "float")
        arguments = dict(params=params, layer_sizes=layer_sizes, optimizer=SGD(), X=X, y=y, batch_size=10,
                         seed=0, loss="cross_entropy")
        arguments.update(BAD_CALLS[case](params, X, y))
        with pytest.raises((TypeError, ValueError)) as caught:
            backend.train_epoch(**arguments)
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]


def test_inference_accepts_read_only_parameters_and_inputs():
    layer_sizes = (20, 16, 5)
    params, X, y = make_problem(layer_sizes, np.float32, "uint8")
    expected = cb.forward(params, layer_sizes, X)
    np.testing.assert_array_equal(cb.forward(_read_only(params), layer_sizes, _read_only(X)), expected)
    assert cb.evaluate(_read_only(params), layer_sizes, _read_only(X), y) == cb.evaluate(params, layer_sizes, X, y)


def test_backend_module_offers_the_same_public_functions():
    assert cb.NAME == "cython" and nb.NAME == "numpy"
    import inspect
    for name in ("forward", "evaluate", "loss_and_grad", "train_epoch"):
        assert inspect.signature(getattr(cb, name)) == inspect.signature(getattr(nb, name)), name


def test_layer_views_of_the_parameters_are_what_the_core_updates():
    """The core walks the same flat layout: W_l row-major (fan_in, fan_out), then b_l."""
    layer_sizes = (3, 2, 2)
    params = np.zeros(count_parameters(layer_sizes))
    W2 = layer_views(params, layer_sizes)[1][0]
    W2[:] = [[1.0, 0.0], [0.0, 1.0]]
    probs = cb.forward(params, layer_sizes, np.ones((1, 3)))
    np.testing.assert_allclose(probs, [[0.5, 0.5]])


def test_direct_calls_into_the_extension_with_wrong_shapes_raise_instead_of_reading_out_of_bounds():
    from nncore import _core
    layer_sizes = (20, 16, 5)
    params, X, y = make_problem(layer_sizes, np.float64, "float")
    y = y.astype(np.int32)
    state = np.zeros_like(params)
    order = np.arange(len(X), dtype=np.intp)
    progress, total = np.zeros(4, np.intp), np.zeros(1)
    def epoch(**change):
        arguments = dict(params=params, layer_sizes=layer_sizes, X=X, y=y, order=order, batch_size=10,
                         loss_kind=0, state_a=state, state_b=state, loss_total=total, progress=progress)
        arguments.update(change)
        _core.train_epoch(*arguments.values(), adam=False, lr=0.1)
    for change in [dict(layer_sizes=(20, 5)), dict(X=X[:, :10].copy()), dict(y=y[:-1].copy()),
                   dict(y=np.full_like(y, 5)), dict(order=order + 1), dict(loss_kind=7), dict(batch_size=0),
                   dict(state_a=state[:-1].copy()), dict(progress=np.zeros(2, np.intp))]:
        with pytest.raises(ValueError):
            epoch(**change)
    with pytest.raises(ValueError):
        _core.forward(params, layer_sizes, X, np.empty((len(X), 4)))
    with pytest.raises(ValueError):
        _core.evaluate(params, (20, 16, 6), X, y, 0)
    with pytest.raises(ValueError):
        _core.loss_and_grad(params, layer_sizes, X[:0], y[:0], 0, np.empty_like(params))
