/* Narrow-layer kernels: the matrix products of a layer with one narrow side (n <= ~32 units),
 * where BLAS runs at a fraction of its peak and pays operand packing on every call.
 *
 * Every product is vectorized over K (the wide side), so no vector lane is wasted whatever
 * n is (n = 10 in 8-lane registers would waste 37.5% if the lanes ran over n):
 *
 *   forward       Z (rows, n)  = act(alpha * A (rows, K) . W (K, n) + b)
 *                 one pass: dot products of A's rows with W's columns (W packed as W^T),
 *                 then the epilogue (scale, bias, activation) on the (rows, n) results;
 *   weight_grad   dW^T (n, K) (+)= alpha * dZ^T (n, rows) . A (rows, K), i.e. dW = A^T . dZ transposed
 *                 K-lanes of A's rows times broadcasts of dZ, a (VL x n) tile per pass over rows,
 *                 stored as W^T is: training keeps a narrow layer's weights as W^T (n, packed_stride(K)),
 *                 so neither the forward nor the update transposes anything per step;
 *   input_grad    dA (rows, K)  = (dZ (rows, n) . W^T (n, K)) * act'(A_out)   [db += column sums]
 *                 broadcasts of dZ times K-lanes of the packed W^T.
 *
 * A is float rows (A, lda) or uint8 rows read through an index array (X[index[i]], the shuffled
 * batch), converted to float in registers as they are read; the 1/255 scale is alpha, applied
 * once per output instead of once per input element. Row-major everywhere; ld* are row lengths.
 *
 * One build carries an AVX-512, an AVX2+FMA, a 128-bit vector and a scalar version of every
 * kernel; the first call picks the best the CPU runs (NNCORE_NARROW_ISA=scalar|vector128|avx2|
 * avx512 in the environment, or nncore_narrow_set_isa, chooses another one for tests).
 */
#ifndef NNCORE_NARROW_H
#define NNCORE_NARROW_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* `activation` is an ops.h code (NNCORE_ACTIVATION_*): the forward epilogue applies it, the input
 * gradient multiplies by its derivative, read from A_out (ops.h: the layer's output, or its input for
 * an activation whose derivative reads that). The output layer's logits use identity. */

enum nncore_narrow_isa {
    NNCORE_NARROW_SCALAR = 0,     /* plain C, any compiler */
    NNCORE_NARROW_VECTOR128 = 1,  /* 128-bit vectors (SSE2 on x86-64, NEON on arm64) */
    NNCORE_NARROW_AVX2 = 2,       /* x86-64 with AVX2 and FMA */
    NNCORE_NARROW_AVX512 = 3,     /* x86-64 with AVX-512F */
    NNCORE_NARROW_ISA_COUNT = 4
};

/* The widest n any kernel here takes: a dW tile's slice of n rows of dW^T, at least 16 entries
 * each, stays within 16 KB of L1 (64 float64). Callers keep wider layers on BLAS. */
#define NNCORE_NARROW_MAX_N 64

/* The instruction set in use (picked on the first call), whether one is compiled in and runs
 * on this CPU, choosing one (0, or -1 when it cannot run here), and its name. */
int nncore_narrow_isa(void);
int nncore_narrow_isa_supported(int isa);
int nncore_narrow_set_isa(int isa);
const char* nncore_narrow_isa_name(int isa);

/* Row length of the packed W^T: K rounded up to 16, so every instruction set reads whole
 * vectors past K (the padding holds zeros). A packed weight takes n * stride elements. */
ptrdiff_t nncore_narrow_packed_stride(ptrdiff_t K);

/* W^T (n, stride) := W (K, n) transposed, zero-padded from K to the stride. Once per weight
 * update: the forward and the input gradient of a layer share it. */
void nncore_narrow_pack_f32(float* WT, const float* W, ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t n);
void nncore_narrow_pack_f64(double* WT, const double* W, ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t n);

/* Z (rows, n) [ldz] = act(alpha * A . W + b), W given packed; b may be NULL (no bias). */
void nncore_narrow_forward_f32(float* Z, ptrdiff_t ldz, const float* A, ptrdiff_t lda, const float* WT,
                               const float* b, float alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n,
                               int activation);
void nncore_narrow_forward_f64(double* Z, ptrdiff_t ldz, const double* A, ptrdiff_t lda, const double* WT,
                               const double* b, double alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n,
                               int activation);
/* The same with A's row i = X + index[i] * ldx (X + i * ldx when index is NULL), uint8; when
 * `converted` is not NULL, row i as converted (unscaled) goes to converted + i * ldc (rows, K): the
 * backward pass's dW reads it there instead of converting the uint8 rows again. */
void nncore_narrow_forward_u8_f32(float* Z, ptrdiff_t ldz, const unsigned char* X, ptrdiff_t ldx,
                                  const ptrdiff_t* index, float* converted, ptrdiff_t ldc, const float* WT,
                                  const float* b, float alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n, int activation);
void nncore_narrow_forward_u8_f64(double* Z, ptrdiff_t ldz, const unsigned char* X, ptrdiff_t ldx,
                                  const ptrdiff_t* index, double* converted, ptrdiff_t ldc, const double* WT,
                                  const double* b, double alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n,
                                  int activation);

/* dWT (n, K) [lddwt] = alpha * dZ^T . A (dW = alpha * A^T . dZ, transposed), or += when accumulate is
 * nonzero. Whole vectors are stored: lddwt >= packed_stride(K), and the entries from K up to K rounded
 * up to a multiple of 16 receive zeros (or keep their zeros). */
void nncore_narrow_weight_grad_f32(float* dWT, ptrdiff_t lddwt, const float* A, ptrdiff_t lda, const float* dZ,
                                   ptrdiff_t lddz, float alpha, int accumulate, ptrdiff_t rows, ptrdiff_t K,
                                   ptrdiff_t n);
void nncore_narrow_weight_grad_f64(double* dWT, ptrdiff_t lddwt, const double* A, ptrdiff_t lda, const double* dZ,
                                   ptrdiff_t lddz, double alpha, int accumulate, ptrdiff_t rows, ptrdiff_t K,
                                   ptrdiff_t n);
void nncore_narrow_weight_grad_u8_f32(float* dWT, ptrdiff_t lddwt, const unsigned char* X, ptrdiff_t ldx,
                                      const ptrdiff_t* index, const float* dZ, ptrdiff_t lddz, float alpha,
                                      int accumulate, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n);
void nncore_narrow_weight_grad_u8_f64(double* dWT, ptrdiff_t lddwt, const unsigned char* X, ptrdiff_t ldx,
                                      const ptrdiff_t* index, const double* dZ, ptrdiff_t lddz, double alpha,
                                      int accumulate, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n);

/* dA (rows, K) [ldda] = (dZ . W^T) * act'(A_out), W given packed. A_out (rows, K) [ld_out] is what
 * the derivative of the previous layer's activation reads (ops.h; unused, may be NULL, for
 * identity); db (K,), when not NULL, gets the column sums of dA added (the previous layer's bias
 * gradient). */
void nncore_narrow_input_grad_f32(float* dA, ptrdiff_t ldda, const float* dZ, ptrdiff_t lddz, const float* WT,
                                  const float* A_out, ptrdiff_t ld_out, int activation, float* db,
                                  ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n);
void nncore_narrow_input_grad_f64(double* dA, ptrdiff_t ldda, const double* dZ, ptrdiff_t lddz, const double* WT,
                                  const double* A_out, ptrdiff_t ld_out, int activation, double* db,
                                  ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n);

#ifdef __cplusplus
}
#endif

#endif /* NNCORE_NARROW_H */
