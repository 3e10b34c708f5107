"""Output paths: what may be written where, checked before any work is done and again at the write.

Every writer of nncore (model files, checkpoints, ONNX graphs, Kaggle submissions, figures,
IDX files, the dataset cache) goes through ``nncore._atomic.atomic_open``, which asks
``output_target`` what the path is:

- missing, or a regular file (not read-only): ``REPLACE`` it atomically (temporary file and
  rename), keeping an existing file's permission bits;
- a character device or a FIFO (``/dev/null``, a named pipe with a reader, ``>(...)``), or a
  link to one (``/dev/stdout``, ``/dev/fd/N``), or a descriptor path (``/dev/stdout``) leading
  to a regular file: ``STREAM``, written through in place, since renaming over it would turn
  the device into a file (as root, ``/dev/null`` itself) or cut the pipe; only writers of files
  a user names allow it (``streams=True``), never a checkpoint or the cache;
- anything else is refused with ``OutputPathError`` naming the user's path: a directory, a
  socket, a block device, a FIFO no process reads (writing would wait forever), and a symbolic
  link to a file, which a rename would replace by a file (the link, not its target).

``check_output_file`` applies the same rules before the work (``--save``, ``--submission``,
``--onnx``, the checkpoint file), so a run never trains for nothing, and tests that the
directory takes new files by creating one: the only answer that holds for root, read-only
mounts and ACLs.
"""
import errno
import os
import re
import stat
import tempfile
from pathlib import Path

from .errors import OutputPathError

_PROBE_PREFIX = ".nncore-write-test-"
REPLACE, STREAM = "replace", "stream"
#: Paths that name one of the process's open descriptors: writing through them is the evident intent.
_DESCRIPTOR_PATH = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/(self|\d+)/fd/\d+")
_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"), (stat.S_ISBLK, "a block device"))


def output_target(path, what="", streams=False):
    """``REPLACE`` or ``STREAM`` (see the module docstring) for ``path``; OutputPathError if it may not be written."""
    name = f"{what} {path}" if what else str(path)
    output_path(path, what)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return REPLACE
    except OSError as error:
        raise OutputPathError(f"{name}: cannot use it ({error.strerror or error})") from None
    if stat.S_ISREG(mode):
        if not os.access(path, os.W_OK):
            raise OutputPathError(f"{name}: is read-only; nncore does not replace a file its permissions protect")
        return REPLACE
    if stat.S_ISLNK(mode):
        return _link_target(path, name, streams)
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return _stream(name, mode, streams)
    raise OutputPathError(f"{name}: is {_kind(mode)}, not a file path")


def _link_target(path, name, streams):
    """What a symbolic link leads to decides: a device or pipe (or a descriptor path) is a stream, else refused."""
    target = os.path.realpath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        raise OutputPathError(f"{name}: is a symbolic link to {target}, which does not exist; nncore writes "
                              "files, not links: give the file's own path, or remove the link") from None
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or (stat.S_ISREG(mode) and is_descriptor_path(path)):
        return _stream(name, mode, streams)
    if stat.S_ISREG(mode):
        raise OutputPathError(f"{name}: is a symbolic link to {target}; nncore replaces files, not links (a rename "
                              f"would replace the link): give {target} itself, or remove the link")
    raise OutputPathError(f"{name}: is a symbolic link to {_kind(mode)}, {target}, not a file path")


def _stream(name, mode, streams):
    if not streams:
        raise OutputPathError(f"{name}: is {_kind(mode)}; nncore writes a regular file there")
    return STREAM


def output_path(path: "str | os.PathLike[str]", what: str = "") -> Path:
    """``path`` as a ``Path``, refusing the empty path first: ``Path("")`` is ``Path(".")``, a directory."""
    if os.fspath(path) == "":
        raise OutputPathError(f"{what or 'output path'}: an empty path names no file")
    return Path(path)


def is_descriptor_path(path):
    """Whether ``path`` names an open descriptor of a process (/dev/stdout, /dev/fd/3, /proc/self/fd/1)."""
    return _DESCRIPTOR_PATH.fullmatch(os.path.normpath(os.fspath(path))) is not None


def open_stream(path):
    """A descriptor writing through to the device, pipe or descriptor ``path`` (``STREAM``), appending.

    A FIFO that no process reads is refused rather than waited on forever; the open itself
    never blocks, and what was opened is checked to be what ``output_target`` allowed.
    """
    flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as error:
        if error.errno == errno.ENXIO:
            raise OutputPathError(f"{path}: is a FIFO (named pipe) that no process reads; nncore would wait "
                                  "forever for one") from None
        raise OutputPathError(f"{path}: cannot write to it ({error.strerror or error})") from None
    mode = os.fstat(descriptor).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or (stat.S_ISREG(mode) and is_descriptor_path(path))):
        os.close(descriptor)
        raise OutputPathError(f"{path}: changed while it was opened (now {_kind(mode)}); nothing written")
    if hasattr(os, "set_blocking"):
        os.set_blocking(descriptor, True)
    return descriptor


def _kind(mode):
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((text for test, text in _KINDS if test(mode)), "not a regular file")


def check_output_file(path, what, streams=True):
    """``path`` as a file to write, checked before the work: refused unless ``output_target`` allows it and,
    for a file to replace, its directory exists and takes new files. A stream is not opened here (opening
    and closing a pipe would end its reader's input)."""
    if output_target(path, what, streams) == STREAM:
        return Path(path)
    path = output_path(path, what)
    directory = path.parent
    if not directory.exists():
        raise OutputPathError(f"{what} {path}: directory {directory} does not exist")
    if not directory.is_dir():
        raise OutputPathError(f"{what} {path}: {directory} is not a directory")
    _probe(directory, path, what)
    return path


def prepare_output_directory(path, what):
    """Directory ``path``, created (with its parents) if needed: refused unless it takes new files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path}: is a file, not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputPathError(f"{what} {path}: cannot create it ({error.strerror or error})") from None
    _probe(path, path, what)
    return path


def _probe(directory, path, what):
    try:
        descriptor, name = tempfile.mkstemp(dir=directory, prefix=_PROBE_PREFIX)
    except OSError as error:
        raise OutputPathError(f"{what} {path}: cannot write in {directory} ({error.strerror or error})") from None
    os.close(descriptor)
    os.unlink(name)
