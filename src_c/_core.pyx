# cython: language_level=3
"""nncore's compiled core (placeholder: build metadata and the BLAS shim come first)."""

cdef extern from *:
    """
    #ifndef NNCORE_SOURCE_HASH
    #define NNCORE_SOURCE_HASH "unknown"
    #endif
    #ifdef _OPENMP
    #define NNCORE_OPENMP 1
    #else
    #define NNCORE_OPENMP 0
    #endif
    """
    const char* NNCORE_SOURCE_HASH
    const int NNCORE_OPENMP
    const int NNCORE_DEBUG_BUILD

SOURCE_HASH = NNCORE_SOURCE_HASH.decode("ascii")
OPENMP = bool(NNCORE_OPENMP)
DEBUG_BUILD = bool(NNCORE_DEBUG_BUILD)
