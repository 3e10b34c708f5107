"""Threads: what ``n_threads`` means, one setting wherever it comes from, and BLAS held at one thread.

The compiled core runs on the package's own threads (src_c/pool.c): a training step's rows are
split over them, and each thread's products call BLAS single-threaded. So:

- ``n_threads`` (``fit``, ``predict``, the estimator, ``--threads``) is how many of nncore's
  threads one call may use; None means the process-wide count: ``OMP_NUM_THREADS`` when set,
  else the CPUs this process may run on, changed by ``threadpoolctl.threadpool_limits`` (nncore
  registers its pool with threadpoolctl on import, as user API "openmp", internal API "nncore").
  A call's ``n_threads`` changes nothing for other calls or other Python threads.
- While any call of the compiled core runs, BLAS runs on one thread (``single_threaded_blas``):
  OpenBLAS's own spinning threads would fight nncore's. The first call in takes the limit, the
  last one out restores exactly the limits it found, so two Python threads training at once
  leave BLAS as they found it.

threadpoolctl changes only the libraries loaded when a limit is set: nncore's pool is loaded by
``import nncore``, so a limit set after that import reaches it (one set before does not).
"""
import threading

from threadpoolctl import LibController, ThreadpoolController, register

from .._compiled import import_core


#: The most threads one call may use (src_c/pool.h's NNCORE_POOL_MAX_THREADS, _core.MAX_THREADS).
MAX_THREADS = 256


def checked_threads(n_threads, maximum=MAX_THREADS):
    """``n_threads`` as None or an int in 1..maximum; ValueError otherwise."""
    if n_threads is None:
        return None
    try:
        exact = int(n_threads) == n_threads
    except (TypeError, ValueError, OverflowError):
        exact = False
    if isinstance(n_threads, bool) or not exact or not 1 <= n_threads <= maximum:
        raise ValueError(f"n_threads must be None or an integer from 1 to {maximum}, got {n_threads!r}")
    return int(n_threads)


def _set_threads(library, n_threads):
    """Set a BLAS library's thread count from any Python thread.

    threadpoolctl (3.7+) lets only one Python thread, the first to limit OpenBLAS, change it
    while that thread lives, and silently ignores the others: then the first ``fit`` of a
    process would hold BLAS for good, and a later one from another thread would run BLAS on
    two threads (whose sums round differently) without a word. The library's own setter is
    what its controller calls once it has decided to.
    """
    setter = getattr(library, "_real_set_num_threads", None) or library.set_num_threads
    setter(n_threads)


class _SingleThreadedBlas:
    """A context: BLAS at one thread while any thread of the process is inside one (reentrant)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._inside = 0
        self._found = []

    def __enter__(self):
        with self._lock:
            if self._inside == 0:
                # Scanned at each first entry: a BLAS library loaded since (torch, say) is held too.
                libraries = ThreadpoolController().select(user_api="blas").lib_controllers
                self._found = [(library, library.get_num_threads()) for library in libraries]
                for library, _ in self._found:
                    _set_threads(library, 1)
            self._inside += 1
        return self

    def __exit__(self, *exc_info):
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                for library, n_threads in self._found:
                    _set_threads(library, n_threads)
                self._found = []


#: Held around every call into the compiled core (``nncore.backends.cython_backend``).
single_threaded_blas = _SingleThreadedBlas()


class NncoreController(LibController):
    """threadpoolctl's view of nncore's own threads: the process-wide count of src_c/pool.c."""

    user_api = "openmp"
    internal_api = "nncore"
    filename_prefixes = ("_core",)
    check_symbols = ("nncore_get_num_threads", "nncore_set_num_threads")

    def get_num_threads(self):
        return self.dynlib.nncore_get_num_threads()

    def set_num_threads(self, num_threads):
        return self.dynlib.nncore_set_num_threads(int(num_threads))

    def get_version(self):
        from .. import __version__
        return __version__


def register_with_threadpoolctl():
    """Make threadpoolctl see nncore's pool (once per process): the compiled core is loaded first."""
    import_core()
    register(NncoreController)
