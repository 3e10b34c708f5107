"""Reliability of the compiled core's Python-facing wrappers: a wrong argument never reaches a pointer.

Hypothesis calls ``cython_backend.forward / evaluate / loss_and_grad / train_epoch`` with
random layer sizes, sample counts (zero included), dtypes (int, float16, object, bool,
big-endian, the other float), non-contiguous and negative-stride views, read-only arrays,
wrong ndim, mismatched layer sizes, bad labels and batch sizes. Each call is either handled
correctly -- equal to the NumPy reference backend (float64: 1e-10 relative, float32: 1e-4) --
or refused with ``TypeError``/``ValueError`` whose message names the argument. The single
kernel wrappers (``gemm``, ``softmax``, ``sgd_update`` ...) are fuzzed the same way against
NumPy; their refusals come from Cython's buffer checks and need not name the argument.

``test_the_core_tests_pass_under_a_bounds_checked_build`` (slow) rebuilds the extension with
``NNCORE_DEBUG_BUILD=1`` (bounds, wraparound and initialisation checks on, -O1) in a
temporary copy of the sources and runs tests/test_core_*.py and this module against it.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from nncore import SGD, Adam
from nncore.backends import compiled_core_status, get_backend
from nncore.backends._common import count_parameters

AVAILABLE, DETAIL = compiled_core_status()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"compiled core not built: {DETAIL}")

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPOSITORY = Path(__file__).resolve().parent.parent
SCALE = float(os.environ.get("NNCORE_FUZZ_SCALE", "1"))
BACKEND_EXAMPLES = 600
KERNEL_EXAMPLES = 300
TOLERANCE = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}

numpy_backend = get_backend("numpy")
if AVAILABLE:
    cython_backend = get_backend("cython")


def fuzz_settings(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- building a call

def read_only(array):
    array = array.copy()
    array.flags.writeable = False
    return array


def corrupt_X(X, how, dtype):
    """X spoiled in one way; returns (value, must_reject)."""
    n = X.shape[0]
    if how == "int32":
        return X.astype(np.int32), True
    if how == "float16":
        return X.astype(np.float16), True
    if how == "object":
        return X.astype(object), True
    if how == "bool":
        return X.astype(bool), True
    if how == "other_float":
        return X.astype(np.float64 if dtype == np.float32 else np.float32), True
    if how == "big_endian":
        return X.astype(np.dtype(dtype).newbyteorder(">")), True
    if how == "column_slice":
        wide = np.repeat(X, 2, axis=1)
        return wide[:, ::2], X.shape[1] > 1 and n > 0
    if how == "negative_stride":
        return X[::-1], n > 1
    if how == "fortran":
        return np.asfortranarray(X), n > 1 and X.shape[1] > 1
    if how == "read_only":
        return read_only(X), False
    if how == "one_more_feature":
        return np.concatenate([X, X[:, :1]], axis=1), True
    if how == "flat":
        return X.reshape(-1), True
    if how == "three_d":
        return X[None], True
    if how == "list":
        return X.tolist(), True
    raise AssertionError(how)


def corrupt_params(params, how):
    if how == "float16":
        return params.astype(np.float16), True
    if how == "int64":
        return params.astype(np.int64), True
    if how == "one_short":
        return params[:-1].copy(), True
    if how == "one_long":
        return np.append(params, params[:1]), True
    if how == "strided":
        return np.repeat(params, 2)[::2], len(params) > 1
    if how == "negative_stride":
        return params[::-1], len(params) > 1
    if how == "two_d":
        return params[None], True
    if how == "read_only":
        return read_only(params), None  # refused only by train_epoch, which updates it
    if how == "list":
        return params.tolist(), True
    raise AssertionError(how)


def corrupt_y(y, how, n_classes):
    if how == "float":
        return y.astype(np.float64), True
    if how == "bool":
        return y.astype(bool), True
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
        return y[:, None], len(y) != 1
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
BAD_LAYER_SIZES = ["wider_hidden", "zero_width", "extra_layer", "non_integer", "string", "fewer_outputs"]


def corrupt_layer_sizes(sizes, how):
    sizes = list(sizes)
    if how == "wider_hidden":
        return sizes[:-1] + [sizes[-1] + 1], True
    if how == "fewer_outputs":
        return sizes[:-1] + [max(1, sizes[-1] - 1)], sizes[-1] > 1
    if how == "zero_width":
        return sizes[:-1] + [0], True
    if how == "extra_layer":
        return sizes + [2], True
    if how == "non_integer":
        return sizes[:-1] + [sizes[-1] + 0.5], True
    if how == "string":
        return "784,10", True
    raise AssertionError(how)


ARGUMENT_NAMES = {"X": ("X",), "params": ("params",), "y": ("y", "label"), "batch_size": ("batch_size",),
                  "layer_sizes": ("layer_sizes", "params"), "optimizer": ("optimizer",)}


class Call:
    """A backend call that can build fresh arguments again (views and all) for each backend."""

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
    """A backend call: the function, its arguments, and which one (if any) was spoiled."""
    function = draw(st.sampled_from(["forward", "evaluate", "loss_and_grad", "train_epoch"]))
    dtype = np.dtype(draw(st.sampled_from([np.float32, np.float64])))
    sizes = draw(st.lists(st.integers(1, 7), min_size=2, max_size=4))
    n = draw(st.integers(0, 23))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    params = (rng.standard_normal(count_parameters(sizes)) * 0.5).astype(dtype)
    if draw(st.booleans()):
        X = rng.integers(0, 256, (n, sizes[0]), dtype=np.uint8)
    else:
        X = rng.standard_normal((n, sizes[0])).astype(dtype)
    y = rng.integers(0, sizes[-1], n).astype(np.int32)
    arguments = {"params": params, "layer_sizes": sizes, "X": X, "y": y,
                 "batch_size": draw(st.sampled_from([None, 1, 2, 5, 64])),
                 "loss": draw(st.sampled_from(["cross_entropy", "mse"])),
                 "optimizer": draw(st.sampled_from(["sgd", "momentum", "adam"])), "seed": seed}
    spoil = draw(st.sampled_from([None, None, "X", "params", "y", "batch_size", "layer_sizes", "optimizer"]))
    must_reject = False
    how = None
    if spoil == "X":
        how = draw(st.sampled_from(["int32", "float16", "object", "bool", "other_float", "big_endian", "column_slice",
                                    "negative_stride", "fortran", "read_only", "one_more_feature", "flat",
                                    "three_d", "list"]))
        if how in ("other_float", "big_endian") and X.dtype == np.uint8:
            arguments["X"], must_reject = corrupt_X(X.astype(dtype), how, dtype)
        else:
            arguments["X"], must_reject = corrupt_X(X, how, dtype)
    elif spoil == "params":
        how = draw(st.sampled_from(["float16", "int64", "one_short", "one_long", "strided", "negative_stride",
                                    "two_d", "read_only", "list"]))
        arguments["params"], must_reject = corrupt_params(params, how)
        if must_reject is None:
            must_reject = function == "train_epoch"
    elif spoil == "y":
        how = draw(st.sampled_from(["float", "bool", "object", "too_big", "negative", "wraps_in_int32", "one_short",
                                    "two_d", "int64", "uint8", "negative_stride", "read_only"]))
        arguments["y"], must_reject = corrupt_y(y, how, sizes[-1])
        if function == "forward":
            must_reject = False  # forward takes no labels
    elif spoil == "batch_size":
        how = draw(st.sampled_from(sorted(BAD_BATCH_SIZES)))
        arguments["batch_size"], must_reject = BAD_BATCH_SIZES[how]
        if function == "loss_and_grad":
            must_reject = False  # loss_and_grad takes no batch size
    elif spoil == "layer_sizes":
        how = draw(st.sampled_from(BAD_LAYER_SIZES))
        arguments["layer_sizes"], must_reject = corrupt_layer_sizes(sizes, how)
    elif spoil == "optimizer":
        how = draw(st.sampled_from(["wrong_dtype_state", "wrong_length_state", "not_an_optimizer"]))
        arguments["optimizer"] = how
        must_reject = function == "train_epoch"
    if function == "loss_and_grad" and n == 0:
        must_reject, spoil = True, spoil or "X"  # the loss of no samples is undefined
    return function, arguments, spoil, how, must_reject


def make_optimizer(kind, params):
    if kind == "sgd":
        return SGD(lr=0.05)
    if kind == "momentum":
        return SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)
    if kind == "adam":
        return Adam(lr=0.01, weight_decay=1e-3)
    optimizer = Adam(lr=0.01)
    n = np.asarray(params).size
    if kind == "wrong_dtype_state":
        optimizer._buffers = {"m": np.zeros(n, np.float16), "v": np.zeros(n, np.float16)}
    elif kind == "wrong_length_state":
        optimizer._buffers = {"m": np.zeros(n + 1), "v": np.zeros(n + 1)}
    else:
        return object()
    return optimizer


def run(backend, function, a):
    """Call ``function`` of ``backend``; return what is to be compared."""
    if function == "forward":
        return backend.forward(a["params"], a["layer_sizes"], a["X"], a["batch_size"])
    if function == "evaluate":
        return np.array(backend.evaluate(a["params"], a["layer_sizes"], a["X"], a["y"], a["loss"], a["batch_size"]))
    if function == "loss_and_grad":
        value, grad = backend.loss_and_grad(a["params"], a["layer_sizes"], a["X"], a["y"], a["loss"], weight_decay=0.01)
        return np.concatenate([[value], grad])
    optimizer = make_optimizer(a["optimizer"], a["params"])
    result = backend.train_epoch(a["params"], a["layer_sizes"], optimizer, a["X"], a["y"], a["batch_size"],
                                 a["seed"], a["loss"])
    return np.concatenate([[result.loss_sum, result.n_correct, result.n_samples, result.n_batches,
                            result.diverged_batch or 0], np.asarray(a["params"]).ravel()])


def assert_close(actual, expected, dtype):
    tolerance = TOLERANCE[np.dtype(dtype)]
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=tolerance, atol=tolerance * scale)


@fuzz_settings(BACKEND_EXAMPLES)
@given(calls())
def test_every_backend_call_matches_the_reference_or_is_refused_naming_the_argument(call):
    function, spoil, how, must_reject = call.function, call.spoil, call.how, call.must_reject
    try:
        expected = run(numpy_backend, function, call.arguments())
    except (TypeError, ValueError) as error:
        expected = error
    arguments = call.arguments()
    try:
        actual = run(cython_backend, function, arguments)
    except (TypeError, ValueError) as error:
        if function == "loss_and_grad" and len(arguments["y"]) == 0 and "X is empty" in str(error):
            return  # refused for having no samples, before the spoiled argument mattered
        assert spoil is not None, f"a valid call was refused: {error!r}"
        names = ARGUMENT_NAMES[spoil]
        assert any(name in str(error) for name in names), \
            f"{function} refused {spoil} ({how}) without naming it: {error!r}"
        assert isinstance(expected, Exception), f"the NumPy backend accepted what the core refused: {error!r}"
        assert type(expected) is type(error), (expected, error)
        return
    assert not must_reject, f"{function} accepted {spoil} spoiled as {how}"
    assert not isinstance(expected, Exception), f"the core accepted what the NumPy backend refused: {expected!r}"
    dtype = np.asarray(arguments["params"]).dtype
    assert_close(actual, expected, dtype if dtype in TOLERANCE else np.float32)


@pytest.mark.parametrize("function", ["forward", "evaluate", "loss_and_grad", "train_epoch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_samples_are_handled_by_every_function(function, dtype):
    sizes = [4, 3, 2]
    params = np.ones(count_parameters(sizes), dtype)
    X, y = np.zeros((0, 4), np.uint8), np.zeros(0, np.int32)
    arguments = {"params": params, "layer_sizes": sizes, "X": X, "y": y, "batch_size": 8, "loss": "cross_entropy",
                 "optimizer": "adam", "seed": 0}
    if function == "loss_and_grad":
        with pytest.raises(ValueError, match="X is empty"):
            run(cython_backend, function, arguments)
        return
    assert_close(run(cython_backend, function, dict(arguments, params=params.copy())),
                 run(numpy_backend, function, dict(arguments, params=params.copy())), dtype)


def test_a_batch_larger_than_the_core_chunk_matches_the_reference(monkeypatch):
    # Batches are processed in chunks of CHUNK_ROWS rows; lower it so the fuzz sizes cross it.
    monkeypatch.setattr(cython_backend, "CHUNK_ROWS", 3)
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        sizes = [5, 6, 3]
        params = rng.standard_normal(count_parameters(sizes)).astype(dtype)
        X = rng.integers(0, 256, (17, 5), dtype=np.uint8)
        y = rng.integers(0, 3, 17)
        for function in ("forward", "evaluate", "loss_and_grad", "train_epoch"):
            arguments = {"params": params, "layer_sizes": sizes, "X": X, "y": y, "batch_size": 7,
                         "loss": "mse", "optimizer": "adam", "seed": 3}
            assert_close(run(cython_backend, function, dict(arguments, params=params.copy())),
                 run(numpy_backend, function, dict(arguments, params=params.copy())), dtype)


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


@st.composite
def kernel_calls(draw):
    kernel = draw(st.sampled_from(["gemm", "bias_relu_forward", "softmax", "relu_backward", "bias_grad",
                                   "gather_scale", "sgd_update", "adam_update", "softmax_cross_entropy", "mse"]))
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
    if kernel in ("bias_relu_forward",):
        return kernel, (arrays((m, n)), arrays((max(0, n + mismatch),), other)), {}
    if kernel == "softmax":
        return kernel, (arrays((m, n + 1), other),), {}
    if kernel == "relu_backward":
        return kernel, (arrays((m, n)), arrays((m, max(0, n + mismatch)), other), arrays((n,))), {}
    if kernel == "bias_grad":
        return kernel, (arrays((m, n)), arrays((max(0, n + mismatch),), other)), {}
    if kernel == "gather_scale":
        X = draw(st.sampled_from(["uint8", "float"]))
        rng = np.random.default_rng(m * 31 + n)
        source = rng.integers(0, 256, (m + 1, n), dtype=np.uint8) if X == "uint8" else arrays((m + 1, n), other)
        indices = np.array(draw(st.lists(st.integers(-2, m + 2), max_size=6)), dtype=np.intp)
        return kernel, (source, indices, arrays((len(indices), n + max(0, mismatch)))), {}
    if kernel == "sgd_update":
        return kernel, (arrays((n,)), arrays((n + max(0, mismatch),), other), arrays((n,))), \
            {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}
    if kernel == "adam_update":
        return kernel, (arrays((n,)), arrays((n,), other), arrays((n + max(0, mismatch),)), np.abs(arrays((n,))), 3), \
            {"lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01}
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
    if kernel == "bias_relu_forward":
        return [numpy_backend.bias_relu_forward(a[0], a[1])]
    if kernel == "softmax":
        return [numpy_backend.softmax(a[0])]
    if kernel == "relu_backward":
        dZ = numpy_backend.relu_backward(a[0], a[1])
        return [dZ, a[2] + dZ.sum(axis=0)]
    if kernel == "bias_grad":
        return [a[0], a[1] + a[0].sum(axis=0)]
    if kernel == "gather_scale":
        X, indices, out = a
        if len(indices) and (indices.min() < 0 or indices.max() >= len(X)):
            raise IndexError("index out of range")
        return [numpy_backend.gather_scale(X, indices, out.dtype)]
    if kernel == "sgd_update":
        numpy_backend.sgd_update(a[0], a[1], a[2], **options)
        return [a[0], a[2]]
    if kernel == "adam_update":
        numpy_backend.adam_update(a[0], a[1], a[2], a[3], a[4], options["lr"], options["beta1"], options["beta2"],
                                  options["eps"], options["weight_decay"])
        return [a[0], a[2], a[3]]
    losses, dlogits, _ = numpy_backend.LOSS_KERNELS["cross_entropy" if kernel == "softmax_cross_entropy" else "mse"](
        a[0], a[1], a[2])
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
    outputs = {"gemm": [2], "bias_relu_forward": [0], "softmax": [0], "relu_backward": [0, 2], "bias_grad": [0, 1],
               "gather_scale": [2], "sgd_update": [0, 2], "adam_update": [0, 2, 3]}
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
    # Cython's generated C (_core.c, ...) is left behind; the hand-written C kernels are sources.
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

CRASH_PROBE = r'''
import itertools, sys
import numpy as np
from nncore import _testing

f32 = lambda *shape: np.ones(shape, np.float32)
VALID = {
    "gemm": (f32(2, 3), f32(3, 4), f32(2, 4)),
    "bias_relu_forward": (f32(2, 3), f32(3)),
    "softmax": (f32(2, 3),),
    "relu_backward": (f32(2, 3), f32(2, 3), f32(3)),
    "bias_grad": (f32(2, 3), f32(3)),
    "gather_scale": (np.ones((4, 3), np.uint8), np.zeros(2, np.intp), f32(2, 3)),
    "sgd_update": (f32(5), f32(5), f32(5), 0.1, 0.9, False, 0.0),
    "adam_update": (f32(5), f32(5), f32(5), f32(5), 1, 0.1, 0.9, 0.999, 1e-8, 0.0),
    "softmax_cross_entropy": (f32(2, 3), np.zeros(2, np.int64), 2.0),
    "mse": (f32(2, 3), np.zeros(2, np.int64), 2.0),
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
outcomes = {}
for name, args in VALID.items():
    function = getattr(_testing, name)
    function(*[a.copy() if isinstance(a, np.ndarray) else a for a in args])  # the valid call works
    for position, wrong in itertools.product(range(len(args)), WRONG):
        call = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        call[position] = wrong.copy() if isinstance(wrong, np.ndarray) else wrong
        try:
            function(*call)
            outcome = "accepted"
        except Exception as error:
            outcome = type(error).__name__
            if outcome not in ("TypeError", "ValueError"):
                print("odd:", name, position, type(wrong).__name__, getattr(wrong, "shape", ""), repr(error),
                      file=sys.stderr)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
print(dict(sorted(outcomes.items())))
'''


def test_no_kernel_wrapper_crashes_on_an_argument_of_the_wrong_kind_or_rank():
    # In a child process: a crash (segfault) must fail this test, not end the test run.
    import nncore
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(Path(nncore.__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, "-c", CRASH_PROBE], env=environment, capture_output=True, text=True,
                          check=False,
                          timeout=300)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-3000:]}"
    outcomes = eval(done.stdout.strip().splitlines()[-1])
    # Clean refusals only. Known: Cython typed-memoryview arguments accept None, which some
    # wrappers then refuse with AttributeError; a NumPy scalar gives BufferError (read-only).
    assert set(outcomes) <= {"accepted", "TypeError", "ValueError", "IndexError", "AttributeError", "BufferError"}, \
        (outcomes, done.stderr[-3000:])
    print(outcomes)
