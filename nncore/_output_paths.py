"""Output paths checked before any work is done, so that a run never trains for nothing.

A model file, a checkpoint directory or a plots directory that cannot be written is found
before the first epoch and reported with the path the user gave (never a temporary file
nncore would have made there). Writability is tested by creating a file, not guessed from
permission bits: that is the only answer that holds for root, read-only mounts and ACLs.
"""
import os
import tempfile
from pathlib import Path

from .errors import OutputPathError

_PROBE_PREFIX = ".nncore-write-test-"


def check_output_file(path, what):
    """``path`` as a file to write: refused unless its directory exists and takes new files."""
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {path}: is a directory, not a file path")
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
