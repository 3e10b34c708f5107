# cython: language_level=3
"""The network passes: a chunk of rows forward, its loss, backward; a batch's gradient; inference;
the optimizer's update over the flat buffers.

``Layout`` mirrors nncore.network.Network: the layer widths, where each W_l (fan_in, fan_out,
row-major) and b_l (fan_out,) start in the flat parameter buffer, and each layer's activation
(the output layer's is identity: its logits go to the loss). _core.pyx fills it from a private,
bounds-checked copy of ``Network.table`` and adds the workspace offsets.

A batch larger than the workspace (``chunk_rows``) is processed chunk by chunk, accumulating dW
with gemm beta = 1 and db by column sums, with dlogits scaled by 1/m for the whole batch: the
same gradient as one big batch, without an (m, n_inputs) workspace.

Products use the BLAS shim's column-major ``gemm`` with the operands swapped (see _blas.pxd):
each call is commented with the row-major product it computes. A narrow layer (``packed_offsets[l]``
>= 0, fan_out at most _core's NARROW_MAX_WIDTH) runs its dW and dA products in the narrow kernels
of _narrow.pxd instead, and its forward too when fan_out is at most ``narrow_forward_width``: there
BLAS spends its time packing and leaves most vector lanes idle. The narrow forward fuses bias and
activation, the input gradient the activation's derivative and the previous bias gradient; a
narrow first layer reads uint8 rows straight from X (no gather pass): its forward converts them in
registers and, for a chunk small enough to stay in L2, leaves them unscaled in the inputs workspace,
where its dW reads them with the 1/255 folded into the product's scale.

The narrow kernels read W as W^T (fan_out, packed_stride(fan_in)), zero past fan_in. Training
(``weights_transposed``) holds a narrow layer's W that way in the parameter buffer itself, its
gradient and optimizer state alike (_core.pyx lays the buffers out so for the call and back):
dW^T is accumulated where the update reads it, and no step transposes anything. Inference keeps
the caller's (fan_in, fan_out) W and packs W^T once per chunk into ``packed``. Every backward
pass runs on the transposed layout.

Training may add ``Noise`` (nncore.counters): dropout on the inputs or a hidden layer's output
(a "site": activation index 0 is the inputs, l + 1 layer l's output) and random shifts of
the input images, each drawn from counters keyed by the epoch's seed and a row's position in
the epoch's order, so the passes take the first row's position along with a chunk.
Inference passes no noise. With noise, a narrow layer's output dropout is a pass of its own
after the narrow forward; the dA into a dropped-out layer runs on BLAS (the narrow dA fuses f'
but knows no mask); and the first layer reads the gathered rows when the inputs are shifted
or dropped out.
"""
from cython cimport floating
from libc.math cimport pow
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy, memset

from _blas cimport gemm
from _counters cimport SHIFT_SITE, Mask, site_key
cimport _kernels as k
cimport _narrow as narrow

cdef enum:
    # The losses; nncore/losses.py's registry holds the same codes.
    LOSS_CROSS_ENTROPY = 0
    LOSS_MSE = 1
    N_LOSSES = 2
    LOSS_NONE = 3        # forward only: probabilities

cdef enum:
    # A first layer reading uint8 pixels keeps them converted for its dW when they fill at most this.
    KEEP_CONVERTED_BYTES = 262144

cdef enum:
    # The optimizer kinds; each class in nncore/optim.py names its code and lists its
    # hyperparameters in the order apply_update reads them.
    OPTIMIZER_SGD = 0
    OPTIMIZER_ADAM = 1
    N_OPTIMIZERS = 2
    MAX_HYPERPARAMETERS = 8


cdef struct Layout:
    Py_ssize_t n_layers
    const Py_ssize_t* sizes          # (n_layers + 1,) widths, inputs first
    const Py_ssize_t* w_offsets      # (n_layers,) where W_l starts in the flat buffer
    const Py_ssize_t* b_offsets      # (n_layers,) where b_l starts
    const Py_ssize_t* activations    # (n_layers,) ACTIVATION_* of each layer's output
    const Py_ssize_t* act_offsets    # (n_layers,) where layer l's output starts in the activations workspace
    Py_ssize_t chunk_rows            # rows the workspaces hold
    const Py_ssize_t* packed_offsets # (n_layers,) where narrow layer l's packed W^T starts in ``packed``; -1: BLAS
    void* packed                     # floating workspace of the packed W^T, refilled by every inference chunk
    Py_ssize_t narrow_forward_width  # a narrow layer's forward too runs narrow when fan_out is at most this
    bint weights_transposed          # narrow layers' W is W^T (fan_out, packed_stride(fan_in)) at w_offsets[l]


cdef struct Noise:
    # The randomness of one training pass; _core.pyx fills it from a private, checked copy.
    uint64_t seed                        # the epoch's seed (32 bits), keying every draw
    const Py_ssize_t* drop_thresholds    # (n_layers,) per site: round(rate * 2^24), 0 for no dropout
    Py_ssize_t shift                     # the most pixels an image moves each way; 0: no shift
    Py_ssize_t image_height, image_width  # height * width == sizes[0] when shift > 0


cdef struct OptimizerConfig:
    int kind                                         # OPTIMIZER_*
    double hyperparameters[MAX_HYPERPARAMETERS]      # in the order of the class's core_hyperparameters()
    long long step0                                  # updates applied before this call


cdef inline const Mask* site_mask(const Noise* noise, Py_ssize_t site, Py_ssize_t position,
                                  Mask* mask) noexcept nogil:     # OUT filled when there is dropout
    """The dropout mask of ``site`` for rows from ``position`` on (in ``mask``), or NULL for none."""
    if noise == NULL or noise.drop_thresholds[site] == 0:
        return NULL
    mask.key = site_key(noise.seed, site)
    mask.position = position
    mask.threshold = <uint32_t> noise.drop_thresholds[site]
    return mask


cdef inline bint reads_pixels(const Layout* net, const unsigned char* X_uint8, const Noise* noise) noexcept nogil:
    """Whether the first layer reads uint8 rows of X itself (narrow), so no chunk is gathered."""
    if noise != NULL and (noise.shift > 0 or noise.drop_thresholds[0] != 0):
        return False    # the inputs are shifted or dropped out while gathered
    return X_uint8 != NULL and net.packed_offsets[0] >= 0 and net.sizes[1] <= net.narrow_forward_width


cdef inline const floating* narrow_weights(const Layout* net, Py_ssize_t l, const floating* params) noexcept nogil:
    """Narrow layer l's W^T: in ``params`` when the weights are held transposed, else forward_chunk's packed copy."""
    if net.weights_transposed:
        return params + net.w_offsets[l]
    return <floating*> net.packed + net.packed_offsets[l]


cdef inline Py_ssize_t narrow_stride(const Layout* net, Py_ssize_t l) noexcept nogil:
    """The row length of narrow layer l's W^T."""
    return narrow.nncore_narrow_packed_stride(net.sizes[l])


cdef inline void forward_chunk(const Layout* net, const floating* params,
                               const floating* inputs,       # IN  (rows, sizes[0]); unused when pixels
                               const unsigned char* pixels,  # IN  uint8 rows of X when reads_pixels, else NULL
                               const Py_ssize_t* pixel_rows, # IN  (rows,) which rows of pixels, or NULL: in order
                               floating* converted,          # OUT (rows, sizes[0]) the pixels as read, or NULL
                               floating scale,               # the pixels' scale (1/255)
                               Py_ssize_t rows,
                               floating* acts,               # OUT per layer (rows, sizes[l + 1])
                               const Noise* noise,           # IN  dropout of the hidden layers, or NULL
                               Py_ssize_t position) noexcept nogil:  # the first row's place in the epoch
    """Activations of every layer; the last layer's output (logits, bias added) ends the chain."""
    cdef Py_ssize_t l, fan_in, fan_out
    cdef const floating* A = inputs
    cdef floating* Z
    cdef Mask mask
    cdef bint narrow_forward
    for l in range(net.n_layers):
        fan_in = net.sizes[l]
        fan_out = net.sizes[l + 1]
        Z = acts + net.act_offsets[l]
        narrow_forward = net.packed_offsets[l] >= 0 and fan_out <= net.narrow_forward_width
        if narrow_forward and not net.weights_transposed:
            # Inference: K * n moves per chunk beside rows * K * n FMAs.
            narrow.pack(<floating*> narrow_weights(net, l, params), params + net.w_offsets[l], fan_out, fan_in,
                        fan_out)
        if narrow_forward:
            if l == 0 and pixels != NULL:
                narrow.forward_u8(Z, fan_out, pixels, fan_in, pixel_rows, converted, fan_in, narrow_weights(net, l, params),
                                  params + net.b_offsets[l], scale, rows, fan_in, fan_out, narrow_activation(net, l))
            else:
                narrow.forward(Z, fan_out, A, fan_in, narrow_weights(net, l, params), params + net.b_offsets[l], 1,
                               rows, fan_in, fan_out, narrow_activation(net, l))
            if l + 1 < net.n_layers and site_mask(noise, l + 1, position, &mask) != NULL:
                k.dropout_forward(Z, rows, fan_out, &mask)
        elif net.packed_offsets[l] >= 0 and net.weights_transposed:
            # Z (rows, out) = A (rows, in) . (W^T)^T
            gemm(c't', c'n', <int> fan_out, <int> rows, <int> fan_in, 1, params + net.w_offsets[l],
                 <int> narrow_stride(net, l), A, <int> fan_in, 0, Z, <int> fan_out)
            k.bias_activation_forward(Z, params + net.b_offsets[l], rows, fan_out, <int> net.activations[l],
                                      site_mask(noise, l + 1, position, &mask) if l + 1 < net.n_layers else NULL)
        else:
            # Z (rows, out) = A (rows, in) . W (in, out)
            gemm(c'n', c'n', <int> fan_out, <int> rows, <int> fan_in, 1, params + net.w_offsets[l],
                 <int> fan_out, A, <int> fan_in, 0, Z, <int> fan_out)
            k.bias_activation_forward(Z, params + net.b_offsets[l], rows, fan_out, <int> net.activations[l],
                                      site_mask(noise, l + 1, position, &mask) if l + 1 < net.n_layers else NULL)
        A = Z


cdef inline int narrow_activation(const Layout* net, Py_ssize_t l) noexcept nogil:
    """The narrow kernels' code of layer l's activation: theirs count NONE first (narrow.h)."""
    return <int> net.activations[l] + narrow.NNCORE_NARROW_IDENTITY - k.ACTIVATION_IDENTITY


cdef inline void loss_chunk(floating* logits,               # IN logits / OUT dlogits (rows, n_out)
                            Py_ssize_t rows, Py_ssize_t n_out,
                            const int* y, const Py_ssize_t* indices, Py_ssize_t first,  # labels y[row]
                            int loss_kind, floating m,
                            double* loss_sum, Py_ssize_t* n_correct) noexcept nogil:
    """Per-row softmax + loss + dlogits (/ m), adding the losses and correct predictions."""
    cdef Py_ssize_t i, row, argmax
    cdef int label
    cdef floating* z
    cdef double total = 0
    cdef Py_ssize_t correct = 0
    for i in range(rows):
        row = indices[first + i] if indices != NULL else first + i
        label = y[row]
        z = logits + i * n_out
        if loss_kind == LOSS_MSE:
            total += k.mse_forward_backward(z, n_out, label, m, &argmax)
        else:
            total += k.cross_entropy_forward_backward(z, n_out, label, m, &argmax)
        correct += argmax == label
    loss_sum[0] += total
    n_correct[0] += correct


cdef inline void backward_chunk(const Layout* net, const floating* params,
                                const floating* inputs,     # IN  (rows, sizes[0]), unused when pixels
                                const unsigned char* pixels, const Py_ssize_t* pixel_rows,  # as forward, or NULL
                                floating input_scale,       # what ``inputs`` or pixels are multiplied by
                                Py_ssize_t rows,
                                floating* acts,             # IN  activations, the logits replaced by dlogits
                                floating* grad,             # IN/OUT flat gradient
                                floating beta,              # 0: overwrite dW, 1: accumulate into dW
                                floating* delta_a, floating* delta_b,  # workspaces (rows, max hidden width)
                                const Noise* noise,         # IN  the forward pass's, or NULL
                                Py_ssize_t position) noexcept nogil:

    """dW_l (beta=0: =, beta=1: +=) A_{l-1}^T dZ_l; db_l += column sums of dZ_l; dZ flows back.

    On the transposed layout (``net.weights_transposed``): a narrow layer's dW^T goes where its
    W^T is. The bias gradients are only ever added to: the caller zeroes them once per batch.
    The first layer's dX is never formed.
    """
    cdef Py_ssize_t l, fan_in, fan_out
    cdef floating* dZ = acts + net.act_offsets[net.n_layers - 1]
    cdef floating* dA
    cdef floating* spare
    cdef const floating* A_prev
    cdef Mask mask
    cdef bint masked
    k.bias_backward(grad + net.b_offsets[net.n_layers - 1], dZ, rows, net.sizes[net.n_layers])
    for l in range(net.n_layers - 1, -1, -1):
        fan_in = net.sizes[l]
        fan_out = net.sizes[l + 1]
        A_prev = inputs if l == 0 else acts + net.act_offsets[l - 1]
        masked = l > 0 and site_mask(noise, l, position, &mask) != NULL
        if net.packed_offsets[l] >= 0:
            narrow_backward(net, params, l, A_prev, pixels if l == 0 else NULL, pixel_rows,
                            input_scale if l == 0 else 1, rows, dZ, grad, beta != 0, NULL if masked else delta_a)
        else:
            # dW (in, out) = A_prev^T (in, rows) . dZ (rows, out)
            gemm(c'n', c't', <int> fan_out, <int> fan_in, <int> rows, input_scale if l == 0 else 1, dZ,
                 <int> fan_out, A_prev, <int> fan_in, beta, grad + net.w_offsets[l], <int> fan_out)
        if l > 0:
            dA = delta_a
            if net.packed_offsets[l] >= 0 and masked:
                # dA (rows, in) = dZ (rows, out) . W^T (out, in), W^T held as it is
                gemm(c'n', c'n', <int> fan_in, <int> rows, <int> fan_out, 1, params + net.w_offsets[l],
                     <int> narrow_stride(net, l), dZ, <int> fan_out, 0, dA, <int> fan_in)
            elif net.packed_offsets[l] < 0:
                # dA (rows, in) = dZ (rows, out) . W^T (out, in)
                gemm(c't', c'n', <int> fan_in, <int> rows, <int> fan_out, 1, params + net.w_offsets[l],
                     <int> fan_out, dZ, <int> fan_out, 0, dA, <int> fan_in)
            if net.packed_offsets[l] < 0 or masked:
                k.activation_backward(dA, A_prev, rows, fan_in, grad + net.b_offsets[l - 1],
                                      <int> net.activations[l - 1], site_mask(noise, l, position, &mask))
            dZ = dA
            spare = delta_a
            delta_a = delta_b
            delta_b = spare


cdef inline void gather_inputs(const Layout* net,
                               const unsigned char* X_uint8, const floating* X_float,  # one of them, (n, sizes[0])
                               floating scale,
                               const Py_ssize_t* indices, Py_ssize_t first, Py_ssize_t rows,
                               floating* inputs,            # OUT (rows, sizes[0])
                               const Noise* noise,          # IN  shift and input dropout, or NULL
                               Py_ssize_t position) noexcept nogil:
    """A chunk's input rows, scaled if pixels; in training, shifted and dropped out as ``noise`` says."""
    cdef Py_ssize_t n_in = net.sizes[0]
    cdef Mask mask
    if noise != NULL and noise.shift > 0:
        if X_uint8 != NULL:
            k.gather_shifted(inputs, X_uint8, noise.image_height, noise.image_width, indices, first, rows,
                             scale, site_key(noise.seed, SHIFT_SITE), position, noise.shift)
        else:
            k.gather_shifted(inputs, X_float, noise.image_height, noise.image_width, indices, first, rows,
                             <floating> 1, site_key(noise.seed, SHIFT_SITE), position, noise.shift)
    elif X_uint8 != NULL:
        k.gather_scale_uint8(inputs, X_uint8, n_in, indices, first, rows, scale)
    else:
        k.gather_rows(inputs, X_float, n_in, indices, first, rows)
    if site_mask(noise, 0, position, &mask) != NULL:
        k.dropout_forward(inputs, rows, n_in, &mask)


cdef inline void narrow_backward(const Layout* net, const floating* params, Py_ssize_t l,
                                 const floating* A_prev,      # IN (rows, fan_in): layer l's input, times alpha
                                 const unsigned char* pixels, const Py_ssize_t* pixel_rows,  # or these uint8 rows
                                 floating alpha,
                                 Py_ssize_t rows, const floating* dZ, floating* grad, bint accumulate,
                                 floating* dA) noexcept nogil:  # OUT (rows, fan_in) when l > 0, or NULL: not here
    """A narrow layer's dW^T (= or +=), and for l > 0 (dA not NULL) its dA with f' of the previous layer and that db added."""
    cdef Py_ssize_t fan_in = net.sizes[l], fan_out = net.sizes[l + 1]
    cdef Py_ssize_t stride = narrow_stride(net, l)
    if pixels != NULL:
        narrow.weight_grad_u8(grad + net.w_offsets[l], stride, pixels, fan_in, pixel_rows, dZ, fan_out, alpha,
                              accumulate, rows, fan_in, fan_out)
    else:
        narrow.weight_grad(grad + net.w_offsets[l], stride, A_prev, fan_in, dZ, fan_out, alpha, accumulate, rows,
                           fan_in, fan_out)
    if l > 0 and dA != NULL:
        narrow.input_grad(dA, fan_in, dZ, fan_out, params + net.w_offsets[l], A_prev, fan_in,
                          narrow_activation(net, l - 1), grad + net.b_offsets[l - 1], rows, fan_in, fan_out)


cdef inline void chunk_gradient(const Layout* net, const floating* params,
                                const unsigned char* X_uint8, const floating* X_float,  # one of them, (n, sizes[0])
                                floating scale, const int* y,
                                const Py_ssize_t* indices,  # the chunk's rows are indices[first:first+rows] (or first..)
                                Py_ssize_t first, Py_ssize_t rows,
                                Py_ssize_t m,               # rows of the whole batch: dlogits are scaled by 1/m
                                int loss_kind,
                                floating* grad,             # OUT (accumulate: IN/OUT) flat gradient
                                bint accumulate,
                                floating* inputs, floating* acts, floating* delta_a, floating* delta_b,
                                const Noise* noise,
                                double* loss_sum, Py_ssize_t* n_correct) noexcept nogil:
    """One chunk of a batch: forward, loss, backward; dW set (or added to), bias gradients added to."""
    cdef Py_ssize_t i
    cdef const unsigned char* pixels = NULL
    cdef const Py_ssize_t* pixel_rows = NULL
    cdef bint keep = False
    if indices != NULL:
        # The shuffled labels are read after the forward gemms: ask for them now.
        for i in range(rows):
            k.nncore_prefetch(y + indices[first + i])
    if reads_pixels(net, X_uint8, noise):
        pixels = X_uint8 if indices != NULL else X_uint8 + first * net.sizes[0]
        pixel_rows = indices + first if indices != NULL else NULL
        # Chunks of a workspace whose converted rows stay in L2 leave them in ``inputs`` for dW (half
        # the conversions); larger ones have dW read the uint8 rows again, a quarter of the bytes.
        # Decided by the workspace, not the chunk: _core's extra threads get no inputs workspace
        # when it is too large to keep rows in, however short their last chunk.
        keep = net.chunk_rows * net.sizes[0] * <Py_ssize_t> sizeof(floating) <= KEEP_CONVERTED_BYTES
    else:
        gather_inputs(net, X_uint8, X_float, scale, indices, first, rows, inputs, noise, first)
    forward_chunk(net, params, inputs, pixels, pixel_rows, inputs if keep else NULL, scale, rows, acts, noise, first)
    loss_chunk(acts + net.act_offsets[net.n_layers - 1], rows, net.sizes[net.n_layers], y, indices, first,
               loss_kind, <floating> m, loss_sum, n_correct)
    backward_chunk(net, params, inputs, NULL if keep else pixels, pixel_rows, scale if pixels != NULL else 1,
                   rows, acts, grad, 1 if accumulate else 0, delta_a, delta_b, noise, first)


cdef inline void batch_gradient(const Layout* net, const floating* params,
                                const unsigned char* X_uint8, const floating* X_float,  # one of them, (n, sizes[0])
                                floating scale,
                                const int* y,
                                const Py_ssize_t* indices,   # the batch's rows are indices[first:first+m] (or first.. when NULL)
                                Py_ssize_t first, Py_ssize_t m,
                                int loss_kind,
                                floating* grad,              # OUT flat gradient of the batch's mean loss
                                floating* inputs, floating* acts, floating* delta_a, floating* delta_b,
                                const Noise* noise,          # IN  dropout and shifts, or NULL; row i's position is first + i
                                double* loss_sum, Py_ssize_t* n_correct) noexcept nogil:
    """The gradient of the mean loss over one batch of m rows, chunk by chunk; adds its losses and hits."""
    cdef Py_ssize_t l, start, rows
    for l in range(net.n_layers):
        memset(grad + net.b_offsets[l], 0, net.sizes[l + 1] * sizeof(floating))
    start = 0
    while start < m:
        rows = min(net.chunk_rows, m - start)
        chunk_gradient(net, params, X_uint8, X_float, scale, y, indices, first + start, rows, m, loss_kind, grad,
                       start != 0, inputs, acts, delta_a, delta_b, noise, loss_sum, n_correct)
        start += rows


cdef inline void inference(const Layout* net, const floating* params,
                           const unsigned char* X_uint8, const floating* X_float, floating scale,
                           const int* y, Py_ssize_t n_samples, int loss_kind,
                           floating* inputs, floating* acts,
                           floating* out,                        # OUT (n_samples, n_out) if loss_kind is LOSS_NONE
                           double* loss_sum, Py_ssize_t* n_correct) noexcept nogil:
    """Forward chunk by chunk: probabilities into ``out``, or the loss sum and correct count."""
    cdef Py_ssize_t start, rows, i, argmax
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[net.n_layers]
    cdef const floating* source = inputs
    cdef const unsigned char* pixels = NULL
    cdef floating* logits = acts + net.act_offsets[net.n_layers - 1]
    start = 0
    while start < n_samples:
        rows = min(net.chunk_rows, n_samples - start)
        if reads_pixels(net, X_uint8, NULL):
            pixels = X_uint8 + start * n_in
        elif X_uint8 != NULL:
            k.gather_scale_uint8(inputs, X_uint8, n_in, NULL, start, rows, scale)
        else:
            source = X_float + start * n_in    # contiguous rows: no copy
        forward_chunk(net, params, source, pixels, NULL, NULL, scale, rows, acts, NULL, start)
        if loss_kind == LOSS_NONE:
            for i in range(rows):
                k.softmax_forward(logits + i * n_out, n_out, &argmax)
            memcpy(out + start * n_out, logits, rows * n_out * sizeof(floating))
        else:
            loss_chunk(logits, rows, n_out, y, NULL, start, loss_kind, 1, loss_sum, n_correct)
        start += rows


cdef inline void apply_update(const OptimizerConfig* opt, floating* params, const floating* grad,
                              floating* state_a, floating* state_b, Py_ssize_t n,
                              long long step_number) noexcept nogil:
    """The optimizer's rule over the flat buffers; hyperparameters cast to the floating type once.

    SGD reads (lr, momentum, nesterov, weight_decay) and its velocity from state_a; Adam reads
    (lr, beta1, beta2, eps, weight_decay) and its moments from state_a (m) and state_b (v).
    """
    cdef double h0 = opt.hyperparameters[0], h1 = opt.hyperparameters[1], h2 = opt.hyperparameters[2]
    cdef double h3 = opt.hyperparameters[3], h4 = opt.hyperparameters[4]
    if opt.kind == OPTIMIZER_ADAM:    # lr, beta1, beta2, eps, weight_decay
        k.adam_update(params, grad, state_a, state_b, n, <floating> h0, <floating> h1, <floating> h2,
                      <floating> (1.0 - h1), <floating> (1.0 - h2),
                      <floating> (1.0 - pow(h1, <double> step_number)),
                      <floating> (1.0 - pow(h2, <double> step_number)),
                      <floating> h3, <floating> h4)
    else:                             # OPTIMIZER_SGD: lr, momentum, nesterov, weight_decay
        k.sgd_update(params, grad, state_a, n, <floating> h0, <floating> h1, h2 != 0, <floating> h3)
