/* Narrow-layer kernels (narrow.h): one build, every instruction set, picked at run time.
 *
 * narrow_impl.h holds the kernels once, written for a vector of NN_LANES elements; this file
 * instantiates it for each (instruction set, dtype) inside that instruction set's target region
 * (GCC: #pragma GCC target, Clang: #pragma clang attribute), so the AVX2 and AVX-512 code exists
 * in a baseline (-O3, no -march) build and only runs where the CPU has it. Compilers without
 * vector extensions get the scalar instance only.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "narrow.h"
#include "ops.h"

#if defined(__GNUC__) || defined(__clang__)
#define NN_VECTORS 1
#define NN_INLINE static inline __attribute__((always_inline))
#define NN_NOINLINE __attribute__((noinline))
#define NN_RESTRICT __restrict
#define nncore_prefetch(address) __builtin_prefetch(address)
#else
#define NN_VECTORS 0
#define NN_INLINE static inline
#define NN_NOINLINE
#define NN_RESTRICT
#define nncore_prefetch(address) ((void) 0)
#endif

#if defined(__clang__)
#define NN_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define NN_UNROLL _Pragma("GCC unroll 16")
#else
#define NN_UNROLL
#endif

#if NN_VECTORS && (defined(__x86_64__) || defined(_M_X64))
#define NN_X86 1
#include <immintrin.h>
#else
#define NN_X86 0
#endif

enum {
    NN_MAX_ROWS = 8,        /* tile rows (forward), vectors (dW): the largest used, for G = 1 */
    NN_MAX_GROUP = 12,      /* columns of a tile: 12 accumulators fit 16 registers with the operands */
    NN_GRAD_GROUP = 6,      /* dW's: 2 K-vectors x 5 columns for n = 10 beat 1 x 10 by 15% (fewer loads) */
    NN_PREFETCH_ROWS = 4,   /* shuffled uint8 rows miss every cache: ask for them this far ahead */
    NN_BLOCK_BYTES = 16384, /* the slice of W^T (forward) or dW^T (dW) kept in L1 while rows stream by */
    NN_L2_SLICE_BYTES = 196608  /* the rows' slice dW keeps in L2 (512 KB here) across its tiles */
};

/* ---------------------------------------------------------------- shared arithmetic */

ptrdiff_t nncore_narrow_packed_stride(ptrdiff_t K) { return (K + 15) / 16 * 16; }

/* The K block of the forward: its W^T slice (n x block) stays in L1 while every row passes;
 * a last block under a quarter of a block joins the one before. A multiple of 16. */
static ptrdiff_t nncore_narrow_block(ptrdiff_t K, ptrdiff_t n, size_t element_size) {
    ptrdiff_t block = (ptrdiff_t) (NN_BLOCK_BYTES / element_size) / n / 16 * 16;
    if (block < 16)
        block = 16;
    return K <= block + block / 4 ? nncore_narrow_packed_stride(K) : block;
}

/* The K block of dW: its n x (block + 16) slice of dW^T fits NN_BLOCK_BYTES (L1). */
static ptrdiff_t nncore_narrow_grad_block(ptrdiff_t n, size_t element_size) {
    ptrdiff_t block = ((ptrdiff_t) (NN_BLOCK_BYTES / element_size) / n - 16) / 16 * 16;
    return block < 16 ? 16 : block;
}

/* Columns handled per tile: all n up to `limit`, else n split into near-equal groups. */
static int nncore_narrow_group_width(ptrdiff_t n, int limit) {
    if (n <= limit)
        return (int) n;
    ptrdiff_t groups = (n + limit - 1) / limit;
    return (int) ((n + groups - 1) / groups);
}

/* Rows (forward) or K-vectors (dW) per tile for G columns: about 12 accumulators in all. */
static int nncore_narrow_rows_of_group(int group) {
    static const int rows[NN_MAX_GROUP + 1] = {1, 8, 6, 4, 3, 2, 2, 1, 1, 1, 1, 1, 1};
    return rows[group];
}

static void nncore_prefetch_row(const unsigned char* row, ptrdiff_t bytes) {
    for (ptrdiff_t offset = 0; offset < bytes; offset += 64)
        nncore_prefetch(row + offset);
}

/* ---------------------------------------------------------------- the kernel tables */

struct nncore_narrow_kernels_f32 {
    void (*pack)(float*, const float*, ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*forward)(float*, ptrdiff_t, const float*, ptrdiff_t, const unsigned char*, ptrdiff_t, const ptrdiff_t*, float*, ptrdiff_t,
                    const float*, const float*, float, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*weight_grad)(float*, ptrdiff_t, const float*, ptrdiff_t, const unsigned char*, ptrdiff_t, const ptrdiff_t*,
                        const float*, ptrdiff_t, float, int, ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*input_grad)(float*, ptrdiff_t, const float*, ptrdiff_t, const float*, const float*, ptrdiff_t, int,
                       float*, ptrdiff_t, ptrdiff_t, ptrdiff_t);
};

struct nncore_narrow_kernels_f64 {
    void (*pack)(double*, const double*, ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*forward)(double*, ptrdiff_t, const double*, ptrdiff_t, const unsigned char*, ptrdiff_t, const ptrdiff_t*, double*, ptrdiff_t,
                    const double*, const double*, double, ptrdiff_t, ptrdiff_t, ptrdiff_t, int);
    void (*weight_grad)(double*, ptrdiff_t, const double*, ptrdiff_t, const unsigned char*, ptrdiff_t,
                        const ptrdiff_t*, const double*, ptrdiff_t, double, int, ptrdiff_t, ptrdiff_t, ptrdiff_t);
    void (*input_grad)(double*, ptrdiff_t, const double*, ptrdiff_t, const double*, const double*, ptrdiff_t, int,
                       double*, ptrdiff_t, ptrdiff_t, ptrdiff_t);
};

/* ---------------------------------------------------------------- instances: scalar */

#define NN_LANES 1
#define NN_DOUBLE 0
#define NN_ID scalar_f32
#include "narrow_impl.h"

#define NN_LANES 1
#define NN_DOUBLE 1
#define NN_ID scalar_f64
#include "narrow_impl.h"

/* ---------------------------------------------------------------- instances: 128-bit vectors */

#if NN_VECTORS
#if NN_X86
/* SSE2 (the x86-64 baseline) has no byte-to-int widening move: interleave with zeros twice. */
static inline __m128 nn_u8x4_to_ps(const unsigned char* p) {
    int32_t four;
    memcpy(&four, p, 4);
    __m128i zero = _mm_setzero_si128();
    return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(four), zero), zero));
}
#define NN_LOAD_U8(p) ((V) nn_u8x4_to_ps(p))
#else
#define NN_LOAD_U8(p) ((V) {p[0], p[1], p[2], p[3]})
#endif

#define NN_LANES 4
#define NN_DOUBLE 0
#define NN_ID vector128_f32
#include "narrow_impl.h"

#define NN_LANES 2
#define NN_DOUBLE 1
#define NN_ID vector128_f64
#define NN_LOAD_U8(p) ((V) {p[0], p[1]})
#include "narrow_impl.h"
#endif /* NN_VECTORS */

/* ---------------------------------------------------------------- instances: AVX2 + FMA, AVX-512F */

#if NN_X86
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define NN_LANES 8
#define NN_DOUBLE 0
#define NN_ID avx2_f32
#define NN_LOAD_U8(p) ((V) _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*) (p)))))
#define NN_FMA(c, a, b) ((V) _mm256_fmadd_ps(a, b, c))
#include "narrow_impl.h"

static inline __m128i nn_load_u8x4(const unsigned char* p) {
    int32_t four;
    memcpy(&four, p, 4);
    return _mm_cvtsi32_si128(four);
}

#define NN_LANES 4
#define NN_DOUBLE 1
#define NN_ID avx2_f64
#define NN_LOAD_U8(p) ((V) _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(nn_load_u8x4(p))))
#define NN_FMA(c, a, b) ((V) _mm256_fmadd_pd(a, b, c))
#include "narrow_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif

#define NN_LANES 16
#define NN_DOUBLE 0
#define NN_ID avx512_f32
#define NN_LOAD_U8(p) ((V) _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*) (p)))))
#define NN_FMA(c, a, b) ((V) _mm512_fmadd_ps(a, b, c))
#include "narrow_impl.h"

#define NN_LANES 8
#define NN_DOUBLE 1
#define NN_ID avx512_f64
#define NN_LOAD_U8(p) ((V) _mm512_cvtepi32_pd(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*) (p)))))
#define NN_FMA(c, a, b) ((V) _mm512_fmadd_pd(a, b, c))
#include "narrow_impl.h"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* NN_X86 */

/* ---------------------------------------------------------------- dispatch */

static const struct nncore_narrow_kernels_f32* const tables_f32[NNCORE_NARROW_ISA_COUNT] = {
    &kernels_scalar_f32,
#if NN_VECTORS
    &kernels_vector128_f32,
#else
    NULL,
#endif
#if NN_X86
    &kernels_avx2_f32, &kernels_avx512_f32,
#else
    NULL, NULL,
#endif
};

static const struct nncore_narrow_kernels_f64* const tables_f64[NNCORE_NARROW_ISA_COUNT] = {
    &kernels_scalar_f64,
#if NN_VECTORS
    &kernels_vector128_f64,
#else
    NULL,
#endif
#if NN_X86
    &kernels_avx2_f64, &kernels_avx512_f64,
#else
    NULL, NULL,
#endif
};

static const char* const isa_names[NNCORE_NARROW_ISA_COUNT] = {"scalar", "vector128", "avx2", "avx512"};

/* -1 until the first call picks; every thread that races here picks the same. */
static int active_isa = -1;

const char* nncore_narrow_isa_name(int isa) {
    return isa >= 0 && isa < NNCORE_NARROW_ISA_COUNT ? isa_names[isa] : "unknown";
}

int nncore_narrow_isa_supported(int isa) {
    if (isa < 0 || isa >= NNCORE_NARROW_ISA_COUNT || tables_f32[isa] == NULL)
        return 0;
#if NN_X86
    __builtin_cpu_init();
    if (isa == NNCORE_NARROW_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == NNCORE_NARROW_AVX512)
        return __builtin_cpu_supports("avx512f");
#endif
    return 1;
}

int nncore_narrow_set_isa(int isa) {
    if (!nncore_narrow_isa_supported(isa))
        return -1;
    active_isa = isa;
    return 0;
}

int nncore_narrow_isa(void) {
    if (active_isa < 0) {
        int best = NNCORE_NARROW_SCALAR;
        for (int isa = 0; isa < NNCORE_NARROW_ISA_COUNT; isa++)
            if (nncore_narrow_isa_supported(isa))
                best = isa;
        const char* wanted = getenv("NNCORE_NARROW_ISA");
        for (int isa = 0; wanted != NULL && isa < NNCORE_NARROW_ISA_COUNT; isa++)
            if (strcmp(wanted, isa_names[isa]) == 0 && nncore_narrow_isa_supported(isa))
                best = isa;
        active_isa = best;
    }
    return active_isa;
}

/* ---------------------------------------------------------------- the entry points */

void nncore_narrow_pack_f32(float* WT, const float* W, ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t n) {
    tables_f32[nncore_narrow_isa()]->pack(WT, W, ldw, K, n);
}

void nncore_narrow_pack_f64(double* WT, const double* W, ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t n) {
    tables_f64[nncore_narrow_isa()]->pack(WT, W, ldw, K, n);
}

void nncore_narrow_forward_f32(float* Z, ptrdiff_t ldz, const float* A, ptrdiff_t lda, const float* WT,
                               const float* b, float alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n,
                               int activation) {
    tables_f32[nncore_narrow_isa()]->forward(Z, ldz, A, lda, NULL, 0, NULL, NULL, 0, WT, b, alpha, rows, K, n, activation);
}

void nncore_narrow_forward_f64(double* Z, ptrdiff_t ldz, const double* A, ptrdiff_t lda, const double* WT,
                               const double* b, double alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n,
                               int activation) {
    tables_f64[nncore_narrow_isa()]->forward(Z, ldz, A, lda, NULL, 0, NULL, NULL, 0, WT, b, alpha, rows, K, n, activation);
}

void nncore_narrow_forward_u8_f32(float* Z, ptrdiff_t ldz, const unsigned char* X, ptrdiff_t ldx,
                                  const ptrdiff_t* index, float* converted, ptrdiff_t ldc, const float* WT,
                                  const float* b, float alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n, int activation) {
    tables_f32[nncore_narrow_isa()]->forward(Z, ldz, NULL, 0, X, ldx, index, converted, ldc, WT, b, alpha, rows, K,
                                                 n, activation);
}

void nncore_narrow_forward_u8_f64(double* Z, ptrdiff_t ldz, const unsigned char* X, ptrdiff_t ldx,
                                  const ptrdiff_t* index, double* converted, ptrdiff_t ldc, const double* WT,
                                  const double* b, double alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n, int activation) {
    tables_f64[nncore_narrow_isa()]->forward(Z, ldz, NULL, 0, X, ldx, index, converted, ldc, WT, b, alpha, rows, K,
                                                 n, activation);
}

void nncore_narrow_weight_grad_f32(float* dWT, ptrdiff_t lddwt, const float* A, ptrdiff_t lda, const float* dZ,
                                   ptrdiff_t lddz, float alpha, int accumulate, ptrdiff_t rows, ptrdiff_t K,
                                   ptrdiff_t n) {
    tables_f32[nncore_narrow_isa()]->weight_grad(dWT, lddwt, A, lda, NULL, 0, NULL, dZ, lddz, alpha, accumulate,
                                                 rows, K, n);
}

void nncore_narrow_weight_grad_f64(double* dWT, ptrdiff_t lddwt, const double* A, ptrdiff_t lda, const double* dZ,
                                   ptrdiff_t lddz, double alpha, int accumulate, ptrdiff_t rows, ptrdiff_t K,
                                   ptrdiff_t n) {
    tables_f64[nncore_narrow_isa()]->weight_grad(dWT, lddwt, A, lda, NULL, 0, NULL, dZ, lddz, alpha, accumulate,
                                                 rows, K, n);
}

void nncore_narrow_weight_grad_u8_f32(float* dWT, ptrdiff_t lddwt, const unsigned char* X, ptrdiff_t ldx,
                                      const ptrdiff_t* index, const float* dZ, ptrdiff_t lddz, float alpha,
                                      int accumulate, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n) {
    tables_f32[nncore_narrow_isa()]->weight_grad(dWT, lddwt, NULL, 0, X, ldx, index, dZ, lddz, alpha, accumulate,
                                                 rows, K, n);
}

void nncore_narrow_weight_grad_u8_f64(double* dWT, ptrdiff_t lddwt, const unsigned char* X, ptrdiff_t ldx,
                                      const ptrdiff_t* index, const double* dZ, ptrdiff_t lddz, double alpha,
                                      int accumulate, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n) {
    tables_f64[nncore_narrow_isa()]->weight_grad(dWT, lddwt, NULL, 0, X, ldx, index, dZ, lddz, alpha, accumulate,
                                                 rows, K, n);
}

void nncore_narrow_input_grad_f32(float* dA, ptrdiff_t ldda, const float* dZ, ptrdiff_t lddz, const float* WT,
                                  const float* A_out, ptrdiff_t ld_out, int activation, float* db,
                                  ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n) {
    tables_f32[nncore_narrow_isa()]->input_grad(dA, ldda, dZ, lddz, WT, A_out, ld_out, activation, db, rows, K, n);
}

void nncore_narrow_input_grad_f64(double* dA, ptrdiff_t ldda, const double* dZ, ptrdiff_t lddz, const double* WT,
                                  const double* A_out, ptrdiff_t ld_out, int activation, double* db,
                                  ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n) {
    tables_f64[nncore_narrow_isa()]->input_grad(dA, ldda, dZ, lddz, WT, A_out, ld_out, activation, db, rows, K, n);
}
