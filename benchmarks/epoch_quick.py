"""Quick epoch timing: the compiled and NumPy backends, interleaved in one process, and the gemm floor.

    python benchmarks/epoch_quick.py [--repeats 7] [--threads N] [--real]

For each configuration (784-128-10 float32, batch 128, SGD; 784-10-10 float32, batch 32, SGD)
it times one training epoch on 60,000 x 784 uint8 inputs with each backend, alternating them
after a warm-up (timings swing between processes but stay steady within one), and prints the
medians and their ratio. The "gemm floor" is the same sequence of gemm calls an epoch makes
(forward, dW, dX except for the first layer), timed alone through the compiled core's BLAS
shim on preallocated buffers: the best an epoch could do if everything else were free.
``--real`` uses MNIST from nncore's data cache instead of random pixels (same speed).
"""
import argparse
import os
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from nncore import _core
from nncore.backends import get_backend
from nncore.losses import get_loss
from nncore.network import Network
from nncore.optim import SGD

N_SAMPLES, N_FEATURES = 60_000, 784


def make_data(real):
    if real:
        from nncore.data import load_mnist  # noqa: PLC0415 (only when asked)
        train = load_mnist()[0]
        return np.ascontiguousarray(train.images.reshape(len(train.images), -1)), train.labels
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (N_SAMPLES, N_FEATURES), dtype=np.uint8),
            rng.integers(0, 10, N_SAMPLES).astype(np.int32))


def init_params(layer_sizes, dtype, seed=0):
    return Network(layer_sizes, dtype=dtype).initial_params(seed, ("he",) * (len(layer_sizes) - 1))


def gemm_floor(layer_sizes, batch_size, n_samples, dtype):
    """Seconds for the epoch's gemm calls alone (same shapes, same order, through the core's shim)."""
    return _core.gemm_floor_seconds(init_params(layer_sizes, dtype), layer_sizes, n_samples, batch_size)


def time_epoch(backend, layer_sizes, X, y, batch_size, dtype, seed):
    network, params = Network(layer_sizes, dtype=dtype), init_params(layer_sizes, dtype)
    optimizer = SGD(lr=0.01)
    optimizer.ensure_state(network.n_params, network.dtype)
    labels = np.ascontiguousarray(y, dtype=np.int32)
    start = time.perf_counter()
    backend.train_epoch(network, params, optimizer, X, labels, batch_size, seed, get_loss("cross_entropy"))
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: BLAS's own)")
    parser.add_argument("--real", action="store_true", help="MNIST from the data cache")
    args = parser.parse_args()
    X, y = make_data(args.real)
    cython_backend, numpy_backend = get_backend("cython"), get_backend("numpy")
    blas = [(i["internal_api"], i["version"], i.get("architecture"), i["num_threads"]) for i in threadpool_info()]
    print(f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}  BLAS: {blas}")
    configs = [((784, 128, 10), 128, np.float32), ((784, 10, 10), 32, np.float32)]
    with threadpool_limits(limits=args.threads):
        for layer_sizes, batch_size, dtype in configs:
            times = {"cython": [], "numpy": [], "gemm floor": []}
            # warm-up: page in the data, spin up BLAS threads
            time_epoch(cython_backend, layer_sizes, X, y, batch_size, dtype, 0)
            time_epoch(numpy_backend, layer_sizes, X, y, batch_size, dtype, 0)
            gemm_floor(layer_sizes, batch_size, len(X), dtype)
            for repeat in range(args.repeats):
                times["cython"].append(time_epoch(cython_backend, layer_sizes, X, y, batch_size, dtype, repeat))
                times["numpy"].append(time_epoch(numpy_backend, layer_sizes, X, y, batch_size, dtype, repeat))
                times["gemm floor"].append(gemm_floor(layer_sizes, batch_size, len(X), dtype))
            medians = {name: statistics.median(values) for name, values in times.items()}
            label = "-".join(map(str, layer_sizes))
            print(f"\n{label} {np.dtype(dtype).name} batch {batch_size}, SGD, {len(X)} samples, "
                  f"median of {args.repeats}:")
            for name, value in medians.items():
                print(f"  {name:<11} {value:7.3f} s   (all: {', '.join(f'{t:.3f}' for t in times[name])})")
            print(f"  numpy / cython       = {medians['numpy'] / medians['cython']:.2f}x")
            print(f"  cython / gemm floor  = {medians['cython'] / medians['gemm floor']:.2f}x")


if __name__ == "__main__":
    main()
