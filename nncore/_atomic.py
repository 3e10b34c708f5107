"""Atomic file writes: a reader sees either the old file, the whole new file, or nothing.

The data is written to a temporary file in the destination's own directory (so the final
``os.replace`` is a rename within one file system, which POSIX and Windows make atomic),
flushed and fsynced, then renamed over the destination. A process killed mid-write leaves
only its temporary file, named by the caller's prefix and suffix so that the caller can
recognise and remove leftovers: the dataset cache removes ``TEMPORARY_PREFIX*`` while it
holds its lock (``nncore.data.fetch``), training removes ``.checkpoint.npz.*.tmp`` when a
run starts (``nncore.train``).
"""

import contextlib
import os
import tempfile
from pathlib import Path

#: Every temporary file or directory nncore.data creates next to its outputs starts with
#: this, so leftovers of a killed process can be recognised and removed.
TEMPORARY_PREFIX = ".nncore-partial-"


@contextlib.contextmanager
def atomic_open(path, prefix=None, suffix=""):
    """Open a binary stream whose contents replace ``path`` only when the block ends normally.

    The temporary file is ``<prefix><random><suffix>`` beside ``path`` (prefix defaults to
    ``TEMPORARY_PREFIX + path.name + "."``). On any exception, KeyboardInterrupt included,
    it is removed and ``path`` is left as it was.
    """
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if prefix is None:
        prefix = TEMPORARY_PREFIX + path.name + "."
    file_descriptor, temporary_name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    try:
        if hasattr(os, "fchmod"):
            # mkstemp makes the file private (0600); a cache may be shared, like any file
            # created with the usual umask.
            os.fchmod(file_descriptor, 0o644)
        with os.fdopen(file_descriptor, "wb") as stream:
            yield stream
            stream.flush()
            # Without fsync a crash after the rename can leave a renamed but empty file.
            os.fsync(stream.fileno())
        os.replace(temporary_name, path)
    except BaseException:
        # BaseException too: a KeyboardInterrupt must not leave the temporary file behind.
        try:
            os.unlink(temporary_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def atomic_write_bytes(path, chunks):
    """Write ``chunks`` (bytes-like objects, or one bytes-like object) to ``path`` atomically."""
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = (chunks,)
    with atomic_open(path) as stream:
        for chunk in chunks:
            stream.write(chunk)


def _fsync_directory(directory):
    """Make the rename itself durable; a no-op where directories cannot be opened (Windows)."""
    try:
        directory_descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory_descriptor)
    except OSError:
        pass
    finally:
        os.close(directory_descriptor)
