"""The compiled core is really compiled, really imported, and built from the sources in this checkout."""
import importlib.machinery
import importlib.util
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
    assert isinstance(_core.THREADED, bool) and isinstance(_core.DEBUG_BUILD, bool)
    assert len(_core.SOURCE_HASH) == 64


def _source_hash(directory):
    """setup.py's hash of the sources, from the one file that defines it (src_c/source_hash.py)."""
    spec = importlib.util.spec_from_file_location("nncore_source_hash", directory / "source_hash.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.source_hash(directory)


def test_extension_was_built_from_the_current_sources():
    if not SOURCES.is_dir():
        pytest.skip(f"no src_c/ next to tests/ ({SOURCES}): installed package, sources not available")
    assert sorted(p.name for p in SOURCES.glob("*.p[yx][xd]")), "src_c/ holds no Cython sources"
    for module in (_core, _testing):
        assert module.SOURCE_HASH == _source_hash(SOURCES), (
            f"{module.__name__} is stale: rebuild it (pip install -e . or python setup.py build_ext --inplace)")
