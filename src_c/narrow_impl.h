/* The narrow-layer kernels for ONE instruction set and ONE floating type: narrow.c includes this
 * file once per (instruction set, dtype), inside that instruction set's target region, with
 *
 *   NN_DOUBLE     0: float, 1: double
 *   NN_LANES      elements per vector register (1: plain scalar C)
 *   NN_ID         the suffix of every name defined here (avx2_f32, ...)
 *   NN_LOAD_U8(p) an expression: NN_LANES uint8 at p as a vector (when NN_LANES > 1)
 *   NN_FMA(c, a, b)   optional: c + a * b in one rounding (an intrinsic); else c + a * b
 *
 * and undefines them at its end, so the next instance starts clean.
 *
 * Vectors are GCC/Clang vector extensions, and tiles of accumulators (V acc[R][G] with R and G
 * constants after inlining) live in registers. The register budget is 12 accumulators plus the
 * smaller side of the tile's operands: 16 vector registers on AVX2 and 128-bit targets.
 *
 * Shapes (row-major, ld* = row lengths): see narrow.h.
 */
#define NN_CAT_(a, b) a##_##b
#define NN_CAT(a, b) NN_CAT_(a, b)
#define NN_FN(name) NN_CAT(name, NN_ID)
#if NN_DOUBLE
#define T double
#define NN_EXP exp
#define NN_TANH tanh
#define NN_KERNELS nncore_narrow_kernels_f64
#else
#define T float
#define NN_EXP expf
#define NN_TANH tanhf
#define NN_KERNELS nncore_narrow_kernels_f32
#endif
#define VL NN_LANES

#if NN_LANES > 1
typedef T NN_FN(vector) __attribute__((vector_size(NN_LANES * sizeof(T))));
#define V NN_FN(vector)
#else
#define V T
#endif
#ifndef NN_FMA
#define NN_FMA(c, a, b) ((c) + (a) * (b))
#define NN_FMA_DEFAULTED
#endif

/* ---------------------------------------------------------------- vector helpers */

NN_INLINE V NN_FN(load)(const T* p) {
    V v;
    memcpy(&v, p, sizeof v);
    return v;
}

NN_INLINE void NN_FN(store)(T* p, V v) { memcpy(p, &v, sizeof v); }

NN_INLINE V NN_FN(splat)(T x) {
    V zero = {0};
    return x - zero;  /* x - 0 is x for every x (also -0 and NaN), so it folds to a broadcast */
}

/* The first `count` (< VL) elements at p, zeros after: never reads past them. */
NN_INLINE V NN_FN(load_partial)(const T* p, ptrdiff_t count) {
    T lanes[VL] = {0};
    memcpy(lanes, p, (size_t) count * sizeof(T));
    return NN_FN(load)(lanes);
}

NN_INLINE void NN_FN(store_partial)(T* p, V v, ptrdiff_t count) {
    T lanes[VL];
    memcpy(lanes, &v, sizeof v);
    memcpy(p, lanes, (size_t) count * sizeof(T));
}

NN_INLINE V NN_FN(load_u8)(const unsigned char* p) {
#if NN_LANES > 1
    return NN_LOAD_U8(p);
#else
    return (T) p[0];
#endif
}

NN_INLINE V NN_FN(load_u8_partial)(const unsigned char* p, ptrdiff_t count) {
    unsigned char lanes[VL < 16 ? 16 : VL] = {0};  /* NN_LOAD_U8 may read up to 16 bytes */
    memcpy(lanes, p, (size_t) count);
    return NN_FN(load_u8)(lanes);
}

NN_INLINE T NN_FN(horizontal_sum)(V v) {
#if NN_LANES > 1
    T lanes[VL];
    memcpy(lanes, &v, sizeof v);
    /* pairwise, as the vector halves would be added */
    for (int width = VL / 2; width > 0; width /= 2)
        for (int l = 0; l < width; l++)
            lanes[l] += lanes[l + width];
    return lanes[0];
#else
    return v;
#endif
}

/* dA := dA * act'(a), from the activation's output a (narrow.h). */
NN_INLINE V NN_FN(activation_backward)(V dA, V a, int activation) {
    V one = NN_FN(splat)(1);
    switch (activation) {
    case NNCORE_NARROW_LOGISTIC:
        return dA * (a * (one - a));
    case NNCORE_NARROW_TANH:
        return dA * (one - a * a);
    case NNCORE_NARROW_RELU: {
#if NN_LANES > 1
        V zero = {0};
        return (V) ((__typeof__(a > zero)) dA & (a > zero));  /* a select: NaN in dA where a > 0 stays */
#else
        return a > 0 ? dA : 0;
#endif
    }
    default:
        return dA;
    }
}

NN_INLINE T NN_FN(activation_forward)(T z, int activation) {
    switch (activation) {
    case NNCORE_NARROW_LOGISTIC:
        /* exp of a non-positive number only: never overflows */
        if (z >= 0)
            return 1 / (1 + NN_EXP(-z));
        else {
            T e = NN_EXP(z);
            return e / (1 + e);
        }
    case NNCORE_NARROW_TANH:
        return NN_TANH(z);
    case NNCORE_NARROW_RELU:
        return z < 0 ? 0 : z;  /* NaN stays NaN, so a diverged batch is still seen */
    default:
        return z;
    }
}

/* ---------------------------------------------------------------- packing W^T */

static void NN_FN(pack)(T* NN_RESTRICT WT,            /* OUT (n, stride) */
                        const T* NN_RESTRICT W,       /* IN  (K, n) [ldw] */
                        ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t n) {
    ptrdiff_t stride = nncore_narrow_packed_stride(K);
    for (ptrdiff_t j = 0; j < n; j++) {
        T* column = WT + j * stride;
        for (ptrdiff_t k = 0; k < K; k++)
            column[k] = W[k * ldw + j];
        for (ptrdiff_t k = K; k < stride; k++)
            column[k] = 0;
    }
}

/* ---------------------------------------------------------------- forward: dot products over K */

/* acc[r][g] += A_r[k:k+VL] * WT_g[k:k+VL] (only `tail` lanes of A when tail > 0). The smaller
 * side of the tile is loaded first and held; the other side streams through one register. */
NN_INLINE void NN_FN(dot_step)(const int R, const int G, V acc[NN_MAX_ROWS][NN_MAX_GROUP], const int from_u8,
                               const T* const* a_rows, const unsigned char* const* x_rows, ptrdiff_t k,
                               ptrdiff_t tail, const T* wt, ptrdiff_t stride) {
#define NN_ROW(r) (from_u8 ? (tail ? NN_FN(load_u8_partial)(x_rows[r] + k, tail) : NN_FN(load_u8)(x_rows[r] + k)) \
                           : (tail ? NN_FN(load_partial)(a_rows[r] + k, tail) : NN_FN(load)(a_rows[r] + k)))
    if (R <= G) {
        V a[NN_MAX_ROWS];
        NN_UNROLL for (int r = 0; r < R; r++)
            a[r] = NN_ROW(r);
        NN_UNROLL for (int g = 0; g < G; g++) {
            V w = NN_FN(load)(wt + g * stride + k);
            NN_UNROLL for (int r = 0; r < R; r++)
                acc[r][g] = NN_FMA(acc[r][g], a[r], w);
        }
    } else {
        V w[NN_MAX_GROUP];
        NN_UNROLL for (int g = 0; g < G; g++)
            w[g] = NN_FN(load)(wt + g * stride + k);
        NN_UNROLL for (int r = 0; r < R; r++) {
            V a = NN_ROW(r);
            NN_UNROLL for (int g = 0; g < G; g++)
                acc[r][g] = NN_FMA(acc[r][g], a, w[g]);
        }
    }
#undef NN_ROW
}

/* sums[r * G + g] = sum over k of A_r[k] * WT_g[k], k over nvec whole vectors then `tail` lanes:
 * R rows (a_rows or x_rows) by G columns of W (wt, rows `stride` apart, zero past K). */
NN_INLINE void NN_FN(dot_tile)(const int R, const int G, const int from_u8,
                               const T* const* a_rows, const unsigned char* const* x_rows,
                               const T* wt, ptrdiff_t stride, ptrdiff_t nvec, ptrdiff_t tail,
                               T* sums) {
    V acc[NN_MAX_ROWS][NN_MAX_GROUP];
    NN_UNROLL for (int r = 0; r < R; r++)
        NN_UNROLL for (int g = 0; g < G; g++)
            acc[r][g] = NN_FN(splat)(0);
    for (ptrdiff_t v = 0; v < nvec; v++)
        NN_FN(dot_step)(R, G, acc, from_u8, a_rows, x_rows, v * VL, 0, wt, stride);
    if (tail)
        NN_FN(dot_step)(R, G, acc, from_u8, a_rows, x_rows, nvec * VL, tail, wt, stride);
    NN_UNROLL for (int r = 0; r < R; r++)
        NN_UNROLL for (int g = 0; g < G; g++)
            sums[r * G + g] = NN_FN(horizontal_sum)(acc[r][g]);
}

/* One instance per (rows, group width) the driver uses; a tile is `rows_of_group(G)` rows, or 1. */
#define NN_DOT_CASE(R_, G_) \
    case (G_) * 16 + (R_): \
        NN_FN(dot_tile)(R_, G_, from_u8, a_rows, x_rows, wt, stride, nvec, tail, sums); \
        break;
#define NN_DOT_CASES \
    NN_DOT_CASE(8, 1) NN_DOT_CASE(6, 2) NN_DOT_CASE(4, 3) NN_DOT_CASE(3, 4) NN_DOT_CASE(2, 5) NN_DOT_CASE(2, 6) \
    NN_DOT_CASE(1, 1) NN_DOT_CASE(1, 2) NN_DOT_CASE(1, 3) NN_DOT_CASE(1, 4) NN_DOT_CASE(1, 5) NN_DOT_CASE(1, 6) \
    NN_DOT_CASE(1, 7) NN_DOT_CASE(1, 8) NN_DOT_CASE(1, 9) NN_DOT_CASE(1, 10) NN_DOT_CASE(1, 11) NN_DOT_CASE(1, 12)

static void NN_FN(dot_tile_float)(int R, int G, const T* const* a_rows, const T* wt, ptrdiff_t stride,
                                  ptrdiff_t nvec, ptrdiff_t tail, T* sums) {
    const int from_u8 = 0;
    const unsigned char* const* x_rows = NULL;
    switch (G * 16 + R) { NN_DOT_CASES }
}

static void NN_FN(dot_tile_u8)(int R, int G, const unsigned char* const* x_rows, const T* wt, ptrdiff_t stride,
                               ptrdiff_t nvec, ptrdiff_t tail, T* sums) {
    const int from_u8 = 1;
    const T* const* a_rows = NULL;
    switch (G * 16 + R) { NN_DOT_CASES }
}

/* Z (rows, n) = act(alpha * A . W + b): blocks of K whose W^T slice stays in L1, every row
 * through each block, partial sums kept in Z until the last block applies the epilogue. */
static void NN_FN(forward)(T* Z, ptrdiff_t ldz, const T* A, ptrdiff_t lda,
                           const unsigned char* X, ptrdiff_t ldx, const ptrdiff_t* index,
                           const T* WT, const T* b, T alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n,
                           int activation) {
    const ptrdiff_t stride = nncore_narrow_packed_stride(K);
    const ptrdiff_t block = nncore_narrow_block(K, n, sizeof(T));
    const int group = nncore_narrow_group_width(n);
    const int tile_rows = nncore_narrow_rows_of_group(group);
    if (K == 0) {
        for (ptrdiff_t i = 0; i < rows; i++)
            for (ptrdiff_t j = 0; j < n; j++)
                Z[i * ldz + j] = NN_FN(activation_forward)(b != NULL ? b[j] : 0, activation);
        return;
    }
    for (ptrdiff_t k0 = 0; k0 < K; k0 += block) {
        const ptrdiff_t width = K - k0 < block ? K - k0 : block;
        const int first = k0 == 0, last = k0 + width == K;
        for (ptrdiff_t i = 0; i < rows;) {
            const int R = rows - i >= tile_rows ? tile_rows : 1;  /* the remainder rows go one at a time */
            const T* a_rows[NN_MAX_ROWS];
            const unsigned char* x_rows[NN_MAX_ROWS];
            for (int r = 0; r < R; r++) {
                if (X != NULL) {
                    x_rows[r] = X + (index != NULL ? index[i + r] : i + r) * ldx + k0;
                    if (first && index != NULL && i + r + NN_PREFETCH_ROWS < rows)
                        nncore_prefetch_row(X + index[i + r + NN_PREFETCH_ROWS] * ldx, K);
                } else {
                    a_rows[r] = A + (i + r) * lda + k0;
                }
            }
            for (ptrdiff_t j0 = 0; j0 < n; j0 += group) {
                const int G = n - j0 < group ? (int) (n - j0) : group;
                T sums[NN_MAX_ROWS * NN_MAX_GROUP];
                const T* wt = WT + j0 * stride + k0;
                if (X != NULL)
                    NN_FN(dot_tile_u8)(R, G, x_rows, wt, stride, width / VL, width % VL, sums);
                else
                    NN_FN(dot_tile_float)(R, G, a_rows, wt, stride, width / VL, width % VL, sums);
                for (int r = 0; r < R; r++) {
                    T* z = Z + (i + r) * ldz + j0;
                    for (int g = 0; g < G; g++) {
                        T total = first ? sums[r * G + g] : z[g] + sums[r * G + g];
                        if (last)
                            total = NN_FN(activation_forward)(alpha * total + (b != NULL ? b[j0 + g] : 0),
                                                              activation);
                        z[g] = total;
                    }
                }
            }
            i += R;
        }
    }
}

/* ---------------------------------------------------------------- dW: K-lanes times dZ broadcasts */

/* out[g * out_stride + l] = sum over rows i of A_i[k + l] * dZ_i[g], l < KV * VL (`partial`:
 * the lanes past `count` of ONE vector are zero), for G columns of dZ. */
NN_INLINE void NN_FN(outer_tile)(const int KV, const int G, const int from_u8, const int partial,
                                 const T* A, ptrdiff_t lda, const unsigned char* X, ptrdiff_t ldx,
                                 const ptrdiff_t* index, ptrdiff_t k, ptrdiff_t count,
                                 const T* dZ, ptrdiff_t lddz, ptrdiff_t rows, T* out, ptrdiff_t out_stride) {
    V acc[NN_MAX_ROWS][NN_MAX_GROUP];
    NN_UNROLL for (int v = 0; v < KV; v++)
        NN_UNROLL for (int g = 0; g < G; g++)
            acc[v][g] = NN_FN(splat)(0);
    for (ptrdiff_t i = 0; i < rows; i++) {
        V a[NN_MAX_ROWS];
        if (from_u8) {
            const unsigned char* x = X + (index != NULL ? index[i] : i) * ldx + k;
            if (index != NULL && i + NN_PREFETCH_ROWS < rows)
                nncore_prefetch(X + index[i + NN_PREFETCH_ROWS] * ldx + k);
            NN_UNROLL for (int v = 0; v < KV; v++)
                a[v] = partial ? NN_FN(load_u8_partial)(x, count) : NN_FN(load_u8)(x + v * VL);
        } else {
            const T* row = A + i * lda + k;
            NN_UNROLL for (int v = 0; v < KV; v++)
                a[v] = partial ? NN_FN(load_partial)(row, count) : NN_FN(load)(row + v * VL);
        }
        const T* d = dZ + i * lddz;
        NN_UNROLL for (int g = 0; g < G; g++) {
            V dz = NN_FN(splat)(d[g]);
            NN_UNROLL for (int v = 0; v < KV; v++)
                acc[v][g] = NN_FMA(acc[v][g], a[v], dz);
        }
    }
    NN_UNROLL for (int v = 0; v < KV; v++)
        NN_UNROLL for (int g = 0; g < G; g++)
            NN_FN(store)(out + g * out_stride + v * VL, acc[v][g]);
}

#define NN_OUTER_CASE(KV_, G_, PARTIAL_) \
    case ((G_) * 16 + (KV_)) * 2 + (PARTIAL_): \
        NN_FN(outer_tile)(KV_, G_, from_u8, PARTIAL_, A, lda, X, ldx, index, k, count, dZ, lddz, rows, out, \
                          out_stride); \
        break;
#define NN_OUTER_CASES_OF_GROUP(KV_, G_) NN_OUTER_CASE(KV_, G_, 0) NN_OUTER_CASE(1, G_, 0) NN_OUTER_CASE(1, G_, 1)
#define NN_OUTER_CASES \
    NN_OUTER_CASES_OF_GROUP(8, 1) NN_OUTER_CASES_OF_GROUP(6, 2) NN_OUTER_CASES_OF_GROUP(4, 3) \
    NN_OUTER_CASES_OF_GROUP(3, 4) NN_OUTER_CASES_OF_GROUP(2, 5) NN_OUTER_CASES_OF_GROUP(2, 6) \
    NN_OUTER_CASE(1, 7, 0) NN_OUTER_CASE(1, 7, 1) NN_OUTER_CASE(1, 8, 0) NN_OUTER_CASE(1, 8, 1) \
    NN_OUTER_CASE(1, 9, 0) NN_OUTER_CASE(1, 9, 1) NN_OUTER_CASE(1, 10, 0) NN_OUTER_CASE(1, 10, 1) \
    NN_OUTER_CASE(1, 11, 0) NN_OUTER_CASE(1, 11, 1) NN_OUTER_CASE(1, 12, 0) NN_OUTER_CASE(1, 12, 1)

static void NN_FN(outer_tile_float)(int KV, int G, int partial, const T* A, ptrdiff_t lda, ptrdiff_t k,
                                    ptrdiff_t count, const T* dZ, ptrdiff_t lddz, ptrdiff_t rows, T* out,
                                    ptrdiff_t out_stride) {
    const int from_u8 = 0;
    const unsigned char* X = NULL;
    const ptrdiff_t ldx = 0, *index = NULL;
    switch ((G * 16 + KV) * 2 + partial) { NN_OUTER_CASES }
}

static void NN_FN(outer_tile_u8)(int KV, int G, int partial, const unsigned char* X, ptrdiff_t ldx,
                                 const ptrdiff_t* index, ptrdiff_t k, ptrdiff_t count, const T* dZ, ptrdiff_t lddz,
                                 ptrdiff_t rows, T* out, ptrdiff_t out_stride) {
    const int from_u8 = 1;
    const T* A = NULL;
    const ptrdiff_t lda = 0;
    switch ((G * 16 + KV) * 2 + partial) { NN_OUTER_CASES }
}

/* dW (K, n) (+)= alpha * A^T . dZ: per block of K, dW^T tiles (vector stores, all rows streamed
 * per tile), then the block transposed into dW. */
static void NN_FN(weight_grad)(T* dW, ptrdiff_t lddw, const T* A, ptrdiff_t lda,
                               const unsigned char* X, ptrdiff_t ldx, const ptrdiff_t* index,
                               const T* dZ, ptrdiff_t lddz, T alpha, int accumulate,
                               ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n) {
    T transposed[NN_BLOCK_BYTES / sizeof(T)] __attribute__((aligned(64)));
    const ptrdiff_t block = nncore_narrow_grad_block(n, sizeof(T));
    const ptrdiff_t out_stride = block + 16;
    const int group = nncore_narrow_group_width(n);
    const int tile_vectors = nncore_narrow_rows_of_group(group);
    for (ptrdiff_t k0 = 0; k0 < K; k0 += block) {
        const ptrdiff_t width = K - k0 < block ? K - k0 : block;
        for (ptrdiff_t k = k0; k < k0 + width;) {
            const ptrdiff_t left = k0 + width - k;
            const int KV = left >= tile_vectors * VL ? tile_vectors : 1;
            const int partial = left < VL;
            for (ptrdiff_t j0 = 0; j0 < n; j0 += group) {
                const int G = n - j0 < group ? (int) (n - j0) : group;
                T* out = transposed + j0 * out_stride + (k - k0);
                if (X != NULL)
                    NN_FN(outer_tile_u8)(KV, G, partial, X, ldx, index, k, left, dZ + j0, lddz, rows, out,
                                         out_stride);
                else
                    NN_FN(outer_tile_float)(KV, G, partial, A, lda, k, left, dZ + j0, lddz, rows, out, out_stride);
            }
            k += partial ? left : KV * VL;
        }
        for (ptrdiff_t k = k0; k < k0 + width; k++) {
            T* row = dW + k * lddw;
            const T* column = transposed + (k - k0);
            for (ptrdiff_t j = 0; j < n; j++)
                row[j] = accumulate ? row[j] + alpha * column[j * out_stride] : alpha * column[j * out_stride];
        }
    }
}

/* ---------------------------------------------------------------- dA: dZ broadcasts times K-lanes of W^T */

/* dA_r[k + l] (l < KV * VL, or `count` when partial) = act'(sum over j of dZ_r[j] * WT_j[k + l]) for
 * R rows; db[k + l] += its sum over the R rows when db is not NULL. */
NN_INLINE void NN_FN(input_tile)(const int R, const int KV, const int partial,
                                 const T* dZ, ptrdiff_t lddz, ptrdiff_t n, const T* WT, ptrdiff_t stride,
                                 ptrdiff_t k, ptrdiff_t count, T* dA, ptrdiff_t ldda,
                                 const T* A_out, ptrdiff_t ld_out, int activation, T* db) {
    V acc[NN_MAX_ROWS][NN_MAX_GROUP];
    NN_UNROLL for (int r = 0; r < R; r++)
        NN_UNROLL for (int v = 0; v < KV; v++)
            acc[r][v] = NN_FN(splat)(0);
    for (ptrdiff_t j = 0; j < n; j++) {
        V w[NN_MAX_GROUP];
        NN_UNROLL for (int v = 0; v < KV; v++)
            w[v] = NN_FN(load)(WT + j * stride + k + v * VL);  /* zero past K, up to the stride */
        NN_UNROLL for (int r = 0; r < R; r++) {
            V d = NN_FN(splat)(dZ[r * lddz + j]);
            NN_UNROLL for (int v = 0; v < KV; v++)
                acc[r][v] = NN_FMA(acc[r][v], d, w[v]);
        }
    }
    const int derivative = activation != NNCORE_NARROW_NONE && activation != NNCORE_NARROW_IDENTITY;
    V column_sums[NN_MAX_GROUP];
    NN_UNROLL for (int v = 0; v < KV; v++)
        column_sums[v] = NN_FN(splat)(0);
    NN_UNROLL for (int r = 0; r < R; r++) {
        NN_UNROLL for (int v = 0; v < KV; v++) {
            V g = acc[r][v];
            if (derivative) {
                const T* a = A_out + r * ld_out + k + v * VL;
                g = NN_FN(activation_backward)(g, partial ? NN_FN(load_partial)(a, count) : NN_FN(load)(a),
                                                activation);
            }
            if (partial)
                NN_FN(store_partial)(dA + r * ldda + k, g, count);
            else
                NN_FN(store)(dA + r * ldda + k + v * VL, g);
            column_sums[v] += g;
        }
    }
    if (db != NULL) {
        NN_UNROLL for (int v = 0; v < KV; v++) {
            if (partial)
                NN_FN(store_partial)(db + k, NN_FN(load_partial)(db + k, count) + column_sums[v], count);
            else
                NN_FN(store)(db + k + v * VL, NN_FN(load)(db + k + v * VL) + column_sums[v]);
        }
    }
}

#define NN_INPUT_CASE(R_, KV_, PARTIAL_) \
    case ((R_) * 16 + (KV_)) * 2 + (PARTIAL_): \
        NN_FN(input_tile)(R_, KV_, PARTIAL_, dZ, lddz, n, WT, stride, k, count, dA, ldda, A_out, ld_out, \
                          activation, db); \
        break;

static void NN_FN(input_tile_dispatch)(int R, int KV, int partial, const T* dZ, ptrdiff_t lddz, ptrdiff_t n,
                                       const T* WT, ptrdiff_t stride, ptrdiff_t k, ptrdiff_t count, T* dA,
                                       ptrdiff_t ldda, const T* A_out, ptrdiff_t ld_out, int activation, T* db) {
    switch ((R * 16 + KV) * 2 + partial) {
        NN_INPUT_CASE(4, 3, 0) NN_INPUT_CASE(4, 1, 0) NN_INPUT_CASE(4, 1, 1)
        NN_INPUT_CASE(1, 3, 0) NN_INPUT_CASE(1, 1, 0) NN_INPUT_CASE(1, 1, 1)
    }
}

static void NN_FN(input_grad)(T* dA, ptrdiff_t ldda, const T* dZ, ptrdiff_t lddz, const T* WT,
                              const T* A_out, ptrdiff_t ld_out, int activation, T* db,
                              ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n) {
    const ptrdiff_t stride = nncore_narrow_packed_stride(K);
    for (ptrdiff_t i = 0; i < rows;) {
        const int R = rows - i >= 4 ? 4 : 1;
        for (ptrdiff_t k = 0; k < K;) {
            const ptrdiff_t left = K - k;
            const int KV = left >= 3 * VL ? 3 : 1;
            const int partial = left < VL;
            NN_FN(input_tile_dispatch)(R, KV, partial, dZ + i * lddz, lddz, n, WT, stride, k, left,
                                       dA + i * ldda, ldda, A_out != NULL ? A_out + i * ld_out : NULL, ld_out,
                                       activation, db);
            k += partial ? left : KV * VL;
        }
        i += R;
    }
}

/* ---------------------------------------------------------------- the table narrow.c dispatches through */

static const struct NN_KERNELS NN_FN(kernels) = {
    NN_FN(pack), NN_FN(forward), NN_FN(weight_grad), NN_FN(input_grad),
};

#undef NN_DOT_CASE
#undef NN_DOT_CASES
#undef NN_OUTER_CASE
#undef NN_OUTER_CASES_OF_GROUP
#undef NN_OUTER_CASES
#undef NN_INPUT_CASE
#undef NN_FMA_DEFAULTED
#undef NN_FMA
#undef NN_LOAD_U8
#undef NN_ID
#undef NN_LANES
#undef NN_DOUBLE
#undef NN_EXP
#undef NN_TANH
#undef NN_KERNELS
#undef V
#undef T
#undef VL
#undef NN_FN
#undef NN_CAT
#undef NN_CAT_
