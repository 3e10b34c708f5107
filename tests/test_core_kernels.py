"""Each fused kernel of the compiled core against its NumPy twin of the same name.

The twins: network ops in nncore/backends/numpy_backend.py, activations in
nncore/activations.py, losses in nncore/losses.py, optimizer updates in nncore/optim.py.
Tolerances: the kernels follow the reference's operation order, so float64 agrees to a few
ulps (rtol 1e-13) and float32 to a few float32 ulps (rtol 1e-6); only the order of the
k-term sums inside the softmax differs. Extreme logits (+-1e4, equal rows) are where a naive
softmax overflows or returns NaN; both implementations must stay finite and exact there.
"""
import numpy as np
import pytest

from nncore import _testing as kernels
from nncore import losses as reference
from nncore.optim import SGD, Adam, AdamW, RMSprop
from nncore.activations import ACTIVATIONS
from nncore.backends import numpy_backend as nb

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 1e-6, np.float64: 1e-13}
ATOL = {np.float32: 1e-7, np.float64: 1e-15}


def gather(X, indices, dtype):
    """The batch X[indices] in ``dtype`` by the kernel; uint8 pixels scaled by 1/255."""
    indices = np.ascontiguousarray(indices, dtype=np.intp)
    out = np.empty((len(indices), X.shape[1]), dtype=dtype)
    kernels.gather_scale(np.ascontiguousarray(X), indices, out)
    return out


def close(actual, expected, dtype, scale=1.0):
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=ATOL[dtype] * scale)


def close_dlogits(actual, expected, dtype, m):
    # p - 1 for p near 1 cancels: its absolute error is a few ulps of 1.0, divided by m.
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype], atol=4 * np.finfo(dtype).eps / m)


def extreme_logits(dtype, k=10):
    """Rows where exp(z) overflows or all entries tie."""
    rows = [np.full(k, 1e4), np.full(k, -1e4), np.zeros(k), np.full(k, 3.0),
            np.r_[1e4, np.zeros(k - 1)], np.r_[np.zeros(k - 1), 1e4], np.r_[-1e4, np.full(k - 1, 1e4)],
            np.linspace(-1e4, 1e4, k)]
    return np.array(rows, dtype=dtype)


# Within a few ulps of the reference's libm (exp, tanh): not bit-equal like the others.
TRANSCENDENTAL_RTOL = {np.float32: 4e-7, np.float64: 1e-15}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS.values()), ids=list(ACTIVATIONS))
def test_bias_activation_forward_matches_reference(dtype, activation):
    rng = np.random.default_rng(0)
    Z = (rng.standard_normal((33, 17)) * 3).astype(dtype)
    b = rng.standard_normal(17).astype(dtype)
    expected, expected_kept = nb.bias_activation_forward(Z.copy(), b, activation)
    actual, kept = Z.copy(), np.full_like(Z, np.nan)
    kernels.bias_activation_forward(actual, b, activation.code, kept=kept)
    np.testing.assert_array_equal(kept, Z + b)  # z before the activation, for those that read it
    if expected_kept is not None:
        np.testing.assert_array_equal(expected_kept, Z + b)
    if activation.name in ("relu", "identity", "leaky_relu"):
        np.testing.assert_array_equal(actual, expected)
    elif activation.name == "gelu":  # erf from libm and from SciPy: a few ulps, cancelling in 1 + erf near -inf
        np.testing.assert_allclose(actual, expected, rtol=TRANSCENDENTAL_RTOL[dtype],
                                   atol=TRANSCENDENTAL_RTOL[dtype] * 4)
    else:
        np.testing.assert_allclose(actual, expected, rtol=TRANSCENDENTAL_RTOL[dtype], atol=0)


def test_every_activation_keeps_nan_so_divergence_is_seen():
    for name in ACTIVATIONS:
        Z = np.array([[np.nan, -1.0, 2.0]])
        kernels.bias_activation_forward(Z, np.zeros(3), ACTIVATIONS[name].code)
        assert np.isnan(Z[0, 0]), name
    Z = np.array([[np.nan, -1.0, 2.0]])
    kernels.bias_activation_forward(Z, np.zeros(3), ACTIVATIONS["relu"].code)
    assert Z[0, 1] == 0 and Z[0, 2] == 2


@pytest.mark.parametrize("dtype", DTYPES)
def test_logistic_is_exact_in_the_tails_where_the_naive_formula_overflows(dtype):
    Z = np.array([[-1e4, -800.0, -100.0, -30.0, 0.0, 30.0, 100.0, 800.0, 1e4]], dtype=dtype)
    expected, _ = nb.bias_activation_forward(Z.copy(), np.zeros(9, dtype), ACTIVATIONS["logistic"])
    kernels.bias_activation_forward(Z, np.zeros(9, dtype), ACTIVATIONS["logistic"].code)
    assert np.all(np.isfinite(Z)) and np.all((Z >= 0) & (Z <= 1))
    np.testing.assert_allclose(Z, expected, rtol=TRANSCENDENTAL_RTOL[dtype], atol=0)
    assert Z[0, 4] == 0.5 and Z[0, -1] == 1 and Z[0, 0] == 0
    # exp(-30) / (1 + exp(-30)), exact where 1 - 1 / (1 + exp(30)) would cancel
    assert Z[0, 3] == pytest.approx(np.exp(-30.0) / (1 + np.exp(-30.0)), rel=TRANSCENDENTAL_RTOL[dtype] * 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 7, 40])
def test_cross_entropy_forward_backward_matches_reference(dtype, m):
    rng = np.random.default_rng(m)
    logits = (rng.standard_normal((40, 10)) * 5).astype(dtype)
    y = rng.integers(0, 10, 40)
    losses, dlogits, predictions = kernels.cross_entropy_forward_backward(logits, y, m)
    ref_losses, ref_dlogits, _ = reference.cross_entropy_forward_backward(logits, y, m)
    assert losses.dtype == dlogits.dtype == dtype
    close(losses, ref_losses, dtype)
    close_dlogits(dlogits, ref_dlogits, dtype, m)
    np.testing.assert_array_equal(predictions, logits.argmax(axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_forward_backward_is_stable_for_extreme_logits(dtype):
    logits = extreme_logits(dtype)
    k = logits.shape[1]
    y = np.array([0, 3, 5, 9, 0, 0, 4, 9])
    losses, dlogits, predictions = kernels.cross_entropy_forward_backward(logits, y, 4)
    ref_losses, ref_dlogits, _ = reference.cross_entropy_forward_backward(logits, y, 4)
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(dlogits))
    close(losses, ref_losses, dtype, scale=1e4)
    close_dlogits(dlogits, ref_dlogits, dtype, 4)
    # Exact values: tied rows give log(k) and (1/k - onehot)/m; a 1e4 margin gives 0 or 1e4.
    # log(sum_exp) + max - z_y rounds once at the size of max: an ulp of 1e4 (1e-3 in float32).
    ulp = float(np.spacing(dtype(1e4)))
    for row in range(4):
        assert losses[row] == pytest.approx(np.log(k), abs=ulp)
        expected = np.full(k, 1.0 / k)
        expected[y[row]] -= 1
        np.testing.assert_allclose(dlogits[row], expected / 4, rtol=1e-6)
    assert losses[4] == 0 and losses[5] == pytest.approx(1e4, rel=1e-6)
    assert losses[6] == pytest.approx(np.log(9), abs=ulp)  # label 4 shares the maximum with 8 others
    np.testing.assert_array_equal(predictions, [0, 0, 0, 0, 0, 9, 1, 9])  # first maximum on ties


def test_cross_entropy_forward_backward_of_a_nine_way_tie_at_the_top():
    logits = np.r_[-1e4, np.full(9, 1e4)][None, :]
    losses, _, _ = kernels.cross_entropy_forward_backward(logits, [4], 1)
    assert losses[0] == pytest.approx(np.log(9), rel=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 40])
def test_mse_forward_backward_matches_reference(dtype, m):
    rng = np.random.default_rng(10 + m)
    logits = (rng.standard_normal((40, 10)) * 3).astype(dtype)
    y = rng.integers(0, 10, 40)
    losses, dlogits, predictions = kernels.mse_forward_backward(logits, y, m)
    ref_losses, ref_dlogits, _ = reference.mse_forward_backward(logits, y, m)
    close(losses, ref_losses, dtype)
    close_dlogits(dlogits, ref_dlogits, dtype, m)
    np.testing.assert_array_equal(predictions, logits.argmax(axis=1))


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_forward_backward_is_stable_for_extreme_logits(dtype):
    logits = extreme_logits(dtype)
    y = np.array([0, 3, 5, 9, 0, 0, 4, 9])
    losses, dlogits, _ = kernels.mse_forward_backward(logits, y, 8)
    ref_losses, ref_dlogits, _ = reference.mse_forward_backward(logits, y, 8)
    assert np.all(np.isfinite(losses)) and np.all(np.isfinite(dlogits))
    close(losses, ref_losses, dtype)
    close_dlogits(dlogits, ref_dlogits, dtype, 8)
    k = logits.shape[1]
    assert losses[0] == pytest.approx((1 - 1 / k) ** 2 + (k - 1) / k ** 2, rel=1e-6)  # uniform p
    assert losses[4] == 0 and losses[5] == pytest.approx(2.0)                        # one-hot p


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_forward_matches_reference_and_is_stable(dtype):
    rng = np.random.default_rng(3)
    logits = np.vstack([(rng.standard_normal((20, 10)) * 4).astype(dtype), extreme_logits(dtype)])
    probs = logits.copy()
    kernels.softmax_forward(probs)
    close(probs, reference.softmax_forward(logits), dtype)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=RTOL[dtype] * 10)


def activation_outputs(activation, shape, dtype, rng):
    """What a layer of ``activation`` keeps: (its output, its input z or None), over random pre-activations."""
    return nb.bias_activation_forward((rng.standard_normal(shape) * 2).astype(dtype), np.zeros(shape[1], dtype),
                                      activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", list(ACTIVATIONS.values()), ids=list(ACTIVATIONS))
def test_activation_backward_applies_the_derivative_in_place_and_sums_the_bias_gradient(dtype, activation):
    rng = np.random.default_rng(4)
    A, Z = activation_outputs(activation, (25, 13), dtype, rng)
    dA = rng.standard_normal((25, 13)).astype(dtype)
    expected = nb.activation_backward(dA.copy(), A, Z, activation)
    actual, db = dA.copy(), np.zeros(13, dtype)
    kernels.activation_backward(actual, A, db, activation.code, Z=Z)
    if activation.name == "gelu":  # erf and exp from libm and from SciPy/NumPy: a few ulps
        np.testing.assert_allclose(actual, expected, rtol=TRANSCENDENTAL_RTOL[dtype] * 4,
                                   atol=TRANSCENDENTAL_RTOL[dtype])
    else:
        np.testing.assert_array_equal(actual, expected)
    close(db, expected.sum(axis=0), dtype, scale=10)


def test_an_activation_that_reads_its_input_is_refused_without_it():
    with pytest.raises(ValueError, match="reads its input"):
        kernels.activation_backward(np.ones((2, 3)), np.ones((2, 3)), np.zeros(3), ACTIVATIONS["gelu"].code)


@pytest.mark.parametrize("activation", list(ACTIVATIONS.values()), ids=list(ACTIVATIONS))
def test_each_backward_is_the_derivative_of_its_forward(activation):
    """f'(z), written from the output A = f(z) (or from z itself, ``reads_input``), against central
    differences of f itself."""
    z = np.linspace(-4, 4, 41)[None, :] + 0.0123  # away from the ReLUs' kink at 0
    h = 1e-6
    forward = lambda values: activation.forward(values.copy())  # noqa: E731
    numeric = (forward(z + h) - forward(z - h)) / (2 * h)
    derivative = activation.backward(np.ones_like(z), z.copy() if activation.reads_input else forward(z))
    np.testing.assert_allclose(derivative, numeric, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bias_backward_is_the_column_sum_added_in(dtype):
    rng = np.random.default_rng(5)
    dZ = rng.standard_normal((30, 7)).astype(dtype)
    db = np.ones(7, dtype)
    kernels.bias_backward(db, dZ)
    close(db, 1 + nb.bias_backward(np.empty(7, dtype), dZ), dtype, scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_scale_of_uint8_equals_reference_exactly(dtype):
    rng = np.random.default_rng(6)
    X = rng.integers(0, 256, (50, 31), dtype=np.uint8)
    rows = rng.permutation(50)[:17]
    expected = nb.gather_scale(X, rows, dtype)
    actual = gather(X, rows, dtype)
    assert actual.dtype == dtype
    np.testing.assert_array_equal(actual, expected)
    assert gather(X, [3], dtype)[0, X[3].argmax()] == dtype(X[3].max()) * dtype(1 / 255)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather_of_float_inputs_is_a_plain_copy(dtype):
    X = np.random.default_rng(7).standard_normal((20, 9)).astype(dtype)
    rows = [5, 0, 19, 5]
    np.testing.assert_array_equal(gather(X, rows, dtype), X[rows])


def test_gather_rejects_rows_out_of_range():
    with pytest.raises(IndexError):
        gather(np.zeros((3, 2), np.uint8), [3], np.float32)


OPTIMIZER_CASES = [SGD(lr=0.1), SGD(lr=0.05, weight_decay=1e-2), SGD(lr=0.1, momentum=0.9),
                   SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4),
                   Adam(lr=1e-3), Adam(lr=1e-3, weight_decay=1e-2), AdamW(lr=1e-3), AdamW(lr=1e-2, weight_decay=0.1),
                   RMSprop(lr=1e-2), RMSprop(lr=1e-2, momentum=0.9), RMSprop(lr=1e-2, centered=True),
                   RMSprop(lr=1e-3, alpha=0.9, momentum=0.5, centered=True, weight_decay=1e-3)]


def _update_tolerance(dtype):
    # The update (new - old) is compared, not the parameters: it is what the kernel computes.
    return dict(rtol={np.float32: 2e-6, np.float64: 1e-14}[dtype], atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", OPTIMIZER_CASES, ids=repr)
def test_each_optimizer_kernel_follows_its_numpy_update_step_by_step(dtype, optimizer):
    """The compiled update of every kind, configured by name (core_config), against the class's
    NumPy update, over steps 1, 2, 3 and 50 (Adam's bias correction counts them)."""
    rng = np.random.default_rng(9)
    optimizer = type(optimizer)(**optimizer.hyperparameters())
    optimizer.ensure_state(999, dtype)
    params = rng.standard_normal(999).astype(dtype)
    for step in (1, 2, 3, 50):
        optimizer.step = step - 1
        grad = rng.standard_normal(999).astype(dtype)
        states = [buffer.copy() for buffer in optimizer.state_buffers().values()]
        before, compiled = params.copy(), params.copy()
        kernels.optimizer_update(optimizer.core_config(), compiled, grad, states)
        optimizer.step += 1
        optimizer.numpy_update(params, grad)
        np.testing.assert_allclose(compiled - before, params - before, **_update_tolerance(dtype))
        for state, (name, reference) in zip(states, optimizer.state_buffers().items()):
            np.testing.assert_allclose(state, reference, **_update_tolerance(dtype), err_msg=name)


def test_adam_first_step_moves_every_parameter_by_lr():
    # With bias correction, step 1 is lr * g / (|g| + eps): the sign of g times lr.
    params = np.zeros(4)
    grad = np.array([3.0, -0.5, 1e-3, -7.0])
    config = Adam(lr=0.01, eps=1e-12).core_config()
    kernels.optimizer_update(config, params, grad, [np.zeros(4), np.zeros(4)])
    np.testing.assert_allclose(params, -0.01 * np.sign(grad), rtol=1e-8)


def test_adamw_decays_the_parameters_apart_from_the_gradient():
    # A zero gradient leaves Adam's moments at zero: AdamW's step is the decay alone.
    params = np.array([1.0, -2.0, 4.0])
    kernels.optimizer_update(AdamW(lr=0.1, weight_decay=0.5).core_config(), params, np.zeros(3),
                             [np.zeros(3), np.zeros(3)])
    np.testing.assert_array_equal(params, np.array([1.0, -2.0, 4.0]) * (1 - 0.1 * 0.5))


def test_gather_wrapper_rejects_one_dimensional_inputs():
    # X is untyped in the wrapper: without this check X.shape[1] would read past the shape tuple.
    with pytest.raises(ValueError, match="2-D"):
        kernels.gather_scale(np.zeros(5, np.uint8), np.zeros(1, np.intp), np.zeros((1, 5), np.float32))
