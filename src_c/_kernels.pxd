# cython: language_level=3
"""The fused element-wise kernels of the compiled core, one op each, on raw row-major buffers.

Each kernel is the C twin of a function in nncore/backends/numpy_backend.py and follows its
operation order, so float64 results agree to rounding and float32 results to a few ulps.
Shapes are given as (rows, columns); every buffer is C-contiguous. Nothing here allocates,
checks shapes or touches Python: the callers in _core.pyx validated everything once.
"""
from cython cimport floating
from libc.math cimport exp, expf, log, logf, pow, sqrt, sqrtf
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset

from _counters cimport GOLDEN32, Mask, drop_unscale, keep_scale, mix32, row_bits, shift_offsets
from _ops cimport (NNCORE_ACTIVATION_IDENTITY, NNCORE_ACTIVATION_RELU, NNCORE_OPTIMIZER_ADAM, NNCORE_OPTIMIZER_ADAMW,
                   NNCORE_OPTIMIZER_RMSPROP, OptimizerConfig, activate, derivative, nncore_activation_reads_input)

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
                                     const floating* b,                # IN     (n,), or NULL: no bias
                                     Py_ssize_t n, int activation,
                                     floating* kept) noexcept nogil:   # OUT (n,) z before the activation, or NULL
    """row += b, kept as it is in ``kept`` when asked, then the activation in place (ops.h).

    ReLU has a loop of its own that vectorizes (a select); every other activation calls ops.h's
    scalar definition.
    """
    cdef Py_ssize_t j
    cdef floating z
    if activation == NNCORE_ACTIVATION_RELU and b != NULL and kept == NULL:
        for j in range(n):
            z = row[j] + b[j]
            row[j] = 0 if z < 0 else z
        return
    for j in range(n):
        z = row[j] + b[j] if b != NULL else row[j]
        if kept != NULL:
            kept[j] = z
        row[j] = activate(activation, z)


cdef inline void bias_activation_forward(floating* Z,                  # IN/OUT (rows, n)
                                         const floating* b,            # IN     (n,), or NULL: no bias
                                         Py_ssize_t rows, Py_ssize_t n,
                                         int activation,
                                         const Mask* mask,             # IN dropout, or NULL
                                         floating* kept) noexcept nogil:   # OUT (rows, n) z, or NULL
    """Z += b, then the activation in place, then (with a mask) dropout: one pass, each row still in L1.

    ``kept`` receives z = Z + b before the activation, for activations whose derivative reads
    their input (ops.h, nncore_activation_reads_input). ReLU: NaN stays NaN (as np.maximum), so
    divergence is still seen. Identity is the output layer's (its logits go to the loss). The
    mask is drawn from counters (_counters.pxd), so no mask array exists: the backward pass
    draws it again.
    """
    cdef Py_ssize_t i
    cdef floating scale = <floating> keep_scale(mask.threshold) if mask != NULL else 1
    for i in range(rows):
        bias_activation_row(Z + i * n, b, n, activation, kept + i * n if kept != NULL else NULL)
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
                                     const floating* Z,                # IN its input z (rows, n) when kept, else NULL
                                     Py_ssize_t rows, Py_ssize_t n,
                                     floating* db,                     # IN/OUT (n,), or NULL
                                     int activation,
                                     const Mask* mask) noexcept nogil:   # IN the forward pass's dropout, or NULL
    """dZ = dA * f'(z) in place, f' from ops.h; db += column sums of dZ in the same pass.

    f' reads the layer's output A, or its input Z for activations that need it
    (nncore_activation_reads_input). ReLU is a select, which compiles to a branch-free vector
    blend (a multiply by the mask compiled to an unpredictable branch and took 5% of an epoch).
    It differs from numpy's dA *= (A > 0) only for a non-finite dA where A <= 0, which needs a
    non-finite forward pass: that batch's loss is not finite and its gradient is never applied.

    With dropout, A is the dropped, scaled output: the gradient through the mask is dA times
    scale where kept, times 0 where dropped, and f' reads the activation A * (1 - rate). ReLU
    needs no mask: a dropped unit's output is 0, where ReLU's f' is 0 too (dA * (scale or 0),
    as numpy's dA * scale * (A > 0)); the others draw it again from the counters. Without
    dropout the unscaling factor is 1, which changes no bit.
    """
    cdef Py_ssize_t i, j
    cdef floating scale = <floating> keep_scale(mask.threshold) if mask != NULL else 1
    cdef floating unscale = <floating> drop_unscale(mask.threshold) if mask != NULL else 1
    cdef floating factor
    cdef floating* d
    cdef const floating* a
    cdef bint from_input = nncore_activation_reads_input(activation)
    for i in range(rows):
        d = dA + i * n
        a = (Z if from_input else A) + i * n
        if activation == NNCORE_ACTIVATION_RELU and mask == NULL:
            for j in range(n):
                d[j] = d[j] if a[j] > 0 else 0
        elif activation == NNCORE_ACTIVATION_RELU:
            for j in range(n):
                factor = scale if a[j] > 0 else 0    # a select of constants vectorizes (see dropout_row)
                d[j] = d[j] * factor
        else:
            if mask != NULL:
                dropout_row(d, n, row_bits(mask.key, mask.position + i), mask.threshold, scale)
            if from_input:
                for j in range(n):
                    d[j] = d[j] * derivative(activation, a[j])
            elif activation != NNCORE_ACTIVATION_IDENTITY:
                for j in range(n):
                    d[j] = d[j] * derivative(activation, a[j] * unscale)
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
                             floating eps, floating weight_decay,
                             bint decoupled, floating decay) noexcept nogil:
    """Adam with bias correction; bias_correction_i = 1 - beta_i ** t, computed by the caller.

    theta -= lr * (m / bc1) / (sqrt(v / bc2) + eps), in nncore.optim.adam_update's order. Weight
    decay is L2 (added to the gradient), or, ``decoupled`` (AdamW), theta *= decay before the step,
    decay = 1 - lr * weight_decay computed by the caller.
    """
    cdef Py_ssize_t i
    cdef floating g, m_i, v_i, theta
    for i in range(n):
        theta = params[i]
        if decoupled:
            g = grad[i]
            if weight_decay != 0:
                theta = theta * decay
        else:
            g = grad[i] + weight_decay * theta if weight_decay != 0 else grad[i]
        m_i = m[i] * beta1 + one_minus_beta1 * g
        v_i = v[i] * beta2 + (one_minus_beta2 * g) * g
        m[i] = m_i
        v[i] = v_i
        params[i] = theta - (lr * (m_i / bias_correction1)) / (sqrt_(v_i / bias_correction2) + eps)


cdef inline void rmsprop_update(floating* params,                      # IN/OUT (n,)
                                const floating* grad,                  # IN     (n,)
                                floating* square_avg,                  # IN/OUT (n,)
                                floating* momentum_buffer,             # IN/OUT (n,), unused if momentum == 0
                                floating* grad_avg,                    # IN/OUT (n,), unused unless centered
                                Py_ssize_t n, floating lr, floating alpha, floating one_minus_alpha,
                                floating eps, floating weight_decay, floating momentum,
                                bint centered) noexcept nogil:
    """RMSprop as torch.optim.RMSprop, in nncore.optim.rmsprop_update's order.

    s = alpha s + (1 - alpha) g^2; centered: a = alpha a + (1 - alpha) g, s_hat = s - a^2 (a
    negative rounding residue is taken as 0); denominator sqrt(s_hat) + eps; momentum:
    buf = momentum buf + g / denominator, theta -= lr buf; else theta -= lr g / denominator.
    """
    cdef Py_ssize_t i
    cdef floating g, s, a, denominator, buffer
    for i in range(n):
        g = grad[i] + weight_decay * params[i] if weight_decay != 0 else grad[i]
        s = square_avg[i] * alpha + (one_minus_alpha * g) * g
        square_avg[i] = s
        if centered:
            a = grad_avg[i] * alpha + one_minus_alpha * g
            grad_avg[i] = a
            s = s - a * a
            s = 0 if s < 0 else s    # NaN stays NaN
        denominator = sqrt_(s) + eps
        if momentum != 0:
            buffer = momentum_buffer[i] * momentum + g / denominator
            momentum_buffer[i] = buffer
            params[i] = params[i] - lr * buffer
        else:
            params[i] = params[i] - lr * (g / denominator)


cdef inline void apply_update(const OptimizerConfig* opt,
                              floating* params, const floating* grad,   # IN/OUT, IN (n,)
                              floating** states,                        # IN/OUT the kind's state buffers (n,) each
                              Py_ssize_t n, long long step_number) noexcept nogil:
    """The optimizer's rule over n entries of the flat buffers; ``step_number`` counts from 1.

    Hyperparameters are read by name (ops.h's nncore_optimizer_config) and cast to the floating
    type once. Any stretch of the buffers may be updated on its own: every rule is element-wise.
    """
    cdef double beta1 = opt.beta1, beta2 = opt.beta2
    if opt.kind == NNCORE_OPTIMIZER_ADAM or opt.kind == NNCORE_OPTIMIZER_ADAMW:
        adam_update(params, grad, states[0], states[1], n, <floating> opt.lr, <floating> beta1, <floating> beta2,
                    <floating> (1.0 - beta1), <floating> (1.0 - beta2),
                    <floating> (1.0 - pow(beta1, <double> step_number)),
                    <floating> (1.0 - pow(beta2, <double> step_number)),
                    <floating> opt.eps, <floating> opt.weight_decay, opt.kind == NNCORE_OPTIMIZER_ADAMW,
                    <floating> (1.0 - opt.lr * opt.weight_decay))
    elif opt.kind == NNCORE_OPTIMIZER_RMSPROP:
        rmsprop_update(params, grad, states[0], states[1], states[2], n, <floating> opt.lr, <floating> opt.alpha,
                       <floating> (1.0 - opt.alpha), <floating> opt.eps, <floating> opt.weight_decay,
                       <floating> opt.momentum, opt.centered != 0)
    else:    # SGD
        sgd_update(params, grad, states[0], n, <floating> opt.lr, <floating> opt.momentum, opt.nesterov != 0,
                   <floating> opt.weight_decay)
