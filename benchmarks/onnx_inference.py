"""ONNX Runtime as an inference column: images/s of the exported graph beside the compiled core.

    python benchmarks/onnx_inference.py [--network 784-128-10] [--batch 1024] [--threads 1,2] [--repeats 9]

``nncore bench`` times ONNX Runtime as a column of its inference table when it is installed
(``nncore_bench.onnx_candidates``); ``onnxruntime_images_per_second`` times it alone. Run as a script, this file times the
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
from nncore_bench.onnx_candidates import OnnxRuntimeInference, import_onnxruntime


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
    onnxruntime = _onnxruntime()
    seconds, _ = time_interleaved({"onnxruntime": OnnxRuntimeInference(onnxruntime, model, X, batch_size, threads)},
                                  repeats)["onnxruntime"]
    return len(X) / seconds


def _onnxruntime():
    onnxruntime, why_not = import_onnxruntime()
    if onnxruntime is None:
        raise ImportError(why_not)
    return onnxruntime


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
    onnxruntime = _onnxruntime()
    print(f"{args.network} {args.dtype}, batch {args.batch}, {len(X)} images ({source}), "
          f"onnxruntime {onnxruntime.__version__}, {args.repeats} interleaved rounds, medians")
    for threads in (int(t) for t in args.threads.split(",")):
        runners = {"compiled": CompiledInference(model, X, args.batch, threads),
                   "onnxruntime": OnnxRuntimeInference(onnxruntime, model, X, args.batch, threads),
                   "onnxruntime (no spinning)": OnnxRuntimeInference(onnxruntime, model, X, args.batch, threads,
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
