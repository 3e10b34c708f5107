"""A time limit for fuzz tests: a hang fails the test instead of stalling the suite."""
import contextlib
import signal


@contextlib.contextmanager
def time_limit(seconds, what="the body"):
    """Raise TimeoutError in the main thread when the body runs longer than ``seconds``.

    Uses SIGALRM, so it is a no-op where there is no setitimer (Windows).
    """
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"{what} took longer than {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_limited(code, *arguments, seconds=120, memory_bytes=1 << 30):
    """Run ``code`` in a child Python with a time limit and a capped address space.

    For reads a signal cannot interrupt: a read of ``/dev/zero`` that never ends runs inside
    one C call, where SIGALRM is not handled and memory grows until the machine runs out. In
    the child it fails with MemoryError at ``memory_bytes`` (Linux RLIMIT_AS), or is killed
    after ``seconds``. Returns the ``subprocess.CompletedProcess``.
    """
    import os
    import resource
    import subprocess
    import sys

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))

    environment = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code, *map(str, arguments)], capture_output=True, text=True,
                          timeout=seconds, preexec_fn=cap, env=environment)
