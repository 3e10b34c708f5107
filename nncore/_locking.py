"""An advisory lock on a directory that one writer holds at a time; a second one is refused at once.

The lock is ``flock`` on ``<directory>/.lock`` (``msvcrt.locking`` on Windows), taken without
waiting: a second training run writing checkpoints into the same directory would interleave
its files with the first one's, so it is told which process holds the directory instead. The
operating system drops the lock when its holder dies, so a killed run never leaves the
directory locked. Locks belong to open files, so two threads of one process exclude each other
too. The lock file stays: deleting it would let two processes lock two different files.

A lock file is opened without following links and must be a regular file: a ``.lock`` planted
as a link to another file, or as a FIFO, is refused rather than truncated and written into.
"""
import contextlib
import errno
import os
import socket
import stat
from pathlib import Path

from .errors import OutputPathError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

LOCK_NAME = ".lock"
#: The errors a non-blocking lock gives when another holder has it (msvcrt: EACCES or EDEADLK).
_HELD = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK}


class DirectoryLock:
    """Held by the run writing into ``directory``; ``what`` names the directory in messages."""

    def __init__(self, directory, what):
        self.directory, self.what = Path(directory), what
        self.stream = None

    def acquire(self):
        """Take the lock, or raise OutputPathError naming the directory and the process holding it."""
        try:
            stream = open_lock_file(self.directory / LOCK_NAME)
        except OutputPathError:
            raise
        except OSError as error:
            raise OutputPathError(f"{self.what} {self.directory}: cannot create its lock file "
                                  f"{self.directory / LOCK_NAME} ({error.strerror or error})") from None
        try:
            lock(stream, wait=False)
        except OSError as error:
            holder = _holder(stream) if error.errno in _HELD else None
            stream.close()
            if holder is None:  # e.g. a file system without locks: say so, do not blame another run
                raise OutputPathError(f"{self.what} {self.directory}: cannot lock it "
                                      f"({error.strerror or error})") from None
            raise OutputPathError(f"{self.what} {self.directory} is in use by another training run{holder}; "
                                  "wait for it to finish or use another directory") from None
        stream.seek(0)
        stream.truncate()
        stream.write(f"{os.getpid()} {socket.gethostname()}\n".encode())
        stream.flush()
        self.stream = stream
        return self

    def release(self):
        if self.stream is None:
            return
        stream, self.stream = self.stream, None
        try:
            unlock(stream)
        finally:
            stream.close()

    def __del__(self):
        self.release()


def open_lock_file(path):
    """The lock file at ``path`` (created if missing) for reading and writing, never through a link.

    OutputPathError naming it when it is a link, a FIFO or anything but a regular file.
    """
    flags = (os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_BINARY", 0))
    if os.path.islink(path):  # O_NOFOLLOW closes the race where it exists; this says what it is everywhere
        raise OutputPathError(f"{path}: is a symbolic link, not nncore's lock file: remove it")
    try:
        descriptor = os.open(path, flags, 0o644)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise OutputPathError(f"{path}: is a symbolic link, not nncore's lock file: remove it") from None
        if error.errno == errno.EISDIR:
            raise OutputPathError(f"{path}: is a directory, not nncore's lock file: remove it") from None
        raise
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise OutputPathError(f"{path}: is not a regular file, so not nncore's lock file: remove it")
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)
    return os.fdopen(descriptor, "r+b")


def lock(stream, wait):
    """Take the exclusive advisory lock of the open file ``stream``; without ``wait``, OSError if held."""
    if fcntl is not None:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        return
    stream.seek(0)
    while True:
        try:
            msvcrt.locking(stream.fileno(), msvcrt.LK_LOCK if wait else msvcrt.LK_NBLCK, 1)
            return
        except OSError:
            if not wait:
                raise
            # LK_LOCK gives up after 10 s; keep waiting


def unlock(stream):
    if fcntl is not None:
        fcntl.flock(stream.fileno(), fcntl.LOCK_UN)
    else:
        stream.seek(0)
        msvcrt.locking(stream.fileno(), msvcrt.LK_UNLCK, 1)


@contextlib.contextmanager
def waiting_lock(lock_path):
    """Hold the exclusive advisory lock on ``lock_path``, waiting for it; the OS drops it if we die.

    The lock file itself stays: deleting it would let two processes lock different files.
    """
    with open_lock_file(lock_path) as stream:
        lock(stream, wait=True)
        try:
            yield
        finally:
            unlock(stream)


def _holder(stream):
    """" (process 1234 on host)" from the lock file, as far as it can be read; else ""."""
    try:
        stream.seek(0)
        pid, host = stream.read(200).decode("utf-8", "replace").split()[:2]
    except (OSError, ValueError):
        return ""
    if pid == str(os.getpid()) and host == socket.gethostname():
        return " (another thread of this process)"
    return f" (process {pid} on {host})"
