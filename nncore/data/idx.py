"""Read and write IDX files, the binary format MNIST and Fashion-MNIST are published in.

An IDX file is a 4-byte magic number ``00 00 <type code> <number of dimensions>``, one
big-endian unsigned 32-bit size per dimension, then the values in C order, big-endian.
The six type codes are 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32 and
0x0E float64. Files may be gzip-compressed; a file is treated as gzip when its first two
bytes are the gzip magic ``1f 8b``, whatever its name.

Every malformed file raises ``nncore.errors.DataError`` naming the file and the problem;
nothing is allocated for the values before the declared size has been checked against
the data actually present, so a header declaring absurd dimensions costs nothing. A gzip
file cannot be checked that way without decompressing it, so its declared size is held to
what its compressed size makes plausible (see ``_check_plausible_gzip_size``), and the
values are decompressed straight into one buffer of exactly the declared size.
Only regular files are read: a FIFO or a device is refused instead of blocking forever.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from nncore._atomic import atomic_write_bytes
from nncore._output_paths import output_path
from nncore._reading import allocate, format_bytes, open_regular_file
from nncore.errors import DataError
from nncore._types import PathLike

#: IDX type code -> the big-endian NumPy dtype of the values as stored in the file.
DTYPE_BY_CODE: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODE_BY_KIND_AND_SIZE = {
    (dtype.kind, dtype.itemsize): code for code, dtype in DTYPE_BY_CODE.items()}

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_READ_CHUNK_BYTES = 1 << 20
# A gzip IDX may declare at most this many times its compressed size once it declares more
# than _TRUSTED_GZIP_PAYLOAD_BYTES. Real image files compress 3-10x (MNIST 4.8x, Fashion-MNIST
# 3.3x); deflate's own limit is about 1032x, which a file of zeros reaches: 4 MB declaring 4 GB.
_PLAUSIBLE_GZIP_RATIO = 200
_TRUSTED_GZIP_PAYLOAD_BYTES = 64 << 20
_LARGEST_DIMENSION = 2**32 - 1
# NumPy 2 arrays have at most 64 dimensions, NumPy 1 at most 32.
_MAX_NUMPY_DIMENSIONS = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32


def read_idx(path: PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed, into an array of the file's dtype and shape.

    The array has native byte order. Raises ``DataError`` (naming ``path``) on a wrong
    magic number, an unknown type code, a truncated header or payload, bytes after the
    payload, or corrupt gzip data.
    """
    path = Path(path)
    with open_regular_file(path, DataError) as stream:
        is_gzip = stream.read(2) == GZIP_MAGIC
        stream.seek(0)
        if is_gzip:
            return _read_gzip_idx(stream, path)
        # The header is checked against the file's size before the whole file is read,
        # so a header declaring terabytes fails here instead of in the allocator.
        _, shape, header_size, payload_size = _parse_header(stream.read, path)
        file_size = os.fstat(stream.fileno()).st_size
        _check_payload_size(file_size - header_size, payload_size, shape, path)
        stream.seek(0)
        whole_file = allocate(header_size + payload_size, DataError, path)  # overwritten below
        if stream.readinto(whole_file) != len(whole_file):
            raise DataError(f"{path}: the file shrank while it was being read")
    return decode_idx(whole_file, source=path)


def decode_idx(data: bytes | np.ndarray, source: object = "<bytes>") -> np.ndarray:
    """Decode the bytes of a whole, uncompressed IDX file into an array.

    For one-byte types the result is a view of ``data`` (no copy; writable when ``data``
    is, e.g. a bytearray or a uint8 array). ``source`` names the data in error messages.
    """
    view = memoryview(data).cast("B")  # type: ignore[arg-type]  # an ndarray is a buffer; numpy's stubs do not say so
    position = 0

    def read(count):
        nonlocal position
        chunk = bytes(view[position:position + count])
        position += len(chunk)
        return chunk

    dtype, shape, header_size, payload_size = _parse_header(read, source)
    _check_payload_size(len(view) - header_size, payload_size, shape, source)
    values = np.frombuffer(view, dtype=dtype, count=math.prod(shape), offset=header_size)
    return _to_native_byte_order(values.reshape(shape))


def encode_idx(array: np.ndarray) -> bytes:
    """The bytes of an uncompressed IDX file holding ``array`` (see ``write_idx`` for types)."""
    header, payload = _header_and_payload(array)
    return header + payload.tobytes()


def write_idx(path: PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file, atomically (temporary file + rename).

    ``array`` must be uint8, int8, int16, int32, float32 or float64, with at most 255
    dimensions each below 2**32. ``compress`` None means gzip when ``path`` ends in ".gz".
    """
    path = output_path(path)
    if compress is None:
        compress = path.suffix == ".gz"
    header, payload = _header_and_payload(array)
    if compress:
        # mtime=0 makes the compressed bytes depend only on the array (reproducible files).
        atomic_write_bytes(path, gzip.compress(header + payload.tobytes(), mtime=0), streams=True)
    else:
        atomic_write_bytes(path, (header, payload.reshape(-1).view(np.uint8)), streams=True)


def _parse_header(read, source):
    """Read and check the magic number and dimensions; return dtype, shape and sizes."""
    magic = read(4)
    if not magic:
        raise DataError(f"{source}: empty file, expected an IDX header")
    if len(magic) < 4:
        raise DataError(f"{source}: truncated IDX header ({len(magic)} of 4 magic bytes)")
    if magic[0] != 0 or magic[1] != 0:
        raise DataError(
            f"{source}: not an IDX file: magic bytes are {magic.hex(' ')}, "
            "expected 00 00 <type code> <number of dimensions>")
    type_code, number_of_dimensions = magic[2], magic[3]
    dtype = DTYPE_BY_CODE.get(type_code)
    if dtype is None:
        known = ", ".join(f"0x{code:02X}" for code in DTYPE_BY_CODE)
        raise DataError(f"{source}: unknown IDX type code 0x{type_code:02X} (known codes: {known})")
    dimension_bytes = read(4 * number_of_dimensions)
    if len(dimension_bytes) < 4 * number_of_dimensions:
        raise DataError(
            f"{source}: truncated IDX header: {number_of_dimensions} dimensions declared, "
            f"only {len(dimension_bytes)} of their {4 * number_of_dimensions} bytes present")
    shape = struct.unpack(f">{number_of_dimensions}I", dimension_bytes)
    if number_of_dimensions > _MAX_NUMPY_DIMENSIONS:
        raise DataError(f"{source}: {number_of_dimensions} dimensions declared; NumPy arrays "
                        f"hold at most {_MAX_NUMPY_DIMENSIONS}")
    # Python integers do not overflow: the product is exact however large the dims are.
    payload_size = math.prod(shape) * dtype.itemsize
    # A zero among the dims makes the payload empty, but the other dims must still describe
    # an array NumPy can index: their product must fit in a signed 64-bit size.
    if math.prod(size for size in shape if size) * dtype.itemsize >= 2**63:
        raise DataError(f"{source}: IDX dims {shape} overflow: their product is too large for any array")
    return dtype, shape, 4 + 4 * number_of_dimensions, payload_size


def _check_payload_size(present, declared, shape, source):
    if present < declared:
        raise DataError(
            f"{source}: truncated IDX payload: shape {shape} needs {declared} bytes of values, "
            f"the file holds {present}")
    if present > declared:
        raise DataError(
            f"{source}: {present - declared} unexpected bytes after the IDX payload "
            f"(shape {shape} needs {declared} bytes of values)")


def _read_gzip_idx(stream, path):
    """Decompress incrementally, so a bogus declared size is caught before it is allocated."""
    compressed_size = os.fstat(stream.fileno()).st_size
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as decompressed:
            dtype, shape, _, payload_size = _parse_header(decompressed.read, path)
            _check_plausible_gzip_size(payload_size, compressed_size, shape, path)
            payload = allocate(payload_size, DataError, path)
            present = _read_into(decompressed, payload)
            if present == payload_size:
                present += len(decompressed.read(_GZIP_READ_CHUNK_BYTES))
    except (OSError, EOFError, zlib.error) as error:
        # gzip.BadGzipFile is an OSError; EOFError means the compressed stream is cut short.
        raise DataError(f"{path}: corrupt or truncated gzip data ({error})") from error
    _check_payload_size(present, payload_size, shape, path)
    values = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return _to_native_byte_order(values)


def _check_plausible_gzip_size(payload_size, compressed_size, shape, path):
    limit = max(_TRUSTED_GZIP_PAYLOAD_BYTES, _PLAUSIBLE_GZIP_RATIO * compressed_size)
    if payload_size > limit:
        raise DataError(
            f"{path}: the IDX header declares shape {shape}, {format_bytes(payload_size)} of values, "
            f"from {format_bytes(compressed_size)} of gzip data: more than {_PLAUSIBLE_GZIP_RATIO} "
            "times its compressed size, refused as a likely decompression bomb "
            "(if the file is genuine, gunzip it and read the uncompressed file)")


def _read_into(stream, buffer):
    """Fill ``buffer`` from ``stream`` in bounded chunks; return how many bytes were read."""
    view = memoryview(buffer)
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:filled + _GZIP_READ_CHUNK_BYTES])
        if not count:
            break
        filled += count
    return filled


def _to_native_byte_order(values):
    # For one-byte types this is the same array (no copy); wider types are byte-swapped.
    return values.astype(values.dtype.newbyteorder("="), copy=False)


def _header_and_payload(array):
    """The IDX header bytes and the big-endian, C-contiguous values of ``array``."""
    array = np.asarray(array)
    type_code = _CODE_BY_KIND_AND_SIZE.get((array.dtype.kind, array.dtype.itemsize))
    if type_code is None:
        raise DataError(
            f"cannot store dtype {array.dtype} in an IDX file "
            "(supported: uint8, int8, int16, int32, float32, float64)")
    if array.ndim > 255:
        raise DataError(f"cannot store {array.ndim} dimensions in an IDX file (at most 255)")
    if any(size > _LARGEST_DIMENSION for size in array.shape):
        raise DataError(f"cannot store shape {array.shape} in an IDX file (each size below 2**32)")
    header = bytes((0, 0, type_code, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = np.ascontiguousarray(array, dtype=DTYPE_BY_CODE[type_code])
    return header, payload
