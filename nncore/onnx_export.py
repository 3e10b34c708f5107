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
from ._types import PathLike

if TYPE_CHECKING:
    import onnx

    from .model import MLP

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


def hidden_activations(model: MLP) -> list[str]:
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


def _layer_nodes(onnx, model, activations, first_input):
    """(nodes, initializers): Gemm + activation per hidden layer, Gemm + Softmax at the end."""
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    ops = [ACTIVATIONS[name].onnx_op for name in activations] + ["Softmax"]
    nodes, initializers, current = [], [], first_input
    for index, ((W, b), op) in enumerate(zip(model.layers, ops), start=1):
        weight, bias, linear = f"layer{index}.weight", f"layer{index}.bias", f"layer{index}.linear"
        initializers += [numpy_helper.from_array(np.ascontiguousarray(W), weight),
                         numpy_helper.from_array(np.ascontiguousarray(b), bias)]
        nodes.append(helper.make_node("Gemm", [current, weight, bias], [linear], name=f"layer{index}_gemm"))
        current = linear
        if op is None:  # identity
            continue
        current = OUTPUT_NAME if op == "Softmax" else f"layer{index}.{op.lower()}"
        attributes = {"axis": 1} if op == "Softmax" else {}
        nodes.append(helper.make_node(op, [linear], [current], name=f"layer{index}_{op.lower()}", **attributes))
    return nodes, initializers


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
    # Models that remember their data (dataset name, class names, image shape) carry them into the graph.
    dataset_name = getattr(model, "dataset_name", None)
    class_names = getattr(model, "class_names", None)
    input_shape = getattr(model, "input_shape", None)
    if dataset_name:
        metadata["dataset"] = str(dataset_name)
    if class_names is not None:
        metadata["class_names"] = json.dumps([str(name) for name in class_names])
    if input_shape is not None:
        metadata["input_shape"] = json.dumps([int(size) for size in input_shape])
    return metadata


def build_onnx_model(model: MLP, input_dtype: str = "uint8") -> onnx.ModelProto:
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


def to_onnx(model: MLP, path: PathLike, input_dtype: str = "uint8") -> onnx.ModelProto:
    """Write ``model`` to ``path`` as an ONNX graph (atomically); return the ``onnx.ModelProto``."""
    proto = build_onnx_model(model, input_dtype)
    atomic_write_bytes(path, proto.SerializeToString())
    return proto
