"""IDX reading and writing: every type code, raw and gzip, and every kind of bad file."""

import gzip
import struct
import time

import numpy as np
import pytest

from nncore.data.idx import DTYPE_BY_CODE, decode_idx, encode_idx, read_idx, write_idx
from nncore.errors import DataError

SUPPORTED_DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]


def idx_header(type_code, shape):
    return bytes((0, 0, type_code, len(shape))) + struct.pack(f">{len(shape)}I", *shape)


def write_bytes(tmp_path, name, contents):
    path = tmp_path / name
    path.write_bytes(contents)
    return path


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
@pytest.mark.parametrize("file_name", ["array.idx", "array.idx.gz"])
def test_write_then_read_gives_back_the_same_values_dtype_and_shape(tmp_path, dtype, file_name):
    values = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    write_idx(tmp_path / file_name, values)
    loaded = read_idx(tmp_path / file_name)
    assert loaded.dtype == np.dtype(dtype)
    assert loaded.dtype.isnative
    assert loaded.shape == (2, 3, 4)
    np.testing.assert_array_equal(loaded, values)


@pytest.mark.parametrize("type_code, dtype", [(0x08, ">u1"), (0x09, ">i1"), (0x0B, ">i2"),
                                              (0x0C, ">i4"), (0x0D, ">f4"), (0x0E, ">f8")])
def test_each_type_code_is_read_as_big_endian_values(tmp_path, type_code, dtype):
    values = np.array([[1, -2 if dtype != ">u1" else 2], [3, 100]], dtype=dtype)
    path = write_bytes(tmp_path, "file.idx", idx_header(type_code, (2, 2)) + values.tobytes())
    loaded = read_idx(path)
    assert loaded.dtype == np.dtype(dtype).newbyteorder("=")
    np.testing.assert_array_equal(loaded, values)


def test_the_written_file_is_the_documented_layout():
    encoded = encode_idx(np.array([[1, 2, 3]], dtype=np.int16))
    assert encoded == b"\x00\x00\x0b\x02" + b"\x00\x00\x00\x01\x00\x00\x00\x03" + b"\x00\x01\x00\x02\x00\x03"


def test_gzip_is_detected_by_content_not_by_name(tmp_path):
    values = np.arange(6, dtype=np.uint8).reshape(2, 3)
    compressed_without_suffix = write_bytes(tmp_path, "images-idx", gzip.compress(encode_idx(values)))
    raw_with_gz_suffix = write_bytes(tmp_path, "images-idx.gz", encode_idx(values))
    np.testing.assert_array_equal(read_idx(compressed_without_suffix), values)
    np.testing.assert_array_equal(read_idx(raw_with_gz_suffix), values)


def test_write_idx_compression_follows_the_suffix_unless_told(tmp_path):
    values = np.zeros((4, 4), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", values)
    write_idx(tmp_path / "b", values)
    write_idx(tmp_path / "c", values, compress=True)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert (tmp_path / "b").read_bytes()[:2] == b"\x00\x00"
    assert (tmp_path / "c").read_bytes()[:2] == b"\x1f\x8b"


def test_zero_sized_arrays_round_trip(tmp_path):
    write_idx(tmp_path / "empty.idx", np.zeros((0, 28, 28), dtype=np.uint8))
    assert read_idx(tmp_path / "empty.idx").shape == (0, 28, 28)


def test_decode_idx_of_a_bytearray_is_a_writable_view_for_bytes():
    contents = bytearray(encode_idx(np.arange(4, dtype=np.uint8)))
    decoded = decode_idx(contents)
    decoded[0] = 9
    assert contents[-4] == 9


def test_write_idx_refuses_types_idx_cannot_hold(tmp_path):
    for unsupported in (np.int64, np.uint16, np.complex64, bool):
        with pytest.raises(DataError, match="cannot store dtype"):
            write_idx(tmp_path / "x.idx", np.zeros(3, dtype=unsupported))
    assert not list(tmp_path.iterdir())


def test_all_six_type_codes_are_known():
    assert sorted(DTYPE_BY_CODE) == [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]


# --- bad files: each is a DataError (a ValueError) naming the file and the problem ------

BAD_FILES = {
    "empty": (b"", "empty file"),
    "short magic": (b"\x00\x00\x08", "truncated IDX header"),
    "wrong magic": (b"\x01\x02\x08\x01" + b"\x00\x00\x00\x01" + b"\x05", "not an IDX file"),
    "unknown type code": (b"\x00\x00\x0a\x01" + b"\x00\x00\x00\x01" + b"\x05", "unknown IDX type code 0x0A"),
    "truncated dimensions": (b"\x00\x00\x08\x03" + b"\x00\x00\x00\x01", "truncated IDX header"),
    "truncated payload": (idx_header(0x08, (2, 3)) + bytes(5), "truncated IDX payload"),
    "truncated wide payload": (idx_header(0x0E, (2,)) + bytes(15), "truncated IDX payload"),
    "trailing garbage": (idx_header(0x08, (2, 3)) + bytes(6) + b"junk", "4 unexpected bytes"),
    # 2**32-1 to the 4th power bytes: far beyond memory; must fail without allocating it.
    "huge dims": (idx_header(0x0E, (2**32 - 1,) * 4) + bytes(16), "overflow"),
    # The product of these sizes wraps to 0 in 32-bit and in 64-bit arithmetic.
    "dims product overflows": (idx_header(0x08, (2**16,) * 4) + bytes(3), "overflow"),
    "product does not match payload": (idx_header(0x0C, (3,)) + bytes(16), "4 unexpected bytes"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("compressed", [False, True], ids=["raw", "gzip"])
def test_a_malformed_file_raises_data_error_naming_file_and_problem(tmp_path, case, compressed):
    contents, problem = BAD_FILES[case]
    if compressed:
        contents = gzip.compress(contents)
    path = write_bytes(tmp_path, "bad-file.idx", contents)
    started = time.perf_counter()
    with pytest.raises(DataError, match=problem) as raised:
        read_idx(path)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value, ValueError)
    assert time.perf_counter() - started < 1.0  # no giant allocation or decompression


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_decode_idx_rejects_the_same_malformed_bytes(case):
    contents, problem = BAD_FILES[case]
    with pytest.raises(DataError, match=problem):
        decode_idx(contents, source="in-memory.idx")


def test_corrupt_gzip_data_raises_data_error(tmp_path):
    compressed = bytearray(gzip.compress(encode_idx(np.arange(1000, dtype=np.int32))))
    compressed[20:40] = bytes(20)  # damage the deflate stream (the CRC would catch the rest)
    path = write_bytes(tmp_path, "corrupt.idx.gz", bytes(compressed))
    with pytest.raises(DataError, match="corrupt or truncated gzip") as raised:
        read_idx(path)
    assert str(path) in str(raised.value)


def test_truncated_gzip_stream_raises_data_error(tmp_path):
    compressed = gzip.compress(encode_idx(np.arange(1000, dtype=np.int32)))
    path = write_bytes(tmp_path, "cut.idx.gz", compressed[: len(compressed) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(path)


def test_garbage_after_the_gzip_stream_raises_data_error(tmp_path):
    compressed = gzip.compress(encode_idx(np.arange(10, dtype=np.uint8)))
    path = write_bytes(tmp_path, "trailing.idx.gz", compressed + b"not gzip at all")
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


def test_gzip_header_only_is_reported_as_corrupt(tmp_path):
    path = write_bytes(tmp_path, "just-magic.gz", b"\x1f\x8b")
    with pytest.raises(DataError, match="gzip"):
        read_idx(path)


# --- property-based: round trips, and arbitrary bytes never crash the reader -------------

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies  # noqa: E402
from hypothesis.extra import numpy as numpy_strategies  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(numpy_strategies.arrays(
    dtype=strategies.sampled_from([np.dtype(dtype) for dtype in SUPPORTED_DTYPES]),
    shape=numpy_strategies.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5)))
def test_any_supported_array_survives_encode_then_decode(array):
    decoded = decode_idx(encode_idx(array))
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)


@settings(max_examples=300, deadline=None)
@given(strategies.binary(max_size=64) | strategies.builds(
    lambda type_code, shape, payload: idx_header(type_code, shape) + payload,
    strategies.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x0A]),
    strategies.lists(strategies.integers(0, 2**32 - 1), max_size=4),
    strategies.binary(max_size=32)))
def test_arbitrary_bytes_decode_consistently_or_raise_data_error(contents):
    try:
        decoded = decode_idx(contents)
    except DataError:
        return
    assert encode_idx(decoded) == contents  # a file that decodes is exactly what it says


@pytest.mark.parametrize("contents", [
    # Found by hypothesis: a zero dim makes the payload empty while the others are huge.
    b"\x00\x00\x08\x04\x00\x00\x00\x00\x00\x00\x00\x02\xac\x00\x00\x00_A}\x06",
    # More dimensions than NumPy arrays can have, all of size 1.
    b"\x00\x00\x08\x41" + b"\x00\x00\x00\x01" * 0x41 + b"\x07",
])
def test_shapes_numpy_cannot_hold_raise_data_error(contents):
    with pytest.raises(DataError, match="<bytes>"):
        decode_idx(contents)
