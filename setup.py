"""Build the compiled core from the sources in src_c/: nncore._core (training, inference, with
the package's own thread pool, src_c/pool.c) and nncore._testing (single-kernel wrappers, for the
tests and benchmarks).

The narrow-layer kernels (src_c/narrow.c: every instruction set x dtype, the slowest file to
compile) are compiled once per build into one object that both extensions link; the two
extensions then compile side by side.

Threads are the core's own POSIX threads (no OpenMP: its spinning waits fought OpenBLAS's and
made a busy machine slower at 2 threads than at 1). Set NNCORE_DEBUG_BUILD=1 to turn Cython's
bounds and wraparound checks back on in every kernel (the reliability tests run once under it).
"""
import importlib.util
import os
import sys
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.modified import newer_group

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src_c"


def _load_source_hash():
    """src_c/source_hash.py, by path: the one definition of the hash that tests/test_build.py checks too."""
    spec = importlib.util.spec_from_file_location("nncore_source_hash", SOURCES / "source_hash.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


source_hashing = _load_source_hash()


debug_build = os.environ.get("NNCORE_DEBUG_BUILD", "") not in ("", "0")
compile_args = ["-O3" if not debug_build else "-O1"]
link_args = [] if sys.platform == "win32" else ["-pthread"]
if sys.platform != "win32":
    compile_args += ["-Wno-unused-function", "-Wno-unreachable-code"]
    if not any(flag.startswith("-g") for flag in os.environ.get("CFLAGS", "").split()):
        # Python's own CFLAGS ask for -g. Debug information (never the code: -g does not change code
        # generation) was a third of the compile time at -O3 and 40% at -O1 (narrow.c: 88 s -> 58 s,
        # 72 s -> 42 s); CFLAGS=-g keeps it, for a debugger.
        compile_args += ["-g0"]

macros = [
    ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
    ("NNCORE_SOURCE_HASH", '"%s"' % source_hashing.source_hash(SOURCES)),
    ("NNCORE_DEBUG_BUILD", "1" if debug_build else "0"),
]


def extension(name, c_sources=()):
    """nncore.<name> from src_c/<name>.pyx (and ``c_sources``); BuildWithSharedKernels adds the narrow kernels' object."""
    return Extension(f"nncore.{name}", sources=[str(Path("src_c") / f"{name}.pyx"), *c_sources],
                     include_dirs=[numpy.get_include(), "src_c"], define_macros=macros,
                     # Every source is a dependency: the source hash baked into each module covers them all.
                     depends=[str(path.relative_to(HERE)) for path in source_hashing.hashed_sources(SOURCES)],
                     extra_compile_args=compile_args, extra_link_args=link_args)


class BuildWithSharedKernels(build_ext):
    """build_ext that compiles src_c/narrow.c once for both extensions and builds them side by side.

    The object is compiled whenever an extension is rebuilt, with that build's flags (as when each
    extension compiled it itself), so a debug and an optimised build never share it.
    """

    shared_c_sources = [str(Path("src_c") / "narrow.c")]

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        if any(self.force or newer_group(ext.sources + ext.depends, self.get_ext_fullpath(ext.name), "newer")
               for ext in self.extensions):
            objects = self.compiler.compile(self.shared_c_sources, output_dir=self.build_temp, macros=macros,
                                            include_dirs=["src_c"], extra_postargs=compile_args)
            for ext in self.extensions:
                ext.extra_objects = [*ext.extra_objects, *objects]
        super().build_extensions()


directives = {
    "language_level": 3,
    "boundscheck": debug_build,
    "wraparound": debug_build,
    "initializedcheck": debug_build,
    "cdivision": True,
    "embedsignature": True,
}

setup(
    ext_modules=cythonize([extension("_core", [str(Path("src_c") / "pool.c")]), extension("_testing")],
                          compiler_directives=directives,
                          include_path=["src_c"], force=debug_build),
    cmdclass={"build_ext": BuildWithSharedKernels},
)
