"""The narrow-layer kernels (src_c/narrow.c) against BLAS gemm and NumPy, on every instruction set
this CPU runs, through their wrappers in nncore._testing.

Tolerances follow the rounding-error bound of a length-K dot product: each result may differ
from the float64 BLAS product by at most tol * (|A| |W|), elementwise, with tol 1e-12 for float64
(the bound is ~K * 2^-53, under 1e-13 for K <= 1100) and 1e-5 for float32 (random signs: the
error grows like sqrt(K) * 2^-24). The grid covers n = 1..40 (one to four column groups, partial
vectors at both ends), rows from 1 to 1100 (tile remainders), odd K (partial last vector, one or
several K blocks), rows that are not contiguous (row stride > width), and data that does not
start on a vector boundary.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from nncore import _testing
from nncore.activations import ACTIVATIONS

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 1e-5, np.float64: 1e-12}
ISAS = _testing.narrow_isas()
WIDTHS = list(range(1, 41))
# (rows, K): tile remainders, partial vectors, one and several K blocks, a 1024-row chunk and more
SHAPES = [(1, 1), (2, 3), (7, 17), (9, 784), (33, 101), (64, 255), (5, 1100), (1100, 33)]
LARGE = [(1024, 785)]


@pytest.fixture(params=ISAS)
def isa(request):
    previous = _testing.narrow_isa()
    _testing.narrow_isa(request.param)
    yield request.param
    _testing.narrow_isa(previous)


def strided(array, offset=1, pad=3):
    """The same values, in a buffer whose rows are `pad` elements longer and which starts `offset` elements in."""
    rows, columns = array.shape
    buffer = np.zeros(offset + rows * (columns + pad), dtype=array.dtype)
    view = buffer[offset:].reshape(rows, columns + pad)[:, :columns]
    view[...] = array
    assert not view.flags.c_contiguous or rows <= 1
    return view


def reference_product(A, B):
    """A . B through float64 BLAS: the product every kernel is held to."""
    out = np.zeros((A.shape[0], B.shape[1]))
    _testing.gemm(np.ascontiguousarray(A, dtype=np.float64), np.ascontiguousarray(B, dtype=np.float64), out)
    return out


def assert_within_bound(actual, expected, magnitude, dtype):
    error = np.abs(actual.astype(np.float64) - expected)
    bound = TOLERANCE[dtype] * magnitude + np.finfo(dtype).tiny
    worst = np.unravel_index(np.argmax(error - bound), error.shape)
    assert np.all(error <= bound), f"error {error[worst]:.3g} > bound {bound[worst]:.3g} at {worst}"


def operands(rng, rows, K, width, dtype):
    A = rng.standard_normal((rows, K)).astype(dtype)
    W = rng.standard_normal((K, width)).astype(dtype)
    X = rng.integers(0, 256, (rows + 11, K), dtype=np.uint8)
    index = rng.integers(0, rows + 11, rows)
    return A, W, X, index


def shapes_for(width):
    return SHAPES + (LARGE if width in (1, 10, 32, 40) else [])


# ---------------------------------------------------------------- forward

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
def test_forward_of_float_rows_is_blas_plus_bias(isa, dtype, width):
    rng = np.random.default_rng(width)
    for rows, K in shapes_for(width):
        A, W, _, _ = operands(rng, rows, K, width, dtype)
        b = rng.standard_normal(width).astype(dtype)
        Z = strided(np.full((rows, width), np.nan, dtype))
        _testing.narrow_forward(Z, strided(A), strided(W), b, 0.5, "identity")
        expected = 0.5 * reference_product(A, W) + b
        assert_within_bound(Z, expected, 0.5 * reference_product(np.abs(A), np.abs(W)) + np.abs(b), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
def test_forward_of_uint8_rows_through_an_index_is_the_scaled_gather_times_w(isa, dtype, width):
    rng = np.random.default_rng(100 + width)
    scale = dtype(1 / 255)
    for rows, K in shapes_for(width):
        _, W, X, index = operands(rng, rows, K, width, dtype)
        b = rng.standard_normal(width).astype(dtype)
        Z = np.full((rows, width), np.nan, dtype)
        converted = strided(np.full((rows, K), np.nan, dtype))
        _testing.narrow_forward_u8(Z, strided(X, offset=3, pad=5), index, strided(W), b, scale, "identity", converted)
        gathered = X[index].astype(np.float64) * scale
        expected = reference_product(gathered, W) + b
        assert_within_bound(Z, expected, reference_product(gathered, np.abs(W)) + np.abs(b), dtype)
        # The rows the backward pass reads for dW: exactly the pixels, every one of them.
        np.testing.assert_array_equal(converted, X[index].astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_of_uint8_rows_without_an_index_reads_the_first_rows(dtype):
    rng = np.random.default_rng(5)
    _, W, X, _ = operands(rng, 37, 99, 10, dtype)
    Z, Z_indexed = np.empty((37, 10), dtype), np.empty((37, 10), dtype)
    _testing.narrow_forward_u8(Z, X, None, W)
    _testing.narrow_forward_u8(Z_indexed, X, np.arange(37), W)
    np.testing.assert_array_equal(Z, Z_indexed)


def numpy_activation(name, Z):
    """The registry's definition of activation ``name`` (nncore.activations), on a copy of Z."""
    return ACTIVATIONS[name].forward(np.array(Z, dtype=np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_forward_epilogue_applies_the_activation(isa, dtype, activation):
    rng = np.random.default_rng(7)
    A, W, _, _ = operands(rng, 45, 130, 12, dtype)
    b = rng.standard_normal(12).astype(dtype)
    Z = np.empty((45, 12), dtype)
    _testing.narrow_forward(Z, A, W, b, 1.0, activation)
    pre = reference_product(A, W) + b
    expected = numpy_activation(activation, pre)
    # the activations' slopes are at most 1: the product's bound carries through
    assert_within_bound(Z, expected, reference_product(np.abs(A), np.abs(W)) + np.abs(b) + np.abs(expected), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_logistic_saturates_without_overflow(dtype):
    A = np.array([[1.0], [-1.0], [0.0]], dtype=dtype)
    W = np.array([[1e4, -1e4]], dtype=dtype)
    Z = np.empty((3, 2), dtype)
    with np.errstate(all="raise"):
        _testing.narrow_forward(Z, A, W, None, 1.0, "logistic")
    np.testing.assert_array_equal(Z, np.array([[1, 0], [0, 1], [0.5, 0.5]], dtype=dtype))


def test_forward_relu_keeps_nan_so_divergence_is_seen():
    A = np.array([[np.nan, 1.0], [1.0, -3.0]])
    Z = np.empty((2, 1))
    _testing.narrow_forward(Z, A, np.ones((2, 1)), None, 1.0, "relu")
    assert np.isnan(Z[0, 0]) and Z[1, 0] == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_with_no_inputs_is_the_activated_bias(dtype):
    b = np.array([-1.0, 2.0], dtype=dtype)
    Z = np.full((3, 2), np.nan, dtype)
    _testing.narrow_forward(Z, np.empty((3, 0), dtype), np.empty((0, 2), dtype), b, 1.0, "relu")
    np.testing.assert_array_equal(Z, [[0, 2]] * 3)


# ---------------------------------------------------------------- dW

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
def test_weight_grad_of_float_rows_is_blas_at_dz(isa, dtype, width):
    rng = np.random.default_rng(200 + width)
    for rows, K in shapes_for(width):
        A, _, _, _ = operands(rng, rows, K, width, dtype)
        dZ = rng.standard_normal((rows, width)).astype(dtype)
        dW = strided(np.full((K, width), np.nan, dtype))
        dWT = _testing.narrow_weight_grad(dW, strided(A), strided(dZ), 2.0)
        expected = 2.0 * reference_product(A.T, dZ)
        assert_within_bound(dW, expected, 2.0 * reference_product(np.abs(A.T), np.abs(dZ)), dtype)
        assert not np.any(dWT[:, K:]), "dW^T's padding past K must stay zero: the optimizer updates it"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
def test_weight_grad_of_uint8_rows_accumulates_the_scaled_gather(isa, dtype, width):
    rng = np.random.default_rng(300 + width)
    scale = dtype(1 / 255)
    for rows, K in shapes_for(width):
        _, _, X, index = operands(rng, rows, K, width, dtype)
        dZ = rng.standard_normal((rows, width)).astype(dtype)
        before = rng.standard_normal((K, width)).astype(dtype)
        dW = before.copy()
        dWT = _testing.narrow_weight_grad_u8(dW, strided(X, offset=5, pad=1), index, strided(dZ), scale,
                                             accumulate=True)
        gathered = X[index].astype(np.float64) * scale
        expected = before + reference_product(gathered.T, dZ)
        assert_within_bound(dW, expected, np.abs(before) + reference_product(gathered.T, np.abs(dZ)), dtype)
        assert not np.any(dWT[:, K:]), "dW^T's padding past K must stay zero: the optimizer updates it"


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_grad_of_no_rows_is_zero_or_unchanged(dtype):
    dW = np.full((5, 3), 7.0, dtype)
    _testing.narrow_weight_grad(dW, np.empty((0, 5), dtype), np.empty((0, 3), dtype), accumulate=True)
    assert np.all(dW == 7)
    _testing.narrow_weight_grad(dW, np.empty((0, 5), dtype), np.empty((0, 3), dtype))
    assert np.all(dW == 0)


# ---------------------------------------------------------------- dA

def numpy_activation_backward(dA, x, activation):
    """dA * f'(z) by the registry's definition, f' read from x (the output, or the input: ops.h)."""
    return ACTIVATIONS[activation].backward(np.array(dA, dtype=np.float64), x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
def test_input_grad_is_dz_at_w_transposed_with_the_bias_grad(isa, dtype, width):
    rng = np.random.default_rng(400 + width)
    for rows, K in shapes_for(width):
        dZ = rng.standard_normal((rows, width)).astype(dtype)
        W = rng.standard_normal((K, width)).astype(dtype)
        dA = strided(np.full((rows, K), np.nan, dtype))
        db = np.ones(K, dtype)
        _testing.narrow_input_grad(dA, strided(dZ), strided(W), None, "identity", db)
        expected = reference_product(dZ, W.T)
        magnitude = reference_product(np.abs(dZ), np.abs(W.T))
        assert_within_bound(dA, expected, magnitude, dtype)
        assert_within_bound(db[None, :], 1 + expected.sum(axis=0)[None, :], 1 + magnitude.sum(axis=0)[None, :], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_input_grad_applies_the_derivative_from_what_it_reads(isa, dtype, activation):
    """f' of the layer's output, or of its input for an activation whose derivative reads that (GELU)."""
    rng = np.random.default_rng(11)
    for rows, K in [(13, 37), (8, 128), (3, 5)]:
        dZ = rng.standard_normal((rows, 10)).astype(dtype)
        W = rng.standard_normal((K, 10)).astype(dtype)
        Z = rng.standard_normal((rows, K))
        A_out = (Z if ACTIVATIONS[activation].reads_input else numpy_activation(activation, Z)).astype(dtype)
        dA, db = np.empty((rows, K), dtype), np.zeros(K, dtype)
        _testing.narrow_input_grad(dA, dZ, W, strided(A_out), activation, db)
        product = reference_product(dZ, W.T)
        expected = numpy_activation_backward(product, A_out.astype(np.float64), activation)
        magnitude = numpy_activation_backward(reference_product(np.abs(dZ), np.abs(W.T)),
                                              np.abs(A_out.astype(np.float64)), activation)
        assert_within_bound(dA, expected, np.abs(magnitude) + np.abs(expected), dtype)
        assert_within_bound(db[None, :], expected.sum(axis=0)[None, :], np.abs(magnitude).sum(axis=0)[None, :]
                            + np.abs(expected).sum(axis=0)[None, :], dtype)


def test_input_grad_relu_mask_is_a_select():
    # where the layer output is not positive the gradient is exactly 0, even for an infinite dZ
    dA = np.empty((1, 3))
    _testing.narrow_input_grad(dA, np.array([[np.inf]]), np.ones((3, 1)), np.array([[0.0, 2.0, -1.0]]), "relu")
    assert dA[0, 0] == 0 and dA[0, 1] == np.inf and dA[0, 2] == 0


# ---------------------------------------------------------------- packing, arguments, dispatch

@pytest.mark.parametrize("dtype", DTYPES)
def test_pack_is_w_transposed_and_zero_padded_to_whole_vectors(dtype):
    W = np.arange(21 * 3, dtype=dtype).reshape(21, 3)
    packed = _testing.narrow_pack(strided(W))
    assert packed.shape == (3, 32)
    np.testing.assert_array_equal(packed[:, :21], W.T)
    assert np.all(packed[:, 21:] == 0)


def test_wrong_arguments_are_refused_with_a_message():
    Z, A, W = np.empty((4, 3)), np.ones((4, 5)), np.ones((5, 3))
    with pytest.raises(ValueError, match="activation"):
        _testing.narrow_forward(Z, A, W, None, 1.0, "softplus")
    with pytest.raises(ValueError, match="W must be"):
        _testing.narrow_forward(Z, A, np.ones((6, 3)))
    with pytest.raises(ValueError, match="b must have"):
        _testing.narrow_forward(Z, A, W, np.ones(2))
    with pytest.raises(IndexError, match="outside"):
        _testing.narrow_forward_u8(Z, np.ones((4, 5), np.uint8), [0, 1, 2, 4], W)
    with pytest.raises(ValueError, match="entries"):
        _testing.narrow_forward_u8(Z, np.ones((4, 5), np.uint8), [0, 1], W)
    with pytest.raises(ValueError, match="needs A_out"):
        _testing.narrow_input_grad(np.empty((4, 5)), np.ones((4, 3)), W, None, "relu")
    with pytest.raises(ValueError, match="Buffer dtype mismatch"):
        _testing.narrow_forward(Z.astype(np.float32), A, W)


def test_the_fastest_instruction_set_this_cpu_runs_is_picked():
    features = np.__dict__.get("_core", np.core)._multiarray_umath.__cpu_features__
    expected = ("avx512" if features.get("AVX512F") else "avx2" if features.get("AVX2") and features.get("FMA3")
                else "vector128")
    code = "from nncore import _testing; print(_testing.narrow_isa(), _testing.narrow_isas())"
    environment = {key: value for key, value in os.environ.items() if key != "NNCORE_NARROW_ISA"}
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    picked, available = done.stdout.split(" ", 1)
    assert picked == expected, done.stdout
    assert "scalar" in available and "vector128" in available


@pytest.mark.parametrize("name", ["scalar", "vector128"])
def test_the_environment_can_ask_for_a_slower_instruction_set(name):
    code = "from nncore import _testing; print(_testing.narrow_isa())"
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, NNCORE_NARROW_ISA=name),
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == name


def test_an_instruction_set_the_cpu_lacks_is_refused():
    missing = [name for name in ("scalar", "vector128", "avx2", "avx512") if name not in ISAS]
    with pytest.raises(ValueError, match="unknown"):
        _testing.narrow_isa("sse9")
    for name in missing:
        with pytest.raises(ValueError, match="cannot run here"):
            _testing.narrow_isa(name)
