"""Shared test setup: say which nncore (and which compiled core) the suite is testing."""
import os

import nncore
from nncore.backends import compiled_core_status


def pytest_report_header(config):
    available, detail = compiled_core_status()
    core = detail if available else f"NOT AVAILABLE ({detail})"
    blas = os.environ.get("OPENBLAS_CORETYPE", "(unset)")
    return [f"nncore {nncore.__version__} from {os.path.dirname(nncore.__file__)}",
            f"compiled core: {core}", f"OPENBLAS_CORETYPE: {blas}"]
