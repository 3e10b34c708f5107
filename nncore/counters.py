"""Counter-based random bits: the dropout masks and image shifts of training, as pure functions.

Every random choice a training pass makes beyond the shuffle is a function of counters, not
of a generator's state: the epoch's seed (the shuffle seed ``fit`` derives from the run's
seed and the epoch), a *site*, a row's *position* in the epoch's order (batch index x batch
size + row in the batch) and a unit. So the compiled core draws a dropout mask inside its
fused forward kernel and draws it again in the backward pass, without a mask array; the
NumPy backend draws the same bits from the same counters; and a resumed run draws what the
uninterrupted one would have. src_c/_counters.pxd is the C twin of this module:

    site key  = mix64((seed << 16) | site)           site: activation index (0: the inputs,
                                                      l + 1: layer l's output) or SHIFT_SITE
    row bits  = high 32 bits of mix64(site key + position * GOLDEN64)
    unit bits = mix32(row bits + unit * GOLDEN32)     (unsigned wrap-around)

mix64 is SplitMix64's finaliser (Steele, Lea & Flood, OOPSLA 2014), used once per row;
mix32 is the "lowbias32" finaliser of Wellons' hash prospector, used once per unit: two
32-bit multiplies, which vectorize (vpmulld on AVX2) where 64-bit multiplies do not.

Dropout keeps a unit when its top 24 bits are at least ``drop_threshold(rate)`` =
round(rate * 2^24), an integer comparison that C and NumPy make identically, and scales kept
units by 2^24 / (2^24 - threshold) (inverted dropout: inference is unchanged). A shift moves
an image down by dy and right by dx, both in -k..k, from the high and low 16 row bits.
"""
import numpy as np

SHIFT_SITE = 0xFFFF
KEEP_BITS = 24
_KEEP_RANGE = 1 << KEEP_BITS
GOLDEN64 = np.uint64(0x9E3779B97F4A7C15)
GOLDEN32 = np.uint32(0x9E3779B9)


def mix64(z):
    """SplitMix64's finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def mix32(x):
    """The lowbias32 finaliser on a uint32 array (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint32(16))) * np.uint32(0x7FEB352D)
    x = (x ^ (x >> np.uint32(15))) * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def row_bits(seed, site, positions):
    """32 bits per row (uint32, one per entry of ``positions``) at ``site`` of the epoch with ``seed``."""
    key = mix64(np.array([(int(seed) << 16) | int(site)], dtype=np.uint64))
    counters = key + np.atleast_1d(np.asarray(positions, dtype=np.uint64)) * GOLDEN64
    return (mix64(counters) >> np.uint64(32)).astype(np.uint32)


def unit_bits(seed, site, positions, n_units):
    """32 bits per unit: uint32 (len(positions), n_units)."""
    units = np.arange(n_units, dtype=np.uint32) * GOLDEN32
    return mix32(row_bits(seed, site, positions)[:, None] + units)


def drop_threshold(rate):
    """The integer form of a dropout rate: a unit is dropped when its top 24 bits are below it."""
    return round(float(rate) * _KEEP_RANGE)


def keep_mask(seed, site, positions, n_units, threshold):
    """Which units dropout keeps (bool (len(positions), n_units)); all of them for threshold 0."""
    return (unit_bits(seed, site, positions, n_units) >> np.uint32(8)) >= threshold


def keep_scale(threshold, dtype):
    """What kept units are multiplied by, 1 / (1 - rate), rounded once to ``dtype``."""
    return np.dtype(dtype).type(_KEEP_RANGE / (_KEEP_RANGE - threshold))


def drop_unscale(threshold, dtype):
    """1 - rate (exact in float32 too): a kept output times this is the activation before scaling."""
    return np.dtype(dtype).type((_KEEP_RANGE - threshold) / _KEEP_RANGE)


def image_shifts(seed, positions, pixels):
    """(dy, dx) of each row's image, each uniform in -pixels..pixels (intp arrays)."""
    bits = row_bits(seed, SHIFT_SITE, positions).astype(np.int64)
    choices = 2 * int(pixels) + 1
    return (((bits >> 16) * choices) >> 16) - pixels, (((bits & 0xFFFF) * choices) >> 16) - pixels


def noise_table(seed, drop_thresholds, shift=None):
    """What the compiled core takes of one pass's randomness: [seed, shift pixels, image height,
    image width, one dropout threshold per site] (intp). ``shift`` is a resolved ``nncore.augment.Shift``."""
    pixels, (height, width) = (shift.pixels, shift.image_shape) if shift is not None else (0, (0, 0))
    return np.array([int(seed), pixels, height, width, *drop_thresholds], dtype=np.intp)
