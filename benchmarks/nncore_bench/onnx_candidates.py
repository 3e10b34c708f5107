"""ONNX Runtime as an inference column, when it is installed: the exported graph of the same network."""
import numpy as np


def import_onnxruntime(wanted=True):
    """(onnxruntime, None) or (None, why the ONNX Runtime column is left out)."""
    if not wanted:
        return None, "ONNX Runtime column turned off (--no-onnx)"
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxruntime
    except ImportError:
        return None, "ONNX Runtime is not installed: column skipped (pip install onnx onnxruntime)"
    return onnxruntime, None


class OnnxRuntimeInference:
    """Forward-only probabilities over X with ONNX Runtime (CPU) running the network's exported graph.

    The graph takes what the compiled core takes (uint8 pixels, scaled inside the graph; or
    floats). ONNX Runtime has its own thread pool, sized by ``intra_op_num_threads``;
    ``allow_spinning=False`` stops its threads busy-waiting between runs, which on a shared
    machine takes cycles from whatever runs next.
    """

    def __init__(self, onnxruntime, model, X, batch_size, threads, allow_spinning=True):
        from nncore.onnx_export import build_onnx_model
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
        input_dtype = "uint8" if X.dtype == np.uint8 else "float"
        self.session = onnxruntime.InferenceSession(build_onnx_model(model, input_dtype).SerializeToString(),
                                                    options, providers=["CPUExecutionProvider"])
        self.X, self.batch_size = X, batch_size
        self.out = np.empty((len(X), model.n_classes), dtype=model.dtype)

    def run(self, X=None):
        from nncore.onnx_export import INPUT_NAME, OUTPUT_NAME
        X = self.X if X is None else X
        for start in range(0, len(X), self.batch_size):
            stop = start + self.batch_size
            self.out[start:stop] = self.session.run([OUTPUT_NAME], {INPUT_NAME: X[start:stop]})[0]
        return self.out[:len(X)]

    def warm_up(self, n_rows):
        self.run(self.X[:n_rows])
