"""The hidden-layer activations, by name: scikit-learn's four (identity, logistic, tanh, relu).

Each entry holds what every part of nncore needs of an activation, in one place:

- ``code``: the ``ACTIVATION_*`` value of src_c/_kernels.pxd, where ``bias_activation_forward``
  and ``activation_backward`` give each activation a loop of its own;
- ``forward``: its NumPy definition, applied in place to Z (the reference the kernels follow
  operation for operation, so float64 agrees to rounding);
- ``backward``: dZ = dA * f'(Z) in place, with f' written from the layer's output A (what
  the backward pass keeps): relu 1[A > 0], tanh 1 - A^2, logistic A (1 - A), identity 1;
- ``default_init``: the initialisation the layer gets unless one is asked for (He for ReLU,
  Glorot for the others), a key of ``nncore.network.INITIALIZERS``;
- ``onnx_op``: the ONNX operator that applies it in an exported graph (None: no node at all).

The output layer always ends in a softmax, which belongs to the loss (``nncore.losses``).
"""
from typing import Callable, NamedTuple

import numpy as np


class Activation(NamedTuple):
    """One activation: its name, kernel code, NumPy forward and backward, default init, ONNX op."""

    name: str
    code: int
    forward: Callable
    backward: Callable
    default_init: str
    onnx_op: "str | None"


def identity_forward(Z):
    return Z


def identity_backward(dA, A):
    return dA


def logistic_forward(Z):
    """1 / (1 + exp(-z)) as (1 or e) / (1 + e), e = exp(-|z|): no overflow for any finite z."""
    e = np.exp(-np.abs(Z))
    Z[...] = np.where(Z >= 0, 1, e) / (1 + e)
    return Z


def logistic_backward(dA, A):
    dA *= A * (1 - A)
    return dA


def tanh_forward(Z):
    return np.tanh(Z, out=Z)


def tanh_backward(dA, A):
    dA *= 1 - A * A
    return dA


def relu_forward(Z):
    """max(z, 0); NaN stays NaN (np.maximum), so a diverging batch is still seen."""
    return np.maximum(Z, 0, out=Z)


def relu_backward(dA, A):
    dA *= A > 0
    return dA


ACTIVATIONS = {activation.name: activation for activation in (
    Activation("identity", 0, identity_forward, identity_backward, "xavier", None),
    Activation("logistic", 1, logistic_forward, logistic_backward, "xavier", "Sigmoid"),
    Activation("tanh", 2, tanh_forward, tanh_backward, "xavier", "Tanh"),
    Activation("relu", 3, relu_forward, relu_backward, "he", "Relu"),
)}


def get_activation(name):
    """The registry entry called ``name``; ValueError naming the choices otherwise."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]
