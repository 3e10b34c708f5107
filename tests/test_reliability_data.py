"""Reliability of the data readers: any bytes at all give a correct array or ``DataError``.

``read_idx`` and ``read_csv`` read files nncore did not write, so every file they are handed
is untrusted. Hypothesis feeds them arbitrary bytes and mutated valid files (bit flips,
truncations, insertions, header field changes, gzip or not); each outcome must be either the
array the bytes describe or ``nncore.DataError``: never another exception, a hang or a crash.

The plain round-trip and arbitrary-header cases live in tests/test_data_idx.py; this module
adds the mutation fuzzing, read_csv, reading through files (the path ``read_idx`` takes for
real data, not only ``decode_idx``), and the replay of the regression corpus in
tests/regressions/ (every file there must read without any exception but ``DataError``),
and the exhaustion and hang cases: a gzip bomb, a file larger than memory, FIFOs, directories
and ``/dev/zero`` (run in capped child processes where no signal could interrupt the read).

Example counts (per run, the default suite): ``FUZZ_EXAMPLES`` below, scaled by the
environment variable ``NNCORE_FUZZ_SCALE`` (e.g. 10 for a long local fuzzing session).
"""
import gzip
import io
import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _time_limit import run_limited
from _time_limit import time_limit as _time_limit

from nncore import DataError
from nncore.data import decode_idx, encode_idx, read_csv, read_idx

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

REGRESSIONS = Path(__file__).parent / "regressions"
SCALE = float(os.environ.get("NNCORE_FUZZ_SCALE", "1"))
FUZZ_EXAMPLES = {"idx_bytes": 1000, "idx_mutated": 1500, "csv_bytes": 500, "csv_mutated": 800}
# A single read of these tiny files takes well under a millisecond; anything near this is a hang.
SECONDS_PER_READ = 5


def fuzz_settings(kind):
    return settings(max_examples=max(1, int(FUZZ_EXAMPLES[kind] * SCALE)), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    derandomize=False, database=None)


def time_limit(seconds=SECONDS_PER_READ):
    """Fail (instead of hanging the suite) when the body runs longer than ``seconds``."""
    return _time_limit(seconds, what="a read")


_WORK_DIRECTORY = tempfile.TemporaryDirectory(prefix="nncore-fuzz-")


def file_with(contents, name="fuzz.bin"):
    path = Path(_WORK_DIRECTORY.name) / name
    path.write_bytes(contents)
    return path


# ---------------------------------------------------------------- IDX

def valid_idx_arrays():
    """Small valid arrays of every IDX type, the seeds the mutations start from."""
    rng = np.random.default_rng(7)
    return [
        rng.integers(0, 256, (3, 4, 5), dtype=np.uint8),   # images
        rng.integers(0, 10, 6, dtype=np.uint8),             # labels
        rng.integers(-128, 128, (2, 3), dtype=np.int8),
        rng.integers(-30000, 30000, (4,), dtype=np.int16),
        rng.integers(-2**31, 2**31, (2, 2), dtype=np.int32),
        rng.standard_normal((3, 2)).astype(np.float32),
        rng.standard_normal(3),
        np.zeros((0, 4), dtype=np.uint8),
    ]


SEED_FILES = [encode_idx(array) for array in valid_idx_arrays()]


def check_idx_outcome(path, raw):
    """Read ``path``: an array that is exactly what the uncompressed bytes ``raw`` say, or DataError.

    ``raw`` is None when the file is not valid gzip (then only the outcome kinds are checked).
    """
    try:
        with time_limit():
            array = read_idx(path)
    except DataError as error:
        assert str(path) in str(error), f"DataError does not name the file: {error}"
        return None
    assert isinstance(array, np.ndarray)
    assert array.dtype.isnative
    if raw is not None:
        assert encode_idx(array) == raw, "read_idx returned an array the bytes do not describe"
    return array


def gunzip_or_none(data):
    try:
        return gzip.decompress(data)
    except Exception:  # noqa: BLE001 -- the oracle only needs "not a valid gzip stream"
        return None


def idx_mutations():
    """(seed file index, gzip?, list of mutations) -> the mutated bytes, built by Hypothesis."""
    position = st.integers(0, 200)
    mutation = st.one_of(
        st.tuples(st.just("flip"), position, st.integers(0, 7)),
        st.tuples(st.just("truncate"), position),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=8)),
        st.tuples(st.just("delete"), position, st.integers(1, 8)),
        st.tuples(st.just("type_code"), st.integers(0, 255)),
        st.tuples(st.just("n_dims"), st.integers(0, 255)),
        st.tuples(st.just("dimension"), st.integers(0, 3), st.sampled_from(
            [0, 1, 2, 3, 5, 255, 2**16, 2**31 - 1, 2**31, 2**32 - 1]) | st.integers(0, 2**32 - 1)),
    )
    return st.tuples(st.integers(0, len(SEED_FILES) - 1), st.booleans(),
                     st.lists(mutation, min_size=1, max_size=4))


def apply_mutations(data, mutations):
    data = bytearray(data)
    for mutation in mutations:
        kind = mutation[0]
        if kind == "flip" and data:
            data[mutation[1] % len(data)] ^= 1 << mutation[2]
        elif kind == "truncate":
            del data[mutation[1] % (len(data) + 1):]
        elif kind == "insert":
            at = mutation[1] % (len(data) + 1)
            data[at:at] = mutation[2]
        elif kind == "delete" and data:
            at = mutation[1] % len(data)
            del data[at:at + mutation[2]]
        elif kind == "type_code" and len(data) >= 3:
            data[2] = mutation[1]
        elif kind == "n_dims" and len(data) >= 4:
            data[3] = mutation[1]
        elif kind == "dimension":
            at = 4 + 4 * mutation[1]
            if len(data) >= at + 4:
                data[at:at + 4] = struct.pack(">I", mutation[2])
    return bytes(data)


@fuzz_settings("idx_mutated")
@given(idx_mutations())
@example((0, False, [("dimension", 0, 2**32 - 1)]))          # absurd first dimension
@example((0, True, [("dimension", 2, 2**31)]))               # the same inside gzip
@example((1, False, [("n_dims", 255)]))                      # more dimensions than bytes
@example((5, False, [("type_code", 0x0A)]))                  # the unused type code
@example((7, False, [("dimension", 0, 2**32 - 1)]))          # 0 x huge: zero bytes, fine
@example((0, True, [("truncate", 30)]))                      # gzip stream cut short
@example((0, True, [("flip", 12, 3)]))                       # a bit flip inside the deflate data
@example((3, True, [("insert", 200, b"\x1f\x8b")]))          # a second gzip member's magic
def test_a_mutated_idx_file_reads_as_what_it_says_or_raises_data_error(case):
    seed_index, compress, mutations = case
    original = SEED_FILES[seed_index]
    if compress:
        data = apply_mutations(gzip.compress(original, mtime=0), mutations)
        raw = gunzip_or_none(data)
    else:
        data = apply_mutations(original, mutations)
        raw = data
    array = check_idx_outcome(file_with(data, "mutated.idx"), raw)
    if not compress:
        # The in-memory decoder takes the same decisions as the file reader.
        try:
            decoded = decode_idx(data)
        except DataError:
            assert array is None, "read_idx accepted bytes decode_idx refuses"
        else:
            assert array is not None and encode_idx(decoded) == data


@fuzz_settings("idx_bytes")
@given(st.binary(max_size=128) | st.binary(max_size=64).map(lambda tail: b"\x1f\x8b" + tail)
       | st.binary(max_size=64).map(lambda tail: b"\x00\x00" + tail))
@example(b"")
@example(b"\x1f\x8b")
@example(b"\x00\x00\x08\x01")
@example(b"\x00\x00\x08\x00\x07")  # a 0-d array followed by one byte too many
def test_arbitrary_bytes_in_an_idx_file_read_correctly_or_raise_data_error(data):
    raw = gunzip_or_none(data) if data[:2] == b"\x1f\x8b" else data
    check_idx_outcome(file_with(data, "arbitrary.idx"), raw)


# ---------------------------------------------------------------- CSV

CSV_CELL = re.compile(r"^[ \t]*[+-]?[0-9]+[ \t]*$")
PIXEL_NAMES = [f"pixel{index}" for index in range(784)]
#: The headers the seeds use, each with the label's column (None: unlabeled). The reference
#: below only vouches for files whose header is one of these; any other header may be read
#: or refused, but never cause another exception.
KNOWN_HEADERS = {
    ",".join(["label"] + [f"{r}x{c}" for r in range(1, 29) for c in range(1, 29)]): 0,
    ",".join(PIXEL_NAMES + ["label"]): 784,
    ",".join(PIXEL_NAMES[:300] + ["label"] + PIXEL_NAMES[300:]): 300,
    ",".join(PIXEL_NAMES): None,
}


def strict_csv_reference(text):
    """What a strict reader makes of ``text``: (images, labels or None), or None if not a clean file.

    Clean: ASCII after an optional UTF-8 byte-order mark; lines ending in \\n or \\r\\n; either
    one of KNOWN_HEADERS as the first non-blank line, or no header (a first row whose cells
    are all integers); every other non-blank line has the header's number of integer cells in
    0..255, or without a header 785 (label first) or 784 (unlabeled) of them, the same on
    every line; at least one such line.
    """
    if text.startswith(b"\xef\xbb\xbf"):
        text = text[3:]
    try:
        text = text.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = text.replace("\r\n", "\n").split("\n")
    if any("\r" in line or "#" in line for line in lines):
        return None
    lines = [line for line in lines if line.strip()]
    if not lines:
        return None
    first_cells = [cell.strip() for cell in lines[0].split(",")]
    if all(CSV_CELL.match(cell) for cell in first_cells):
        n_columns = len(first_cells)
        label_column = {785: 0, 784: None}.get(n_columns, "refused")
    elif ",".join(first_cells) in KNOWN_HEADERS:
        label_column = KNOWN_HEADERS[",".join(first_cells)]
        n_columns = len(first_cells)
        lines = lines[1:]
    else:
        return None
    if label_column == "refused" or not lines:
        return None
    rows = []
    for line in lines:
        cells = line.split(",")
        if len(cells) != n_columns or not all(CSV_CELL.match(cell) for cell in cells):
            return None
        values = [int(cell) for cell in cells]
        if not all(0 <= value <= 255 for value in values):
            return None
        rows.append(values)
    table = np.array(rows, dtype=np.uint8)
    if label_column is None:
        return table, None
    return np.delete(table, label_column, axis=1), table[:, label_column]


def valid_csv_files():
    rng = np.random.default_rng(3)
    values = [[label, *rng.integers(0, 256, 784)] for label in (7, 2, 0)]
    rows = [",".join(map(str, row)) for row in values]
    headers = list(KNOWN_HEADERS)

    def with_label_at(column):
        return [",".join(map(str, row[1:column + 1] + [row[0]] + row[column + 1:])) for row in values]

    return [("\n".join(rows) + "\n").encode(),                                        # mnist in csv
            ("\r\n".join([headers[0], *rows[:2]]) + "\r\n").encode(),                 # header, CRLF
            rows[0].encode(),                                                         # no final newline
            ("\n".join([headers[1], *with_label_at(784)]) + "\n").encode(),          # label last
            ("\n".join([headers[2], *with_label_at(300)]) + "\n").encode(),          # label in the middle
            ("\n".join([headers[3], *(row.split(",", 1)[1] for row in rows)]) + "\n").encode(),  # Kaggle test.csv
            ("\n".join(row.split(",", 1)[1] for row in rows) + "\n").encode(),       # unlabeled, no header
            b"\xef\xbb\xbf" + ("\n".join(rows) + "\n").encode()]                     # byte-order mark


CSV_SEEDS = valid_csv_files()
CSV_FIELDS = ["256", "-1", "+3", " 12 ", "", "1e3", "0x10", "3.0", "nan", "99999999999999999999",
              "\x00", "\xff", "label", "1,2", "\"4\"", "#", "\r", "\n", "\t7", "LABEL", "pixel9", "\ufeff"]


def csv_mutations():
    position = st.integers(0, 10_000)
    mutation = st.one_of(
        st.tuples(st.just("flip"), position, st.integers(0, 7)),
        st.tuples(st.just("truncate"), position),
        st.tuples(st.just("insert"), position, st.binary(min_size=1, max_size=6)),
        st.tuples(st.just("delete"), position, st.integers(1, 12)),
        st.tuples(st.just("field"), position, st.sampled_from(CSV_FIELDS)),
        st.tuples(st.just("drop_column"), position),
        st.tuples(st.just("duplicate_line"), position),
    )
    return st.tuples(st.integers(0, len(CSV_SEEDS) - 1), st.lists(mutation, min_size=1, max_size=3))


def apply_csv_mutations(data, mutations):
    data = bytearray(data)
    for mutation in mutations:
        kind = mutation[0]
        if kind in ("flip", "truncate", "insert", "delete"):
            data = bytearray(apply_mutations(data, [mutation]))
        elif kind in ("field", "drop_column"):
            # Cells are the spans between commas and line ends; replace or remove one.
            spans = [m.span() for m in re.finditer(rb"[^,\r\n]*", bytes(data))]
            if spans:
                start, end = spans[mutation[1] % len(spans)]
                if kind == "field":
                    field = mutation[2]
                    # latin-1 keeps "\xff" a single invalid UTF-8 byte; "\ufeff" needs UTF-8.
                    data[start:end] = field.encode("latin-1" if max(field, default="a") <= "\xff" else "utf-8")
                else:
                    data[start:end + (end < len(data) and data[end:end + 1] == b",")] = b""
        elif kind == "duplicate_line":
            lines = bytes(data).split(b"\n")
            at = mutation[1] % len(lines)
            lines.insert(at, lines[at])
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def check_csv_outcome(data):
    path = file_with(data, "fuzz.csv")
    try:
        with time_limit():
            images, labels = read_csv(path)
    except DataError as error:
        assert str(path) in str(error), f"DataError does not name the file: {error}"
        return None
    assert images.dtype == np.uint8 and images.ndim == 2 and images.shape[1] == 784
    assert images.shape[0] >= 1
    assert labels is None or (labels.dtype == np.uint8 and labels.shape == (images.shape[0],))
    expected = strict_csv_reference(data)
    if expected is not None:
        np.testing.assert_array_equal(images, expected[0])
        assert (labels is None) == (expected[1] is None), "labels read from an unlabeled file or lost"
        if labels is not None:
            np.testing.assert_array_equal(labels, expected[1])
    return images, labels


@fuzz_settings("csv_mutated")
@given(csv_mutations())
@example((0, [("field", 5, "256")]))
@example((0, [("field", 0, "-1")]))
@example((1, [("field", 0, "7")]))            # the header's first cell becomes a number
@example((1, [("truncate", 3200)]))           # header only, no data rows
@example((0, [("drop_column", 100)]))
@example((0, [("field", 40, "\x00")]))
@example((2, [("field", 3, "#")]))            # a comment character inside a row
@example((0, [("field", 785, "\r")]))         # a lone carriage return
@example((0, [("insert", 0, b"\x1c")]))        # a control character Python's str.isspace() accepts
@example((3, [("field", 0, "label")]))        # two label columns in the header
@example((5, [("field", 1, "label")]))        # Kaggle's test.csv header with a pixel renamed 'label'
@example((5, [("drop_column", 0)]))           # a header shorter than its rows
@example((6, [("field", 0, "pixel0")]))       # an unlabeled first row turned into a header
@example((4, [("field", 301, "pixel2")]))     # pixel columns out of order
@example((7, [("insert", 3, b"\n\n")]))       # blank lines after the byte-order mark
def test_a_mutated_csv_file_reads_as_what_it_says_or_raises_data_error(case):
    seed_index, mutations = case
    data = apply_csv_mutations(CSV_SEEDS[seed_index], mutations)
    check_csv_outcome(data)


@fuzz_settings("csv_bytes")
@given(st.binary(max_size=256) | st.text(alphabet="0123456789,\n\r -+", max_size=200).map(str.encode))
@example(b"")
@example(b"\n\n\n")
@example(b"label\n")
@example(b"\xef\xbb\xbf0," + b"0," * 783 + b"0\n")   # a UTF-8 byte-order mark
def test_arbitrary_bytes_in_a_csv_file_read_correctly_or_raise_data_error(data):
    check_csv_outcome(data)


def test_a_valid_csv_seed_reads_back_exactly():
    for data in CSV_SEEDS:
        images, _ = check_csv_outcome(data)
        expected = strict_csv_reference(data)
        assert expected is not None and len(images) == len(expected[0])


def test_read_csv_of_a_text_stream_with_garbage_raises_data_error_naming_the_stream():
    stream = io.StringIO("1," * 784 + "\x00\n")
    with pytest.raises(DataError, match="<stream>|malformed"):
        read_csv(stream)


# ---------------------------------------------------------------- the regression corpus

def corpus(pattern):
    return sorted(REGRESSIONS.glob(pattern))


@pytest.mark.parametrize("path", corpus("*.idx") + corpus("*.idx.gz"), ids=lambda p: p.name)
def test_every_idx_file_in_the_regression_corpus_reads_or_raises_data_error(path):
    data = path.read_bytes()
    raw = gunzip_or_none(data) if data[:2] == b"\x1f\x8b" else data
    check_idx_outcome(path, raw)


@pytest.mark.parametrize("path", corpus("*.csv"), ids=lambda p: p.name)
def test_every_csv_file_in_the_regression_corpus_reads_or_raises_data_error(path):
    check_csv_outcome(path.read_bytes())


def test_the_regression_corpus_is_there():
    assert len(corpus("*.idx") + corpus("*.idx.gz")) >= 5 and len(corpus("*.csv")) >= 3


# ---------------------------------------------------------------- exhaustion and hangs (issue 11 item 5)

READ_AND_REPORT = """
import sys
from nncore.data import read_csv, read_idx, read_images
from nncore.errors import DataError
read = {"read_idx": read_idx, "read_csv": read_csv, "read_images": read_images}[sys.argv[1]]
try:
    read(sys.argv[2])
except DataError as error:
    print("DataError:", error)
"""

needs_rlimit = pytest.mark.skipif(not hasattr(os, "fork") or os.uname().sysname != "Linux",
                                  reason="RLIMIT_AS as a memory cap is Linux behaviour")


@needs_rlimit
def test_a_gzip_idx_declaring_4_gb_from_4_mb_is_refused_without_decompressing_it(tmp_path):
    # 64 gzip members of 64 MiB of zeros each: a valid 4.3 MB file holding an honest 4 GiB.
    header = b"\x00\x00\x08\x03" + struct.pack(">3I", 65536, 256, 256)
    block = gzip.compress(bytes(64 << 20), compresslevel=9, mtime=0)
    path = tmp_path / "bomb-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header, mtime=0) + block * 64)
    assert path.stat().st_size < 5_000_000
    done = run_limited(READ_AND_REPORT, "read_idx", path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "decompression bomb" in done.stdout and "4.3 GB" in done.stdout and str(path) in done.stdout


@needs_rlimit
def test_a_raw_idx_too_large_for_memory_is_a_data_error_not_a_memory_error(tmp_path):
    # A sparse 3 GB file whose header declares exactly its size: a genuine, unaffordable file.
    path = tmp_path / "huge-idx1-ubyte"
    with open(path, "wb") as stream:
        stream.write(b"\x00\x00\x08\x01" + struct.pack(">I", 3 << 30))
        stream.truncate(8 + (3 << 30))
    done = run_limited(READ_AND_REPORT, "read_idx", path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"DataError: {path}: 3.2 GB does not fit in memory" in done.stdout


def test_a_highly_compressible_but_plausible_gzip_idx_is_still_read(tmp_path):
    labels = np.zeros(60_000, dtype=np.uint8)  # one class only: compresses ~600x, but only 60 kB
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(encode_idx(labels)))
    np.testing.assert_array_equal(read_idx(path), labels)


@pytest.mark.parametrize("reader", ["read_idx", "read_csv", "read_images"])
@pytest.mark.parametrize("kind", ["a directory", "a FIFO"])
def test_a_fifo_or_directory_given_as_a_data_file_is_refused_at_once(tmp_path, reader, kind):
    from nncore.data import read_images
    read = {"read_idx": read_idx, "read_csv": read_csv, "read_images": read_images}[reader]
    path = tmp_path / "data.csv"
    if kind == "a FIFO":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)  # opening it for reading would wait for a writer: interruptible by SIGALRM
    else:
        path.mkdir()
    with time_limit(), pytest.raises(DataError, match=f"{path}: is {kind}"):
        read(path)


@needs_rlimit
@pytest.mark.parametrize("reader", ["read_idx", "read_csv", "read_images"])
def test_a_device_that_never_ends_is_refused_not_read(reader):
    # /dev/zero read to its end fills the memory inside one C call: run it in a capped child.
    done = run_limited(READ_AND_REPORT, reader, "/dev/zero", seconds=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "DataError: /dev/zero: is a character device, not a regular file"


def test_a_fifo_in_the_dataset_cache_is_refused_instead_of_blocking(tmp_path):
    from nncore.data import load_dataset
    from nncore.data.fetch import IDX_FILE_NAMES, MNIST_CLASS_NAMES, DatasetSpec
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    spec = DatasetSpec("tiny", MNIST_CLASS_NAMES, {name: "0" * 64 for name in IDX_FILE_NAMES}, ())
    (tmp_path / "tiny").mkdir()
    os.mkfifo(tmp_path / "tiny" / IDX_FILE_NAMES[0])
    with time_limit(), pytest.raises(DataError, match="is a FIFO"):
        load_dataset(spec, "train", cache_dir=tmp_path)
