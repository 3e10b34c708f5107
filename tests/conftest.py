"""Shared test setup: say which nncore (and which compiled core) the suite is testing, and which
cases of the backend contract run on which product path (``--all-product-paths``)."""
import os

import pytest
from _product_paths import runs_on_its_product_path

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


def pytest_addoption(parser):
    parser.addoption("--all-product-paths", action="store_true",
                     help="run the backend contract's largest tests (marked one_product_path_per_case) on every "
                          "product path for every case: three times their cases")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all-product-paths"):
        return
    kept, deselected = [], []
    for item in items:
        sampled = item.get_closest_marker("one_product_path_per_case") is not None
        if sampled and not runs_on_its_product_path(item.callspec.indices, len(item.module.PRODUCT_PATHS)):
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept
