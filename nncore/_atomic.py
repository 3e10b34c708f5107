"""Atomic file writes: a reader sees either the old file, the whole new file, or nothing.

The data is written to a temporary file in the destination's own directory (so the final
``os.replace`` is a rename within one file system, which POSIX and Windows make atomic),
flushed and fsynced, then renamed over the destination. A process killed mid-write leaves
only its temporary file, named by the caller's prefix and suffix so that the caller can
recognise and remove leftovers: the dataset cache removes ``TEMPORARY_PREFIX*`` while it
holds its lock (``nncore.data.fetch``), training removes ``.checkpoint.npz.*.tmp`` when a
run starts (``nncore.train``).

What the destination may be is ``nncore._output_paths.output_target``'s decision: a device or
pipe a user names (``/dev/stdout``, ``/dev/null``) is written through in place, never renamed
over, and a link, directory or socket is refused. Every error names the destination, never
the temporary file: a full disk is "<path>: cannot write it (No space left on device)".
"""

import contextlib
import io
import os
import tempfile
from pathlib import Path

from ._output_paths import STREAM, open_stream, output_path, output_target
from .errors import OutputPathError

#: Every temporary file or directory nncore.data creates next to its outputs starts with
#: this, so leftovers of a killed process can be recognised and removed.
TEMPORARY_PREFIX = ".nncore-partial-"
#: A new file's permissions; a replaced file keeps its own.
NEW_FILE_MODE = 0o644


@contextlib.contextmanager
def atomic_open(path, prefix=None, suffix="", streams=False):
    """Open a binary stream whose contents replace ``path`` only when the block ends normally.

    The temporary file is ``<prefix><random><suffix>`` beside ``path`` (prefix defaults to
    ``TEMPORARY_PREFIX + path.name + "."``). On any exception, KeyboardInterrupt included,
    it is removed and ``path`` is left as it was. With ``streams`` (writers of files a user
    names), a device or pipe at ``path`` is written through instead (see the module docstring).
    The block must only write to the stream: an OSError from it is reported as a write error of ``path``.
    """
    if output_target(path, streams=streams) == STREAM:
        with _stream_to(path) as stream:
            yield stream
        return
    path = output_path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if prefix is None:
        prefix = TEMPORARY_PREFIX + path.name + "."
    try:
        file_descriptor, temporary_name = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=suffix)
    except FileNotFoundError:
        raise OutputPathError(f"{path}: directory {directory} does not exist") from None
    except OSError as error:
        raise OutputPathError(f"{path}: cannot write in {directory} ({error.strerror or error})") from None
    try:
        with _NamedWriter(io.FileIO(file_descriptor, "w"), path) as stream:
            if hasattr(os, "fchmod"):
                # mkstemp makes the file private (0600): a new file gets the usual 0644 (a cache
                # may be shared), a replaced one keeps the permissions its owner gave it.
                os.fchmod(file_descriptor, _mode_for(path))
            yield stream
            stream.flush()
            # Without fsync a crash after the rename can leave a renamed but empty file.
            _named(path, "cannot write it", os.fsync, file_descriptor)
        _named(path, "cannot replace it", os.replace, temporary_name, path)
    except BaseException:
        # BaseException too: a KeyboardInterrupt must not leave the temporary file behind.
        try:
            os.unlink(temporary_name)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory)


def atomic_write_bytes(path, chunks, streams=False):
    """Write ``chunks`` (bytes-like objects, or one bytes-like object) to ``path`` atomically."""
    if isinstance(chunks, (bytes, bytearray, memoryview)):
        chunks = (chunks,)
    with atomic_open(path, streams=streams) as stream:
        for chunk in chunks:
            stream.write(chunk)


@contextlib.contextmanager
def _stream_to(path):
    """Write through to the device or pipe ``path``, appending; nothing is renamed, nothing fsynced."""
    # Not seekable: zipfile then writes each member's sizes after it instead of seeking back,
    # which a pipe cannot do and an appending descriptor would get wrong.
    with _NamedWriter(io.FileIO(open_stream(path), "w"), path, seekable=False) as stream:
        yield stream
        stream.flush()


class _NamedWriter(io.BufferedWriter):
    """A buffered writer whose errors name the destination (a full disk is not a bare ``[Errno 28]``)."""

    def __init__(self, raw, path, seekable=True):
        super().__init__(raw)
        self.path, self._seekable = path, seekable

    def write(self, data):
        return _named(self.path, "cannot write it", super().write, data)

    def flush(self):
        return _named(self.path, "cannot write it", super().flush)

    def seekable(self):
        return self._seekable and super().seekable()

    def seek(self, *args):
        if not self._seekable:
            raise io.UnsupportedOperation(f"{self.path} is written through, not seekable")
        return super().seek(*args)

    def tell(self):
        if not self._seekable:
            raise io.UnsupportedOperation(f"{self.path} is written through, not seekable")
        return super().tell()


def _named(path, doing, function, *args):
    """``function(*args)``; an OSError becomes an OutputPathError saying what could not be done to ``path``."""
    try:
        return function(*args)
    except OutputPathError:
        raise
    except OSError as error:
        if isinstance(error, io.UnsupportedOperation):
            raise
        raise OutputPathError(f"{path}: {doing} ({error.strerror or error})") from None


def _mode_for(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return NEW_FILE_MODE


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
