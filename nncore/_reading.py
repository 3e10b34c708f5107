"""Opening and sizing files nncore did not write: regular files only, never blocking.

A path a user names may be a FIFO, a character device (``/dev/zero``, ``/dev/stdin``) or a
directory. Opening a FIFO for reading blocks until some writer appears, and ``/dev/zero``
never ends, so a reader that simply calls ``open`` can hang or fill the memory. Every reader
of untrusted files (model files, IDX, CSV, the dataset cache) opens through
``open_regular_file``, which refuses such paths at once with the caller's exception type,
and allocates through ``allocate``, which turns an impossible allocation into that type too.
"""

import os
import stat

import numpy as np

_KIND_BY_TEST = (
    (stat.S_ISDIR, "is a directory"),
    (stat.S_ISFIFO, "is a FIFO (named pipe)"),
    (stat.S_ISCHR, "is a character device"),
    (stat.S_ISBLK, "is a block device"),
    (stat.S_ISSOCK, "is a socket"),
)


def open_regular_file(path, error):
    """Open ``path`` for binary reading if it is a regular file (symbolic links are followed).

    Anything else raises ``error(f"{path}: is a FIFO (named pipe), not a regular file")``
    (or "is a directory", ...). The check is made on the opened descriptor, so the file
    cannot be swapped between check and use; the open itself does not block on a FIFO.
    A missing or unreadable file raises the usual ``FileNotFoundError``/``PermissionError``.
    """
    # O_NONBLOCK: opening a FIFO that has no writer would otherwise wait forever. It has no
    # effect on regular files and is cleared below before anything is read.
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except (FileNotFoundError, PermissionError):
        raise
    except OSError:
        # A socket cannot be opened at all (ENXIO), nor a directory on Windows: say what it is.
        _refuse_irregular(path, os.stat(path).st_mode, error)
        raise
    try:
        _refuse_irregular(path, os.fstat(descriptor).st_mode, error)
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _refuse_irregular(path, mode, error):
    if not stat.S_ISREG(mode):
        kind = next((text for test, text in _KIND_BY_TEST if test(mode)), "is not a regular file")
        raise error(f"{path}: {kind}, not a regular file")


def allocate(n_bytes, error, what):
    """An uninitialised uint8 array of ``n_bytes``, or ``error`` saying it does not fit in memory."""
    try:
        return np.empty(n_bytes, dtype=np.uint8)
    except MemoryError:
        raise error(f"{what}: {format_bytes(n_bytes)} does not fit in memory") from None


def format_bytes(n_bytes):
    """A size as people read it: "47.0 MB", "4.3 GB" (decimal units, as file managers show)."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= size:
            return f"{n_bytes / size:.1f} {unit}"
    return f"{n_bytes} bytes"
