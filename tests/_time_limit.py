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
