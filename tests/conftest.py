"""Shared test setup: say which nncore (and which compiled core) the suite is testing."""
import os

import pytest

import nncore
from nncore.backends import compiled_core_status


def pytest_report_header(config):
    available, detail = compiled_core_status()
    core = detail if available else f"NOT AVAILABLE ({detail})"
    blas = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    return [f"nncore {nncore.__version__} from {os.path.dirname(nncore.__file__)}",
            f"compiled core: {core}", f"OPENBLAS_CORETYPE: {blas}"]


@pytest.fixture(autouse=True)
def _run_in_a_scratch_directory(tmp_path, monkeypatch):
    """Each test runs in its own empty directory.

    From the checkout's root, ``python -c`` in a child process (and anything resolving
    relative paths) would import the source tree's ``nncore``, which has no compiled core,
    instead of the installed package the suite is testing.
    """
    monkeypatch.chdir(tmp_path)
