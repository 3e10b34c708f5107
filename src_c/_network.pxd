# cython: language_level=3
"""The network passes: a chunk of rows forward, its loss, backward; a run of chunks' gradient.

``Layout`` mirrors nncore.network.Network: the layer widths, where each W_l (fan_in, fan_out,
row-major) and b_l (fan_out,) start in the flat parameter buffer, and each layer's activation
code (ops.h; the output layer's is identity: its logits go to the loss). _core.pyx fills it
from a private, bounds-checked copy of ``Network.table`` and adds the workspace offsets.

What a pass reads travels as structs: ``Rows`` (the samples: uint8 pixels or floats, their
scale, the labels, the epoch's order), ``Workspace`` (one thread's chunk buffers), ``Noise``
(training's dropout and shifts) and ``Pass``, which holds them with the loss for every chunk.
A batch is processed as chunks of at most ``chunk_rows`` rows (the workspaces' size): a run of
chunks accumulates dW (gemm beta = 1) and db (column sums) with dlogits scaled by 1/m for the
whole batch, the same gradient as one big batch without an (m, n_inputs) workspace.
_core.pyx hands runs of chunks to its threads and adds their gradients in a fixed order.

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
the caller's (fan_in, fan_out) W and reads W^T packed once per call (``packed``).

An activation whose derivative reads its input z rather than its output (ops.h: GELU) keeps z
in the activations workspace too (``kept_offsets``): its forward adds the bias into the layer's
output buffer, copies z aside and applies the activation there.

Training may add ``Noise`` (nncore.counters): dropout on the inputs or a hidden layer's output
(a "site": activation index 0 is the inputs, l + 1 layer l's output) and random shifts of
the input images, each drawn from counters keyed by the epoch's seed and a row's position in
the epoch's order, so the passes take the first row's position along with a chunk.
Inference passes no noise. With noise, a narrow layer's output dropout is a pass of its own
after the narrow forward; the dA into a dropped-out layer runs on BLAS (the narrow dA fuses f'
but knows no mask); and the first layer reads the gathered rows when the inputs are shifted
or dropped out.

``products_only`` (the benchmark's floor, nncore._core.train_epoch(products_only=True)) runs
the same chunks through the same products and skips everything else: the element-wise epilogues
and derivatives, the loss and the update. The floor is these very calls, so it cannot drift from them.
"""
from cython cimport floating
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memset

from _blas cimport gemm
from _counters cimport SHIFT_SITE, Mask, site_key
from _ops cimport NNCORE_ACTIVATION_IDENTITY, NNCORE_LOSS_MSE
cimport _kernels as k
cimport _narrow as narrow

cdef enum:
    # A first layer reading uint8 pixels keeps them converted for its dW when they fill at most this.
    KEEP_CONVERTED_BYTES = 262144


cdef struct Layout:
    Py_ssize_t n_layers
    const Py_ssize_t* sizes          # (n_layers + 1,) widths, inputs first
    const Py_ssize_t* w_offsets      # (n_layers,) where W_l starts in the flat buffer
    const Py_ssize_t* b_offsets      # (n_layers,) where b_l starts
    const Py_ssize_t* activations    # (n_layers,) ops.h's code of each layer's activation
    const Py_ssize_t* act_offsets    # (n_layers,) where layer l's output starts in a workspace's activations
    const Py_ssize_t* kept_offsets   # (n_layers,) where layer l's input z is kept there, or -1 (ops.h: f' reads the output)
    Py_ssize_t chunk_rows            # rows a workspace holds
    const Py_ssize_t* packed_offsets # (n_layers,) where narrow layer l's W^T starts in ``packed``; -1: BLAS
    const void* packed               # inference: every narrow layer's W^T, packed once per call
    Py_ssize_t narrow_forward_width  # a narrow layer's forward too runs narrow when fan_out is at most this
    bint weights_transposed          # training: narrow layers' W is W^T (fan_out, packed_stride(fan_in)) at w_offsets[l]
    bint products_only               # the floor: the products alone (see the module docstring)


cdef struct Rows:
    # The samples a pass reads; _core.pyx checked every index against them.
    const unsigned char* pixels      # uint8 rows (n, sizes[0]), scaled while read; or NULL
    const void* floats               # rows in the parameters' dtype (n, sizes[0]); or NULL
    double scale                     # what pixels are multiplied by: 1/255 rounded to the parameters' dtype
    const int* labels                # (n,) class indices, or NULL (probabilities only)
    const Py_ssize_t* order          # the epoch's sample order, or NULL: row i is sample i


cdef struct Workspace:
    # One thread's chunk buffers, each for chunk_rows rows (void*: the parameters' dtype).
    void* inputs                     # (rows, sizes[0]) gathered inputs, or the first layer's converted pixels
    void* acts                       # each layer's output (and kept z) at the layout's offsets
    void* delta_a                    # (rows, widest hidden layer): dA, then dZ, flowing back
    void* delta_b


cdef struct Noise:
    # The randomness of one training pass; _core.pyx fills it from a private, checked copy.
    uint64_t seed                        # the epoch's seed (32 bits), keying every draw
    const Py_ssize_t* drop_thresholds    # (n_layers,) per site: round(rate * 2^24), 0 for no dropout
    Py_ssize_t shift                     # the most pixels an image moves each way; 0: no shift
    Py_ssize_t image_height, image_width  # height * width == sizes[0] when shift > 0


cdef struct Pass:
    # What every chunk of one pass shares.
    const Layout* net
    const Rows* rows
    const Noise* noise               # training's dropout and shifts, or NULL
    int loss_kind                    # ops.h's NNCORE_LOSS_*


cdef struct Tally:
    # What a run of chunks adds up: its per-sample losses and correct predictions.
    double loss
    Py_ssize_t correct


cdef inline const Mask* site_mask(const Noise* noise, Py_ssize_t site, Py_ssize_t position,
                                  Mask* mask) noexcept nogil:     # OUT filled when there is dropout
    """The dropout mask of ``site`` for rows from ``position`` on (in ``mask``), or NULL for none."""
    if noise == NULL or noise.drop_thresholds[site] == 0:
        return NULL
    mask.key = site_key(noise.seed, site)
    mask.position = position
    mask.threshold = <uint32_t> noise.drop_thresholds[site]
    return mask


cdef inline bint reads_pixels(const Pass* run) noexcept nogil:
    """Whether the first layer reads uint8 rows of X itself (narrow), so no chunk is gathered."""
    cdef const Noise* noise = run.noise
    if noise != NULL and (noise.shift > 0 or noise.drop_thresholds[0] != 0):
        return False    # the inputs are shifted or dropped out while gathered
    return run.rows.pixels != NULL and runs_narrow_forward(run.net, 0)


cdef inline bint keeps_converted(const Layout* net, Py_ssize_t element_size) noexcept nogil:
    """Whether a first layer reading pixels leaves them converted in the inputs workspace for its dW.

    Chunks whose converted rows stay in L2 do (half the conversions); larger ones have dW read
    the uint8 rows again, a quarter of the bytes. Decided by the workspace, not the chunk.
    """
    return net.chunk_rows * net.sizes[0] * element_size <= KEEP_CONVERTED_BYTES


cdef inline bint runs_narrow_forward(const Layout* net, Py_ssize_t l) noexcept nogil:
    return net.packed_offsets[l] >= 0 and net.sizes[l + 1] <= net.narrow_forward_width


cdef inline const floating* narrow_weights(const Layout* net, Py_ssize_t l, const floating* params) noexcept nogil:
    """Narrow layer l's W^T: in ``params`` when the weights are held transposed, else the call's packed copy."""
    if net.weights_transposed:
        return params + net.w_offsets[l]
    return <const floating*> net.packed + net.packed_offsets[l]


cdef inline Py_ssize_t narrow_stride(const Layout* net, Py_ssize_t l) noexcept nogil:
    """The row length of narrow layer l's W^T."""
    return narrow.nncore_narrow_packed_stride(net.sizes[l])


cdef inline floating* kept_inputs(const Layout* net, Py_ssize_t l, floating* acts) noexcept nogil:
    """Where layer l's input z is kept in a workspace's ``acts`` (its activation's f' reads it), or NULL."""
    if l < 0 or net.kept_offsets[l] < 0:
        return NULL
    return acts + net.kept_offsets[l]


cdef inline const unsigned char* chunk_pixels(const Pass* run, Py_ssize_t first,
                                              const Py_ssize_t** pixel_rows) noexcept nogil:  # OUT which rows, or NULL
    """The uint8 rows of the chunk starting at position ``first``: X and the order's slice, or X's rows in order."""
    cdef const Rows* rows = run.rows
    if rows.order != NULL:
        pixel_rows[0] = rows.order + first
        return rows.pixels
    pixel_rows[0] = NULL
    return rows.pixels + first * run.net.sizes[0]


cdef inline void gather_inputs(const Pass* run, Py_ssize_t first, Py_ssize_t count,
                               floating* inputs) noexcept nogil:  # OUT (count, sizes[0])
    """A chunk's input rows, scaled if pixels; in training, shifted and dropped out as the noise says."""
    cdef const Rows* rows = run.rows
    cdef const Noise* noise = run.noise
    cdef Py_ssize_t n_in = run.net.sizes[0]
    cdef floating scale = <floating> rows.scale
    cdef Mask mask
    if noise != NULL and noise.shift > 0:
        if rows.pixels != NULL:
            k.gather_shifted(inputs, rows.pixels, noise.image_height, noise.image_width, rows.order, first, count,
                             scale, site_key(noise.seed, SHIFT_SITE), first, noise.shift)
        else:
            k.gather_shifted(inputs, <const floating*> rows.floats, noise.image_height, noise.image_width, rows.order,
                             first, count, <floating> 1, site_key(noise.seed, SHIFT_SITE), first, noise.shift)
    elif rows.pixels != NULL:
        k.gather_scale_uint8(inputs, rows.pixels, n_in, rows.order, first, count, scale)
    else:
        k.gather_rows(inputs, <const floating*> rows.floats, n_in, rows.order, first, count)
    if site_mask(noise, 0, first, &mask) != NULL:
        k.dropout_forward(inputs, count, n_in, &mask)


cdef inline void forward_chunk(const Pass* run, const floating* params,
                               Py_ssize_t first, Py_ssize_t count,   # positions first .. first + count - 1
                               const floating* inputs,        # IN (count, sizes[0]); NULL: read the pixels (reads_pixels)
                               const Workspace* ws) noexcept nogil:  # OUT each layer's output in ws.acts
    """Activations of every layer; the last layer's output (logits, bias added) ends the chain."""
    cdef const Layout* net = run.net
    cdef Py_ssize_t l, fan_in, fan_out
    cdef const floating* A = inputs
    cdef floating* Z
    cdef floating* kept
    cdef const unsigned char* pixels = NULL
    cdef const Py_ssize_t* pixel_rows = NULL
    cdef floating* converted = NULL
    cdef const Mask* mask
    cdef Mask drawn
    cdef int activation
    if inputs == NULL:
        pixels = chunk_pixels(run, first, &pixel_rows)
        # Training (transposed W) keeps them for its dW; inference has no dW.
        converted = <floating*> ws.inputs if net.weights_transposed and keeps_converted(net, sizeof(floating)) else NULL
    for l in range(net.n_layers):
        fan_in = net.sizes[l]
        fan_out = net.sizes[l + 1]
        Z = <floating*> ws.acts + net.act_offsets[l]
        kept = kept_inputs(net, l, <floating*> ws.acts)
        mask = site_mask(run.noise, l + 1, first, &drawn) if l + 1 < net.n_layers else NULL
        if runs_narrow_forward(net, l):
            # With z kept, the epilogue adds the bias only; the activation follows from z.
            activation = NNCORE_ACTIVATION_IDENTITY if kept != NULL else <int> net.activations[l]
            if l == 0 and pixels != NULL:
                narrow.forward_u8(Z, fan_out, pixels, fan_in, pixel_rows, converted, fan_in,
                                  narrow_weights(net, l, params), params + net.b_offsets[l], <floating> run.rows.scale,
                                  count, fan_in, fan_out, activation)
            else:
                narrow.forward(Z, fan_out, A, fan_in, narrow_weights(net, l, params), params + net.b_offsets[l], 1,
                               count, fan_in, fan_out, activation)
            if net.products_only:
                pass
            elif kept != NULL:
                k.bias_activation_forward(Z, <const floating*> NULL, count, fan_out, <int> net.activations[l], mask, kept)
            elif mask != NULL:
                k.dropout_forward(Z, count, fan_out, mask)
        else:
            if net.packed_offsets[l] >= 0 and net.weights_transposed:
                # Z (rows, out) = A (rows, in) . (W^T)^T
                gemm(c't', c'n', <int> fan_out, <int> count, <int> fan_in, 1, params + net.w_offsets[l],
                     <int> narrow_stride(net, l), A, <int> fan_in, 0, Z, <int> fan_out)
            else:
                # Z (rows, out) = A (rows, in) . W (in, out)
                gemm(c'n', c'n', <int> fan_out, <int> count, <int> fan_in, 1, params + net.w_offsets[l],
                     <int> fan_out, A, <int> fan_in, 0, Z, <int> fan_out)
            if not net.products_only:
                k.bias_activation_forward(Z, params + net.b_offsets[l], count, fan_out, <int> net.activations[l], mask,
                                          kept)
        A = Z


cdef inline void loss_chunk(const Pass* run,
                            floating* logits,                  # IN logits / OUT dlogits (count, n_out)
                            Py_ssize_t first, Py_ssize_t count,
                            Py_ssize_t m,                      # rows of the whole batch: dlogits are scaled by 1/m
                            Tally* tally) noexcept nogil:      # IN/OUT
    """Per-row softmax + loss + dlogits (/ m), adding the losses and correct predictions to ``tally``."""
    cdef Py_ssize_t n_out = run.net.sizes[run.net.n_layers]
    cdef const Rows* rows = run.rows
    cdef Py_ssize_t i, row, argmax
    cdef int label
    cdef floating* z
    cdef double total = 0
    cdef Py_ssize_t correct = 0
    for i in range(count):
        row = rows.order[first + i] if rows.order != NULL else first + i
        label = rows.labels[row]
        z = logits + i * n_out
        if run.loss_kind == NNCORE_LOSS_MSE:
            total += k.mse_forward_backward(z, n_out, label, <floating> m, &argmax)
        else:
            total += k.cross_entropy_forward_backward(z, n_out, label, <floating> m, &argmax)
        correct += argmax == label
    tally.loss += total
    tally.correct += correct


cdef inline void backward_chunk(const Pass* run, const floating* params,
                                Py_ssize_t first, Py_ssize_t count,
                                const Workspace* ws,        # IN activations, the logits replaced by dlogits
                                floating* grad,             # IN/OUT flat gradient
                                bint accumulate) noexcept nogil:   # False: dW =, True: dW +=
    """dW_l (= or +=) A_{l-1}^T dZ_l; db_l += column sums of dZ_l; dZ flows back.

    On the transposed layout (``net.weights_transposed``): a narrow layer's dW^T goes where its
    W^T is. The bias gradients are only ever added to: the caller zeroes them once per run of
    chunks. The first layer's dX is never formed.
    """
    cdef const Layout* net = run.net
    cdef Py_ssize_t l, fan_in, fan_out
    cdef floating* acts = <floating*> ws.acts
    cdef floating* dZ = acts + net.act_offsets[net.n_layers - 1]
    cdef floating* delta_a = <floating*> ws.delta_a
    cdef floating* delta_b = <floating*> ws.delta_b
    cdef floating* dA
    cdef floating* spare
    cdef const floating* A_prev
    cdef const floating* kept_prev
    cdef const unsigned char* pixels = NULL
    cdef const Py_ssize_t* pixel_rows = NULL
    cdef floating input_scale = 1
    cdef Mask drawn
    cdef const Mask* mask
    cdef bint narrow_layer
    if reads_pixels(run):
        input_scale = <floating> run.rows.scale    # the inputs are unscaled pixels, kept converted or read again
        if not keeps_converted(net, sizeof(floating)):
            pixels = chunk_pixels(run, first, &pixel_rows)
    if not net.products_only:
        k.bias_backward(grad + net.b_offsets[net.n_layers - 1], dZ, count, net.sizes[net.n_layers])
    for l in range(net.n_layers - 1, -1, -1):
        fan_in = net.sizes[l]
        fan_out = net.sizes[l + 1]
        A_prev = <floating*> ws.inputs if l == 0 else acts + net.act_offsets[l - 1]
        kept_prev = kept_inputs(net, l - 1, acts)
        mask = site_mask(run.noise, l, first, &drawn) if l > 0 else NULL
        narrow_layer = net.packed_offsets[l] >= 0
        if narrow_layer and l == 0 and pixels != NULL:
            # dW^T (out, in) = alpha * dZ^T (out, rows) . X_rows (rows, in), the uint8 rows read again
            narrow.weight_grad_u8(grad + net.w_offsets[l], narrow_stride(net, l), pixels, fan_in, pixel_rows, dZ,
                                  fan_out, input_scale, accumulate, count, fan_in, fan_out)
        elif narrow_layer:
            # dW^T (out, in) = alpha * dZ^T (out, rows) . A_prev (rows, in)
            narrow.weight_grad(grad + net.w_offsets[l], narrow_stride(net, l), A_prev, fan_in, dZ, fan_out,
                               input_scale if l == 0 else 1, accumulate, count, fan_in, fan_out)
        else:
            # dW (in, out) = A_prev^T (in, rows) . dZ (rows, out)
            gemm(c'n', c't', <int> fan_out, <int> fan_in, <int> count, input_scale if l == 0 else 1, dZ,
                 <int> fan_out, A_prev, <int> fan_in, 1 if accumulate else 0, grad + net.w_offsets[l], <int> fan_out)
        if l > 0:
            dA = delta_a
            if narrow_layer and mask == NULL:
                # dA (rows, in) = (dZ (rows, out) . W^T (out, in)) * f'(layer l - 1), its db added, in one pass
                narrow.input_grad(dA, fan_in, dZ, fan_out, params + net.w_offsets[l],
                                  kept_prev if kept_prev != NULL else A_prev, fan_in, <int> net.activations[l - 1],
                                  NULL if net.products_only else grad + net.b_offsets[l - 1], count, fan_in, fan_out)
            elif narrow_layer:
                # dA (rows, in) = dZ (rows, out) . W^T (out, in), W^T held as it is
                gemm(c'n', c'n', <int> fan_in, <int> count, <int> fan_out, 1, params + net.w_offsets[l],
                     <int> narrow_stride(net, l), dZ, <int> fan_out, 0, dA, <int> fan_in)
            elif not narrow_layer:
                # dA (rows, in) = dZ (rows, out) . W^T (out, in)
                gemm(c't', c'n', <int> fan_in, <int> count, <int> fan_out, 1, params + net.w_offsets[l],
                     <int> fan_out, dZ, <int> fan_out, 0, dA, <int> fan_in)
            if (not narrow_layer or mask != NULL) and not net.products_only:
                k.activation_backward(dA, A_prev, kept_prev, count, fan_in, grad + net.b_offsets[l - 1],
                                      <int> net.activations[l - 1], mask)
            dZ = dA
            spare = delta_a
            delta_a = delta_b
            delta_b = spare


cdef inline void chunk_gradient(const Pass* run, const floating* params,
                                Py_ssize_t first, Py_ssize_t count,  # the chunk's rows: positions first .. first + count - 1
                                Py_ssize_t m,               # rows of the whole batch: dlogits are scaled by 1/m
                                floating* grad,             # OUT (accumulate: IN/OUT) flat gradient
                                bint accumulate,
                                const Workspace* ws, Tally* tally) noexcept nogil:
    """One chunk of a batch: forward, loss, backward; dW set (or added to), bias gradients added to."""
    cdef const Layout* net = run.net
    cdef const floating* inputs = NULL
    cdef Py_ssize_t i
    if run.rows.order != NULL:
        # The shuffled labels are read after the forward products: ask for them now.
        for i in range(count):
            k.nncore_prefetch(run.rows.labels + run.rows.order[first + i])
    if not reads_pixels(run):
        gather_inputs(run, first, count, <floating*> ws.inputs)
        inputs = <floating*> ws.inputs
    forward_chunk(run, params, first, count, inputs, ws)
    if not net.products_only:
        loss_chunk(run, <floating*> ws.acts + net.act_offsets[net.n_layers - 1], first, count, m, tally)
    backward_chunk(run, params, first, count, ws, grad, accumulate)


cdef inline void run_gradient(const Pass* run, const floating* params,
                              Py_ssize_t first, Py_ssize_t m,    # the batch: positions first .. first + m - 1
                              Py_ssize_t begin, Py_ssize_t end,  # this run's rows of it: begin .. end - 1
                              floating* grad,                    # OUT the run's gradient (of the batch's mean loss)
                              const Workspace* ws, Tally* tally) noexcept nogil:
    """The gradient of a run of chunks of one batch: its bias gradients zeroed, its chunks in order."""
    cdef const Layout* net = run.net
    cdef Py_ssize_t l, start = begin, count
    for l in range(net.n_layers):
        memset(grad + net.b_offsets[l], 0, net.sizes[l + 1] * sizeof(floating))
    while start < end:
        count = min(net.chunk_rows, end - start)
        chunk_gradient(run, params, first + start, count, m, grad, start != begin, ws, tally)
        start += count
