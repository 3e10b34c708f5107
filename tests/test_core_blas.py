"""The BLAS shim (src_c/_blas.pxd) through its test wrapper: row-major C := alpha op(A) op(B) + beta C.

A dtype x transpose grid against numpy.dot, as scikit-learn tests its _cython_blas:
on positive inputs (no cancellation) with rtol float32 1e-6, float64 1e-12; and on signed
inputs against the classical rounding-error bound of a length-k dot product,
|fl(C) - C| <= gamma_{k+2} (|alpha| |op(A)| |op(B)| + |beta| |C0|), gamma_n = n u / (1 - n u),
with the reference computed in float64 (float32) or exactly enough in longdouble (float64).
"""
import numpy as np
import pytest

from nncore import _testing as kernels

RTOL = {np.float32: 1e-6, np.float64: 1e-12}
UNIT_ROUNDOFF = {np.float32: 2.0 ** -24, np.float64: 2.0 ** -53}
SHAPES = [(1, 1, 1), (3, 5, 7), (17, 1, 9), (64, 33, 10), (128, 784, 16), (5, 300, 1)]


def _operands(rng, m, k, n, trans_a, trans_b, dtype, positive):
    draw = rng.random if positive else rng.standard_normal
    A = draw((k, m) if trans_a else (m, k)).astype(dtype)
    B = draw((n, k) if trans_b else (k, n)).astype(dtype)
    C = draw((m, n)).astype(dtype)
    return A, B, C


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,k,n", SHAPES)
def test_gemm_matches_numpy_dot_on_positive_inputs(dtype, trans_a, trans_b, m, k, n):
    rng = np.random.default_rng(m * 1000 + k * 10 + n)
    A, B, C = _operands(rng, m, k, n, trans_a, trans_b, dtype, positive=True)
    opA = A.T if trans_a else A
    opB = B.T if trans_b else B
    expected = np.dot(opA.astype(np.float64), opB.astype(np.float64)).astype(dtype)
    kernels.gemm(A, B, C, trans_a=trans_a, trans_b=trans_b)
    np.testing.assert_allclose(C, expected, rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.5, 1.0), (2.0, 0.25)])
def test_gemm_with_alpha_beta_is_within_the_rounding_bound(dtype, trans_a, trans_b, alpha, beta):
    rng = np.random.default_rng(7)
    m, k, n = 37, 211, 23
    A, B, C0 = _operands(rng, m, k, n, trans_a, trans_b, dtype, positive=False)
    opA = (A.T if trans_a else A).astype(np.longdouble)
    opB = (B.T if trans_b else B).astype(np.longdouble)
    exact = alpha * (opA @ opB) + beta * C0.astype(np.longdouble)
    u = UNIT_ROUNDOFF[dtype]
    gamma = (k + 2) * u / (1 - (k + 2) * u)
    bound = gamma * (abs(alpha) * (np.abs(opA) @ np.abs(opB)) + abs(beta) * np.abs(C0.astype(np.longdouble)))
    C = C0.copy()
    kernels.gemm(A, B, C, alpha=alpha, beta=beta, trans_a=trans_a, trans_b=trans_b)
    assert np.all(np.abs(C.astype(np.longdouble) - exact) <= bound)


def test_gemm_with_beta_one_accumulates():
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((4, 6)), rng.standard_normal((6, 3))
    C = np.ones((4, 3))
    kernels.gemm(A, B, C, beta=1.0)
    np.testing.assert_allclose(C, 1.0 + A @ B, rtol=1e-12)


def test_gemm_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes do not match"):
        kernels.gemm(np.ones((2, 3)), np.ones((4, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="shapes do not match"):
        kernels.gemm(np.ones((2, 3)), np.ones((3, 2)), np.ones((3, 2)))


def test_gemm_rejects_mixed_dtypes_and_non_contiguous_arrays():
    with pytest.raises((TypeError, ValueError)):
        kernels.gemm(np.ones((2, 3), np.float32), np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises((TypeError, ValueError)):
        kernels.gemm(np.ones((3, 2)).T, np.ones((3, 2)), np.ones((2, 2)))
