# cython: language_level=3
"""The narrow-layer kernels of src_c/narrow.c (narrow.h), typed on the fused ``floating``.

For a layer with a narrow side (n <= ~32), the network passes call these instead of
gemm + the element-wise kernels: one register-blocked pass per product, the epilogue fused.
Row-major; ``ld*`` are row lengths in elements. Shapes, with W (K, n) and WT its packed
transpose (n, packed_stride(K)), zero past K:

    forward        Z (rows, n) = act(alpha * A (rows, K) . W + b)
    forward_u8     the same, A's row i = X[index[i]] (uint8; X[i] when index is NULL), alpha = 1/255;
                   the rows as converted (unscaled) are kept in ``converted`` when it is not NULL
    weight_grad    dWT (n, packed_stride(K)) = alpha * (A^T . dZ)^T, or += when accumulate; zeros past K
    input_grad     dA (rows, K) = (dZ . W^T) * act'(A_out); db (K,) += column sums of dA when not NULL
"""
from cython cimport floating

cdef extern from "narrow.h" nogil:
    enum:
        NNCORE_NARROW_MAX_N
        NNCORE_NARROW_SCALAR
        NNCORE_NARROW_VECTOR128
        NNCORE_NARROW_AVX2
        NNCORE_NARROW_AVX512
        NNCORE_NARROW_ISA_COUNT

    int nncore_narrow_isa()
    int nncore_narrow_isa_supported(int isa)
    int nncore_narrow_set_isa(int isa)
    const char* nncore_narrow_isa_name(int isa)
    Py_ssize_t nncore_narrow_packed_stride(Py_ssize_t K)

    void nncore_narrow_pack_f32(float* WT, const float* W, Py_ssize_t ldw, Py_ssize_t K, Py_ssize_t n)
    void nncore_narrow_pack_f64(double* WT, const double* W, Py_ssize_t ldw, Py_ssize_t K, Py_ssize_t n)
    void nncore_narrow_forward_f32(float* Z, Py_ssize_t ldz, const float* A, Py_ssize_t lda, const float* WT,
                                   const float* b, float alpha, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n,
                                   int activation)
    void nncore_narrow_forward_f64(double* Z, Py_ssize_t ldz, const double* A, Py_ssize_t lda, const double* WT,
                                   const double* b, double alpha, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n,
                                   int activation)
    void nncore_narrow_forward_u8_f32(float* Z, Py_ssize_t ldz, const unsigned char* X, Py_ssize_t ldx,
                                      const Py_ssize_t* index, float* converted, Py_ssize_t ldc, const float* WT,
                                      const float* b, float alpha, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n,
                                      int activation)
    void nncore_narrow_forward_u8_f64(double* Z, Py_ssize_t ldz, const unsigned char* X, Py_ssize_t ldx,
                                      const Py_ssize_t* index, double* converted, Py_ssize_t ldc, const double* WT,
                                      const double* b, double alpha, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n,
                                      int activation)
    void nncore_narrow_weight_grad_f32(float* dWT, Py_ssize_t lddwt, const float* A, Py_ssize_t lda,
                                       const float* dZ, Py_ssize_t lddz, float alpha, int accumulate,
                                       Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n)
    void nncore_narrow_weight_grad_f64(double* dWT, Py_ssize_t lddwt, const double* A, Py_ssize_t lda,
                                       const double* dZ, Py_ssize_t lddz, double alpha, int accumulate,
                                       Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n)
    void nncore_narrow_weight_grad_u8_f32(float* dWT, Py_ssize_t lddwt, const unsigned char* X, Py_ssize_t ldx,
                                          const Py_ssize_t* index, const float* dZ, Py_ssize_t lddz, float alpha,
                                          int accumulate, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n)
    void nncore_narrow_weight_grad_u8_f64(double* dWT, Py_ssize_t lddwt, const unsigned char* X, Py_ssize_t ldx,
                                          const Py_ssize_t* index, const double* dZ, Py_ssize_t lddz, double alpha,
                                          int accumulate, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n)
    void nncore_narrow_input_grad_f32(float* dA, Py_ssize_t ldda, const float* dZ, Py_ssize_t lddz,
                                      const float* WT, const float* A_out, Py_ssize_t ld_out, int activation,
                                      float* db, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n)
    void nncore_narrow_input_grad_f64(double* dA, Py_ssize_t ldda, const double* dZ, Py_ssize_t lddz,
                                      const double* WT, const double* A_out, Py_ssize_t ld_out, int activation,
                                      double* db, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n)


cdef inline void pack(floating* WT,                 # OUT (n, packed_stride(K))
                      const floating* W,            # IN  (K, n) [ldw]
                      Py_ssize_t ldw, Py_ssize_t K, Py_ssize_t n) noexcept nogil:
    if floating is float:
        nncore_narrow_pack_f32(WT, W, ldw, K, n)
    else:
        nncore_narrow_pack_f64(WT, W, ldw, K, n)


cdef inline void forward(floating* Z, Py_ssize_t ldz,         # OUT (rows, n)
                         const floating* A, Py_ssize_t lda,   # IN  (rows, K)
                         const floating* WT,                  # IN  packed W
                         const floating* b,                   # IN  (n,) or NULL
                         floating alpha, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n,
                         int activation) noexcept nogil:
    if floating is float:
        nncore_narrow_forward_f32(Z, ldz, A, lda, WT, b, alpha, rows, K, n, activation)
    else:
        nncore_narrow_forward_f64(Z, ldz, A, lda, WT, b, alpha, rows, K, n, activation)


cdef inline void forward_u8(floating* Z, Py_ssize_t ldz,               # OUT (rows, n)
                            const unsigned char* X, Py_ssize_t ldx,    # IN  (n_samples, K) uint8
                            const Py_ssize_t* index,                   # IN  (rows,) rows of X, or NULL
                            floating* converted, Py_ssize_t ldc,       # OUT (rows, K) the rows as read, or NULL
                            const floating* WT, const floating* b,
                            floating alpha, Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n,
                            int activation) noexcept nogil:
    if floating is float:
        nncore_narrow_forward_u8_f32(Z, ldz, X, ldx, index, converted, ldc, WT, b, alpha, rows, K, n, activation)
    else:
        nncore_narrow_forward_u8_f64(Z, ldz, X, ldx, index, converted, ldc, WT, b, alpha, rows, K, n, activation)


cdef inline void weight_grad(floating* dWT, Py_ssize_t lddwt,          # OUT/IN (n, K), lddwt >= packed_stride(K)
                             const floating* A, Py_ssize_t lda,       # IN  (rows, K)
                             const floating* dZ, Py_ssize_t lddz,     # IN  (rows, n)
                             floating alpha, bint accumulate,
                             Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n) noexcept nogil:
    if floating is float:
        nncore_narrow_weight_grad_f32(dWT, lddwt, A, lda, dZ, lddz, alpha, accumulate, rows, K, n)
    else:
        nncore_narrow_weight_grad_f64(dWT, lddwt, A, lda, dZ, lddz, alpha, accumulate, rows, K, n)


cdef inline void weight_grad_u8(floating* dWT, Py_ssize_t lddwt,           # OUT/IN (n, K), as weight_grad
                                const unsigned char* X, Py_ssize_t ldx,   # IN  (n_samples, K) uint8
                                const Py_ssize_t* index,                  # IN  (rows,) or NULL
                                const floating* dZ, Py_ssize_t lddz,      # IN  (rows, n)
                                floating alpha, bint accumulate,
                                Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n) noexcept nogil:
    if floating is float:
        nncore_narrow_weight_grad_u8_f32(dWT, lddwt, X, ldx, index, dZ, lddz, alpha, accumulate, rows, K, n)
    else:
        nncore_narrow_weight_grad_u8_f64(dWT, lddwt, X, ldx, index, dZ, lddz, alpha, accumulate, rows, K, n)


cdef inline void input_grad(floating* dA, Py_ssize_t ldda,              # OUT (rows, K)
                            const floating* dZ, Py_ssize_t lddz,        # IN  (rows, n)
                            const floating* WT,                         # IN  packed W
                            const floating* A_out, Py_ssize_t ld_out,   # IN  (rows, K) what act' reads (ops.h), or NULL
                            int activation,
                            floating* db,                               # IN/OUT (K,) or NULL
                            Py_ssize_t rows, Py_ssize_t K, Py_ssize_t n) noexcept nogil:
    if floating is float:
        nncore_narrow_input_grad_f32(dA, ldda, dZ, lddz, WT, A_out, ld_out, activation, db, rows, K, n)
    else:
        nncore_narrow_input_grad_f64(dA, ldda, dZ, lddz, WT, A_out, ld_out, activation, db, rows, K, n)
