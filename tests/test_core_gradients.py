"""The compiled backward pass: finite differences, a hand-worked SGD step, chunked accumulation."""
import numpy as np
import pytest

from nncore.backends import cython_backend as cb
from nncore.backends import numpy_backend as nb
from nncore.backends._common import count_parameters
from nncore.optim import SGD


def _problem(layer_sizes, n_samples=9, seed=0):
    rng = np.random.default_rng(seed)
    params = rng.standard_normal(count_parameters(layer_sizes)) * 0.7
    X = rng.standard_normal((n_samples, layer_sizes[0]))
    y = rng.integers(0, layer_sizes[-1], n_samples)
    return params, X, y


@pytest.mark.parametrize("layer_sizes", [(6, 5, 4), (6, 7, 5, 3), (5, 6, 4, 5, 3)],
                         ids=["1-hidden", "2-hidden", "3-hidden"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.03])
def test_compiled_gradient_matches_central_differences(layer_sizes, loss, weight_decay):
    """float64, h = 1e-6: truncation error O(h^2) ~ 1e-12, rounding ~ 1e-16 / h ~ 1e-10.

    A ReLU kink inside [theta - h, theta + h] would break the check; with Gaussian weights
    and inputs the pre-activations sit ~0.1 or more from 0, so none is crossed.
    """
    params, X, y = _problem(layer_sizes)
    value, grad = cb.loss_and_grad(params, layer_sizes, X, y, loss, weight_decay)
    h = 1e-6
    numeric = np.empty_like(params)
    for i in range(len(params)):
        shifted = params.copy()
        shifted[i] += h
        plus, _ = cb.loss_and_grad(shifted, layer_sizes, X, y, loss, weight_decay)
        shifted[i] -= 2 * h
        minus, _ = cb.loss_and_grad(shifted, layer_sizes, X, y, loss, weight_decay)
        numeric[i] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # and the value is the reference's mean loss + 0.5 wd |theta|^2
    ref_value, ref_grad = nb.loss_and_grad(params, layer_sizes, X, y, loss, weight_decay)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_gradient_accumulated_over_chunks_equals_the_whole_batch(monkeypatch, dtype, loss):
    """A batch larger than the workspace is processed in chunks (gemm beta = 1, dlogits / m)."""
    layer_sizes = (12, 8, 6, 4)
    params, X, y = _problem(layer_sizes, n_samples=53, seed=3)
    params, X = params.astype(dtype), X.astype(dtype)
    whole_value, whole_grad = cb.loss_and_grad(params, layer_sizes, X, y, loss)
    monkeypatch.setattr(cb, "CHUNK_ROWS", 5)  # 10 chunks of 5 and one of 3
    chunked_value, chunked_grad = cb.loss_and_grad(params, layer_sizes, X, y, loss)
    rtol = {np.float32: 1e-5, np.float64: 1e-12}[dtype]
    assert chunked_value == pytest.approx(whole_value, rel=rtol)
    np.testing.assert_allclose(chunked_grad, whole_grad, rtol=rtol, atol=rtol * np.abs(whole_grad).max())


def test_one_sgd_step_worked_by_hand():
    """A 2-2-2 network, one sample x = (2, 4), label 0, cross-entropy, SGD lr = 0.5.

    W1 = [[0.5, -1], [0.25, 0.5]], b1 = [0, 0.5];  W2 = [[1, 0], [0, 2]], b2 = [0, -1].
    Forward:  Z1 = x W1 + b1 = [1 + 1, -2 + 2] + [0, 0.5] = [2, 0.5];  A1 = ReLU(Z1) = [2, 0.5]
              Z2 = A1 W2 + b2 = [2, 1] + [0, -1] = [2, 0]
              p = softmax(Z2) = [e^2, 1] / (e^2 + 1) = [0.880797, 0.119203]   (s = 1/(1+e^2) = 0.119203)
              loss = log(1 + e^-2) = 0.126928;  argmax = 0 = label: 1 correct
    Backward (m = 1):
              dZ2 = p - onehot = [-s, s] = [-0.119203, 0.119203]
              dW2 = A1^T dZ2 = [[-2s, 2s], [-0.5s, 0.5s]] = [[-0.238406, 0.238406], [-0.059601, 0.059601]]
              db2 = [-0.119203, 0.119203]
              dA1 = dZ2 W2^T = [-s, 2s];  both Z1 > 0, so dZ1 = [-0.119203, 0.238406]
              dW1 = x^T dZ1 = [[-2s, 4s], [-4s, 8s]] = [[-0.238406, 0.476812], [-0.476812, 0.953624]]
              db1 = [-0.119203, 0.238406]
    Step theta -= 0.5 * grad:
              W1 = [[0.619203, -1.238406], [0.488406, 0.023188]],  b1 = [0.059601, 0.380797]
              W2 = [[1.119203, -0.119203], [0.029801, 1.970199]],  b2 = [0.059601, -1.059601]
    """
    layer_sizes = (2, 2, 2)
    params = np.array([0.5, -1.0, 0.25, 0.5, 0.0, 0.5,     # W1 (row-major), b1
                       1.0, 0.0, 0.0, 2.0, 0.0, -1.0])     # W2, b2
    X = np.array([[2.0, 4.0]])
    optimizer = SGD(lr=0.5)
    result = cb.train_epoch(params, layer_sizes, optimizer, X, np.array([0]), batch_size=1)
    expected = [0.619203, -1.238406, 0.488406, 0.023188, 0.059601, 0.380797,
                1.119203, -0.119203, 0.029801, 1.970199, 0.059601, -1.059601]
    np.testing.assert_allclose(params, expected, rtol=0, atol=5e-7)  # the printed 6 decimals
    assert result.loss_sum == pytest.approx(0.126928, abs=5e-7)
    assert (result.n_correct, result.n_samples, result.n_batches, result.diverged_batch) == (1, 1, 1, None)
    assert optimizer.step == 1
