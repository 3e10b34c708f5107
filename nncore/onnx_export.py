"""ONNX export: an nncore MLP as a standard ONNX graph that any ONNX runtime can run.

The graph is what the model computes, op for op: per layer a ``Gemm`` (Z = A·W + b, with W
stored fan_in × fan_out as nncore keeps it, so no transpose) followed by the hidden layer's
activation, and a ``Softmax`` over the classes at the end. Its input is either

- ``"uint8"``: pixels 0..255, turned into the model's dtype and multiplied by 1/255 inside the
  graph (``Cast`` + ``Mul``, the factor rounded to the model's dtype exactly as nncore's
  kernels round it), so the graph takes the same uint8 arrays ``predict_proba`` takes; or
- ``"float"``: values of the model's dtype, used as they are (as nncore uses float input):
  pixels must then be divided by 255 by the caller.

The batch dimension is dynamic (``"batch"``); the graph works in the model's dtype (float32
or float64: ONNX Runtime's CPU kernels for Gemm, Relu, Sigmoid, Tanh and Softmax take both).
Opset 13 (ONNX 1.8, IR version 7) is the target: every op here is unchanged in it from
long before, and runtimes from 2020 on (ONNX Runtime 1.6+, OpenVINO, TensorRT, onnx.js's
successors) load it. What the graph is (layer sizes, activations, dtype, input convention,
dataset name, class names and image shape when the model knows them: ``MLP.dataset_name``,
``class_names``, ``input_shape``) is stored in ``metadata_props``.

``onnx`` is an optional dependency (``pip install "nncore[onnx]"``), imported only here.
"""
from __future__ import annotations

import json
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from ._atomic import atomic_write_bytes
from .activations import ACTIVATIONS
from .backends.base import input_scale
from .model_data import data_header
from ._types import Model, PathLike

if TYPE_CHECKING:
    import onnx


OPSET = 13
IR_VERSION = 7  # the IR version of ONNX 1.8, which introduced opset 13
INPUT_DTYPES = ("uint8", "float")
INPUT_NAME, OUTPUT_NAME = "input", "probabilities"
#: A protobuf message cannot exceed 2 GiB; the parameters are stored inside the graph.
MAX_PARAMETER_BYTES = 2**31 - 2**24


def import_onnx() -> ModuleType:
    """The ``onnx`` module, or an ImportError saying which extra provides it."""
    try:
        import onnx
    except ImportError:
        raise ImportError('ONNX export needs the onnx package: pip install "nncore[onnx]"') from None
    return onnx


def hidden_activations(model: Model) -> list[str]:
    """The activation of each hidden layer, by name (the model's network description)."""
    return list(model.network.activation_names)


def _tensor_type(onnx, dtype):
    return {np.dtype(np.float32): onnx.TensorProto.FLOAT, np.dtype(np.float64): onnx.TensorProto.DOUBLE}[dtype]


def _input_nodes(onnx, model, input_dtype):
    """(graph input, nodes, initializers, name of the scaled input) for the input convention."""
    helper, element_type = onnx.helper, _tensor_type(onnx, model.dtype)
    shape = ["batch", model.n_inputs]
    if input_dtype == "float":
        graph_input = helper.make_tensor_value_info(
            INPUT_NAME, element_type, shape, doc_string=f"{model.dtype.name} features, used as they are")
        return graph_input, [], [], INPUT_NAME
    graph_input = helper.make_tensor_value_info(
        INPUT_NAME, onnx.TensorProto.UINT8, shape, doc_string="uint8 pixels 0..255, scaled by 1/255 in the graph")
    scale = onnx.numpy_helper.from_array(np.array(input_scale(model.dtype)), "input_scale")
    nodes = [helper.make_node("Cast", [INPUT_NAME], ["input_as_float"], to=element_type, name="cast_input"),
             helper.make_node("Mul", ["input_as_float", "input_scale"], ["scaled_input"], name="scale_input")]
    return graph_input, nodes, [scale], "scaled_input"


class _Graph:
    """What an activation's ``onnx(graph, x)`` builds with (``nncore.activations``): nodes and
    constants of the model's dtype, each named after the layer it belongs to."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, dtype
        self.nodes, self.initializers = [], []
        self.prefix = ""

    def node(self, op, inputs, **attributes):
        """Add an ``op`` node reading ``inputs``; the name of its output."""
        name = f"{self.prefix}.{op.lower()}{len(self.nodes)}"
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [name], name=name.replace(".", "_"),
                                                     **attributes))
        return name

    def node_in_float32(self, op, inputs, **attributes):
        """``node``, computed in float32 in a float64 graph (a Cast each way): for operators ONNX
        Runtime has no float64 kernel of (Erf); the result agrees to float32's precision there."""
        if self.dtype == np.float32:
            return self.node(op, inputs, **attributes)
        narrowed = [self.node("Cast", [name], to=self.onnx.TensorProto.FLOAT) for name in inputs]
        return self.node("Cast", [self.node(op, narrowed, **attributes)], to=self.onnx.TensorProto.DOUBLE)

    def constant(self, value):
        """A scalar constant of the model's dtype; its name."""
        name = f"{self.prefix}.constant{len(self.initializers)}"
        self.initializers.append(self.onnx.numpy_helper.from_array(np.array(value, dtype=self.dtype), name))
        return name


def _layer_nodes(onnx, model, activations, first_input):
    """(nodes, initializers): Gemm + activation per hidden layer, Gemm + Softmax at the end."""
    graph = _Graph(onnx, model.dtype)
    current = first_input
    for index, (W, b) in enumerate(model.layers, start=1):
        graph.prefix = f"layer{index}"
        weight, bias = f"layer{index}.weight", f"layer{index}.bias"
        graph.initializers += [onnx.numpy_helper.from_array(np.ascontiguousarray(W), weight),
                               onnx.numpy_helper.from_array(np.ascontiguousarray(b), bias)]
        current = graph.node("Gemm", [current, weight, bias])
        if index <= len(activations) and ACTIVATIONS[activations[index - 1]].onnx is not None:
            current = ACTIVATIONS[activations[index - 1]].onnx(graph, current)
    graph.nodes.append(onnx.helper.make_node("Softmax", [current], [OUTPUT_NAME], name="softmax", axis=1))
    return graph.nodes, graph.initializers


def _metadata(model, activations, input_dtype):
    """What the graph is, as ONNX metadata_props (string to string; structured values in JSON)."""
    if input_dtype == "uint8":
        convention = "uint8 pixels 0..255; the graph multiplies them by 1/255"
    else:
        convention = f"{model.dtype.name} values used as they are (divide pixels 0..255 by 255 first)"
    metadata = {"layer_sizes": json.dumps(list(model.layer_sizes)),
                "hidden_activations": json.dumps(activations),
                "output_activation": "softmax",
                "dtype": model.dtype.name,
                "input": convention}
    # Models that remember their data (dataset name, class names, image shape) carry them into the graph,
    # checked as a model file's writer checks them (nncore.model_data): what one writer takes, all take.
    data = data_header(model)
    if data.get("dataset_name"):
        metadata["dataset"] = data["dataset_name"]
    if "class_names" in data:
        metadata["class_names"] = json.dumps(data["class_names"])
    if "input_shape" in data:
        metadata["input_shape"] = json.dumps(data["input_shape"])
    return metadata


def build_onnx_model(model: Model, input_dtype: str = "uint8") -> onnx.ModelProto:
    """The model as an ``onnx.ModelProto`` (checked with ``onnx.checker``); see the module docstring."""
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    if model.params.nbytes > MAX_PARAMETER_BYTES:
        raise ValueError(f"the model's parameters take {model.params.nbytes / 2**30:.1f} GiB; an ONNX file "
                         f"holding them inline is limited to 2 GiB (protobuf)")
    onnx = import_onnx()
    from . import __version__

    activations = hidden_activations(model)
    graph_input, nodes, initializers, scaled = _input_nodes(onnx, model, input_dtype)
    layer_nodes, layer_initializers = _layer_nodes(onnx, model, activations, scaled)
    graph_output = onnx.helper.make_tensor_value_info(
        OUTPUT_NAME, _tensor_type(onnx, model.dtype), ["batch", model.n_classes],
        doc_string="class probabilities (softmax), one row per input row")
    graph = onnx.helper.make_graph(nodes + layer_nodes, "nncore_mlp_" + "_".join(map(str, model.layer_sizes)),
                                   [graph_input], [graph_output], initializers + layer_initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)],
                                   ir_version=IR_VERSION, producer_name="nncore", producer_version=__version__,
                                   doc_string=f"nncore MLP {'-'.join(map(str, model.layer_sizes))}")
    onnx.helper.set_model_props(proto, _metadata(model, activations, input_dtype))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def to_onnx(model: Model, path: PathLike, input_dtype: str = "uint8") -> onnx.ModelProto:
    """Write ``model`` to ``path`` as an ONNX graph (atomically); return the ``onnx.ModelProto``."""
    proto = build_onnx_model(model, input_dtype)
    atomic_write_bytes(path, proto.SerializeToString(), streams=True)
    return proto
