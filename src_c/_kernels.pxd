# cython: language_level=3
"""The fused element-wise kernels of the compiled core, one op each, on raw row-major buffers.

Each kernel is the C twin of a function in nncore/backends/numpy_backend.py and follows its
operation order, so float64 results agree to rounding and float32 results to a few ulps.
Shapes are given as (rows, columns); every buffer is C-contiguous. Nothing here allocates,
checks shapes or touches Python: the callers in _core.pyx validated everything once.
"""
from cython cimport floating
from libc.math cimport exp, expf, fabs, fabsf, log, logf, sqrt, sqrtf, tanh, tanhf
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset

from _counters cimport GOLDEN32, Mask, drop_unscale, keep_scale, mix32, row_bits, shift_offsets

ctypedef fused pixel:
    # What an input row holds: uint8 pixels (scaled while gathered) or floats (scale 1: copied exactly).
    unsigned char
    float
    double

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define nncore_prefetch(address) __builtin_prefetch(address)
    #else
    #define nncore_prefetch(address) ((void)0)
    #endif
    """
    void nncore_prefetch(const void* address) noexcept nogil

cdef enum:
    # The hidden-layer activations; nncore/activations.py's registry holds the same codes.
    ACTIVATION_IDENTITY = 0
    ACTIVATION_LOGISTIC = 1
    ACTIVATION_TANH = 2
    ACTIVATION_RELU = 3
    N_ACTIVATIONS = 4

cdef enum:
    # Rows ahead whose cache lines the gather requests before it needs them: shuffled rows of
    # a 47 MB image array miss every cache level; waiting on them took 60% of the gather, and
    # prefetching 2 rows ahead made a 784-10-10 epoch ~18% faster (1, 2, 4 rows measured).
    PREFETCH_ROWS = 2


cdef inline floating exp_(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating log_(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating sqrt_(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef inline floating tanh_(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating fabs_(floating x) noexcept nogil:
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


# ---------------------------------------------------------------- input gather

cdef inline void prefetch_row_ahead(const void* X, Py_ssize_t row_bytes,
                                    const Py_ssize_t* indices,         # IN  row numbers, or NULL
                                    Py_ssize_t first, Py_ssize_t i, Py_ssize_t count) noexcept nogil:
    """Request the cache lines of the row PREFETCH_ROWS after row i of a shuffled gather."""
    cdef Py_ssize_t line
    cdef const char* upcoming
    if indices != NULL and i + PREFETCH_ROWS < count:
        upcoming = <const char*> X + indices[first + i + PREFETCH_ROWS] * row_bytes
        for line in range(0, row_bytes, 64):    # one request per 64-byte cache line
            nncore_prefetch(upcoming + line)


cdef inline void prefetch_rows(const void* X, Py_ssize_t row_bytes,
                               const Py_ssize_t* indices,         # IN  row numbers
                               Py_ssize_t first, Py_ssize_t count) noexcept nogil:
    """Request the cache lines of rows indices[first:first + count], e.g. the next small batch's."""
    cdef Py_ssize_t i, line
    cdef const char* row
    for i in range(count):
        row = <const char*> X + indices[first + i] * row_bytes
        for line in range(0, row_bytes, 64):
            nncore_prefetch(row + line)


cdef inline void gather_scale_uint8(floating* out,                     # OUT (count, n_features)
                                    const unsigned char* X,            # IN  (n_samples, n_features)
                                    Py_ssize_t n_features,
                                    const Py_ssize_t* indices,         # IN  row numbers, or NULL
                                    Py_ssize_t first, Py_ssize_t count,
                                    floating scale) noexcept nogil:
    """out[i] = X[indices[first + i]] * scale (X[first + i] when indices is NULL), uint8 -> float."""
    cdef Py_ssize_t i, j, row
    cdef const unsigned char* source
    cdef floating* target
    for i in range(count):
        row = indices[first + i] if indices != NULL else first + i
        prefetch_row_ahead(X, n_features, indices, first, i, count)
        source = X + row * n_features
        target = out + i * n_features
        for j in range(n_features):
            target[j] = (<floating> source[j]) * scale


cdef inline void gather_shifted(floating* out,                         # OUT (count, height * width)
                                const pixel* X,                        # IN  (n_samples, height * width)
                                Py_ssize_t height, Py_ssize_t width,
                                const Py_ssize_t* indices,             # IN  row numbers, or NULL
                                Py_ssize_t first, Py_ssize_t count,
                                floating scale,                        # 1/255 for pixels, 1 for floats
                                uint64_t key, Py_ssize_t position,     # the shift site's key; row i's position is position + i
                                Py_ssize_t pixels) noexcept nogil:
    """out[i] = image X[indices[first + i]] moved by its (dy, dx) in -pixels..pixels, zero-filled, times scale.

    out[i][y, x] = X[row][y - dy, x - dx] where that lies inside the image, else 0: np.roll by
    (dy, dx) with the wrapped-around border zeroed. The move is drawn from row i's counters
    (shift_offsets); the rows of one image are copied as contiguous segments.
    """
    cdef Py_ssize_t i, y, x, row, dy, dx, first_x, last_x
    cdef Py_ssize_t n_features = height * width
    cdef const pixel* source
    cdef floating* target
    for i in range(count):
        row = indices[first + i] if indices != NULL else first + i
        prefetch_row_ahead(X, n_features * sizeof(pixel), indices, first, i, count)
        shift_offsets(row_bits(key, position + i), pixels, &dy, &dx)
        target = out + i * n_features
        memset(target, 0, n_features * sizeof(floating))
        first_x = max(0, dx)
        last_x = min(width, width + dx)
        for y in range(max(0, dy), min(height, height + dy)):
            source = X + row * n_features + (y - dy) * width    # not "- dx": no pointer before the array
            for x in range(first_x, last_x):
                target[y * width + x] = (<floating> source[x - dx]) * scale


cdef inline void gather_rows(floating* out,                            # OUT (count, n_features)
                             const floating* X,                        # IN  (n_samples, n_features)
                             Py_ssize_t n_features,
                             const Py_ssize_t* indices,                # IN  row numbers, or NULL
                             Py_ssize_t first, Py_ssize_t count) noexcept nogil:
    """out[i] = X[indices[first + i]]: inputs already in the parameters' dtype are copied as they are."""
    cdef Py_ssize_t i, row
    if indices == NULL:
        memcpy(out, X + first * n_features, count * n_features * sizeof(floating))
        return
    for i in range(count):
        row = indices[first + i]
        memcpy(out + i * n_features, X + row * n_features, n_features * sizeof(floating))


# ---------------------------------------------------------------- forward

cdef inline void dropout_row(floating* a,                             # IN/OUT (n,)
                             Py_ssize_t n, uint32_t bits,              # bits: the row's (row_bits)
                             uint32_t threshold, floating scale) noexcept nogil:
    """Inverted dropout of one row: a[j] *= scale where unit j is kept, *= 0 where it is dropped.

    Unit j's bits are mix32(bits + j * GOLDEN32), kept when their top 24 bits are >= threshold.
    The counter advances by addition and the factor is a select of two constants, so the loop
    vectorizes (a select between a[j] * scale and 0 did not: GCC moves the multiply into the
    branch and, honouring FP traps, cannot if-convert it). A dropped NaN stays NaN, so a
    diverging batch is still seen.
    """
    cdef Py_ssize_t j
    cdef uint32_t counter = bits
    cdef floating factor
    for j in range(n):
        factor = scale if (mix32(counter) >> 8) >= threshold else 0
        a[j] = a[j] * factor
        counter = counter + GOLDEN32


cdef inline void dropout_forward(floating* A,                          # IN/OUT (rows, n)
                                 Py_ssize_t rows, Py_ssize_t n,
                                 const Mask* mask) noexcept nogil:
    """Inverted dropout in place on any layer's output (or the inputs): kept units times 1/(1 - rate), dropped times 0.

    bias_activation_forward applies the same mask in its epilogue; this pass is for outputs
    computed another way (the gathered inputs; products with their own fused epilogue).
    """
    cdef Py_ssize_t i
    cdef floating scale = <floating> keep_scale(mask.threshold)
    for i in range(rows):
        dropout_row(A + i * n, n, row_bits(mask.key, mask.position + i), mask.threshold, scale)


cdef inline void bias_activation_row(floating* row,                    # IN/OUT (n,)
                                     const floating* b,                # IN     (n,)
                                     Py_ssize_t n, int activation) noexcept nogil:
    """row += b, then the activation in place, a loop of its own per activation so each vectorizes."""
    cdef Py_ssize_t j
    cdef floating z, e
    cdef floating one = 1    # typed: a bare 1 in an expression is a C double, and float math would widen
    if activation == ACTIVATION_RELU:
        for j in range(n):
            z = row[j] + b[j]
            row[j] = 0 if z < 0 else z
    elif activation == ACTIVATION_TANH:
        for j in range(n):
            row[j] = tanh_(row[j] + b[j])
    elif activation == ACTIVATION_LOGISTIC:
        for j in range(n):
            z = row[j] + b[j]
            e = exp_(-fabs_(z))
            row[j] = (one if z >= 0 else e) / (one + e)
    else:
        for j in range(n):
            row[j] = row[j] + b[j]


cdef inline void bias_activation_forward(floating* Z,                  # IN/OUT (rows, n)
                                         const floating* b,            # IN     (n,)
                                         Py_ssize_t rows, Py_ssize_t n,
                                         int activation,
                                         const Mask* mask) noexcept nogil:   # IN dropout, or NULL
    """Z += b, then the activation in place, then (with a mask) dropout: one pass, each row still in L1.

    ReLU: NaN stays NaN (as np.maximum), so divergence is still seen. Logistic is computed as
    (1 or e) / (1 + e) with e = exp(-|z|): never exp of a large positive number, so it is
    exact in the tails where 1 / (1 + exp(-z)) overflows. Identity is the output layer's
    (its logits go to the loss). The mask is drawn from counters (_counters.pxd), so no mask
    array exists: the backward pass draws it again.
    """
    cdef Py_ssize_t i
    cdef floating scale = <floating> keep_scale(mask.threshold) if mask != NULL else 1
    for i in range(rows):
        bias_activation_row(Z + i * n, b, n, activation)
        if mask != NULL:
            dropout_row(Z + i * n, n, row_bits(mask.key, mask.position + i), mask.threshold, scale)


cdef inline floating row_max_argmax(const floating* z, Py_ssize_t k, Py_ssize_t* argmax) noexcept nogil:
    """The largest of z[0:k] and the index of its first occurrence (np.argmax's tie rule)."""
    cdef Py_ssize_t j
    cdef floating best = z[0]
    argmax[0] = 0
    for j in range(1, k):
        if z[j] > best:
            best = z[j]
            argmax[0] = j
    return best


cdef inline floating softmax_forward(floating* z, Py_ssize_t k, Py_ssize_t* argmax) noexcept nogil:
    """z (k,) := softmax(z) in place, max subtracted so exp never overflows; returns sum(exp(z - max)).

    Sets argmax to the first index of the largest input (the prediction).
    """
    cdef Py_ssize_t j
    cdef floating row_max = row_max_argmax(z, k, argmax)
    cdef floating sum_exp = 0
    for j in range(k):
        z[j] = exp_(z[j] - row_max)
        sum_exp = sum_exp + z[j]
    for j in range(k):
        z[j] = z[j] / sum_exp
    return sum_exp


cdef inline floating cross_entropy_forward_backward(floating* z,       # IN logits (k,) / OUT dlogits
                                                    Py_ssize_t k, int label, floating m,
                                                    Py_ssize_t* argmax) noexcept nogil:
    """Per-sample loss log(sum exp z) + max - z_label; z := (softmax(z) - onehot(label)) / m.

    m is the size of the whole batch the gradient is averaged over. Stable for any finite z:
    the exponents are <= 0 and the loss never forms log(p) of an underflowed p.
    """
    cdef Py_ssize_t j
    cdef floating row_max = row_max_argmax(z, k, argmax)
    cdef floating z_label = z[label]
    cdef floating sum_exp = 0
    cdef floating loss
    for j in range(k):
        z[j] = exp_(z[j] - row_max)
        sum_exp = sum_exp + z[j]
    loss = (log_(sum_exp) + row_max) - z_label
    for j in range(k):
        z[j] = z[j] / sum_exp
    z[label] = z[label] - 1
    for j in range(k):
        z[j] = z[j] / m
    return loss


cdef inline floating mse_forward_backward(floating* z,                 # IN logits (k,) / OUT dlogits
                                          Py_ssize_t k, int label, floating m,
                                          Py_ssize_t* argmax) noexcept nogil:
    """Per-sample loss sum_j (p_j - onehot_j)^2 with p = softmax(z); z := its gradient / m.

    Through the softmax: g = 2 (p - onehot) / m, dz = p * (g - sum_j g_j p_j).
    """
    cdef Py_ssize_t j
    cdef floating residual, g, loss = 0, g_dot_p = 0
    softmax_forward(z, k, argmax)
    for j in range(k):
        residual = z[j] - 1 if j == label else z[j]
        loss = loss + residual * residual
        g = 2 * residual / m
        g_dot_p = g_dot_p + g * z[j]
    for j in range(k):
        residual = z[j] - 1 if j == label else z[j]
        g = 2 * residual / m
        z[j] = z[j] * (g - g_dot_p)
    return loss


# ---------------------------------------------------------------- backward

cdef inline void bias_backward(floating* db,                           # IN/OUT (n,)
                               const floating* dZ,                     # IN     (rows, n)
                               Py_ssize_t rows, Py_ssize_t n) noexcept nogil:
    """db += sum over rows of dZ (a bias gradient; the caller zeroes db once per batch)."""
    cdef Py_ssize_t i, j
    cdef const floating* row
    for i in range(rows):
        row = dZ + i * n
        for j in range(n):
            db[j] = db[j] + row[j]


cdef inline void activation_backward(floating* dA,                     # IN dA / OUT dZ (rows, n)
                                     const floating* A,                # IN the layer's output (rows, n)
                                     Py_ssize_t rows, Py_ssize_t n,
                                     floating* db,                     # IN/OUT (n,), or NULL
                                     int activation,
                                     const Mask* mask) noexcept nogil:   # IN the forward pass's dropout, or NULL
    """dZ = dA * f'(Z) in place, f' written from the output A; db += column sums of dZ in the same pass.

    f'(Z): ReLU 1[A > 0], tanh 1 - A^2, logistic A (1 - A), identity 1. ReLU is a select,
    which compiles to a branch-free vector blend (a multiply by the mask compiled to an
    unpredictable branch and took 5% of an epoch). It differs from numpy's dA *= (A > 0)
    only for a non-finite dA where A <= 0, which needs a non-finite forward pass: that
    batch's loss is not finite and its gradient is never applied.

    With dropout, A is the dropped, scaled output: the gradient through the mask is dA times
    scale where kept, times 0 where dropped, and f' reads the activation A * (1 - rate). ReLU
    needs no mask: a dropped unit's output is 0, where ReLU's f' is 0 too (dA * (scale or 0),
    as numpy's dA * scale * (A > 0)); the others draw it again from the counters. Without
    dropout the unscaling factor is 1, which changes no bit.
    """
    cdef Py_ssize_t i, j
    cdef floating one = 1    # typed: a bare 1 in an expression is a C double, and float math would widen
    cdef floating scale = <floating> keep_scale(mask.threshold) if mask != NULL else 1
    cdef floating unscale = <floating> drop_unscale(mask.threshold) if mask != NULL else 1
    cdef floating t, factor
    cdef floating* d
    cdef const floating* a
    for i in range(rows):
        d = dA + i * n
        a = A + i * n
        if activation == ACTIVATION_RELU and mask == NULL:
            for j in range(n):
                d[j] = d[j] if a[j] > 0 else 0
        elif activation == ACTIVATION_RELU:
            for j in range(n):
                factor = scale if a[j] > 0 else 0    # a select of constants vectorizes (see dropout_row)
                d[j] = d[j] * factor
        else:
            if mask != NULL:
                dropout_row(d, n, row_bits(mask.key, mask.position + i), mask.threshold, scale)
            if activation == ACTIVATION_TANH:
                for j in range(n):
                    t = a[j] * unscale
                    d[j] = d[j] * (one - t * t)
            elif activation == ACTIVATION_LOGISTIC:
                for j in range(n):
                    t = a[j] * unscale
                    d[j] = d[j] * (t * (one - t))
        if db != NULL:
            for j in range(n):
                db[j] = db[j] + d[j]


# ---------------------------------------------------------------- optimizer updates, one pass each

cdef inline void sgd_update(floating* params,                          # IN/OUT (n,)
                            const floating* grad,                      # IN     (n,)
                            floating* velocity,                        # IN/OUT (n,), unused if momentum == 0
                            Py_ssize_t n, floating lr, floating momentum, bint nesterov,
                            floating weight_decay) noexcept nogil:
    """g = grad + wd * theta; v = momentum * v + g; step = g + momentum * v (Nesterov) or v; theta -= lr * step.

    The four cases are separate loops so each one vectorizes without branches.
    """
    cdef Py_ssize_t i
    cdef floating g, v
    if momentum == 0:
        if weight_decay == 0:
            for i in range(n):
                params[i] = params[i] - lr * grad[i]
        else:
            for i in range(n):
                g = grad[i] + weight_decay * params[i]
                params[i] = params[i] - lr * g
    elif nesterov:
        for i in range(n):
            g = grad[i] + weight_decay * params[i] if weight_decay != 0 else grad[i]
            v = velocity[i] * momentum + g
            velocity[i] = v
            params[i] = params[i] - lr * (g + momentum * v)
    else:
        for i in range(n):
            g = grad[i] + weight_decay * params[i] if weight_decay != 0 else grad[i]
            v = velocity[i] * momentum + g
            velocity[i] = v
            params[i] = params[i] - lr * v


cdef inline void adam_update(floating* params,                         # IN/OUT (n,)
                             const floating* grad,                     # IN     (n,)
                             floating* m, floating* v,                 # IN/OUT (n,) moment estimates
                             Py_ssize_t n, floating lr, floating beta1, floating beta2,
                             floating one_minus_beta1, floating one_minus_beta2,
                             floating bias_correction1, floating bias_correction2,
                             floating eps, floating weight_decay) noexcept nogil:
    """Adam with bias correction; bias_correction_i = 1 - beta_i ** t, computed by the caller.

    theta -= lr * (m / bc1) / (sqrt(v / bc2) + eps), in numpy_backend.adam_update's order.
    """
    cdef Py_ssize_t i
    cdef floating g, m_i, v_i
    for i in range(n):
        g = grad[i] + weight_decay * params[i] if weight_decay != 0 else grad[i]
        m_i = m[i] * beta1 + one_minus_beta1 * g
        v_i = v[i] * beta2 + (one_minus_beta2 * g) * g
        m[i] = m_i
        v[i] = v_i
        params[i] = params[i] - (lr * (m_i / bias_correction1)) / (sqrt_(v_i / bias_correction2) + eps)
