"""The compiled core is really compiled, really imported, and built from the sources in this checkout."""
import hashlib
import importlib.machinery
from pathlib import Path

import pytest

import nncore
from nncore import _core, _testing
from nncore.backends import compiled_core_status, get_backend

SOURCES = Path(__file__).resolve().parent.parent / "src_c"


@pytest.mark.parametrize("module", [_core, _testing], ids=["_core", "_testing"])
def test_core_is_a_compiled_extension_module(module):
    path = module.__file__
    assert path is not None and not path.endswith((".py", ".pyc"))
    assert path.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), path


def test_compiled_core_status_reports_it_available():
    available, detail = compiled_core_status()
    assert available, detail
    assert detail == _core.__file__


def test_the_cython_backend_is_the_compiled_core():
    from nncore.backends import cython_backend

    backend = get_backend("cython")
    assert backend.name == "cython" and isinstance(backend, cython_backend.CythonBackend)
    assert cython_backend._core is _core
    assert Path(_core.__file__).parent == Path(nncore.__file__).parent


def test_build_metadata_attributes():
    assert isinstance(_core.OPENMP, bool) and isinstance(_core.DEBUG_BUILD, bool)
    assert len(_core.SOURCE_HASH) == 64


def _hashed_sources(directory):
    """Exactly setup.py's hashed_sources(): .pyx, .pxd, .h and hand-written .c (not Cython's output), sorted."""
    return sorted(path for path in directory.iterdir()
                  if path.suffix in (".pyx", ".pxd", ".h", ".c")
                  and not (path.suffix == ".c" and path.with_suffix(".pyx").exists()))


def _source_hash(directory):
    """Exactly setup.py's source_hash(): SHA-256 over name and bytes of each hashed source."""
    digest = hashlib.sha256()
    for path in _hashed_sources(directory):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_extension_was_built_from_the_current_sources():
    if not SOURCES.is_dir():
        pytest.skip(f"no src_c/ next to tests/ ({SOURCES}): installed package, sources not available")
    assert sorted(p.name for p in SOURCES.glob("*.p[yx][xd]")), "src_c/ holds no Cython sources"
    for module in (_core, _testing):
        assert module.SOURCE_HASH == _source_hash(SOURCES), (
            f"{module.__name__} is stale: rebuild it (pip install -e . or python setup.py build_ext --inplace)")
