"""The two backends behind nncore: "cython" (the compiled core, the default) and "numpy" (the reference).

Both are ``Backend`` objects (``nncore.backends.base``) with the same calls and meaning; the
NumPy one is the specification. There is no silent fallback: asking for "cython" when the
extension did not build raises ImportError with the reason.

Importing this package registers the compiled core's thread pool with threadpoolctl (when the
core is built), so that ``threadpool_limits`` reaches it from then on (``.threads``).
"""
from .base import Backend, EpochResult


def _register_threads():
    try:
        from .threads import register_with_threadpoolctl
        register_with_threadpoolctl()
    except ImportError:
        pass    # no compiled core here: asking for the "cython" backend says why


_register_threads()


def _cython():
    from .cython_backend import CythonBackend
    return CythonBackend()


def _numpy():
    from .numpy_backend import NumpyBackend
    return NumpyBackend()


BACKENDS = {"cython": _cython, "numpy": _numpy}
DEFAULT_BACKEND = "cython"


def get_backend(backend: str | Backend = DEFAULT_BACKEND, n_threads: int | None = None) -> Backend:
    """The backend called ``backend`` ("cython" or "numpy"), or ``backend`` itself if it is a Backend;
    with ``n_threads``, one whose calls use that many threads (``Backend.with_threads``)."""
    if isinstance(backend, Backend):
        return backend.with_threads(n_threads)
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {tuple(BACKENDS)} or a Backend, got {backend!r}")
    return BACKENDS[backend]().with_threads(n_threads)


def compiled_core_status():
    """(available, detail): whether the compiled extension imports, with its path or the error."""
    from .._compiled import import_core
    try:
        _core = import_core()
    except ImportError as error:
        return False, f"{type(error).__name__}: {error}"
    return True, _core.__file__


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Backend", "EpochResult", "compiled_core_status", "get_backend"]
