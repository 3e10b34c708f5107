"""The hidden-layer activations, by name: scikit-learn's four (identity, logistic, tanh, relu),
PyTorch's default leaky ReLU (slope 0.01) and the exact GELU.

Each entry holds what the Python side of nncore needs of an activation, in one place; the
compiled core's twin of each is in src_c/ops.h, under the same name and code
(tests/test_ops.py holds the two together):

- ``code``: its code in ops.h (``NNCORE_ACTIVATION_*``), which ``Network.table`` hands the core;
- ``forward``: its NumPy definition, applied in place to Z (the reference the kernels follow
  operation for operation, so float64 agrees to rounding);
- ``backward``: dZ = dA * f'(z) in place, f' written from ``x``: the layer's output A for most
  activations (relu 1[A > 0], tanh 1 - A^2, logistic A (1 - A)), its input Z for those whose
  derivative cannot be had from the output (``reads_input``: GELU), for which the passes keep Z;
- ``default_init``: the initialisation the layer gets unless one is asked for (He for the ReLU
  family, Glorot for the others), a key of ``nncore.network.INITIALIZERS``;
- ``onnx``: ``onnx(graph, x)`` adds the nodes that apply it to tensor ``x`` to an exported graph
  (``nncore.onnx_export``) and returns the result's name; None for identity (no node at all).

The output layer always ends in a softmax, which belongs to the loss (``nncore.losses``).
Adding an activation: an entry here and its maths in src_c/ops.h; nothing else switches on names.
"""
import math
from typing import Callable, NamedTuple, Optional

import numpy as np
from scipy.special import erf

#: Leaky ReLU's slope for negative inputs (PyTorch's default; ops.h's NNCORE_LEAKY_RELU_SLOPE).
LEAKY_RELU_SLOPE = 0.01
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi), as ops.h's NNCORE_INV_SQRT_2PI


class Activation(NamedTuple):
    """One activation: its name, code, NumPy forward and backward, what f' reads, default init, ONNX nodes."""

    name: str
    code: int
    forward: Callable
    backward: Callable
    reads_input: bool
    default_init: str
    onnx: Optional[Callable]


def identity_forward(Z):
    return Z


def identity_backward(dA, x):
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


def leaky_relu_forward(Z):
    """z for z >= 0, LEAKY_RELU_SLOPE * z below (the slope rounded to Z's dtype); NaN stays NaN."""
    Z[...] = np.where(Z < 0, Z.dtype.type(LEAKY_RELU_SLOPE) * Z, Z)
    return Z


def leaky_relu_backward(dA, A):
    dA *= np.where(A > 0, A.dtype.type(1), A.dtype.type(LEAKY_RELU_SLOPE))
    return dA


def gelu_forward(Z):
    """z * Phi(z) = 0.5 z (1 + erf(z / sqrt 2)), the exact form (PyTorch's default)."""
    Z[...] = 0.5 * Z * (1 + erf(Z * Z.dtype.type(math.sqrt(0.5))))
    return Z


def gelu_backward(dA, Z):
    """f'(z) = Phi(z) + z phi(z), from the layer's input Z."""
    dA *= 0.5 * (1 + erf(Z * Z.dtype.type(math.sqrt(0.5)))) + Z * np.exp(-0.5 * Z * Z) * Z.dtype.type(_INV_SQRT_2PI)
    return dA


def logistic_onnx(graph, x):
    return graph.node("Sigmoid", [x])


def tanh_onnx(graph, x):
    return graph.node("Tanh", [x])


def relu_onnx(graph, x):
    return graph.node("Relu", [x])


def leaky_relu_onnx(graph, x):
    """max(x, slope x): ONNX's LeakyRelu has no float64 kernel in ONNX Runtime; Max and Mul have."""
    return graph.node("Max", [x, graph.node("Mul", [x, graph.constant(LEAKY_RELU_SLOPE)])])


def gelu_onnx(graph, x):
    """0.5 x (1 + Erf(x / sqrt 2)) in opset-13 operators (ONNX's own Gelu needs opset 20); Erf in
    float32 in a float64 graph (ONNX Runtime has no float64 Erf)."""
    erf_node = graph.node_in_float32("Erf", [graph.node("Mul", [x, graph.constant(math.sqrt(0.5))])])
    return graph.node("Mul", [graph.node("Mul", [x, graph.node("Add", [erf_node, graph.constant(1.0)])]),
                              graph.constant(0.5)])


ACTIVATIONS = {activation.name: activation for activation in (
    Activation("identity", 0, identity_forward, identity_backward, False, "xavier", None),
    Activation("logistic", 1, logistic_forward, logistic_backward, False, "xavier", logistic_onnx),
    Activation("tanh", 2, tanh_forward, tanh_backward, False, "xavier", tanh_onnx),
    Activation("relu", 3, relu_forward, relu_backward, False, "he", relu_onnx),
    Activation("leaky_relu", 4, leaky_relu_forward, leaky_relu_backward, False, "he", leaky_relu_onnx),
    Activation("gelu", 5, gelu_forward, gelu_backward, True, "he", gelu_onnx),
)}


def get_activation(name):
    """The registry entry called ``name``; ValueError naming the choices otherwise."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]
