"""What a figure depends on: the data, the compiled core, the machine and its BLAS."""
import os
import platform

import numpy as np

N_FEATURES = 784


def load_data(choice, n_samples):
    """(X uint8 (n, 784), y uint8 (n,), description): real MNIST if available, else random pixels."""
    reason = "random data requested"
    if choice in ("auto", "mnist"):
        try:
            from nncore import load_mnist
            dataset = load_mnist()
            X, y = np.ascontiguousarray(dataset.images), np.ascontiguousarray(dataset.labels)
            if len(X) < n_samples:
                raise ValueError(f"MNIST has {len(X)} training images, fewer than {n_samples}")
            return X[:n_samples], y[:n_samples], f"MNIST training images ({n_samples} x {X.shape[1]} uint8)"
        except Exception as error:
            if choice == "mnist":
                raise
            reason = f"MNIST unavailable ({type(error).__name__}: {error})"
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(n_samples, N_FEATURES), dtype=np.uint8)
    y = rng.integers(0, 10, size=n_samples, dtype=np.uint8)
    return X, y, f"random uint8 pixels, MNIST-shaped ({n_samples} x {N_FEATURES}); {reason}"


def compiled_backend():
    """(module, None) or (None, why the compiled backend cannot be timed)."""
    try:
        from nncore.backends import get_backend
        module = get_backend("cython")
    except Exception as error:
        return None, f"{type(error).__name__}: {error}"
    return module, None


def core_testing_module():
    """nncore._core when the compiled core is built (its products-only epoch is the floor), else None."""
    try:
        from nncore import _core
    except ImportError:
        return None
    return _core


def environment_summary():
    """The machine and library facts a figure depends on (see ``nncore info``)."""
    from nncore import info
    facts = info.collect()
    return {
        "nncore_version": facts["nncore_version"],
        "python": platform.python_version(),
        "numpy": facts["numpy_version"],
        "scipy": facts["scipy_version"],
        "cpu_model": facts["cpu"]["model"],
        "cpu_count": facts["cpu"]["logical_cpus"],
        "cpu_flags": {flag: facts["cpu"]["flags"].get(flag) for flag in ("avx2", "avx512f")},
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        "scipy_blas": facts["scipy_blas"],
        "blas_libraries": facts["blas_libraries"],
        "kernel_note": facts["kernel_note"],
        "compiled_core": facts["compiled_core"],
    }


def configured_threads():
    """The BLAS thread count as configured (threadpoolctl's view of SciPy's BLAS)."""
    from nncore import info
    blas = info.collect()["scipy_blas"]
    return int(blas["num_threads"]) if blas and blas.get("num_threads") else (os.cpu_count() or 1)


def describe_blas(environment):
    blas = environment.get("scipy_blas") or {}
    coretype = environment.get("openblas_coretype")
    return (f"{blas.get('internal_api', '?')} {blas.get('version', '?')} ({blas.get('architecture', '?')} kernels), "
            f"OPENBLAS_CORETYPE={coretype if coretype else '(unset)'}")
