# cython: language_level=3
"""The BLAS shim: one fused-type gemm over SciPy's Fortran sgemm/dgemm (as sklearn's _cython_blas).

Fortran BLAS is column-major. A row-major matrix is the transpose of the same memory read
column-major, so row-major C = A.B is computed as column-major C^T = B^T.A^T by swapping the
operands: no copies, transposes by flag. The three products of an MLP layer, with X (B, in),
W (in, out), Y (B, out), all row-major:
    Y  = X.W    gemm('n', 'n', out, B,  in,  1, W,  out, X, in,  0, Y,  out)
    dW = X^T.dY gemm('n', 't', out, in, B,   1, dY, out, X, in,  0, dW, out)
    dX = dY.W^T gemm('t', 'n', in,  B,  out, 1, W,  out, dY, out, 0, dX, in)
This one column-major entry point is the convention everywhere in the core: each call site
says in a comment which row-major product it computes.
"""
from cython cimport floating
from scipy.linalg.cython_blas cimport dgemm, sgemm


cdef inline void gemm(char transa, char transb, int m, int n, int k,
                      floating alpha, const floating* A, int lda,    # IN
                      const floating* B, int ldb,                    # IN
                      floating beta, floating* C, int ldc            # IN/OUT
                      ) noexcept nogil:
    """C := alpha * op(A).op(B) + beta * C, column-major; C is (m, n), op(A) (m, k), op(B) (k, n)."""
    if floating is float:
        sgemm(&transa, &transb, &m, &n, &k, &alpha, <float*> A, &lda, <float*> B, &ldb, &beta, C, &ldc)
    else:
        dgemm(&transa, &transb, &m, &n, &k, &alpha, <double*> A, &lda, <double*> B, &ldb, &beta, C, &ldc)

