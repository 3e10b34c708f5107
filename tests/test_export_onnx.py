"""ONNX export: the graph ONNX Runtime runs gives predict_proba's probabilities, for every hidden
activation, both dtypes and both input conventions; the file is a checked, standard graph.

Tolerances: float32 1e-5 absolute on probabilities (two BLAS libraries summing in different
orders), float64 1e-12.
"""
import json
import sys
from importlib.util import find_spec

import numpy as np
import pytest
from scipy.special import expit
from scipy.stats import norm

import nncore
from nncore import onnx_export
from nncore.activations import ACTIVATIONS
from nncore.backends.base import input_scale
from nncore.cli import main

needs_onnx = pytest.mark.skipif(find_spec("onnx") is None,
                                reason='onnx is not installed (pip install "nncore[onnx]")')
needs_onnxruntime = pytest.mark.skipif(find_spec("onnx") is None or find_spec("onnxruntime") is None,
                                       reason="onnx and onnxruntime are not installed (both are in nncore[dev])")

TOLERANCE = {"float32": 1e-5, "float64": 1e-12}
#: The hidden activations as scikit-learn and PyTorch define them: the reference the graphs are held to.
REFERENCE_ACTIVATIONS = {"identity": lambda Z: Z, "logistic": expit, "tanh": np.tanh,
                         "relu": lambda Z: np.maximum(Z, 0), "leaky_relu": lambda Z: np.where(Z > 0, Z, 0.01 * Z),
                         "gelu": lambda Z: Z * norm.cdf(Z)}


def tolerance(activation, dtype):
    """ONNX Runtime has no float64 Erf: a float64 GELU graph computes it in float32 (onnx_export)."""
    return 1e-6 if activation == "gelu" and dtype == "float64" else TOLERANCE[dtype]


def reference_proba(model, X):
    """The forward pass in NumPy, reading each hidden layer's activation from the model."""
    A = X.astype(model.dtype) * input_scale(model.dtype) if X.dtype == np.uint8 else X
    activations = onnx_export.hidden_activations(model)
    for index, (W, b) in enumerate(model.layers):
        Z = A @ W + b
        A = REFERENCE_ACTIVATIONS[activations[index]](Z) if index < len(activations) else Z
    exp = np.exp(A - A.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def make_model(activation, dtype, layer_sizes=(30, 17, 9, 5), seed=0):
    """A model with random weights and nonzero random biases computing ``activation`` in its hidden layers."""
    model = nncore.MLP(layer_sizes, activation=activation, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    for _, b in model.layers:
        b[...] = rng.normal(scale=0.5, size=b.shape)  # nonzero biases: a wrong bias would show
    return model


def inputs(model, input_dtype, n=64, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, (n, model.n_inputs), dtype=np.uint8)
    return X if input_dtype == "uint8" else (X / 255.0 * 3 - 1).astype(model.dtype)


def run_onnxruntime(path_or_bytes, X):
    import onnxruntime
    session = onnxruntime.InferenceSession(path_or_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, {onnx_export.INPUT_NAME: X})[0]


@needs_onnxruntime
@pytest.mark.parametrize("input_dtype", onnx_export.INPUT_DTYPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_onnxruntime_gives_the_models_probabilities(activation, dtype, input_dtype, tmp_path):
    model = make_model(activation, dtype)
    X = inputs(model, input_dtype)
    model.to_onnx(tmp_path / "model.onnx", input_dtype=input_dtype)
    got = run_onnxruntime(str(tmp_path / "model.onnx"), X)
    assert got.dtype == model.dtype and got.shape == (len(X), model.n_classes)
    np.testing.assert_allclose(got, reference_proba(model, X), rtol=0, atol=tolerance(activation, dtype))
    np.testing.assert_allclose(got, model.predict_proba(X), rtol=0, atol=tolerance(activation, dtype))


@needs_onnxruntime
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_the_reference_forward_pass_is_the_compiled_cores(activation, dtype):
    # Guards the reference the graphs are checked against (scikit-learn's definitions).
    model = make_model(activation, dtype)
    X = inputs(model, "uint8")
    np.testing.assert_allclose(reference_proba(model, X), model.predict_proba(X), rtol=0, atol=TOLERANCE[dtype])


@needs_onnxruntime
def test_a_list_of_per_layer_activations_is_exported_layer_by_layer():
    model = make_model(["tanh", "identity", "logistic"], "float64", layer_sizes=(12, 8, 7, 6, 3))
    X = inputs(model, "uint8")
    proto = onnx_export.build_onnx_model(model)
    assert [node.op_type for node in proto.graph.node] == [
        "Cast", "Mul", "Gemm", "Tanh", "Gemm", "Gemm", "Sigmoid", "Gemm", "Softmax"]
    np.testing.assert_allclose(run_onnxruntime(proto.SerializeToString(), X), reference_proba(model, X),
                               rtol=0, atol=1e-12)


@needs_onnxruntime
def test_a_fitted_classifier_exports_through_its_model():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = np.where(X[:, 0] > 0, "yes", "no")
    classifier = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, y)
    data = onnx_export.build_onnx_model(classifier.model_, "float").SerializeToString()
    np.testing.assert_allclose(run_onnxruntime(data, X), classifier.predict_proba(X), rtol=0, atol=1e-5)


@needs_onnxruntime
def test_the_batch_dimension_is_dynamic_and_a_model_without_hidden_layers_exports():
    model = make_model("relu", "float32", layer_sizes=(30, 5))
    data = onnx_export.build_onnx_model(model).SerializeToString()
    for n in (1, 3, 1000):
        X = inputs(model, "uint8", n=n)
        np.testing.assert_allclose(run_onnxruntime(data, X), model.predict_proba(X), rtol=0, atol=1e-5)


@needs_onnx
@pytest.mark.parametrize("input_dtype, element_type", [("uint8", "UINT8"), ("float", "DOUBLE")])
def test_the_graph_is_standard_opset_13_with_a_named_input_convention(input_dtype, element_type):
    import onnx
    model = make_model("relu", "float64")
    proto = onnx_export.build_onnx_model(model, input_dtype)
    onnx.checker.check_model(proto, full_check=True)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 13)] and proto.ir_version == 7
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert graph_input.type.tensor_type.elem_type == getattr(onnx.TensorProto, element_type)
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ["batch", 30]
    assert [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim] == ["batch", 5]
    ops = [node.op_type for node in proto.graph.node]
    assert ops == (["Cast", "Mul"] if input_dtype == "uint8" else []) + ["Gemm", "Relu", "Gemm", "Relu", "Gemm",
                                                                         "Softmax"]


@needs_onnx
def test_metadata_describes_the_model_and_its_data():
    model = make_model("tanh", "float32")
    model.dataset_name, model.class_names = "fashion-mnist", ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]
    metadata = {p.key: p.value for p in onnx_export.build_onnx_model(model, "float").metadata_props}
    assert json.loads(metadata["layer_sizes"]) == [30, 17, 9, 5]
    assert json.loads(metadata["hidden_activations"]) == ["tanh", "tanh"]
    assert metadata["dtype"] == "float32" and metadata["output_activation"] == "softmax"
    assert metadata["input"].startswith("float32 values used as they are")
    assert metadata["dataset"] == "fashion-mnist" and json.loads(metadata["class_names"])[1] == "Trouser"
    plain = make_model("relu", "float32")
    assert {"dataset", "class_names"}.isdisjoint(p.key for p in onnx_export.build_onnx_model(plain).metadata_props)


@needs_onnx
def test_bad_arguments_are_refused(monkeypatch, tmp_path):
    model = make_model("relu", "float32")
    with pytest.raises(ValueError, match="input_dtype must be one of"):
        model.to_onnx(tmp_path / "model.onnx", input_dtype="int8")
    monkeypatch.setattr(onnx_export, "MAX_PARAMETER_BYTES", model.params.nbytes - 1)
    with pytest.raises(ValueError, match="limited to 2 GiB"):
        model.to_onnx(tmp_path / "model.onnx")
    assert not list(tmp_path.iterdir())


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    model = make_model("relu", "float32")
    with pytest.raises(ImportError, match=r'pip install "nncore\[onnx\]"'):
        model.to_onnx("model.onnx")


# ---------------------------------------------------------------- nncore export

@needs_onnxruntime
@pytest.mark.parametrize("input_option", ["uint8", "float"])
def test_nncore_export_writes_a_graph_that_runs(input_option, tmp_path, capsys):
    model = make_model("relu", "float32")
    model.save(tmp_path / "model.npz")
    code = main(["export", str(tmp_path / "model.npz"), "--onnx", str(tmp_path / "out.onnx"),
                 "--input", input_option])
    out = capsys.readouterr().out
    assert code == 0 and out.startswith(f"wrote {tmp_path / 'out.onnx'}: 30-17-9-5 (relu, relu), float32")
    X = inputs(model, input_option)
    np.testing.assert_allclose(run_onnxruntime(str(tmp_path / "out.onnx"), X), model.predict_proba(X),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("make_argv, message", [
    (lambda d: ["export", d / "missing.npz", "--onnx", d / "out.onnx"], "missing.npz: no such file"),
    (lambda d: ["export", d / "model.npz", "--onnx", d / "no-such-dir" / "out.onnx"], "no-such-dir"),
])
def test_nncore_export_mistakes_are_one_line(make_argv, message, tmp_path, capsys):
    if find_spec("onnx") is None and "no-such-dir" in message:
        pytest.skip('onnx is not installed (pip install "nncore[onnx]")')
    make_model("relu", "float32").save(tmp_path / "model.npz")
    code = main([str(a) for a in make_argv(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("nncore: error: ") and message in err and len(err.splitlines()) == 1


def test_nncore_export_without_onnx_says_which_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "onnx", None)
    make_model("relu", "float32").save(tmp_path / "model.npz")
    code = main(["export", str(tmp_path / "model.npz"), "--onnx", str(tmp_path / "out.onnx")])
    assert code == 1 and capsys.readouterr().err == 'nncore: error: ONNX export needs the onnx package: ' \
                                                    'pip install "nncore[onnx]"\n'
    assert not (tmp_path / "out.onnx").exists()
