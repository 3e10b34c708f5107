"""The backend contract: for the same seed and data, the compiled backend does what the NumPy backend does.

After one epoch the parameters, optimizer state, EpochResult and optimizer.step agree:
float64 to 1e-10 relative (max |difference| / max |value|), float32 to 1e-4. n_correct is
equal in float64; in float32 it may differ by 2: the two backends round the gemm sums in
different orders (~1e-7 relative), which can flip an argmax between two logits that tie to
that precision, or a ReLU whose input is within that distance of 0. Every hidden-layer
activation and every optimizer kind is held to the same tolerances, on one thread and with the
steps split over two and three (``test_the_contract_holds_with_the_steps_split_over_threads``).

Every test runs on each product path (PRODUCT_PATHS: narrow kernels, BLAS, a mix), except the
three largest (marked ``one_product_path_per_case``): by default each of their cases runs on one
path, rotating with the case (tests/_product_paths.py), which still runs every path with every
combination of dtype, inputs, loss, optimizer and activation of each test (the last test here
checks it). ``pytest --all-product-paths`` runs all their cases on every path, three times as many.
"""
import _thread
import inspect
import itertools
import threading
import time
import tracemalloc

import numpy as np
import pytest
from _backends import epoch, evaluate, forward, loss_and_grad, random_params
from _product_paths import runs_on_its_product_path
from threadpoolctl import threadpool_limits

import nncore
from nncore import _core
from nncore.activations import ACTIVATIONS
from nncore.backends.base import Backend, epoch_order
from nncore.backends.cython_backend import CythonBackend
from nncore.backends.numpy_backend import NumpyBackend, apply_update, gather_scale
from nncore.network import Network
from nncore.optim import OPTIMIZERS as KINDS
from nncore.optim import SGD, Adam, AdamW, RMSprop

nb, cb = NumpyBackend(), CythonBackend()

RTOL = {np.float32: 1e-4, np.float64: 1e-10}
# The SGD velocity is a momentum-weighted sum of recent gradients with much cancellation: in
# float32 over 150 single-sample steps at momentum 0.9 its relative drift reaches ~1e-4
# while the parameters stay within ~6e-5 (float64 agrees to 1e-13 on the same runs). With the
# narrow kernels summing in another order, the deep identity network at batch 1 reached 4.3e-4.
STATE_RTOL = {np.float32: 5e-4, np.float64: 1e-10}
CORRECT_SLACK = {np.float32: 2, np.float64: 0}
LAYER_SHAPES = [(20, 3), (20, 16, 5), (20, 12, 9, 7, 4)]
OPTIMIZERS = {
    "sgd": lambda: SGD(lr=0.1),
    "momentum": lambda: SGD(lr=0.05, momentum=0.9),
    "nesterov-wd": lambda: SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: Adam(lr=3e-3, weight_decay=1e-4),
    "adamw": lambda: AdamW(lr=3e-3, weight_decay=1e-2),
    "rmsprop": lambda: RMSprop(lr=1e-3, momentum=0.5, centered=True, weight_decay=1e-4),
    # A deep linear (identity) network at batch 1 runs away at the rate above: a diverging run
    # amplifies rounding, which is no test of agreement.
    "nesterov-wd-slower": lambda: SGD(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-3),
}


# Which layers the compiled core runs in the narrow kernels (fan_out <= the width) and which
# through BLAS: every contract test holds all of them, and a mix, to the reference.
# (widest layer with narrow dW and dA, widest with a narrow forward too); the kernels stop at 64.
PRODUCT_PATHS = {"narrow": (1 << 30, 1 << 30), "blas": (0, 0), "mixed": (8, 5)}


@pytest.fixture(autouse=True, params=sorted(PRODUCT_PATHS))
def product_path(request, monkeypatch):
    from nncore import _core
    widest, widest_forward = PRODUCT_PATHS[request.param]
    monkeypatch.setattr(_core, "NARROW_MAX_WIDTH", widest)
    monkeypatch.setattr(_core, "NARROW_FORWARD_MAX_WIDTH", widest_forward)
    return request.param


def make_problem(layer_sizes, dtype, inputs, n_samples=150, seed=0, activation="relu"):
    network = Network(layer_sizes, activation, dtype)
    rng = np.random.default_rng(seed)
    params = random_params(network, seed)
    if inputs == "uint8":
        X = rng.integers(0, 256, (n_samples, layer_sizes[0]), dtype=np.uint8)
    else:
        X = rng.random((n_samples, layer_sizes[0])).astype(dtype)
    y = rng.integers(0, layer_sizes[-1], n_samples)
    return network, params, X, y


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


def one_epoch_each(network, params, make_optimizer, X, y, batch_size, seed, loss="cross_entropy", compiled=cb):
    """The same epoch by the reference and by the compiled backend, each on its own copy."""
    ref_params, ref_opt = params.copy(), make_optimizer()
    got_params, got_opt = params.copy(), make_optimizer()
    with np.errstate(over="ignore", invalid="ignore"):
        ref = epoch(nb, network, ref_params, ref_opt, X, y, batch_size, seed, loss)
    got = epoch(compiled, network, got_params, got_opt, X, y, batch_size, seed, loss)
    return (ref, ref_params, ref_opt), (got, got_params, got_opt)


@pytest.mark.one_product_path_per_case
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inputs", ["uint8", "float"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "nesterov-wd", "adam", "adamw", "rmsprop"])
@pytest.mark.parametrize("batch_size", [1, 7, 128, None])
@pytest.mark.parametrize("shape", range(len(LAYER_SHAPES)))
def test_one_epoch_agrees_with_the_numpy_backend(dtype, inputs, loss, optimizer, batch_size, shape):
    network, params, X, y = make_problem(LAYER_SHAPES[shape], dtype, inputs, seed=shape)
    (ref, *ref_state), (got, *got_state) = one_epoch_each(network, params, OPTIMIZERS[optimizer], X, y, batch_size,
                                                          11, loss)
    assert isinstance(got, type(ref))
    assert_same_epoch(dtype, ref, *ref_state, got, *got_state)


@pytest.mark.one_product_path_per_case
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inputs", ["uint8", "float"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("optimizer", ["nesterov-wd-slower", "adam"])
@pytest.mark.parametrize("batch_size", [1, 7, None])
@pytest.mark.parametrize("shape", [1, 2])
@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"relu"}))
def test_every_activation_agrees_with_the_numpy_backend(activation, dtype, inputs, loss, optimizer, batch_size,
                                                         shape):
    network, params, X, y = make_problem(LAYER_SHAPES[shape], dtype, inputs, seed=shape, activation=activation)
    (ref, *ref_state), (got, *got_state) = one_epoch_each(network, params, OPTIMIZERS[optimizer], X, y, batch_size,
                                                          11, loss)
    assert_same_epoch(dtype, ref, *ref_state, got, *got_state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activations", [("tanh", "relu", "logistic"), ("relu", "identity", "tanh"),
                                         ("logistic", "logistic", "relu")])
def test_a_different_activation_per_layer_agrees_with_the_numpy_backend(dtype, activations):
    network, params, X, y = make_problem((20, 12, 9, 7, 4), dtype, "uint8", activation=activations)
    (ref, *ref_state), (got, *got_state) = one_epoch_each(network, params, OPTIMIZERS["adam"], X, y, 7, 3)
    assert_same_epoch(dtype, ref, *ref_state, got, *got_state)
    np.testing.assert_allclose(forward(cb, network, params, X), forward(nb, network, params, X), rtol=RTOL[dtype],
                               atol=RTOL[dtype] * 1e-3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_three_epochs_agree_and_the_step_count_carries_over(dtype, optimizer):
    network, params, X, y = make_problem((20, 16, 5), dtype, "uint8")
    ref_params, ref_opt = params.copy(), OPTIMIZERS[optimizer]()
    got_params, got_opt = params.copy(), OPTIMIZERS[optimizer]()
    for seed in range(3):
        ref = epoch(nb, network, ref_params, ref_opt, X, y, 32, seed)
        got = epoch(cb, network, got_params, got_opt, X, y, 32, seed)
        assert_same_epoch(dtype, ref, ref_params, ref_opt, got, got_params, got_opt)
    assert got_opt.step == 3 * 5


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [None, 40])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_batches_larger_than_the_workspace_are_chunked_without_changing_the_result(dtype, batch_size, activation):
    network, params, X, y = make_problem((20, 12, 9, 4), dtype, "uint8", n_samples=150, activation=activation)
    make = lambda: SGD(lr=0.1, momentum=0.5)  # noqa: E731
    (ref, *ref_state), (got, *got_state) = one_epoch_each(network, params, make, X, y, batch_size, 2,
                                                          compiled=CythonBackend(chunk_rows=16))
    assert_same_epoch(dtype, ref, *ref_state, got, *got_state)


def test_a_full_batch_epoch_does_not_copy_the_data_to_floats():
    """60,000 x 784 would need 188 MB of float32; the chunked core needs ~4 MB of workspace per
    thread (a 1024-row chunk's inputs are 3.2 MB), two threads here."""
    network, params, X, y = make_problem((784, 32, 10), np.float32, "uint8", n_samples=20_000)
    optimizer = SGD(lr=0.1)
    two_threads = CythonBackend(n_threads=2)
    assert two_threads.step_threads(network, len(X)) == 2
    epoch(cb, network, params.copy(), optimizer, X[:10], y[:10])  # optimizer state made here
    tracemalloc.start()
    try:
        epoch(two_threads, network, params, optimizer, X, y, batch_size=None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    as_floats = X.size * 4  # 62.7 MB
    assert peak < as_floats / 6, f"peak {peak / 1e6:.1f} MB"


@pytest.mark.one_product_path_per_case
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inputs", ["uint8", "float"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("batch_size", [1, 7, None])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_forward_and_evaluate_agree_with_the_numpy_backend(dtype, inputs, loss, batch_size, activation):
    chunked = CythonBackend(chunk_rows=64)  # 150 rows: chunks of 64, 64, 22
    network, params, X, y = make_problem((20, 12, 9, 4), dtype, inputs, activation=activation)
    np.testing.assert_allclose(forward(chunked, network, params, X, batch_size),
                               forward(nb, network, params, X, batch_size), rtol=RTOL[dtype], atol=RTOL[dtype] * 1e-3)
    got_loss, got_correct = evaluate(chunked, network, params, X, y, loss, batch_size)
    ref_loss, ref_correct = evaluate(nb, network, params, X, y, loss, batch_size)
    assert isinstance(got_loss, float) and isinstance(got_correct, int)
    assert got_loss == pytest.approx(ref_loss, rel=RTOL[dtype])
    assert abs(got_correct - ref_correct) <= CORRECT_SLACK[dtype]


def test_empty_inputs_behave_like_the_numpy_backend():
    network, params, X, y = make_problem((20, 5, 3), np.float64, "uint8")
    X, y = X[:0], y[:0]
    assert forward(cb, network, params, X).shape == forward(nb, network, params, X).shape == (0, 3)
    assert evaluate(cb, network, params, X, y) == evaluate(nb, network, params, X, y) == (0.0, 0)
    assert epoch(cb, network, params, SGD(), X, y) == epoch(nb, network, params, SGD(), X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("activation", ["relu", "identity"])  # tanh and logistic turn an inf input into +-1
def test_a_diverging_batch_is_not_applied_and_ends_the_epoch_as_in_numpy(dtype, optimizer, activation):
    network, params, X, y = make_problem((20, 16, 5), dtype, "float", activation=activation)
    # one poisoned sample: its logits overflow to inf, its loss is NaN
    X[epoch_order(len(X), 4)[3 * 10 + 2]] = np.finfo(dtype).max
    make = {"sgd": lambda: SGD(lr=0.1), "adam": lambda: Adam(lr=1e-2)}[optimizer]
    (ref, *ref_state), (got, *got_state) = one_epoch_each(network, params, make, X, y, 10, 4)
    assert ref.diverged_batch == 4 and ref.n_batches == 3 and ref_state[1].step == 3
    assert_same_epoch(dtype, ref, *ref_state, got, *got_state)
    assert np.all(np.isfinite(got_state[0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_absurd_learning_rate_diverges_at_the_same_batch(dtype):
    network, params, X, y = make_problem((20, 16, 5), dtype, "uint8")
    lr = 1e30 if dtype == np.float32 else 1e200
    (ref, ref_params, ref_opt), (got, got_params, got_opt) = one_epoch_each(network, params, lambda: SGD(lr=lr), X,
                                                                           y, 5, 1)
    assert ref.diverged_batch is not None
    assert got.diverged_batch == ref.diverged_batch and got_opt.step == ref_opt.step
    assert got.n_samples == ref.n_samples and got.n_batches == ref.n_batches
    assert relative_difference(got_params, ref_params) <= RTOL[dtype]


def _replay_with_numpy(network, params, optimizer, X, y, batch_size, seed, n_batches):
    """The first n_batches updates of an epoch, done by the reference one batch at a time."""
    order = epoch_order(len(X), seed)
    optimizer.ensure_state(len(params), params.dtype)
    for index in range(n_batches):
        rows = order[index * batch_size:(index + 1) * batch_size]
        value, grad = loss_and_grad(nb, network, params, gather_scale(X, rows, params.dtype), y[rows])
        apply_update(params, grad, optimizer)


@pytest.mark.parametrize("batch_size, n_threads", [(8, 1), (64, 2)])
def test_ctrl_c_stops_after_a_whole_batch_and_the_state_stays_consistent(batch_size, n_threads):
    network, params, X, y = make_problem((784, 256, 10), np.float64, "uint8", n_samples=40_000)
    compiled = CythonBackend(n_threads=n_threads)
    assert compiled.step_threads(network, batch_size) == n_threads
    start_params = params.copy()
    optimizer = Adam(lr=1e-3)
    n_batches = len(X) // batch_size
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            epoch(compiled, network, params, optimizer, X, y, batch_size=batch_size, seed=5)
    finally:
        timer.cancel()
    assert 0 < optimizer.step < n_batches
    replay_params, replay_opt = start_params.copy(), Adam(lr=1e-3)
    _replay_with_numpy(network, replay_params, replay_opt, X, y, batch_size, 5, optimizer.step)
    assert relative_difference(params, replay_params) <= 1e-10
    assert relative_difference(optimizer.state_buffers()["m"], replay_opt.state_buffers()["m"]) <= 1e-10
    assert relative_difference(optimizer.state_buffers()["v"], replay_opt.state_buffers()["v"]) <= 1e-10


def test_train_epoch_releases_the_gil():
    network, params, X, y = make_problem((784, 128, 10), np.float32, "uint8", n_samples=30_000)
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
            epoch(cb, network, params, SGD(lr=0.01), X, y, batch_size=64)
        elapsed = time.perf_counter() - started
        during = counter["ticks"] - before
    finally:
        counter["stop"] = True
        thread.join()
    assert elapsed > 0.05
    # Holding the GIL for the whole call would leave the counter where it was.
    assert during > 10_000, f"{during} ticks in {elapsed:.2f} s"


BAD_CALLS = {
    "X wrong dtype": lambda X, y: dict(X=X.astype(np.complex64)),
    "X wrong width": lambda X, y: dict(X=X[:, :-1].copy()),
    "X one-dimensional": lambda X, y: dict(X=X[0].copy()),
    "X with NaN": lambda X, y: dict(X=np.where(np.arange(len(X))[:, None] == 3, np.nan, X)),
    "y out of range": lambda X, y: dict(y=np.where(np.arange(len(y)) == 3, 5, y)),
    "y negative": lambda X, y: dict(y=np.where(np.arange(len(y)) == 3, -1, y)),
    "y not integral": lambda X, y: dict(y=y + 0.5),
    "y wrong length": lambda X, y: dict(y=y[:-1]),
    "bad loss": lambda X, y: dict(loss="hinge"),
    "bad batch size": lambda X, y: dict(batch_size=0),
    "bool batch size": lambda X, y: dict(batch_size=True),
    "bad optimizer": lambda X, y: dict(optimizer=NOT_AN_OPTIMIZER),
    "unknown optimizer": lambda X, y: dict(optimizer="lbfgs"),
}
NOT_AN_OPTIMIZER = object()


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_arguments_are_refused_the_same_way_before_either_backend_runs(case):
    """Backends trust their caller: the input contract refuses for both, with one error."""
    errors = []
    for backend in (nb, cb):
        network, params, X, y = make_problem((20, 16, 5), np.float64, "float")
        model = nncore.MLP(network.layer_sizes, dtype="float64", seed=0)
        before = model.params.copy()
        arguments = dict(X=X, y=y, batch_size=10, loss="cross_entropy", optimizer="sgd", epochs=1, backend=backend)
        arguments.update(BAD_CALLS[case](X, y))
        with pytest.raises((TypeError, ValueError)) as caught:
            model.fit(**arguments)
        assert np.array_equal(model.params, before) and model.optimizer is None
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]


def _read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


def test_inference_accepts_read_only_parameters_and_inputs():
    network, params, X, y = make_problem((20, 16, 5), np.float32, "uint8")
    expected = forward(cb, network, params, X)
    np.testing.assert_array_equal(forward(cb, network, _read_only(params), _read_only(X)), expected)
    assert evaluate(cb, network, _read_only(params), _read_only(X), y) == evaluate(cb, network, params, X, y)


def test_both_backends_are_backend_objects_with_the_same_calls():
    assert cb.name == "cython" and nb.name == "numpy"
    assert cb.stops_between_batches and not nb.stops_between_batches
    for name in ("forward", "evaluate", "loss_and_grad", "train_epoch", "data_gradient"):
        assert inspect.signature(getattr(cb, name)) == inspect.signature(getattr(nb, name)), name
    assert isinstance(cb, Backend) and isinstance(nb, Backend)
    assert nncore.backends.get_backend(cb) is cb


def test_the_network_views_of_the_parameters_are_what_the_core_updates():
    """The core walks the network's flat layout: W_l row-major (fan_in, fan_out), then b_l."""
    network = Network((3, 2, 2), dtype="float64")
    params = network.zeros()
    W2 = network.views(params)[1][0]
    W2[:] = [[1.0, 0.0], [0.0, 1.0]]
    np.testing.assert_allclose(forward(cb, network, params, np.ones((1, 3))), [[0.5, 0.5]])


def _core_epoch(**change):
    """A direct call into the extension's train_epoch, valid but for ``change``."""
    from nncore import _core
    network, params, X, y = make_problem((20, 16, 5), np.float64, "float")
    arguments = dict(layout=network.table, params=params, X=X, y=y.astype(np.int32),
                     order=np.arange(len(X), dtype=np.intp))
    keywords = dict(batch_size=10, loss="cross_entropy", optimizer={"kind": "sgd", "lr": 0.1},
                    states=[np.zeros_like(params)], loss_total=np.zeros(1), progress=np.zeros(4, np.intp))
    for name, value in change.items():
        (arguments if name in arguments else keywords)[name] = value
    _core.train_epoch(*arguments.values(), **keywords)


def _shifted_table(network, position, delta):
    table = network.table.copy()
    table[position] += delta
    return table


def test_direct_calls_into_the_extension_with_wrong_shapes_raise_instead_of_reading_out_of_bounds():
    from nncore import _core
    network, params, X, y = make_problem((20, 16, 5), np.float64, "float")
    y = y.astype(np.int32)
    n_layers = network.n_layers
    _core_epoch()  # the valid call works
    for change in [dict(layout=Network((20, 16, 6), dtype="float64").table), dict(X=X[:, :10].copy()),
                   dict(y=y[:-1].copy()), dict(y=np.full_like(y, 5)), dict(y=np.full_like(y, -1)),
                   dict(order=np.arange(len(X), dtype=np.intp) + 1), dict(loss="hinge"),
                   dict(optimizer={"kind": "lbfgs"}), dict(optimizer={"kind": "sgd", "learning_rate": 0.1}),
                   dict(batch_size=0), dict(states=[np.zeros(len(params) - 1)]), dict(states=[]),
                   dict(progress=np.zeros(2, np.intp)), dict(n_threads=0), dict(n_threads=2**32 + 1),
                   dict(layout=_shifted_table(network, n_layers + 2, 10**6)),      # W_2 ends past the buffer
                   dict(layout=_shifted_table(network, 2 * n_layers + 1, -10**6)),  # b_1 starts before it
                   dict(layout=_shifted_table(network, 3 * n_layers + 1, 99)),     # no such activation
                   dict(layout=_shifted_table(network, 1, 10**9)),                 # a hidden layer wider than params
                   dict(layout=network.table[:-1]), dict(layout=np.zeros(0, np.intp))]:
        with pytest.raises(ValueError):
            _core_epoch(**change)
    with pytest.raises(ValueError):
        _core.forward(network.table, params, X, np.empty((len(X), 4)))
    with pytest.raises(ValueError):
        _core.evaluate(Network((20, 16, 6), dtype="float64").table, params, X, y, "cross_entropy")
    with pytest.raises(ValueError):
        _core.evaluate(network.table, params, X, np.full_like(y, 5), "cross_entropy")
    with pytest.raises(ValueError):
        _core.loss_and_grad(network.table, params, X[:0], y[:0], "cross_entropy", np.empty_like(params))


SAMPLED_TESTS = [test_one_epoch_agrees_with_the_numpy_backend, test_every_activation_agrees_with_the_numpy_backend,
                 test_forward_and_evaluate_agree_with_the_numpy_backend]
# What the default sample promises for each: every product path with every combination of these.
PROMISED_PARAMETERS = ("dtype", "inputs", "loss", "optimizer", "activation")


def _every_case(test):
    """Each case of ``test`` on each product path, as {parameter: index}, from its parametrize marks."""
    sizes = {mark.args[0]: len(mark.args[1]) for mark in test.pytestmark if mark.name == "parametrize"}
    sizes["product_path"] = len(PRODUCT_PATHS)
    return [dict(zip(sizes, indices)) for indices in itertools.product(*(range(size) for size in sizes.values()))]


@pytest.mark.parametrize("test", SAMPLED_TESTS, ids=lambda test: test.__name__)
def test_by_default_every_path_runs_every_promised_combination_and_each_case_runs_once(test):
    assert any(mark.name == "one_product_path_per_case" for mark in test.pytestmark)
    cases = _every_case(test)
    run = [case for case in cases if runs_on_its_product_path(case, len(PRODUCT_PATHS))]
    promised = ["product_path"] + [name for name in PROMISED_PARAMETERS if name in cases[0]]
    assert {tuple(case[name] for name in promised) for case in run} == {
        tuple(case[name] for name in promised) for case in cases}
    without_path = [tuple(value for name, value in case.items() if name != "product_path") for case in run]
    assert len(set(without_path)) == len(without_path) == len(cases) // len(PRODUCT_PATHS)


@pytest.fixture
def splitting_every_step(monkeypatch):
    """Split even the contract's tiny steps: no least work per thread, chunks of any size."""
    monkeypatch.setattr(_core, "MIN_THREAD_WORK", 0)
    monkeypatch.setattr(_core, "MIN_CHUNK_ROWS", 1)


@pytest.mark.one_product_path_per_case
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n_threads", [2, 3])
@pytest.mark.parametrize("optimizer", sorted(KINDS))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_the_contract_holds_with_the_steps_split_over_threads(splitting_every_step, dtype, n_threads, optimizer,
                                                              activation):
    """Each step cut into runs of chunks on two or three threads, their gradients added in a fixed
    order: the epoch is still the reference's within the contract, with dropout drawn per row."""
    network = Network((20, 12, 9, 4), activation, dtype, dropout=0.2)
    rng = np.random.default_rng(5)
    params = random_params(network, 5)
    X, y = rng.integers(0, 256, (150, 20), dtype=np.uint8), rng.integers(0, 4, 150)
    compiled = CythonBackend(n_threads=n_threads)
    assert compiled.step_threads(network, 32) == n_threads
    (ref, *ref_state), (got, *got_state) = one_epoch_each(network, params, OPTIMIZERS[optimizer], X, y, 32, 3,
                                                          compiled=compiled)
    assert_same_epoch(dtype, ref, *ref_state, got, *got_state)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_split_full_batch_whose_last_chunk_is_short_agrees_with_the_numpy_backend(dtype, monkeypatch):
    """784 pixels in chunks of 64, 64 and 20 rows, split over two threads: the short chunk reads
    its pixels (or keeps them converted) like the others."""
    monkeypatch.setattr(_core, "NARROW_MAX_WIDTH", 24)
    monkeypatch.setattr(_core, "NARROW_FORWARD_MAX_WIDTH", 12)
    network, params, X, y = make_problem((784, 10, 10), dtype, "uint8", n_samples=148)
    compiled = CythonBackend(chunk_rows=64, n_threads=2)
    assert compiled.step_threads(network, 148) == 2
    (ref, *ref_state), (got, *got_state) = one_epoch_each(
        network, params, lambda: SGD(lr=0.1, momentum=0.5), X, y, None, 4, compiled=compiled)
    assert_same_epoch(dtype, ref, *ref_state, got, *got_state)
