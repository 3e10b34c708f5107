"""The two backends behind nncore: "cython" (the compiled core, the default) and "numpy" (the reference).

Both modules offer the same functions (``forward``, ``evaluate``, ``loss_and_grad``,
``train_epoch``) with the same arguments and meaning; see ``numpy_backend`` for the
specification. There is no silent fallback: asking for "cython" when the extension did not
build raises ImportError with the reason.
"""
import importlib

BACKENDS = ("cython", "numpy")
DEFAULT_BACKEND = "cython"


def get_backend(name=DEFAULT_BACKEND):
    """Return the backend module called ``name`` ("cython" or "numpy")."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return importlib.import_module(f"nncore.backends.{name}_backend")


def compiled_core_status():
    """(available, detail): whether the compiled extension imports, with its path or the error."""
    try:
        from .. import _core
    except ImportError as error:
        return False, f"{type(error).__name__}: {error}"
    return True, _core.__file__
