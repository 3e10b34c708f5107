# cython: language_level=3
"""The fused element-wise kernels of the compiled core, one op each, on raw row-major buffers.

Each kernel is the C twin of a function in nncore/backends/numpy_backend.py and follows its
operation order, so float64 results agree to rounding and float32 results to a few ulps.
Shapes are given as (rows, columns); every buffer is C-contiguous. Nothing here allocates,
checks shapes or touches Python: the callers in _core.pyx validated everything once.
"""
from cython cimport floating
from libc.math cimport exp, expf, fabs, fabsf, log, logf, sqrt, sqrtf, tanh, tanhf
from libc.string cimport memcpy, memset

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

cdef inline void gather_scale_uint8(floating* out,                     # OUT (count, n_features)
                                    const unsigned char* X,            # IN  (n_samples, n_features)
                                    Py_ssize_t n_features,
                                    const Py_ssize_t* indices,         # IN  row numbers, or NULL
                                    Py_ssize_t first, Py_ssize_t count,
                                    floating scale) noexcept nogil:
    """out[i] = X[indices[first + i]] * scale (X[first + i] when indices is NULL), uint8 -> float."""
    cdef Py_ssize_t i, j, row, line
    cdef const unsigned char* source
    cdef const unsigned char* upcoming
    cdef floating* target
    for i in range(count):
        row = indices[first + i] if indices != NULL else first + i
        if indices != NULL and i + PREFETCH_ROWS < count:
            upcoming = X + indices[first + i + PREFETCH_ROWS] * n_features
            for line in range(0, n_features, 64):    # one request per 64-byte cache line
                nncore_prefetch(upcoming + line)
        source = X + row * n_features
        target = out + i * n_features
        for j in range(n_features):
            target[j] = (<floating> source[j]) * scale


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

cdef inline void bias_activation_forward(floating* Z,                  # IN/OUT (rows, n)
                                         const floating* b,            # IN     (n,)
                                         Py_ssize_t rows, Py_ssize_t n,
                                         int activation) noexcept nogil:
    """Z += b, then the activation in place: one pass, a loop of its own per activation so each vectorizes.

    ReLU: NaN stays NaN (as np.maximum), so divergence is still seen. Logistic is computed as
    (1 or e) / (1 + e) with e = exp(-|z|): never exp of a large positive number, so it is
    exact in the tails where 1 / (1 + exp(-z)) overflows. Identity is the output layer's
    (its logits go to the loss).
    """
    cdef Py_ssize_t i, j
    cdef floating z, e
    cdef floating one = 1    # typed: a bare 1 in an expression is a C double, and float math would widen
    cdef floating* row
    if activation == ACTIVATION_RELU:
        for i in range(rows):
            row = Z + i * n
            for j in range(n):
                z = row[j] + b[j]
                row[j] = 0 if z < 0 else z
    elif activation == ACTIVATION_TANH:
        for i in range(rows):
            row = Z + i * n
            for j in range(n):
                row[j] = tanh_(row[j] + b[j])
    elif activation == ACTIVATION_LOGISTIC:
        for i in range(rows):
            row = Z + i * n
            for j in range(n):
                z = row[j] + b[j]
                e = exp_(-fabs_(z))
                row[j] = (one if z >= 0 else e) / (one + e)
    else:
        for i in range(rows):
            row = Z + i * n
            for j in range(n):
                row[j] = row[j] + b[j]


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
                                     const floating* A,                # IN the activation's output (rows, n)
                                     Py_ssize_t rows, Py_ssize_t n,
                                     floating* db,                     # IN/OUT (n,), or NULL
                                     int activation) noexcept nogil:
    """dZ = dA * f'(Z) in place, f' written from the output A; db += column sums of dZ in the same pass.

    f'(Z): ReLU 1[A > 0], tanh 1 - A^2, logistic A (1 - A), identity 1. ReLU is a select,
    which compiles to a branch-free vector blend (a multiply by the mask compiled to an
    unpredictable branch and took 5% of an epoch). It differs from numpy's dA *= (A > 0)
    only for a non-finite dA where A <= 0, which needs a non-finite forward pass: that
    batch's loss is not finite and its gradient is never applied.
    """
    cdef Py_ssize_t i, j
    cdef floating one = 1    # typed: a bare 1 in an expression is a C double, and float math would widen
    cdef floating* d
    cdef const floating* a
    for i in range(rows):
        d = dA + i * n
        a = A + i * n
        if activation == ACTIVATION_RELU:
            for j in range(n):
                d[j] = d[j] if a[j] > 0 else 0
        elif activation == ACTIVATION_TANH:
            for j in range(n):
                d[j] = d[j] * (one - a[j] * a[j])
        elif activation == ACTIVATION_LOGISTIC:
            for j in range(n):
                d[j] = d[j] * (a[j] * (one - a[j]))
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
