# cython: language_level=3
"""Counter-based random bits: the dropout masks and input shifts of training, with no generator state.

Every random choice of a training pass is a pure function of counters, so it can be drawn
where it is used (inside the fused forward kernel, again in the backward pass, in the
gather) and drawn again identically by the NumPy backend (nncore/counters.py, the twin of
this file, holds the specification and the reasoning):

    site key  = mix64((seed << 16) | site)        seed: the epoch's shuffle seed (32 bits);
                                                    site: the activation dropped, or SHIFT_SITE
    row bits  = high 32 bits of mix64(site key + position * GOLDEN64)
                                                    position: the row's place in the epoch's order
    unit bits = mix32(row bits + unit * GOLDEN32)   (32-bit wrap-around)

mix64 is SplitMix64's finaliser (Steele, Lea & Flood 2014): once per row, scalar. mix32 is
Wellons' "lowbias32" finaliser: once per unit, two 32-bit multiplies, which vectorize
(vpmulld) where a 64-bit multiply would not. A unit is kept when ``unit bits >> 8`` (24
uniform bits) is at least the layer's threshold, round(rate * 2^24).
"""
from libc.stdint cimport uint32_t, uint64_t

cdef enum:
    # The site of the shift augmentation's draws; dropout sites are activation indices (0: inputs).
    SHIFT_SITE = 0xFFFF
    # Dropout thresholds are in units of 2^-24: keep when the top 24 of 32 bits are >= threshold.
    KEEP_BITS = 24

cdef extern from *:
    """
    #include <stdint.h>
    #define NNCORE_GOLDEN64 UINT64_C(0x9E3779B97F4A7C15)
    #define NNCORE_GOLDEN32 UINT32_C(0x9E3779B9)
    static inline uint64_t nncore_mix64(uint64_t z) {
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
    }
    static inline uint32_t nncore_mix32(uint32_t x) {
        x = (x ^ (x >> 16)) * UINT32_C(0x7FEB352D);
        x = (x ^ (x >> 15)) * UINT32_C(0x846CA68B);
        return x ^ (x >> 16);
    }
    """
    # Written in C: unsigned wrap-around is exactly what the NumPy twin computes.
    const uint64_t GOLDEN64 "NNCORE_GOLDEN64"
    const uint32_t GOLDEN32 "NNCORE_GOLDEN32"
    uint64_t mix64 "nncore_mix64"(uint64_t z) noexcept nogil
    uint32_t mix32 "nncore_mix32"(uint32_t x) noexcept nogil


cdef struct Mask:
    # Which units dropout keeps in a block of rows: one site, rows from ``position`` on.
    uint64_t key              # site_key(seed, site)
    Py_ssize_t position       # the block's first row, as a position in the epoch's order
    uint32_t threshold        # drop when unit bits >> 8 < threshold; 1 .. 2^24 - 1


cdef inline uint64_t site_key(uint64_t seed, uint64_t site) noexcept nogil:
    return mix64((seed << 16) | site)


cdef inline uint32_t row_bits(uint64_t key, Py_ssize_t position) noexcept nogil:
    return <uint32_t> (mix64(key + <uint64_t> position * GOLDEN64) >> 32)


cdef inline double keep_scale(uint32_t threshold) noexcept nogil:
    """1 / (1 - rate) for the rate the threshold stands for, in double (the caller rounds it once)."""
    return 16777216.0 / (16777216.0 - threshold)


cdef inline double drop_unscale(uint32_t threshold) noexcept nogil:
    """1 - rate, exact in float32 too: what a kept, scaled output is multiplied by to undo the scale."""
    return (16777216.0 - threshold) / 16777216.0


cdef inline void shift_offsets(uint32_t bits, Py_ssize_t pixels,
                               Py_ssize_t* dy, Py_ssize_t* dx) noexcept nogil:   # OUT each in -pixels..pixels
    """An image's move, down by dy rows and right by dx columns: dy from the row bits' high 16, dx from the low 16.

    (16 bits * choices) >> 16 maps 16 uniform bits onto 0..choices-1 with a bias below 2^-16 * choices.
    """
    cdef uint64_t choices = 2 * pixels + 1
    dy[0] = <Py_ssize_t> (((bits >> 16) * choices) >> 16) - pixels
    dx[0] = <Py_ssize_t> (((bits & 0xFFFFU) * choices) >> 16) - pixels
