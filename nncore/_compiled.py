"""The compiled core's import, with the one-line explanation a failed import deserves.

From the root of a source checkout, Python imports the ``nncore`` folder in the current
directory rather than the installed package. If that tree's compiled core was never built
there (a fresh clone, or one installed with ``pip install .``, which builds a copy elsewhere),
the import fails with "cannot import name '_core'", which says neither what happened nor how to
fix it. ``import_core`` says both, in one line.
"""
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def is_source_tree(package=PACKAGE):
    """Whether ``package`` is the ``nncore`` folder of a checkout (setup.py and src_c/ beside it)."""
    return (package.parent / "setup.py").is_file() and (package.parent / "src_c").is_dir()


def explain_missing_core(error, package=PACKAGE):
    """One line: why nncore._core did not import, and what to do about it."""
    if is_source_tree(package):
        return (f"nncore was imported from the source tree {package}, whose compiled core is not built: "
                f"build it there (`pip install -e .` or `python setup.py build_ext --inplace` in "
                f"{package.parent}), or run from another directory to use the installed nncore")
    return (f"nncore's compiled core (nncore._core in {package}) does not import ({error}); reinstall nncore "
            "so that it is built for this Python and machine, or use backend='numpy'")


def import_core():
    """``nncore._core``, or an ImportError saying why not and how to fix it."""
    try:
        from . import _core
    except ImportError as error:
        raise ImportError(explain_missing_core(error)) from error
    return _core
