"""Reliability of the compiled core and the input contract above it: a wrong argument never reaches a pointer.

Hypothesis calls the public paths into both backends (``MLP.predict_proba``, ``MLP.evaluate``,
``MLP.fit`` for one epoch, and the input contract followed by ``Backend.loss_and_grad``) with
random layer sizes, activations, sample counts (zero included) and X, y, batch size and
optimizer spoiled in one way each: dtypes (int, float16, object, bool, big-endian, the other
float), non-contiguous and negative-stride views, read-only arrays, wrong ndim and widths,
labels out of range or of the wrong kind, bad batch sizes, optimizer state made for another
model. Each call is either handled -- the compiled backend equal to the NumPy reference
(float64: 1e-10 relative, float32: 1e-4) -- or refused by the contract, for both backends
alike, with ``TypeError``/``ValueError`` whose message names the argument. The single kernel
wrappers (``gemm``, ``softmax_forward``, ``sgd_update`` ...) are fuzzed against NumPy; their
refusals come from Cython's buffer checks and need not name the argument. Direct calls into the
extension's entry points with malformed arguments, and a thread changing the labels while a
compiled epoch runs, must not crash the process (both run in a child process).

``test_the_core_tests_pass_under_a_bounds_checked_build`` (slow) rebuilds the extension with
``NNCORE_DEBUG_BUILD=1`` (bounds, wraparound and initialisation checks on, -O1) in a
temporary copy of the sources and runs tests/test_core_*.py and this module against it.
"""
import copy
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import nncore
from nncore import SGD, Adam, AdamW, RMSprop, TrainingDiverged, inputs, optim
from nncore.activations import ACTIVATIONS
from nncore.backends import compiled_core_status, get_backend, numpy_backend
from nncore.losses import get_loss, softmax_forward

AVAILABLE, DETAIL = compiled_core_status()
if AVAILABLE:
    from nncore import _core
ACTIVATION_BY_CODE = {activation.code: activation for activation in ACTIVATIONS.values()}
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"compiled core not built: {DETAIL}")

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPOSITORY = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("NNCORE_FUZZ_SCALE", "1"))
BACKEND_EXAMPLES = 600
KERNEL_EXAMPLES = 300
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


def fuzz_settings(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def child_environment():
    """The environment that makes a child process import the nncore under test."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(Path(nncore.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])))


# ---------------------------------------------------------------- building a call

def read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


def _pixels(values):
    return values.size == 0 or (values.min() >= 0 and values.max() <= 255)


def corrupt_X(X, how, dtype):
    """X spoiled in one way; returns (value, must_reject). The contract converts what it can."""
    n = X.shape[0]
    if how == "int32":
        wide = np.trunc(X).astype(np.int32) if X.dtype != np.uint8 else X.astype(np.int32)
        return wide, not _pixels(wide)  # integers are pixels 0..255
    if how == "float16":
        return X.astype(np.float16), False
    if how == "object":
        return X.astype(object), False
    if how == "bool":
        return X.astype(bool), True
    if how == "complex":
        return X.astype(np.complex64), True
    if how == "other_float":
        return X.astype(np.float64 if dtype == np.float32 else np.float32), False
    if how == "big_endian":
        return X.astype(np.dtype(dtype).newbyteorder(">")), False
    if how == "column_slice":
        return np.repeat(X, 2, axis=1)[:, ::2], False
    if how == "negative_stride":
        return X[::-1], False
    if how == "fortran":
        return np.asfortranarray(X), False
    if how == "read_only":
        return read_only(X), False
    if how == "one_more_feature":
        return np.concatenate([X, X[:, :1]], axis=1), True
    if how == "flat":
        return X.reshape(-1), True
    if how == "three_d":
        return X[None], True
    if how == "list":
        return X.tolist(), n == 0  # no rows: a 1-D empty list
    if how == "nan":
        spoiled = X.astype(dtype)
        spoiled[:1, :1] = np.nan
        return spoiled, n > 0
    raise AssertionError(how)


def corrupt_y(y, how, n_classes):
    if how == "float":
        return y.astype(np.float64), False  # integral floats are labels
    if how == "not_integral":
        return y + 0.5, len(y) > 0
    if how == "bool":
        return y.astype(bool), False
    if how == "object":
        return y.astype(object), True
    if how in ("too_big", "negative"):
        spoiled = y.astype(np.int64)
        spoiled[:1] = n_classes if how == "too_big" else -1
        return spoiled, len(y) > 0
    if how == "wraps_in_int32":
        wide = y.astype(np.int64)
        wide[:1] = 2**32  # 0 once cast to int32: must be refused before any cast
        return wide, len(y) > 0
    if how == "one_short":
        return y[:-1], bool(len(y))
    if how == "two_d":
        return y[:, None], True
    if how == "int64":
        return y.astype(np.int64), False
    if how == "uint8":
        return y.astype(np.uint8), False
    if how == "negative_stride":
        return y[::-1].copy()[::-1][::-1][::-1], False
    if how == "read_only":
        return read_only(y), False
    raise AssertionError(how)


BAD_BATCH_SIZES = {"zero": (0, True), "negative": (-3, True), "float": (2.5, True), "bool": (True, True),
                   "string": ("8", True), "none": (None, False), "huge": (10**9, False),
                   "numpy_int": (np.int64(3), False)}
ARGUMENT_NAMES = {"X": ("X",), "y": ("y", "label"), "batch_size": ("batch_size",), "optimizer": ("optimizer",)}
FUNCTIONS = ["predict_proba", "evaluate", "loss_and_grad", "fit"]


class Call:
    """A call that can build fresh arguments again (views and all) for each backend."""

    def __init__(self, draw):
        recorded = []

        def recording(strategy):
            recorded.append(draw(strategy))
            return recorded[-1]

        self.function, arguments, self.spoil, self.how, self.must_reject = _build_call(recording)
        self.description = repr(arguments)
        self._recorded = recorded

    def arguments(self):
        values = iter(self._recorded)
        return _build_call(lambda strategy: next(values))[1]

    def __repr__(self):
        return (f"Call({self.function}, spoil={self.spoil} ({self.how}), must_reject={self.must_reject}, "
                f"{self.description})")


@st.composite
def calls(draw):
    return Call(draw)


def _build_call(draw):
    """A call: the function, its arguments, and which one (if any) was spoiled."""
    function = draw(st.sampled_from(FUNCTIONS))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    sizes = draw(st.lists(st.integers(1, 7), min_size=2, max_size=4))
    activation = draw(st.sampled_from(list(ACTIVATIONS)))
    n = draw(st.integers(0, 23))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        X = rng.integers(0, 256, (n, sizes[0]), dtype=np.uint8)
    else:
        X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.int32)
    arguments = {"layer_sizes": sizes, "activation": activation, "dtype": dtype, "X": X, "y": y,
                 "batch_size": draw(st.sampled_from([None, 1, 2, 5, 64])),
                 "loss": draw(st.sampled_from(["cross_entropy", "mse"])),
                 "optimizer": draw(st.sampled_from(["sgd", "momentum", "adam"])), "seed": seed}
    spoil = draw(st.sampled_from([None, None, "X", "y", "batch_size", "optimizer"]))
    must_reject = False
    how = None
    if spoil == "X":
        how = draw(st.sampled_from(["int32", "float16", "object", "bool", "complex", "other_float", "big_endian",
                                    "column_slice", "negative_stride", "fortran", "read_only", "one_more_feature",
                                    "flat", "three_d", "list", "nan"]))
        arguments["X"], must_reject = corrupt_X(X, how, dtype)
    elif spoil == "y":
        how = draw(st.sampled_from(["float", "not_integral", "bool", "object", "too_big", "negative",
                                    "wraps_in_int32", "one_short", "two_d", "int64", "uint8", "negative_stride",
                                    "read_only"]))
        arguments["y"], must_reject = corrupt_y(y, how, sizes[-1])
        if function == "predict_proba":
            must_reject = False  # predict takes no labels
    elif spoil == "batch_size":
        how = draw(st.sampled_from(sorted(BAD_BATCH_SIZES)))
        arguments["batch_size"], must_reject = BAD_BATCH_SIZES[how]
        if function == "loss_and_grad":
            must_reject = False  # loss_and_grad takes no batch size
    elif spoil == "optimizer":
        how = draw(st.sampled_from(["wrong_dtype_state", "wrong_length_state", "not_an_optimizer"]))
        arguments["optimizer"] = how
        must_reject = function == "fit"
    if function != "predict_proba" and n == 0:
        must_reject, spoil = True, spoil or "X"  # training on, or scoring, no samples is undefined
    return function, arguments, spoil, how, must_reject


def make_optimizer(kind, n_params):
    if kind == "sgd":
        return SGD(lr=0.05)
    if kind == "momentum":
        return SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    if kind == "adam":
        return Adam(lr=0.01, weight_decay=1e-3)
    optimizer = Adam(lr=0.01)
    if kind == "wrong_dtype_state":
        optimizer._buffers = {"m": np.zeros(n_params, np.float16), "v": np.zeros(n_params, np.float16)}
    elif kind == "wrong_length_state":
        optimizer._buffers = {"m": np.zeros(n_params + 1), "v": np.zeros(n_params + 1)}
    else:
        return object()
    return optimizer


def run(backend, function, a):
    """Call ``function`` through the public path into ``backend``; return what is to be compared."""
    model = nncore.MLP(a["layer_sizes"], activation=a["activation"], dtype=a["dtype"], seed=0)
    model.params[:] = np.random.default_rng(a["seed"]).standard_normal(model.n_parameters) * 0.5
    if function == "predict_proba":
        return model.predict_proba(a["X"], batch_size=a["batch_size"], backend=backend)
    if function == "evaluate":
        return np.array(model.evaluate(a["X"], a["y"], a["loss"], batch_size=a["batch_size"], backend=backend))
    if function == "loss_and_grad":
        data = inputs.samples(a["X"], a["y"], model.network, "loss_and_grad", min_samples=1)
        value, grad = get_backend(backend).loss_and_grad(model.network, model.params, data.X, data.y,
                                                         get_loss(a["loss"]), weight_decay=0.01)
        return np.concatenate([[value], grad])
    optimizer = make_optimizer(a["optimizer"], model.n_parameters)
    try:
        history = model.fit(a["X"], a["y"], epochs=1, batch_size=a["batch_size"], optimizer=optimizer, loss=a["loss"],
                            seed=a["seed"], backend=backend)
        outcome = [history.loss[0], history.accuracy[0], 0]
    except TrainingDiverged as diverged:
        outcome = [0.0, 0.0, diverged.batch]
    return np.concatenate([outcome, model.params])


def assert_close(actual, expected, dtype):
    tolerance = TOLERANCE[np.dtype(dtype)]
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)


@fuzz_settings(BACKEND_EXAMPLES)
@given(calls())
def test_every_call_matches_the_reference_or_is_refused_naming_the_argument(call):
    function, spoil, how, must_reject = call.function, call.spoil, call.how, call.must_reject
    try:
        expected = run("numpy", function, call.arguments())
    except (TypeError, ValueError) as error:
        expected = error
    arguments = call.arguments()
    try:
        actual = run("cython", function, arguments)
    except (TypeError, ValueError) as error:
        assert spoil is not None, f"a valid call was refused: {error!r}"
        names = ARGUMENT_NAMES[spoil]
        if function != "predict_proba" and len(call.arguments()["y"]) == 0:
            names += ("X is empty",)  # refused for having no samples, before the spoiled argument mattered
        assert any(name in str(error) for name in names), \
            f"{function} refused {spoil} ({how}) without naming it: {error!r}"
        assert isinstance(expected, Exception), f"the NumPy backend accepted what the core refused: {error!r}"
        assert (type(expected), str(expected)) == (type(error), str(error))
        return
    assert not must_reject, f"{function} accepted {spoil} spoiled as {how}"
    assert not isinstance(expected, Exception), f"the core accepted what the NumPy backend refused: {expected!r}"
    assert_close(actual, expected, arguments["dtype"])


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_samples_are_handled_by_every_function(function, dtype):
    arguments = {"layer_sizes": [4, 3, 2], "activation": "relu", "dtype": dtype, "X": np.zeros((0, 4), np.uint8),
                 "y": np.zeros(0, np.int32), "batch_size": 8, "loss": "cross_entropy", "optimizer": "adam", "seed": 0}
    if function != "predict_proba":
        for backend in ("numpy", "cython"):
            with pytest.raises(ValueError, match="X is empty"):
                run(backend, function, arguments)
        return
    assert_close(run("cython", function, arguments), run("numpy", function, arguments), dtype)


def test_a_batch_larger_than_the_core_chunk_matches_the_reference():
    # Batches are processed in chunks of chunk_rows rows; lower it so the fuzz sizes cross it.
    from nncore.backends.cython_backend import CythonBackend
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        X = rng.integers(0, 256, (17, 5), dtype=np.uint8)
        y = rng.integers(0, 3, 17)
        for function in FUNCTIONS:
            arguments = {"layer_sizes": [5, 6, 3], "activation": "tanh", "dtype": dtype, "X": X, "y": y,
                         "batch_size": 7, "loss": "mse", "optimizer": "adam", "seed": 3}
            assert_close(run(CythonBackend(chunk_rows=3), function, arguments), run("numpy", function, arguments),
                         dtype)


ENTRY_POINT_PROBE = r'''
import itertools, sys, types
import numpy as np
from nncore import _core
from nncore.network import Network


def train_epoch(layout, params, X, y, order, batch_size, loss, optimizer, states, loss_total, progress, n_threads):
    """_core.train_epoch with every argument in a position, so the probe can replace each one."""
    return _core.train_epoch(layout, params, X, y, order, batch_size=batch_size, loss=loss, optimizer=optimizer,
                             states=states, loss_total=loss_total, progress=progress, n_threads=n_threads)


module = types.SimpleNamespace(train_epoch=train_epoch, forward=_core.forward, evaluate=_core.evaluate,
                               loss_and_grad=_core.loss_and_grad)

network = Network((5, 4, 3), "tanh", "float32")
params = np.ones(network.n_params, np.float32)
X, y = np.ones((6, 5), np.uint8), np.zeros(6, np.int32)
order = np.arange(6, dtype=np.intp)
state = np.zeros_like(params)
VALID = {
    "train_epoch": (network.table, params, X, y, order, 2, "cross_entropy",
                    {"kind": "adam", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, [state, state.copy()],
                    np.zeros(1), np.zeros(4, np.intp), 2),
    "forward": (network.table, params, X, np.zeros((6, 3), np.float32)),
    "evaluate": (network.table, params, X, y, "cross_entropy"),
    "loss_and_grad": (network.table, params, X, y, "mse", np.zeros_like(params)),
}
f32 = lambda *shape: np.ones(shape, np.float32)
WRONG = [None, 3, -1, 2**40, 2.5, "x", [1.0, 2.0], (), f32(), f32(4), f32(3, 1), f32(1, 2, 3), f32(0), f32(0, 5),
         np.ones((6, 5), np.float64), np.ones((6, 5), np.int64), np.ones((2, 3), object), np.full(6, 99, np.int32),
         np.full(6, -5, np.intp), np.full(13, 10**12, np.intp), network.table[:-1], network.table * 7,
         -network.table, np.ones((7, 5), np.uint8), np.ones((6, 5), np.uint8)[:, ::-1], np.zeros(0, np.intp)]
'''


def test_no_entry_point_of_the_extension_crashes_on_an_argument_of_the_wrong_kind_shape_or_range():
    outcomes = probe_for_crashes(ENTRY_POINT_PROBE)
    assert set(outcomes) <= {"accepted", "TypeError", "ValueError", "OverflowError"}, outcomes


LABELS_CHANGED_MEANWHILE = r'''
import threading, sys
import numpy as np
import nncore

rng = np.random.default_rng(0)
X = rng.integers(0, 256, (20000, 64), dtype=np.uint8)
y = np.ascontiguousarray(rng.integers(0, 10, 20000), dtype=np.int32)  # passed on without a copy
spoiling, stop = threading.Event(), threading.Event()


def spoil():
    # Bad labels for a moment, then good ones again: the checks before the epoch may see either.
    while not stop.is_set():
        if spoiling.is_set():
            y[::7] = 2**30
            y[::7] = 3


class StartSpoiling(nncore.Callback):
    def on_epoch_end(self, epoch, logs=None):  # after the first epoch: the next ones run while y changes
        spoiling.set()


threading.Thread(target=spoil, daemon=True).start()
outcomes = {"trained": 0, "refused": 0}
for attempt in range(12):
    spoiling.clear()
    y[::7] = 3
    model = nncore.MLP([64, 32, 10], seed=attempt)
    try:
        model.fit(X, y, epochs=3, batch_size=16, callbacks=[StartSpoiling()], backend="cython", n_threads=1)
        assert np.all(np.isfinite(model.params))
        outcomes["trained"] += 1
    except ValueError as error:
        assert "label" in str(error), error
        outcomes["refused"] += 1
stop.set()
print(outcomes)
'''


def test_labels_changed_by_another_thread_during_a_compiled_epoch_never_crash_or_write_out_of_bounds():
    """The core copies the labels (and the order and layout) it indexes with, and checks the copy:
    another thread writing 2**30 into the caller's labels meanwhile meets a refusal or a copy it
    cannot reach, never a read or write 4 GB past the logits."""
    done = subprocess.run([sys.executable, "-c", LABELS_CHANGED_MEANWHILE], env=child_environment(),
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, f"exit status {done.returncode} (negative: killed by that signal): " \
                                 f"{done.stderr[-3000:]}"
    outcomes = eval(done.stdout.strip().splitlines()[-1])
    assert sum(outcomes.values()) == 12, outcomes


# ---------------------------------------------------------------- the single kernels

def float_array(draw, shape, dtype, allow_views=True):
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    array = rng.standard_normal(shape).astype(dtype)
    layout = draw(st.sampled_from(["c", "c", "c", "fortran", "strided", "negative", "read_only"])
                  if allow_views else st.just("c"))
    if layout == "fortran":
        return np.asfortranarray(array)
    if layout == "strided" and array.ndim:
        return np.repeat(array, 2, axis=-1)[..., ::2]
    if layout == "negative" and array.ndim:
        return array[::-1]
    if layout == "read_only":
        return read_only(array)
    return array


DTYPES = [np.float32, np.float64, np.float16, np.int32, np.bool_, object]


#: The optimizers the kernel fuzz updates with, each two steps in (Adam's bias correction counts).
FUZZED_OPTIMIZERS = [SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), Adam(lr=0.01, weight_decay=0.01),
                     AdamW(lr=0.01), RMSprop(lr=0.01, momentum=0.5, centered=True)]
for _optimizer in FUZZED_OPTIMIZERS:
    _optimizer.step = 2


@st.composite
def kernel_calls(draw):
    kernel = draw(st.sampled_from(["gemm", "bias_activation_forward", "softmax_forward", "activation_backward",
                                   "bias_backward", "gather_scale", "optimizer_update",
                                   "cross_entropy_forward_backward", "mse_forward_backward"]))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    other = draw(st.sampled_from([dtype] * 6 + DTYPES))  # most arguments agree; some do not
    m, n, k = (draw(st.integers(0, 6)) for _ in range(3))
    mismatch = draw(st.sampled_from([0] * 5 + [1, -1]))
    arrays = lambda shape, d=dtype: float_array(draw, shape, d)
    if kernel == "gemm":
        trans_a, trans_b = draw(st.booleans()), draw(st.booleans())
        A = arrays((k, m) if trans_a else (m, k))
        B = arrays((n, k + max(0, mismatch)) if trans_b else (k + max(0, mismatch), n), other)
        C = arrays((m, n))
        return kernel, (A, B, C), {"alpha": 1.5, "beta": 0.5, "trans_a": trans_a, "trans_b": trans_b}
    if kernel == "bias_activation_forward":
        activation = draw(st.sampled_from(list(ACTIVATIONS.values())))
        return kernel, (arrays((m, n)), arrays((max(0, n + mismatch),), other), activation.code), {}
    if kernel == "softmax_forward":
        return kernel, (arrays((m, n + 1), other),), {}
    if kernel == "activation_backward":
        activation = draw(st.sampled_from(list(ACTIVATIONS.values())))
        return kernel, (arrays((m, n)), arrays((m, max(0, n + mismatch)), other), arrays((n,)), activation.code), {}
    if kernel == "bias_backward":
        return kernel, (arrays((max(0, n + mismatch),), other), arrays((m, n))), {}
    if kernel == "gather_scale":
        X = draw(st.sampled_from(["uint8", "float"]))
        rng = np.random.default_rng(m * 31 + n)
        source = rng.integers(0, 256, (m + 1, n), dtype=np.uint8) if X == "uint8" else arrays((m + 1, n), other)
        indices = np.array(draw(st.lists(st.integers(-2, m + 2), max_size=6)), dtype=np.intp)
        return kernel, (source, indices, arrays((len(indices), n + max(0, mismatch)))), {}
    if kernel == "optimizer_update":
        optimizer = draw(st.sampled_from(FUZZED_OPTIMIZERS))
        states = [np.abs(arrays((n + (max(0, mismatch) if i == 0 else 0),))) for i in range(len(optimizer.buffer_names))]
        return kernel, (optimizer.core_config(), arrays((n,)), arrays((n,), other), states), {}
    logits = arrays((m, n + 1), other)
    y = np.array(draw(st.lists(st.integers(-1, n + 1), min_size=m, max_size=m)), dtype=np.int64)
    return kernel, (logits, y[:max(0, m + mismatch)], float(max(m, 1))), {}


def reference_kernel(kernel, args, options):
    """NumPy's answer for a kernel call on contiguous copies (in-place outputs returned)."""
    a = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in args]
    if kernel == "gemm":
        A, B, C = a
        opA = A.T if options["trans_a"] else A
        opB = B.T if options["trans_b"] else B
        return [options["alpha"] * (opA @ opB) + options["beta"] * C]
    if kernel == "bias_activation_forward":
        return [numpy_backend.bias_activation_forward(a[0], a[1], ACTIVATION_BY_CODE[a[2]])[0]]
    if kernel == "softmax_forward":
        return [softmax_forward(a[0])]
    if kernel == "activation_backward":
        dZ = numpy_backend.activation_backward(a[0], a[1], None, ACTIVATION_BY_CODE[a[3]])
        return [dZ, a[2] + dZ.sum(axis=0)]
    if kernel == "bias_backward":
        return [a[0] + a[1].sum(axis=0), a[1]]
    if kernel == "gather_scale":
        X, indices, out = a
        if len(indices) and (indices.min() < 0 or indices.max() >= len(X)):
            raise IndexError("index out of range")
        return [numpy_backend.gather_scale(X, indices, out.dtype)]
    if kernel == "optimizer_update":
        config, params, grad, states = a[0], a[1], a[2], [np.array(state) for state in a[3]]
        optimizer = copy.deepcopy(next(o for o in FUZZED_OPTIMIZERS if o.core_config() == config))
        if len({len(params), len(grad), *(len(state) for state in states)}) != 1:
            raise ValueError("the flat buffers differ in length")
        optimizer._buffers = dict(zip(optimizer.buffer_names, states))
        optimizer.step = config["steps_taken"] + 1
        optimizer.numpy_update(params, grad)
        return [params, *states]
    losses, dlogits, _ = get_loss("cross_entropy" if kernel == "cross_entropy_forward_backward" else "mse"
                                  ).forward_backward(a[0], a[1], a[2])
    return [losses, dlogits]


@fuzz_settings(KERNEL_EXAMPLES)
@given(kernel_calls())
def test_every_kernel_wrapper_matches_numpy_or_refuses_with_type_or_value_error(call):
    kernel, args, options = call
    try:
        expected = reference_kernel(kernel, args, options)
    except Exception:  # noqa: BLE001 -- NumPy may fail in many ways on nonsense input
        expected = None
    try:
        actual = call_kernel_keeping_layout(kernel, args, options)
    except (TypeError, ValueError) as error:
        assert str(error), "an empty error message"
        return
    except IndexError as error:
        # Only gather_scale's row indices may be out of range; it says which row.
        assert kernel == "gather_scale" and "out of range" in str(error), repr(error)
        return
    # Accepted: every array argument must have been something the kernel may take, and the
    # result must be NumPy's.
    assert expected is not None, f"{kernel} accepted arguments NumPy cannot compute on"
    out_dtype = np.result_type(*[x.dtype for x in args if isinstance(x, np.ndarray) and x.dtype.kind == "f"])
    tolerance = 1e-4 if np.float32 in {x.dtype.type for x in args if isinstance(x, np.ndarray)} else 1e-10
    for got, want in zip(actual, expected):
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64),
                                   rtol=tolerance, atol=tolerance, err_msg=f"{kernel} {out_dtype}")
    for x in args:
        if isinstance(x, np.ndarray) and x.size and x.dtype.kind == "f":
            assert x.dtype in (np.float32, np.float64), f"{kernel} accepted a {x.dtype} array"


def call_kernel_keeping_layout(kernel, args, options):
    """Call the kernel on fresh copies that keep each argument's dtype, layout and writeability."""
    def fresh(x):
        if not isinstance(x, np.ndarray):
            return x
        if x.flags.c_contiguous and x.flags.writeable:
            return x.copy()
        return x  # views and read-only arrays are passed as they are (the kernel must refuse or cope)
    copies = [fresh(x) for x in args]
    from nncore import _testing
    function = getattr(_testing, kernel)
    result = function(*copies, **options)
    outputs = {"gemm": [2], "bias_activation_forward": [0], "softmax_forward": [0], "activation_backward": [0, 2],
               "bias_backward": [0, 1], "gather_scale": [2]}
    if kernel == "optimizer_update":
        return [copies[1], *copies[3]]
    if kernel in outputs:
        return [copies[i] for i in outputs[kernel]]
    return [result[0], result[1]]


# ---------------------------------------------------------------- the bounds-checked build

def test_this_build_says_whether_it_checks_bounds():
    from nncore import _core
    assert isinstance(_core.DEBUG_BUILD, bool)
    if os.environ.get("NNCORE_EXPECT_DEBUG_BUILD"):
        assert _core.DEBUG_BUILD, f"{_core.__file__} is not the bounds-checked build"


@pytest.mark.slow
def test_the_core_tests_pass_under_a_bounds_checked_build(tmp_path):
    try:
        import Cython  # noqa: F401
    except ImportError:
        pytest.skip("Cython is not importable: it is a build dependency (pip install Cython) for the debug build")
    import scipy  # noqa: F401  -- cython_blas.pxd must be there at build time
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        if (REPOSITORY / name).exists():
            shutil.copy2(REPOSITORY / name, source / name)
    shutil.copytree(REPOSITORY / "src_c", source / "src_c", ignore=shutil.ignore_patterns("_*.c", "*.html"))
    shutil.copytree(REPOSITORY / "nncore", source / "nncore", ignore=shutil.ignore_patterns("*.so", "*.pyd",
                                                                                            "__pycache__"))
    shutil.copytree(REPOSITORY / "tests", source / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    environment = dict(os.environ, NNCORE_DEBUG_BUILD="1")
    began = time.monotonic()
    built = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=source, env=environment,
                           capture_output=True, text=True, check=False, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    build_seconds = time.monotonic() - began

    environment = dict(os.environ, PYTHONPATH=str(source), NNCORE_EXPECT_DEBUG_BUILD="1", NNCORE_FUZZ_SCALE="0.5")
    environment.pop("NNCORE_DEBUG_BUILD", None)
    probe = subprocess.run([sys.executable, "-c", "import nncore._core as c; print(c.__file__, c.DEBUG_BUILD)"],
                           cwd=source, env=environment, capture_output=True, text=True, check=False, timeout=120)
    assert probe.returncode == 0, probe.stderr
    path, debug = probe.stdout.split()
    assert Path(path).resolve().is_relative_to(source.resolve()) and debug == "True", probe.stdout

    core_tests = sorted(str(p.relative_to(source)) for p in (source / "tests").glob("test_core_*.py"))
    selected = core_tests + ["tests/test_reliability_kernels.py", "tests/test_model.py"]
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not slow",
                             *selected], cwd=source, env=environment, capture_output=True, text=True, check=False,
                            timeout=900)
    assert tested.returncode == 0, tested.stdout[-6000:] + tested.stderr[-3000:]
    assert " passed" in tested.stdout
    print(f"debug build: {build_seconds:.0f} s to build; {tested.stdout.strip().splitlines()[-1]}")


# ---------------------------------------------------------------- crash probe

KERNEL_PROBE = r'''
import itertools, sys
import numpy as np
from nncore import _testing as module

f32 = lambda *shape: np.ones(shape, np.float32)
VALID = {
    "gemm": (f32(2, 3), f32(3, 4), f32(2, 4)),
    "bias_activation_forward": (f32(2, 3), f32(3), 2),
    "softmax_forward": (f32(2, 3),),
    "activation_backward": (f32(2, 3), f32(2, 3), f32(3), 1),
    "bias_backward": (f32(3), f32(2, 3)),
    "gather_scale": (np.ones((4, 3), np.uint8), np.zeros(2, np.intp), f32(2, 3)),
    "optimizer_update": ({"kind": "rmsprop", "lr": 0.1, "alpha": 0.9, "eps": 1e-8, "momentum": 0.5, "centered": 1,
                          "steps_taken": 0}, f32(5), f32(5), [f32(5), f32(5), f32(5)]),
    "cross_entropy_forward_backward": (f32(2, 3), np.zeros(2, np.int64), 2.0),
    "mse_forward_backward": (f32(2, 3), np.zeros(2, np.int64), 2.0),
    "narrow_pack": (f32(5, 3),),
    "narrow_forward": (f32(2, 3), f32(2, 5), f32(5, 3), f32(3), 1.0, "relu"),
    "narrow_forward_u8": (f32(2, 3), np.ones((4, 5), np.uint8), np.zeros(2, np.intp), f32(5, 3)),
    "narrow_weight_grad": (f32(5, 3), f32(2, 5), f32(2, 3)),
    "narrow_weight_grad_u8": (f32(5, 3), np.ones((4, 5), np.uint8), np.zeros(2, np.intp), f32(2, 3)),
    "narrow_input_grad": (f32(2, 5), f32(2, 3), f32(5, 3), f32(2, 5), "tanh", f32(5)),
}
# Every argument in turn replaced by something of the wrong kind or rank.
WRONG = [None, 3, 2.5, "x", [1.0, 2.0], np.float32(1.0), f32(), f32(4), f32(3, 1), f32(1, 2, 3), f32(0), f32(0, 3),
         np.ones((2, 3), np.uint8), np.ones((4, 3), np.float64), np.ones((2, 3), np.int64),
         np.ones((2, 3), object), np.ones((3,), np.intp) * 99]
'''


def test_no_kernel_wrapper_crashes_on_an_argument_of_the_wrong_kind_or_rank():
    outcomes = probe_for_crashes(KERNEL_PROBE)
    # Clean refusals only. Known: Cython typed-memoryview arguments accept None, which some
    # wrappers then refuse with AttributeError; a NumPy scalar gives BufferError (read-only).
    assert set(outcomes) <= {"accepted", "TypeError", "ValueError", "IndexError", "AttributeError", "BufferError"}, \
        outcomes
    print(outcomes)


# Calls every function of VALID with each argument in turn replaced by each of WRONG; prints
# the count of each outcome, and any exception that is not a clean refusal on stderr.
PROBE_LOOP = r'''
outcomes = {}
for name, args in VALID.items():
    function = getattr(module, name)
    function(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])  # the valid call works
    for position, wrong in itertools.product(range(len(args)), WRONG):
        call = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        call[position] = wrong.copy() if isinstance(wrong, np.ndarray) else wrong
        try:
            function(*call)
            outcome = "accepted"
        except Exception as error:
            outcome = type(error).__name__
            if outcome not in ("TypeError", "ValueError", "OverflowError"):
                print("odd:", name, position, type(wrong).__name__, getattr(wrong, "shape", ""), repr(error),
                      file=sys.stderr)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
print(dict(sorted(outcomes.items())))
'''


def probe_for_crashes(setup):
    """Run ``setup`` + PROBE_LOOP in a child process: a crash (segfault) must fail the test, not end
    the test run. Returns the outcome counts."""
    done = subprocess.run([sys.executable, "-c", setup + PROBE_LOOP], env=child_environment(), capture_output=True,
                          text=True, check=False, timeout=300)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-3000:]}"
    return eval(done.stdout.strip().splitlines()[-1])
