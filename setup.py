"""Build the compiled core from the sources in src_c/: nncore._core (training, inference) and
nncore._testing (single-kernel wrappers and the gemm-floor timer, for the tests and benchmarks).

The narrow-layer kernels (src_c/narrow.c: every instruction set x dtype, the slowest file to
compile) are compiled once per build into one object that both extensions link; the two
extensions then compile side by side.

OpenMP is used when a test program compiles and links with -fopenmp (as POT and llm.c do);
otherwise the core builds without it. Set NNCORE_DEBUG_BUILD=1 to turn Cython's bounds and
wraparound checks back on in every kernel (the reliability tests run once under it).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.modified import newer_group

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src_c"


def hashed_sources(directory):
    """The hand-written sources in src_c/: Cython (.pyx, .pxd) and C (.h, .c), not Cython's generated .c."""
    return sorted(path for path in directory.iterdir()
                  if path.suffix in (".pyx", ".pxd", ".h", ".c")
                  and not (path.suffix == ".c" and path.with_suffix(".pyx").exists()))


def source_hash():
    """SHA-256 over the sources, baked into the modules so tests can spot a stale build."""
    digest = hashlib.sha256()
    for path in hashed_sources(SOURCES):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def openmp_flags():
    """Return (compile_args, link_args) for OpenMP, or empty lists when the compiler lacks it."""
    if os.environ.get("NNCORE_NO_OPENMP"):
        return [], []
    test_program = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        return [], []
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp, "probe.c")
        source.write_text(test_program)
        exe = Path(tmp, "probe")
        try:
            built = subprocess.run([compiler, "-fopenmp", str(source), "-o", str(exe)],
                                   capture_output=True, timeout=60)
            if built.returncode != 0 or subprocess.run([str(exe)], timeout=60).returncode != 0:
                return [], []
        except (OSError, subprocess.SubprocessError):
            return [], []
    return ["-fopenmp"], ["-fopenmp"]


debug_build = os.environ.get("NNCORE_DEBUG_BUILD", "") not in ("", "0")
omp_compile, omp_link = openmp_flags()
compile_args = ["-O3" if not debug_build else "-O1"] + omp_compile
if sys.platform != "win32":
    compile_args += ["-Wno-unused-function", "-Wno-unreachable-code"]
    if not any(flag.startswith("-g") for flag in os.environ.get("CFLAGS", "").split()):
        # Python's own CFLAGS ask for -g. Debug information (never the code: -g does not change code
        # generation) was a third of the compile time at -O3 and 40% at -O1 (narrow.c: 88 s -> 58 s,
        # 72 s -> 42 s); CFLAGS=-g keeps it, for a debugger.
        compile_args += ["-g0"]

macros = [
    ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
    ("NNCORE_SOURCE_HASH", '"%s"' % source_hash()),
    ("NNCORE_DEBUG_BUILD", "1" if debug_build else "0"),
]


def extension(name):
    """nncore.<name> from src_c/<name>.pyx; BuildWithSharedKernels adds the narrow kernels' object."""
    return Extension(f"nncore.{name}", sources=[str(Path("src_c") / f"{name}.pyx")],
                     include_dirs=[numpy.get_include(), "src_c"], define_macros=macros,
                     # Every source is a dependency: the source hash baked into each module covers them all.
                     depends=[str(path.relative_to(HERE)) for path in hashed_sources(SOURCES)],
                     extra_compile_args=compile_args, extra_link_args=omp_link)


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
    ext_modules=cythonize([extension("_core"), extension("_testing")], compiler_directives=directives,
                          include_path=["src_c"], force=debug_build),
    cmdclass={"build_ext": BuildWithSharedKernels},
)
