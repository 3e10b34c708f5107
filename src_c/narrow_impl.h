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
#define NN_ACTIVATE nncore_activate_f64
#define NN_DERIVATIVE nncore_derivative_f64
#define NN_KERNELS nncore_narrow_kernels_f64
#else
#define T float
#define NN_ACTIVATE nncore_activate_f32
#define NN_DERIVATIVE nncore_derivative_f32
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
    memcpy(lanes, p, (size_t) (count < VL ? count : VL) * sizeof(T));
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

/* Every activation's derivative but ReLU's, lane by lane through ops.h: out of line, so that the
 * tiles that inline activation_backward carry only ReLU's select. */
static NN_NOINLINE V NN_FN(derivative_lanes)(V x, int activation) {
    T lanes[VL];
    NN_FN(store)(lanes, x);
    for (int l = 0; l < VL; l++)
        lanes[l] = NN_DERIVATIVE(activation, lanes[l]);
    return NN_FN(load)(lanes);
}

/* dA := dA * act'(x), x what the derivative reads (narrow.h, ops.h): ReLU as a vector select,
 * every other activation through ops.h's definition. */
NN_INLINE V NN_FN(activation_backward)(V dA, V x, int activation) {
    if (activation == NNCORE_ACTIVATION_RELU) {
#if NN_LANES > 1
        V zero = {0};
        return (V) ((__typeof__(x > zero)) dA & (x > zero));  /* a select: NaN in dA where x > 0 stays */
#else
        return x > 0 ? dA : 0;
#endif
    }
    return dA * NN_FN(derivative_lanes)(x, activation);
}

/* ---------------------------------------------------------------- shuffles: transposes and sum trees
 *
 * One butterfly serves both. Stage h pairs vectors h apart and interleaves blocks of h lanes:
 * lo takes the even blocks of a and b, hi the odd ones. After the stages h = 1, 2, ..., VL/2,
 * VL vectors are transposed; adding lo and hi instead of keeping both leaves, after VL - 1
 * pairs, one vector holding the VL vectors' sums, in order. */

#if NN_LANES > 1
#if NN_LANES == 2
#define NN_LO1 0, 2
#define NN_HI1 1, 3
#elif NN_LANES == 4
#define NN_LO1 0, 4, 2, 6
#define NN_HI1 1, 5, 3, 7
#define NN_LO2 0, 1, 4, 5
#define NN_HI2 2, 3, 6, 7
#elif NN_LANES == 8
#define NN_LO1 0, 8, 2, 10, 4, 12, 6, 14
#define NN_HI1 1, 9, 3, 11, 5, 13, 7, 15
#define NN_LO2 0, 1, 8, 9, 4, 5, 12, 13
#define NN_HI2 2, 3, 10, 11, 6, 7, 14, 15
#define NN_LO4 0, 1, 2, 3, 8, 9, 10, 11
#define NN_HI4 4, 5, 6, 7, 12, 13, 14, 15
#elif NN_LANES == 16
#define NN_LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define NN_HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define NN_LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define NN_HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define NN_LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define NN_HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define NN_LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define NN_HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#endif
#if defined(__clang__) || __GNUC__ >= 12
#define NN_SHUFFLE(a, b, mask) __builtin_shufflevector(a, b, mask)
#else
typedef __typeof__((V) {0} < (V) {0}) NN_FN(index);
#define NN_SHUFFLE(a, b, mask) __builtin_shuffle(a, b, (NN_FN(index)) {mask})
#endif
#define NN_PAIR(h, a, b) \
    do { \
        V lo_ = NN_SHUFFLE(a, b, NN_LO##h), hi_ = NN_SHUFFLE(a, b, NN_HI##h); \
        (a) = lo_; \
        (b) = hi_; \
    } while (0)
#define NN_PAIR_SUM(h, a, b) ((a) = NN_SHUFFLE(a, b, NN_LO##h) + NN_SHUFFLE(a, b, NN_HI##h))
#define NN_STAGE(h, pair) \
    NN_UNROLL for (int i = 0; i < VL; i += 2 * (h)) \
        NN_UNROLL for (int o = 0; o < (h); o++) \
            pair(h, m[i + o], m[i + o + (h)])
#endif

/* m (VL rows of VL lanes) := its transpose. */
NN_INLINE void NN_FN(transpose)(V m[VL]) {
#if NN_LANES >= 2
    NN_STAGE(1, NN_PAIR);
#endif
#if NN_LANES >= 4
    NN_STAGE(2, NN_PAIR);
#endif
#if NN_LANES >= 8
    NN_STAGE(4, NN_PAIR);
#endif
#if NN_LANES >= 16
    NN_STAGE(8, NN_PAIR);
#endif
    (void) m;
}

/* [sum of m[0]'s lanes, ..., sum of m[VL - 1]'s lanes] (m is clobbered). */
NN_INLINE V NN_FN(row_sums)(V m[VL]) {
#if NN_LANES >= 2
    NN_UNROLL for (int i = 0; i < VL; i += 2) NN_PAIR_SUM(1, m[i], m[i + 1]);
#endif
#if NN_LANES >= 4
    NN_UNROLL for (int i = 0; i < VL; i += 4) NN_PAIR_SUM(2, m[i], m[i + 2]);
#endif
#if NN_LANES >= 8
    NN_UNROLL for (int i = 0; i < VL; i += 8) NN_PAIR_SUM(4, m[i], m[i + 4]);
#endif
#if NN_LANES >= 16
    NN_PAIR_SUM(8, m[0], m[8]);
#endif
    return m[0];
}

/* ---------------------------------------------------------------- packing W^T */

/* WT (n, stride) := W (K, n) [ldw] transposed, zero from K to the stride: VL x VL blocks through
 * the butterfly, the last K % VL rows one by one. */
static void NN_FN(pack)(T* NN_RESTRICT WT, const T* NN_RESTRICT W, ptrdiff_t ldw, ptrdiff_t K, ptrdiff_t n) {
    const ptrdiff_t stride = nncore_narrow_packed_stride(K);
    ptrdiff_t k = 0;
    for (; k + VL <= K; k += VL) {
        for (ptrdiff_t j0 = 0; j0 < n; j0 += VL) {
            const ptrdiff_t columns = n - j0 < VL ? n - j0 : VL;
            V m[VL];
            NN_UNROLL for (int l = 0; l < VL; l++) {
                const T* row = W + (k + l) * ldw + j0;
                m[l] = VL == 1 || columns == VL ? NN_FN(load)(row) : NN_FN(load_partial)(row, columns);
            }
            NN_FN(transpose)(m);
            for (ptrdiff_t j = 0; j < columns; j++)
                NN_FN(store)(WT + (j0 + j) * stride + k, m[j]);
        }
    }
    for (ptrdiff_t j = 0; j < n; j++) {
        for (ptrdiff_t kk = k; kk < K; kk++)
            WT[j * stride + kk] = W[kk * ldw + j];
        for (ptrdiff_t kk = K; kk < stride; kk++)
            WT[j * stride + kk] = 0;
    }
}

/* ---------------------------------------------------------------- forward: dot products over K */

/* acc[r][g] += A_r[k:k+VL] * WT_g[k:k+VL] (only `tail` lanes of A when tail > 0). The smaller
 * side of the tile is loaded first and held; the other side streams through one register.
 * uint8 rows converted here are also stored to c_rows when `keep`. */
NN_INLINE void NN_FN(dot_step)(const int R, const int G, V acc[NN_MAX_ROWS][NN_MAX_GROUP], const int from_u8,
                               const int keep, const T* const* a_rows, const unsigned char* const* x_rows,
                               T* const* c_rows,
                               ptrdiff_t k, ptrdiff_t tail, const T* wt, ptrdiff_t stride) {
#define NN_ROW(r) (from_u8 ? (tail ? NN_FN(load_u8_partial)(x_rows[r] + k, tail) : NN_FN(load_u8)(x_rows[r] + k)) \
                           : (tail ? NN_FN(load_partial)(a_rows[r] + k, tail) : NN_FN(load)(a_rows[r] + k)))
#define NN_KEEP(r, value) \
    do { \
        if (from_u8 && keep) { \
            if (tail) \
                NN_FN(store_partial)(c_rows[r] + k, value, tail); \
            else \
                NN_FN(store)(c_rows[r] + k, value); \
        } \
    } while (0)
    if (R <= G) {
        V a[NN_MAX_ROWS];
        NN_UNROLL for (int r = 0; r < R; r++) {
            a[r] = NN_ROW(r);
            NN_KEEP(r, a[r]);
        }
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
            NN_KEEP(r, a);
            NN_UNROLL for (int g = 0; g < G; g++)
                acc[r][g] = NN_FMA(acc[r][g], a, w[g]);
        }
    }
#undef NN_KEEP
#undef NN_ROW
}

/* Every activation but ReLU, lane by lane through ops.h: out of line, it would be inlined into every tile shape. */
static NN_NOINLINE V NN_FN(activate_lanes)(V total, int count, int activation) {
    T lanes[VL];
    NN_FN(store)(lanes, total);
    for (int l = 0; l < count; l++)
        lanes[l] = NN_ACTIVATE(activation, lanes[l]);
    return NN_FN(load)(lanes);
}

/* z[0:count] := the epilogue of a row's sums s for `count` columns: added to the partial sums of
 * earlier K blocks (unless first), then, on the last block, alpha * total + b and the activation. */
NN_INLINE void NN_FN(forward_epilogue)(T* z, V s, int count, int first, int last, T alpha, const T* b,
                                       int activation) {
    const int whole = count == VL;
    V total = first ? s : (whole ? NN_FN(load)(z) : NN_FN(load_partial)(z, count)) + s;
    if (last) {
        V bias = b == NULL ? NN_FN(splat)(0) : whole ? NN_FN(load)(b) : NN_FN(load_partial)(b, count);
        total = NN_FMA(bias, NN_FN(splat)(alpha), total);
        if (activation == NNCORE_ACTIVATION_RELU) {
#if NN_LANES > 1
            total = (V) ((__typeof__(total < total)) total & ~(total < NN_FN(splat)(0)));  /* NaN stays */
#else
            total = total < 0 ? 0 : total;
#endif
        } else if (activation != NNCORE_ACTIVATION_IDENTITY) {
            total = NN_FN(activate_lanes)(total, count, activation);
        }
    }
    if (whole)
        NN_FN(store)(z, total);
    else
        NN_FN(store_partial)(z, total, count);
}

/* Rows [begin, end) of Z, in tiles of R, for G columns (wt: their rows of W^T at the block's
 * start) over one block of K [k0, k0 + width): the dot products, their sums across the lanes,
 * the epilogue. One call per (block, column group): the tile shape is fixed across the rows.
 * uint8 rows are kept, converted, in C (ldc) when `keep`. */
NN_INLINE void NN_FN(forward_rows)(const int R, const int G, const int from_u8, const int keep, ptrdiff_t begin,
                                   ptrdiff_t end,
                                   T* Z, ptrdiff_t ldz, const T* A, ptrdiff_t lda, const unsigned char* X,
                                   ptrdiff_t ldx, const ptrdiff_t* index, T* C, ptrdiff_t ldc, int prefetch,
                                   ptrdiff_t K,
                                   const T* wt, ptrdiff_t stride, ptrdiff_t k0, ptrdiff_t width,
                                   int first, int last, T alpha, const T* b, int activation) {
    const ptrdiff_t nvec = width / VL, tail = width % VL;
    for (ptrdiff_t i = begin; i + R <= end; i += R) {
        const T* a_rows[NN_MAX_ROWS];
        const unsigned char* x_rows[NN_MAX_ROWS];
        T* c_rows[NN_MAX_ROWS];
        NN_UNROLL for (int r = 0; r < R; r++) {
            if (from_u8) {
                x_rows[r] = X + (index != NULL ? index[i + r] : i + r) * ldx + k0;
                c_rows[r] = keep ? C + (i + r) * ldc + k0 : NULL;
                if (prefetch && i + r + NN_PREFETCH_ROWS < end)
                    nncore_prefetch_row(X + index[i + r + NN_PREFETCH_ROWS] * ldx, K);
            } else {
                a_rows[r] = A + (i + r) * lda + k0;
            }
        }
        V acc[NN_MAX_ROWS][NN_MAX_GROUP];
        NN_UNROLL for (int r = 0; r < R; r++)
            NN_UNROLL for (int g = 0; g < G; g++)
                acc[r][g] = NN_FN(splat)(0);
        for (ptrdiff_t v = 0; v < nvec; v++)
            NN_FN(dot_step)(R, G, acc, from_u8, keep, a_rows, x_rows, c_rows, v * VL, 0, wt, stride);
        if (tail)
            NN_FN(dot_step)(R, G, acc, from_u8, keep, a_rows, x_rows, c_rows, nvec * VL, tail, wt, stride);
        NN_UNROLL for (int r = 0; r < R; r++) {
            NN_UNROLL for (int g0 = 0; g0 < G; g0 += VL) {
                V m[VL];
                NN_UNROLL for (int l = 0; l < VL; l++)
                    m[l] = g0 + l < G ? acc[r][g0 + l < G ? g0 + l : 0] : NN_FN(splat)(0);
                NN_FN(forward_epilogue)(Z + (i + r) * ldz + g0, NN_FN(row_sums)(m), G - g0 < VL ? G - g0 : VL,
                                        first, last, alpha, b == NULL ? NULL : b + g0, activation);
            }
        }
    }
}

/* The tile of each group width: rows_of_group(G) rows, the remainder one by one. */
#define NN_FORWARD_CASE(R_, G_) \
    case G_: { \
        const ptrdiff_t whole = rows - rows % (R_); \
        NN_FN(forward_rows)(R_, G_, from_u8, keep, 0, whole, Z, ldz, A, lda, X, ldx, index, C, ldc, prefetch, K, wt, \
                            stride, k0, width, first, last, alpha, b, activation); \
        NN_FN(forward_rows)(1, G_, from_u8, keep, whole, rows, Z, ldz, A, lda, X, ldx, index, C, ldc, prefetch, K, wt, \
                            stride, k0, width, first, last, alpha, b, activation); \
        break; \
    }
#define NN_FORWARD_CASES \
    NN_FORWARD_CASE(8, 1) NN_FORWARD_CASE(6, 2) NN_FORWARD_CASE(4, 3) NN_FORWARD_CASE(3, 4) NN_FORWARD_CASE(2, 5) \
    NN_FORWARD_CASE(2, 6) NN_FORWARD_CASE(1, 7) NN_FORWARD_CASE(1, 8) NN_FORWARD_CASE(1, 9) NN_FORWARD_CASE(1, 10) \
    NN_FORWARD_CASE(1, 11) NN_FORWARD_CASE(1, 12)

static void NN_FN(forward_float)(int G, ptrdiff_t rows, T* Z, ptrdiff_t ldz, const T* A, ptrdiff_t lda, ptrdiff_t K,
                                 const T* wt, ptrdiff_t stride, ptrdiff_t k0, ptrdiff_t width, int first, int last,
                                 T alpha, const T* b, int activation) {
    const int from_u8 = 0, keep = 0, prefetch = 0;
    const unsigned char* X = NULL;
    const ptrdiff_t ldx = 0, *index = NULL, ldc = 0;
    T* C = NULL;
    switch (G) { NN_FORWARD_CASES }
}

static void NN_FN(forward_u8)(int G, ptrdiff_t rows, T* Z, ptrdiff_t ldz, const unsigned char* X, ptrdiff_t ldx,
                              const ptrdiff_t* index, T* C, ptrdiff_t ldc, int prefetch, ptrdiff_t K, const T* wt,
                              ptrdiff_t stride,
                              ptrdiff_t k0, ptrdiff_t width, int first, int last, T alpha, const T* b,
                              int activation) {
    const int from_u8 = 1;
    const T* A = NULL;
    const ptrdiff_t lda = 0;
    if (C != NULL) {  /* two instances: no test per vector in the inner loop */
        const int keep = 1;
        switch (G) { NN_FORWARD_CASES }
    } else {
        const int keep = 0;
        switch (G) { NN_FORWARD_CASES }
    }
}

/* Z (rows, n) = act(alpha * A . W + b): blocks of K whose W^T slice stays in L1, every row
 * through each block, partial sums kept in Z until the last block applies the epilogue. uint8
 * rows are also kept, converted and unscaled, in C (ldc) when it is not NULL: the first column
 * group of each block stores what it converted. */
static void NN_FN(forward)(T* Z, ptrdiff_t ldz, const T* A, ptrdiff_t lda,
                           const unsigned char* X, ptrdiff_t ldx, const ptrdiff_t* index, T* C, ptrdiff_t ldc,
                           const T* WT, const T* b, T alpha, ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n,
                           int activation) {
    const ptrdiff_t stride = nncore_narrow_packed_stride(K);
    const ptrdiff_t block = nncore_narrow_block(K, n, sizeof(T));
    const int group = nncore_narrow_group_width(n, NN_MAX_GROUP);
    if (K == 0) {
        for (ptrdiff_t i = 0; i < rows; i++)
            for (ptrdiff_t j = 0; j < n; j++)
                Z[i * ldz + j] = NN_ACTIVATE(activation, b != NULL ? b[j] : 0);
        return;
    }
    for (ptrdiff_t k0 = 0; k0 < K; k0 += block) {
        const ptrdiff_t width = K - k0 < block ? K - k0 : block;
        const int first = k0 == 0, last = k0 + width == K;
        for (ptrdiff_t j0 = 0; j0 < n; j0 += group) {
            const int G = n - j0 < group ? (int) (n - j0) : group;
            const T* bias = b == NULL ? NULL : b + j0;
            if (X != NULL)
                NN_FN(forward_u8)(G, rows, Z + j0, ldz, X, ldx, index, j0 == 0 ? C : NULL, ldc,
                                  first && j0 == 0 && index != NULL, K, WT + j0 * stride + k0, stride, k0, width,
                                  first, last, alpha, bias, activation);
            else
                NN_FN(forward_float)(G, rows, Z + j0, ldz, A, lda, K, WT + j0 * stride + k0, stride, k0, width,
                                     first, last, alpha, bias, activation);
        }
    }
}

/* ---------------------------------------------------------------- dW: K-lanes times dZ broadcasts */

/* out[g * out_stride + l] (+= when add) alpha * the sum over rows i of A_i[k + l] * dZ_i[g], l < KV * VL
 * (`partial`: the lanes past `count` of ONE vector are zero), for G columns of dZ. With prefetch_bytes, the
 * first tile of a block asks for the block's bytes of the rows ahead: the later tiles find them
 * in cache (shuffled rows are otherwise a cache miss per row and 64-byte line). */
NN_INLINE void NN_FN(outer_tile)(const int KV, const int G, const int from_u8, const int partial,
                                 const T* A, ptrdiff_t lda, const unsigned char* X, ptrdiff_t ldx,
                                 const ptrdiff_t* index, ptrdiff_t prefetch_bytes, ptrdiff_t k, ptrdiff_t count,
                                 const T* dZ, ptrdiff_t lddz, ptrdiff_t rows, T* out, ptrdiff_t out_stride,
                                 T alpha, int add) {
    const V scale = NN_FN(splat)(alpha);
    V acc[NN_MAX_ROWS][NN_MAX_GROUP];
    NN_UNROLL for (int v = 0; v < KV; v++)
        NN_UNROLL for (int g = 0; g < G; g++)
            acc[v][g] = NN_FN(splat)(0);
    for (ptrdiff_t i = 0; i < rows; i++) {
        V a[NN_MAX_ROWS];
        if (from_u8) {
            const unsigned char* x = X + (index != NULL ? index[i] : i) * ldx + k;
            if (prefetch_bytes && i + NN_PREFETCH_ROWS < rows)
                nncore_prefetch_row(X + index[i + NN_PREFETCH_ROWS] * ldx + k, prefetch_bytes);
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
        NN_UNROLL for (int g = 0; g < G; g++) {
            T* o = out + g * out_stride + v * VL;
            NN_FN(store)(o, add ? NN_FMA(NN_FN(load)(o), scale, acc[v][g]) : scale * acc[v][g]);
        }
}

#define NN_OUTER_CASE(KV_, G_, PARTIAL_) \
    case ((G_) * 16 + (KV_)) * 2 + (PARTIAL_): \
        NN_FN(outer_tile)(KV_, G_, from_u8, PARTIAL_, A, lda, X, ldx, index, prefetch_bytes, k, count, dZ, lddz, \
                          rows, out, out_stride, alpha, add); \
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
                                    ptrdiff_t out_stride, T alpha, int add) {
    const int from_u8 = 0;
    const unsigned char* X = NULL;
    const ptrdiff_t ldx = 0, *index = NULL, prefetch_bytes = 0;
    switch ((G * 16 + KV) * 2 + partial) { NN_OUTER_CASES }
}

static void NN_FN(outer_tile_u8)(int KV, int G, int partial, const unsigned char* X, ptrdiff_t ldx,
                                 const ptrdiff_t* index, ptrdiff_t prefetch_bytes, ptrdiff_t k, ptrdiff_t count,
                                 const T* dZ, ptrdiff_t lddz, ptrdiff_t rows, T* out, ptrdiff_t out_stride,
                                 T alpha, int add) {
    const int from_u8 = 1;
    const T* A = NULL;
    const ptrdiff_t lda = 0;
    switch ((G * 16 + KV) * 2 + partial) { NN_OUTER_CASES }
}

/* dWT (n, K) [lddwt] (+)= alpha * dZ^T . A, the transpose of dW = alpha * A^T . dZ, written where the
 * optimizer reads it (training keeps a narrow layer's W as W^T, narrow.h). Tiles of K-vectors x
 * columns, all of a row block streamed through each tile; per block of K so that the rows' slice
 * stays in L2 while its tiles go by. A tile writes whole vectors: up to K rounded up to the vector
 * length, zeros past K. */
static void NN_FN(weight_grad)(T* dWT, ptrdiff_t lddwt, const T* A, ptrdiff_t lda,
                               const unsigned char* X, ptrdiff_t ldx, const ptrdiff_t* index,
                               const T* dZ, ptrdiff_t lddz, T alpha, int accumulate,
                               ptrdiff_t rows, ptrdiff_t K, ptrdiff_t n) {
    const ptrdiff_t block = nncore_narrow_grad_block(n, sizeof(T));
    const int group = nncore_narrow_group_width(n, NN_GRAD_GROUP);
    /* Rows per pass: the block's slice of them stays in L2 while its tiles go by (a 1024-row chunk
     * of float rows is 3 MB: streamed once per tile from L3 it halved the rate). */
    const ptrdiff_t row_bytes = block * (ptrdiff_t) (X != NULL ? 1 : sizeof(T));
    const ptrdiff_t row_block = NN_L2_SLICE_BYTES / row_bytes > 16 ? NN_L2_SLICE_BYTES / row_bytes : 16;
    for (ptrdiff_t k0 = 0; k0 < K; k0 += block) {
        const ptrdiff_t width = K - k0 < block ? K - k0 : block;
        for (ptrdiff_t i0 = 0; i0 == 0 || i0 < rows; i0 += row_block) {
            const ptrdiff_t count_rows = rows - i0 < row_block ? rows - i0 : row_block;
            const T* A_rows = A != NULL ? A + i0 * lda : NULL;
            const unsigned char* X_rows = X != NULL && index == NULL ? X + i0 * ldx : X;
            const ptrdiff_t* index_rows = index != NULL ? index + i0 : NULL;
            const int add = accumulate || i0 > 0;
            for (ptrdiff_t j0 = 0; j0 < n; j0 += group) {
                const int G = n - j0 < group ? (int) (n - j0) : group;
                const int tile_vectors = nncore_narrow_rows_of_group(G);  /* the last group may be narrower */
                const T* dZ_rows = dZ + i0 * lddz + j0;
                for (ptrdiff_t k = k0; k < k0 + width;) {
                    const ptrdiff_t left = k0 + width - k;
                    const int KV = left >= tile_vectors * VL ? tile_vectors : 1;
                    const int partial = left < VL;
                    T* out = dWT + j0 * lddwt + k;
                    const ptrdiff_t prefetch_bytes = index != NULL && k == k0 && j0 == 0 ? width : 0;
                    if (X != NULL)
                        NN_FN(outer_tile_u8)(KV, G, partial, X_rows, ldx, index_rows, prefetch_bytes, k, left, dZ_rows,
                                             lddz, count_rows, out, lddwt, alpha, add);
                    else
                        NN_FN(outer_tile_float)(KV, G, partial, A_rows, lda, k, left, dZ_rows, lddz, count_rows, out,
                                                lddwt, alpha, add);
                    k += partial ? left : KV * VL;
                }
            }
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
    const int derivative = activation != NNCORE_ACTIVATION_IDENTITY;
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

#undef NN_FORWARD_CASE
#undef NN_FORWARD_CASES
#undef NN_OUTER_CASE
#undef NN_OUTER_CASES_OF_GROUP
#undef NN_OUTER_CASES
#undef NN_INPUT_CASE
#undef NN_LO1
#undef NN_HI1
#undef NN_LO2
#undef NN_HI2
#undef NN_LO4
#undef NN_HI4
#undef NN_LO8
#undef NN_HI8
#undef NN_SHUFFLE
#undef NN_PAIR
#undef NN_PAIR_SUM
#undef NN_STAGE
#undef NN_FMA_DEFAULTED
#undef NN_FMA
#undef NN_LOAD_U8
#undef NN_ID
#undef NN_LANES
#undef NN_DOUBLE
#undef NN_ACTIVATE
#undef NN_DERIVATIVE
#undef NN_KERNELS
#undef V
#undef T
#undef VL
#undef NN_FN
#undef NN_CAT
#undef NN_CAT_
