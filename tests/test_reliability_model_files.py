"""Reliability of model and checkpoint files: untrusted ``.npz`` files are refused, never run.

tests/test_io.py pins the format and a list of crafted files; this module tries harder:
Hypothesis mutates valid model and checkpoint files byte by byte and field by field (every
outcome is a correct model or ``ModelFileError``), pickle payloads hidden in every member
must not execute, zip bombs and compressed members are refused before they are inflated,
and a damaged checkpoint makes ``fit(resume=True)`` fail with ``ModelFileError``. Duplicated
members and JSON keys, deep nesting, oversized zip directories and messages, FIFOs and
``/dev/zero`` are refused too (``/dev/zero`` in a capped child process).
"""
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from _time_limit import run_limited
from _time_limit import time_limit as _time_limit

import nncore
from nncore.io import FORMAT_VERSION, load_checkpoint

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

SCALE = float(os.environ.get("NNCORE_FUZZ_SCALE", "1"))
MUTATION_EXAMPLES = 600
HEADER_EXAMPLES = 300


def fuzz_settings(n):
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def time_limit(seconds=10):
    """Fail (instead of hanging the suite) when the body runs longer than ``seconds``."""
    return _time_limit(seconds, what="loading")


_WORK = tempfile.TemporaryDirectory(prefix="nncore-model-fuzz-")


def _valid_files():
    directory = Path(_WORK.name)
    model = nncore.MLP([5, 4, 3], seed=1)
    model.save(directory / "model.npz")
    X = np.random.default_rng(0).random((30, 5)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 3, 30)
    trained = nncore.MLP([5, 4, 3], seed=2)
    trained.fit(X, y, epochs=1, batch_size=10, backend="numpy", checkpoint_dir=directory / "run",
                early_stopping=nncore.EarlyStopping(monitor="loss", patience=5))
    return {"model": (directory / "model.npz").read_bytes(),
            "checkpoint": (directory / "run" / "checkpoint.npz").read_bytes()}, X, y


VALID, X_SMALL, Y_SMALL = _valid_files()


def write(data, name="candidate.npz"):
    path = Path(_WORK.name) / name
    path.write_bytes(data)
    return path


def check_model_outcome(path):
    """load(path) gives a consistent, finite model, or ModelFileError naming the file."""
    try:
        with time_limit():
            model = nncore.load(path)
    except nncore.ModelFileError as error:
        assert str(path) in str(error)
        return None
    assert isinstance(model, nncore.MLP)
    assert model.params.shape == (sum(a * b + b for a, b in zip(model.layer_sizes, model.layer_sizes[1:])),)
    assert np.all(np.isfinite(model.params))
    model.predict_proba(np.zeros((2, model.n_inputs), np.float32).astype(model.dtype), backend="numpy")
    return model


def check_checkpoint_outcome(path):
    try:
        with time_limit():
            checkpoint = load_checkpoint(path)
    except nncore.ModelFileError as error:
        assert str(path) in str(error)
        return None
    n = checkpoint["params"].shape[0]
    for buffer in checkpoint["optimizer_state"]["buffers"].values():
        assert buffer.shape == (n,)
    return checkpoint


# ---------------------------------------------------------------- byte-level mutations

def mutate(data, mutations):
    data = bytearray(data)
    for kind, position, value in mutations:
        if not data:
            break
        at = position % len(data)
        if kind == "flip":
            data[at] ^= 1 << (value % 8)
        elif kind == "set":
            data[at] = value % 256
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = bytes([value % 256]) * (1 + value % 7)
        elif kind == "delete":
            del data[at:at + 1 + value % 16]
    return bytes(data)


MUTATIONS = st.lists(st.tuples(st.sampled_from(["flip", "set", "truncate", "insert", "delete"]),
                               st.integers(0, 1 << 20), st.integers(0, 1 << 16)), min_size=1, max_size=4)


@fuzz_settings(MUTATION_EXAMPLES)
@given(st.sampled_from(["model", "checkpoint"]), MUTATIONS)
@example("model", [("truncate", 30, 0)])
@example("model", [("set", 8, 8)])        # compression method of the first member: deflate
@example("model", [("set", 6, 1)])        # general-purpose flags: "encrypted"
@example("checkpoint", [("set", 8, 99)])  # compression method 99 (AES), unsupported
@example("model", [("flip", 26, 0)])      # the first member's name length
def test_a_mutated_model_or_checkpoint_file_loads_correctly_or_raises_model_file_error(kind, mutations):
    path = write(mutate(VALID[kind], mutations))
    check_model_outcome(path)
    check_checkpoint_outcome(path)


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_every_bit_of_the_central_directory_flipped_is_handled(kind):
    # The end of a zip (central directory, end record) is where a reader decides what to
    # trust: compression method, encryption flag, versions, sizes, offsets, name lengths.
    data = VALID[kind]
    start = data.find(b"PK\x01\x02")
    assert start > 0
    for offset in range(start, len(data)):
        for bit in range(8):
            path = write(mutate(data, [("flip", offset, bit)]), "flipped.npz")
            check_model_outcome(path)
            check_checkpoint_outcome(path)


def test_every_truncation_of_a_checkpoint_is_refused():
    data = VALID["checkpoint"]
    for length in list(range(120)) + list(range(120, len(data), max(1, len(data) // 150))):
        path = write(data[:length], "cut.npz")
        with pytest.raises(nncore.ModelFileError):
            load_checkpoint(path)
        with pytest.raises(nncore.ModelFileError):
            nncore.load(path)


# ---------------------------------------------------------------- header-level mutations

def _npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def rewrite(data, header_change=None, members=None, compression=zipfile.ZIP_STORED):
    """A copy of the archive ``data`` with its JSON header changed and members replaced."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        contents = {name: archive.read(name) for name in archive.namelist()}
    header = json.loads(np.load(io.BytesIO(contents["header.npy"])).tobytes())
    if header_change is not None:
        header = header_change(header)
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    contents["header.npy"] = _npy(np.frombuffer(raw, dtype=np.uint8))
    contents.update(members or {})
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compression) as archive:
        for name, member in contents.items():
            if member is not None:
                archive.writestr(name, member)
    return out.getvalue()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8)


def header_paths(header, prefix=()):
    """Every key path into the JSON header, for picking a field to change."""
    paths = []
    if isinstance(header, dict):
        for key, value in header.items():
            paths.append(prefix + (key,))
            paths.extend(header_paths(value, prefix + (key,)))
    elif isinstance(header, list):
        for index, value in enumerate(header):
            paths.append(prefix + (index,))
            paths.extend(header_paths(value, prefix + (index,)))
    return paths


def change_field(header, path, value, delete):
    target = header
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return header


@fuzz_settings(HEADER_EXAMPLES)
@given(st.sampled_from(["model", "checkpoint"]), st.data())
def test_any_header_field_changed_or_removed_loads_correctly_or_raises_model_file_error(kind, data):
    header = json.loads(np.load(io.BytesIO(zipfile.ZipFile(io.BytesIO(VALID[kind])).read("header.npy"))).tobytes())
    paths = header_paths(header)
    changes = data.draw(st.lists(st.tuples(st.sampled_from(paths), JSON_VALUES, st.booleans()),
                                 min_size=1, max_size=3))

    def apply(h):
        for path, value, delete in changes:
            try:
                change_field(h, path, value, delete)
            except (KeyError, IndexError, TypeError):
                pass  # an earlier change removed or replaced the path
        return h

    path = write(rewrite(VALID[kind], apply))
    check_model_outcome(path)
    checkpoint = check_checkpoint_outcome(path)
    if checkpoint is not None and kind == "checkpoint":
        # Resuming goes further than load_checkpoint: the training state must be refused
        # cleanly too (ValueError for a legitimately mismatched optimizer choice is fine).
        run = Path(_WORK.name) / "resume"
        run.mkdir(exist_ok=True)
        (run / "checkpoint.npz").write_bytes(path.read_bytes())
        model = nncore.MLP([5, 4, 3], seed=2)
        try:
            with time_limit():
                model.fit(X_SMALL, Y_SMALL, epochs=2, batch_size=10, backend="numpy", checkpoint_dir=run,
                          resume=True)
        except (nncore.ModelFileError, nncore.TrainingDiverged):
            pass


# ---------------------------------------------------------------- crafted attacks

class _Exploit:
    marker = None

    def __reduce__(self):
        return (Path.touch, (_Exploit.marker,))


@pytest.mark.parametrize("member", ["params.npy", "optimizer.m.npy", "optimizer.v.npy", "best_params.npy",
                                    "header.npy"])
def test_a_pickle_payload_in_any_checkpoint_member_is_not_executed(tmp_path, member):
    _Exploit.marker = tmp_path / "executed"
    evil = np.empty(1, dtype=object)
    evil[0] = _Exploit()
    path = tmp_path / "evil.npz"
    path.write_bytes(rewrite(VALID["checkpoint"], members={member: _npy(evil, allow_pickle=True)}))
    with pytest.raises(nncore.ModelFileError, match="dtype object|header"):
        load_checkpoint(path)
    # nncore.load takes only the model out of a checkpoint: it may ignore the other members.
    if member in ("params.npy", "header.npy"):
        with pytest.raises(nncore.ModelFileError):
            nncore.load(path)
    else:
        check_model_outcome(path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes(path.read_bytes())
    with pytest.raises(nncore.ModelFileError):
        nncore.MLP([5, 4, 3], seed=2).fit(X_SMALL, Y_SMALL, epochs=2, backend="numpy", checkpoint_dir=run,
                                          resume=True)
    assert not _Exploit.marker.exists(), "a pickle payload was executed"


def test_a_plain_pickle_file_named_npz_is_not_executed(tmp_path):
    import pickle
    _Exploit.marker = tmp_path / "executed"
    path = tmp_path / "model.npz"
    path.write_bytes(pickle.dumps(_Exploit()))
    with pytest.raises(nncore.ModelFileError, match="not"):
        nncore.load(path)
    assert not _Exploit.marker.exists()


def deflate_bomb_member(n_bytes):
    """A .npy member for a float32 vector of n_bytes/4 zeros, as zip would deflate it: tiny."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (n_bytes // 4,)})
    return header.getvalue(), n_bytes


def write_deflated_archive(path, members):
    """Members: name -> bytes, or (npy header bytes, number of zero bytes after it) streamed in."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in members.items():
            if isinstance(content, bytes):
                archive.writestr(name, content)
                continue
            header, n_zero = content
            with archive.open(name, "w", force_zip64=True) as stream:
                stream.write(header)
                block = bytes(1 << 22)
                for _ in range(n_zero // len(block)):
                    stream.write(block)


def test_a_zip_bomb_member_is_refused_without_inflating_it(tmp_path):
    # A header declaring a legitimate 1024 x 65536 float32 model (256 MB of parameters) whose
    # params member deflates from about 0.25 MB: nncore writes stored members, so a compressed
    # one is refused before anything is inflated or allocated.
    layer_sizes = [1024, 65535, 1]
    n = 1024 * 65535 + 65535 + 65535 + 1
    header = {"format": "nncore", "format_version": FORMAT_VERSION, "kind": "model", "layer_sizes": layer_sizes,
              "activations": ["relu"], "dtype": "float32", "arrays": {"params": {"shape": [n], "dtype": "float32"}}}
    npy_header, _ = deflate_bomb_member(4 * n)
    path = tmp_path / "bomb.npz"
    write_deflated_archive(path, {"header.npy": _npy(np.frombuffer(json.dumps(header).encode(), np.uint8)),
                                  "params.npy": (npy_header, 4 * n - (4 * n) % (1 << 22))})
    assert path.stat().st_size < 2_000_000
    with time_limit(20), pytest.raises(nncore.ModelFileError, match="compress|bomb|truncated|size"):
        nncore.load(path)


def test_a_header_member_that_inflates_past_its_limit_is_refused(tmp_path):
    npy_header = io.BytesIO()
    np.lib.format.write_array_header_1_0(npy_header, {"descr": "|u1", "fortran_order": False, "shape": (64 << 20,)})
    path = tmp_path / "bomb.npz"
    write_deflated_archive(path, {"header.npy": (npy_header.getvalue(), 64 << 20)})
    with time_limit(20), pytest.raises(nncore.ModelFileError, match="header"):
        nncore.load(path)


def test_a_stored_member_with_a_lying_size_reads_only_what_the_header_declares(tmp_path):
    # The central directory says params.npy is 2 GB; the bytes are not there. The reader takes
    # only the bytes the .npy header (checked against the JSON header) declares: the right model.
    data = bytearray(VALID["model"])
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("params.npy")
    # Patch every central-directory record for params.npy: compressed and uncompressed sizes.
    position, patched = 0, 0
    while True:
        position = data.find(b"PK\x01\x02", position)
        if position < 0:
            break
        name_length = int.from_bytes(data[position + 28:position + 30], "little")
        if data[position + 46:position + 46 + name_length] == b"params.npy":
            data[position + 20:position + 28] = (0x7FFFFFF0).to_bytes(4, "little") * 2
            patched += 1
        position += 4
    assert patched == 1 and info.file_size < 0x7FFFFFF0
    path = write(bytes(data), "lying.npz")
    with time_limit(20):
        model = check_model_outcome(path)
    if model is not None:
        assert np.array_equal(model.params, nncore.load(write(VALID["model"], "good.npz")).params)


@pytest.mark.parametrize("missing", ["format", "format_version", "kind", "layer_sizes", "activations", "dtype",
                                     "optimizer", "training", "arrays"])
def test_a_checkpoint_header_missing_any_key_is_refused(tmp_path, missing):
    def drop(header):
        del header[missing]
        return header

    path = tmp_path / "c.npz"
    path.write_bytes(rewrite(VALID["checkpoint"], drop))
    with pytest.raises(nncore.ModelFileError):
        load_checkpoint(path)


@pytest.mark.parametrize("missing", ["seed", "epoch_offset", "epochs_done", "base_lr", "history"])
def test_a_checkpoint_missing_training_state_fails_resume_with_model_file_error(tmp_path, missing):
    def drop(header):
        del header["training"][missing]
        return header

    (tmp_path / "checkpoint.npz").write_bytes(rewrite(VALID["checkpoint"], drop))
    with pytest.raises(nncore.ModelFileError):
        nncore.MLP([5, 4, 3], seed=2).fit(X_SMALL, Y_SMALL, epochs=2, backend="numpy",
                                          checkpoint_dir=tmp_path, resume=True)


def test_a_newer_format_version_says_upgrade(tmp_path):
    path = tmp_path / "new.npz"
    path.write_bytes(rewrite(VALID["model"], lambda h: dict(h, format_version=FORMAT_VERSION + 1)))
    with pytest.raises(nncore.ModelFileError, match="newer"):
        nncore.load(path)


@pytest.mark.parametrize("content", [b"\x00" * 1000, os.urandom(4096), b"PK\x05\x06" + bytes(18),
                                     (b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, "
                                      b"'shape': (3,), }")])
def test_garbage_and_a_bare_npy_are_refused(tmp_path, content):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(nncore.ModelFileError):
        nncore.load(path)
    with pytest.raises(nncore.ModelFileError):
        load_checkpoint(path)




# ---------------------------------------------------------------- strictness and bounds (issue 11 items 4f, 5, 7)

def test_a_duplicated_member_is_refused_instead_of_the_last_one_winning(tmp_path):
    path = tmp_path / "dup.npz"
    with zipfile.ZipFile(io.BytesIO(VALID["model"])) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    zeros = _npy(np.zeros_like(np.load(io.BytesIO(members["params.npy"]))))
    with zipfile.ZipFile(path, "w") as archive, pytest.warns(UserWarning, match="Duplicate name"):
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("params.npy", zeros)
    with pytest.raises(nncore.ModelFileError, match="'params.npy' appears 2 times"):
        nncore.load(path)
    with pytest.raises(nncore.ModelFileError, match="appears 2 times"):
        load_checkpoint(path)


def test_a_header_naming_a_key_twice_is_refused(tmp_path):
    path = tmp_path / "dup-key.npz"
    path.write_bytes(rewrite(VALID["model"], lambda h: json.dumps(h)[:-1].encode() + b', "layer_sizes": [5, 3]}'))
    with pytest.raises(nncore.ModelFileError, match="names 'layer_sizes' twice"):
        nncore.load(path)


@pytest.mark.parametrize("depth", [40, 100_000])
def test_a_deeply_nested_header_is_a_model_file_error_not_a_recursion_error(tmp_path, depth):
    nested = b'{"format": "nncore", "x": ' + b"[" * depth + b"]" * depth + b"}"
    path = tmp_path / "deep.npz"
    path.write_bytes(rewrite(VALID["model"], lambda h: nested))
    with pytest.raises(nncore.ModelFileError, match="nests deeper than"):
        nncore.load(path)


def test_an_integer_too_long_to_convert_is_a_model_file_error(tmp_path):
    path = tmp_path / "digits.npz"
    path.write_bytes(rewrite(VALID["model"], lambda h: b'{"format": "nncore", "format_version": ' + b"9" * 5000 + b"}"))
    with pytest.raises(nncore.ModelFileError, match="not valid JSON"):
        nncore.load(path)


def test_an_archive_with_30000_members_is_refused_in_one_short_line(tmp_path):
    path = tmp_path / "many.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with zipfile.ZipFile(io.BytesIO(VALID["model"])) as valid:
            for name in valid.namelist():
                archive.writestr(name, valid.read(name))
        for index in range(30_000):
            archive.writestr(f"m{index}", b"")
    for read in (nncore.load, load_checkpoint):
        with time_limit(), pytest.raises(nncore.ModelFileError) as raised:
            read(path)
        message = str(raised.value)
        assert "30002 members" in message and len(message) < 300 and "\n" not in message


def test_dozens_of_unexpected_members_are_listed_briefly(tmp_path):
    path = tmp_path / "extra.npz"
    extra = {f"extra{index:03d}.npy": _npy(np.zeros(1)) for index in range(40)}
    path.write_bytes(rewrite(VALID["model"], members=extra))
    with pytest.raises(nncore.ModelFileError, match=r"unexpected members 'extra000.npy', .* and 35 more$"):
        nncore.load(path)


def test_a_huge_string_in_the_header_gives_a_bounded_message(tmp_path):
    path = tmp_path / "long.npz"
    path.write_bytes(rewrite(VALID["model"], lambda h: dict(h, activations=["x" * 500_000] * 2)))
    with pytest.raises(nncore.ModelFileError, match="invalid activations") as raised:
        nncore.load(path)
    assert len(str(raised.value)) < 600


@pytest.mark.parametrize("kind", ["a directory", "a FIFO"])
def test_a_fifo_or_directory_as_a_model_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "model.npz"
    if kind == "a FIFO":
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        os.mkfifo(path)
    else:
        path.mkdir()
    for read in (nncore.load, load_checkpoint):
        with time_limit(), pytest.raises(nncore.ModelFileError, match=f"{path}: is {kind}"):
            read(path)


LOAD_AND_REPORT = """
import sys
import nncore
from nncore.io import load_checkpoint
for read in (nncore.load, load_checkpoint):
    try:
        read(sys.argv[1])
    except nncore.ModelFileError as error:
        print("ModelFileError:", error)
"""


@pytest.mark.skipif(not Path("/dev/zero").exists() or os.uname().sysname != "Linux", reason="Linux /dev/zero")
def test_loading_dev_zero_is_refused_not_read_without_limit():
    # zipfile reads the whole "file" looking for its end record: inside one C call, which no
    # signal interrupts, so the attempt runs in a child with capped memory.
    done = run_limited(LOAD_AND_REPORT, "/dev/zero", seconds=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["ModelFileError: /dev/zero: is a character device, not a regular file"] * 2


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_the_checkpoint_to_resume_from_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "checkpoint.npz")
    with time_limit(), pytest.raises(nncore.ModelFileError, match="is a FIFO"):
        nncore.MLP([5, 4, 3], seed=2).fit(X_SMALL, Y_SMALL, epochs=2, backend="numpy", checkpoint_dir=tmp_path,
                                          resume=True)
