"""ONNX Runtime as an inference column: images/s of the exported graph beside the compiled core.

    python benchmarks/onnx_inference.py [--network 784-128-10] [--batch 1024] [--threads 1,2] [--repeats 9]

``OnnxRuntimeInference`` has the shape of the benchmark's inference runners (``run()`` over
all of X in batches, ``warm_up(n_rows)``), so the harness can time it round-robin beside
them; ``onnxruntime_images_per_second`` times it alone. Run as a script, this file times the
graph (uint8 input, scaled in the graph: the same input the compiled core takes) against the
compiled core's ``predict_proba`` on the 60,000 MNIST training images (random pixels if MNIST
is not cached), interleaved in one process after a warm-up, and prints medians of wall and
CPU time. ONNX Runtime has its own thread pool, sized here by ``intra_op_num_threads``; the
compiled core's BLAS threads are set with threadpoolctl (``n_threads``).
"""
import argparse
import statistics
import time

import numpy as np

import nncore
from nncore.onnx_export import INPUT_NAME, OUTPUT_NAME, build_onnx_model


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("the ONNX Runtime column needs onnxruntime: pip install onnxruntime") from None
    return onnxruntime


class OnnxRuntimeInference:
    """Forward-only probabilities over X with ONNX Runtime (CPU) running ``model``'s exported graph.

    ``allow_spinning=False`` stops the pool's threads busy-waiting between runs, which on a
    shared machine takes cycles from whatever runs next.
    """

    def __init__(self, model, X, batch_size, threads, allow_spinning=True):
        onnxruntime = import_onnxruntime()
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
        X = self.X if X is None else X
        for start in range(0, len(X), self.batch_size):
            stop = start + self.batch_size
            self.out[start:stop] = self.session.run([OUTPUT_NAME], {INPUT_NAME: X[start:stop]})[0]
        return self.out[:len(X)]

    def warm_up(self, n_rows):
        self.run(self.X[:n_rows])


class CompiledInference:
    """The compiled core's ``predict_proba`` over X, in ``batch_size`` rows at a time."""

    def __init__(self, model, X, batch_size, threads):
        self.model, self.X, self.batch_size, self.threads = model, X, batch_size, threads

    def run(self, X=None):
        return self.model.predict_proba(self.X if X is None else X, batch_size=self.batch_size,
                                        backend="cython", n_threads=self.threads)

    def warm_up(self, n_rows):
        self.run(self.X[:n_rows])


def time_interleaved(runners, repeats, warm_up_rows=4096):
    """Warm each runner up, then run them in turn ``repeats`` times: {name: (median wall s, median CPU s)}."""
    for runner in runners.values():
        runner.warm_up(warm_up_rows)
    wall = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            runner.run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in runners}


def onnxruntime_images_per_second(model, X, batch_size=1024, threads=1, repeats=5):
    """Median images/s of ONNX Runtime running ``model``'s graph over X (uint8 or the model's dtype)."""
    seconds, _ = time_interleaved({"onnxruntime": OnnxRuntimeInference(model, X, batch_size, threads)},
                                  repeats)["onnxruntime"]
    return len(X) / seconds


def load_images():
    try:
        return nncore.load_mnist("train").images, "MNIST train"
    except Exception as error:  # noqa: BLE001 (any failure: fall back to random pixels, said below)
        rng = np.random.default_rng(0)
        return rng.integers(0, 256, (60_000, 784), dtype=np.uint8), f"random pixels ({error})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="784-128-10")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)

    X, source = load_images()
    layer_sizes = [int(size) for size in args.network.split("-")]
    model = nncore.MLP(layer_sizes, dtype=args.dtype, seed=0)
    onnxruntime = import_onnxruntime()
    print(f"{args.network} {args.dtype}, batch {args.batch}, {len(X)} images ({source}), "
          f"onnxruntime {onnxruntime.__version__}, {args.repeats} interleaved rounds, medians")
    for threads in (int(t) for t in args.threads.split(",")):
        runners = {"compiled": CompiledInference(model, X, args.batch, threads),
                   "onnxruntime": OnnxRuntimeInference(model, X, args.batch, threads),
                   "onnxruntime (no spinning)": OnnxRuntimeInference(model, X, args.batch, threads,
                                                                    allow_spinning=False)}
        difference = np.abs(runners["onnxruntime"].run() - runners["compiled"].run()).max()
        medians = time_interleaved(runners, args.repeats)
        compiled_seconds = medians["compiled"][0]
        for name, (seconds, cpu_seconds) in medians.items():
            print(f"  threads {threads}  {name:<26} {len(X) / seconds:>10,.0f} images/s  "
                  f"({seconds * 1e3:6.1f} ms, CPU {cpu_seconds * 1e3:6.1f} ms, "
                  f"time / compiled time {seconds / compiled_seconds:.2f})")
        print(f"  threads {threads}  largest |onnxruntime - compiled| probability difference {difference:.1e}")


if __name__ == "__main__":
    main()
