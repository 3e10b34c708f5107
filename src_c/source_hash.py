"""The hash of the compiled core's hand-written sources: setup.py bakes it into the extension
modules (SOURCE_HASH) and tests/test_build.py recomputes it, both with this one file, so a stale
build is spotted. Stand-alone (no nncore import): setup.py runs before anything is built."""
import hashlib
from pathlib import Path


def hashed_sources(directory):
    """The hand-written sources in ``directory``: Cython (.pyx, .pxd) and C (.h, .c), not Cython's generated .c."""
    return sorted(path for path in Path(directory).iterdir()
                  if path.suffix in (".pyx", ".pxd", ".h", ".c")
                  and not (path.suffix == ".c" and path.with_suffix(".pyx").exists()))


def source_hash(directory):
    """SHA-256 over the name and bytes of each hashed source, in order."""
    digest = hashlib.sha256()
    for path in hashed_sources(directory):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
