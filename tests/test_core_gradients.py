"""The compiled backward pass: finite differences, a hand-worked SGD step, chunked accumulation."""
import numpy as np
import pytest
from _backends import epoch, loss_and_grad

from nncore.activations import ACTIVATIONS
from nncore.backends.cython_backend import CythonBackend
from nncore.backends.numpy_backend import NumpyBackend
from nncore.network import Network
from nncore.optim import SGD

nb, cb = NumpyBackend(), CythonBackend()


def _problem(layer_sizes, activation="relu", n_samples=9, seed=0, dtype="float64"):
    network = Network(layer_sizes, activation, dtype)
    rng = np.random.default_rng(seed)
    params = (rng.standard_normal(network.n_params) * 0.7).astype(dtype)
    X = rng.standard_normal((n_samples, layer_sizes[0])).astype(dtype)
    y = rng.integers(0, layer_sizes[-1], n_samples)
    return network, params, X, y


@pytest.mark.parametrize("layer_sizes", [(6, 5, 4), (6, 7, 5, 3), (5, 6, 4, 5, 3)],
                         ids=["1-hidden", "2-hidden", "3-hidden"])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.03])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_compiled_gradient_matches_central_differences(layer_sizes, loss, weight_decay, activation):
    """float64, h = 1e-6: truncation error O(h^2) ~ 1e-12, rounding ~ 1e-16 / h ~ 1e-10.

    A ReLU kink inside [theta - h, theta + h] would break the check; with Gaussian weights
    and inputs the pre-activations sit ~0.1 or more from 0, so none is crossed. tanh, logistic
    and identity are smooth.
    """
    network, params, X, y = _problem(layer_sizes, activation)
    value, grad = loss_and_grad(cb, network, params, X, y, loss, weight_decay)
    h = 1e-6
    numeric = np.empty_like(params)
    for i in range(len(params)):
        shifted = params.copy()
        shifted[i] += h
        plus, _ = loss_and_grad(cb, network, shifted, X, y, loss, weight_decay)
        shifted[i] -= 2 * h
        minus, _ = loss_and_grad(cb, network, shifted, X, y, loss, weight_decay)
        numeric[i] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)
    # and the value is the reference's mean loss + 0.5 wd |theta|^2
    ref_value, ref_grad = loss_and_grad(nb, network, params, X, y, loss, weight_decay)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("activations", [("tanh", "relu", "logistic"), ("identity", "tanh", "relu")])
def test_a_different_activation_per_layer_gets_the_right_gradient(activations):
    network, params, X, y = _problem((5, 6, 4, 5, 3), activations)
    _, grad = loss_and_grad(cb, network, params, X, y)
    h, numeric = 1e-6, np.empty_like(params)
    for i in range(len(params)):
        shifted = params.copy()
        shifted[i] += h
        plus, _ = loss_and_grad(cb, network, shifted, X, y)
        shifted[i] -= 2 * h
        minus, _ = loss_and_grad(cb, network, shifted, X, y)
        numeric[i] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
@pytest.mark.parametrize("activation", ["relu", "logistic"])
def test_gradient_accumulated_over_chunks_equals_the_whole_batch(dtype, loss, activation):
    """A batch larger than the workspace is processed in chunks (gemm beta = 1, dlogits / m)."""
    network, params, X, y = _problem((12, 8, 6, 4), activation, n_samples=53, seed=3, dtype=dtype)
    whole_value, whole_grad = loss_and_grad(cb, network, params, X, y, loss)
    chunked_value, chunked_grad = loss_and_grad(CythonBackend(chunk_rows=5), network, params, X, y, loss)  # 10 x 5 + 3
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
    network = Network((2, 2, 2), dtype="float64")
    params = np.array([0.5, -1.0, 0.25, 0.5, 0.0, 0.5,     # W1 (row-major), b1
                       1.0, 0.0, 0.0, 2.0, 0.0, -1.0])     # W2, b2
    X = np.array([[2.0, 4.0]])
    optimizer = SGD(lr=0.5)
    result = epoch(cb, network, params, optimizer, X, np.array([0]), batch_size=1)
    expected = [0.619203, -1.238406, 0.488406, 0.023188, 0.059601, 0.380797,
                1.119203, -0.119203, 0.029801, 1.970199, 0.059601, -1.059601]
    np.testing.assert_allclose(params, expected, rtol=0, atol=5e-7)  # the printed 6 decimals
    assert result.loss_sum == pytest.approx(0.126928, abs=5e-7)
    assert (result.n_correct, result.n_samples, result.n_batches, result.diverged_batch) == (1, 1, 1, None)
    assert optimizer.step == 1


def test_one_tanh_forward_and_backward_worked_by_hand():
    """A 1-1-2 tanh network, x = 0.5, label 1, cross-entropy.

    W1 = [[2]], b1 = [0];  W2 = [[1, -1]], b2 = [0, 0].
    Forward:  z1 = 1, a1 = tanh(1) = t;  logits = [t, -t];  p1 = 1 / (1 + e^{2t})
              loss = log(1 + e^{2t}) (the label's logit is -t, the other t)
    Backward: dlogits = p - onehot(1) = [1 - p1, p1 - 1] = [q, -q] with q = 1 - p1
              dW2 = a1 dlogits = [t q, -t q];  db2 = [q, -q]
              da1 = dlogits . W2^T = q + q = 2q;  dz1 = 2q (1 - t^2)
              dW1 = x dz1 = q (1 - t^2);  db1 = 2q (1 - t^2)
    """
    network = Network((1, 1, 2), "tanh", "float64")
    params = np.array([2.0, 0.0, 1.0, -1.0, 0.0, 0.0])
    t = np.tanh(1.0)
    p1 = 1 / (1 + np.exp(2 * t))
    q = 1 - p1
    value, grad = loss_and_grad(cb, network, params, np.array([[0.5]]), np.array([1]))
    assert value == pytest.approx(np.log1p(np.exp(2 * t)), rel=1e-14)
    np.testing.assert_allclose(grad, [q * (1 - t * t), 2 * q * (1 - t * t), t * q, -t * q, q, -q], rtol=1e-13)
