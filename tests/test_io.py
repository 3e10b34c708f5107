"""Model files: round trips, atomic writes, and crafted or damaged files refused with ModelFileError."""
import io
import json
import os
import zipfile

import numpy as np
import pytest

import nncore
from nncore.io import FORMAT_VERSION, load_checkpoint


def _npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def write_archive(path, header, members):
    """A hand-made model file: ``header`` (dict or raw bytes) plus ``members`` name -> .npy bytes."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.npy", _npy(np.frombuffer(raw, dtype=np.uint8)))
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)


def good_header(layer_sizes=(3, 2), dtype="float32", **changes):
    header = {"format": "nncore", "format_version": FORMAT_VERSION, "kind": "model",
              "layer_sizes": list(layer_sizes), "activations": ["relu"] * (len(layer_sizes) - 2), "dtype": dtype,
              "arrays": {"params": {"shape": [8], "dtype": dtype}}}
    header.update(changes)
    return header


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_load_round_trip_keeps_architecture_and_parameters(tmp_path, dtype):
    model = nncore.MLP([6, 5, 4, 3], dtype=dtype, seed=1)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = nncore.load(path)
    assert loaded.layer_sizes == (6, 5, 4, 3) and loaded.dtype == np.dtype(dtype)
    assert loaded.activation == "relu"
    assert np.array_equal(loaded.params, model.params)
    X = np.random.default_rng(0).random((9, 6)).astype(dtype)
    assert np.array_equal(loaded.predict_proba(X, backend="numpy"), model.predict_proba(X, backend="numpy"))


@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", ("tanh", "relu")])
def test_per_layer_activations_are_stored_and_loaded(tmp_path, activation):
    model = nncore.MLP([6, 5, 4, 3], activation=activation, dtype="float64", seed=2)
    model.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    names = [activation] * 2 if isinstance(activation, str) else list(activation)
    assert loaded.network == model.network and list(loaded.network.activation_names) == names
    X = np.random.default_rng(0).random((7, 6))
    np.testing.assert_array_equal(loaded.predict_proba(X, backend="numpy"), model.predict_proba(X, backend="numpy"))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        assert json.loads(data["header"].tobytes())["activations"] == names


def test_version_1_files_which_are_all_relu_still_load(tmp_path):
    params = np.random.default_rng(0).standard_normal(5 * 4 + 4 + 4 * 3 + 3).astype(np.float32)
    header = {"format": "nncore", "format_version": 1, "kind": "model", "layer_sizes": [5, 4, 3], "activation": "relu",
              "dtype": "float32", "arrays": {"params": {"shape": [len(params)], "dtype": "float32"}}}
    write_archive(tmp_path / "v1.npz", header, {"params": _npy(params)})
    loaded = nncore.load(tmp_path / "v1.npz")
    assert loaded.network.activation_names == ("relu",) and np.array_equal(loaded.params, params)


def test_the_file_is_an_npz_numpy_reads_without_pickle(tmp_path):
    model = nncore.MLP([3, 2], seed=0)
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as data:
        header = json.loads(data["header"].tobytes())
        assert header["format_version"] == FORMAT_VERSION and header["layer_sizes"] == [3, 2]
        assert np.array_equal(data["params"], model.params)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "m.npz"
    nncore.MLP([3, 2], seed=0).save(path)
    nncore.MLP([3, 2], seed=1).save(path)  # replaces
    assert os.listdir(tmp_path) == ["m.npz"]
    assert np.array_equal(nncore.load(path).params, nncore.MLP([3, 2], seed=1).params)


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    nncore.MLP([3, 2], seed=0).save(path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        nncore.MLP([3, 2], seed=1).save(path)
    assert os.listdir(tmp_path) == ["m.npz"]
    assert np.array_equal(nncore.load(path).params, nncore.MLP([3, 2], seed=0).params)


class _Exploit:
    """Unpickling this would create a file: the proof that nothing was executed."""

    marker = None

    def __reduce__(self):
        return (open, (str(_Exploit.marker), "w"))


def test_pickled_object_arrays_are_refused_without_executing_anything(tmp_path):
    _Exploit.marker = tmp_path / "pwned"
    payload = np.empty(8, dtype=object)
    payload[:] = [_Exploit()] * 8
    path = tmp_path / "evil.npz"
    write_archive(path, good_header(), {"params": _npy(payload, allow_pickle=True)})
    with pytest.raises(nncore.ModelFileError, match="dtype object"):
        nncore.load(path)
    assert not _Exploit.marker.exists()


def test_a_pickled_header_is_refused(tmp_path):
    path = tmp_path / "evil.npz"
    _Exploit.marker = tmp_path / "pwned"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("header.npy", _npy(np.array([_Exploit()], dtype=object), allow_pickle=True))
    with pytest.raises(nncore.ModelFileError, match="header"):
        nncore.load(path)
    assert not _Exploit.marker.exists()


@pytest.mark.parametrize("header, members, message", [
    (good_header(), {"params": _npy(np.zeros(7, np.float32))}, "shape"),
    (good_header(), {"params": _npy(np.zeros((2, 4), np.float32))}, "shape"),
    (good_header(), {"params": _npy(np.zeros(8, np.float64))}, "dtype"),
    (good_header(), {}, "missing array 'params'"),
    (good_header(), {"params": _npy(np.zeros(8, np.float32)), "extra": _npy(np.zeros(1))}, "unexpected"),
    (good_header(format_version=FORMAT_VERSION + 1), {"params": _npy(np.zeros(8, np.float32))}, "newer"),
    (good_header(format_version="1"), {"params": _npy(np.zeros(8, np.float32))}, "format_version"),
    (good_header(layer_sizes=[100000, 100000, 100000]), {"params": _npy(np.zeros(8, np.float32))},
     "more than"),
    (good_header(layer_sizes=[3]), {"params": _npy(np.zeros(8, np.float32))}, "layer_sizes"),
    (good_header(layer_sizes=[3, -2]), {"params": _npy(np.zeros(8, np.float32))}, "layer_sizes"),
    (good_header(layer_sizes=[3, 2.5]), {"params": _npy(np.zeros(8, np.float32))}, "layer_sizes"),
    (good_header(activations=["sigmoid"]), {"params": _npy(np.zeros(8, np.float32))}, "activations"),
    (good_header(activations=None), {"params": _npy(np.zeros(8, np.float32))}, "activations"),
    (good_header(format_version=1, activation="tanh"), {"params": _npy(np.zeros(8, np.float32))}, "activation"),
    (good_header(dtype="int64"), {"params": _npy(np.zeros(8, np.int64))}, "dtype"),
    (good_header(format="other"), {"params": _npy(np.zeros(8, np.float32))}, "format name"),
    (good_header(kind="virus"), {"params": _npy(np.zeros(8, np.float32))}, "kind"),
    (b"{not json", {"params": _npy(np.zeros(8, np.float32))}, "JSON"),
    (good_header(), {"params": _npy(np.full(8, np.nan, np.float32))}, "NaN"),
])
def test_crafted_files_are_refused_with_a_clear_message(tmp_path, header, members, message):
    path = tmp_path / "bad.npz"
    write_archive(path, header, members)
    with pytest.raises(nncore.ModelFileError, match=message) as caught:
        nncore.load(path)
    assert str(path) in str(caught.value)


def test_a_huge_declared_npy_shape_is_refused_before_allocating(tmp_path):
    # The .npy header of params claims 10**12 elements; the bytes are not there.
    fake = _npy(np.zeros(8, np.float32)).replace(b"(8,)", b"(1000000000000,)")
    path = tmp_path / "bad.npz"
    write_archive(path, good_header(), {"params": fake})
    with pytest.raises(nncore.ModelFileError, match="shape"):
        nncore.load(path)


def test_truncated_arrays_are_refused(tmp_path):
    path = tmp_path / "bad.npz"
    write_archive(path, good_header(), {"params": _npy(np.zeros(8, np.float32))[:-5]})
    with pytest.raises(nncore.ModelFileError, match="truncated"):
        nncore.load(path)


@pytest.mark.parametrize("content", [b"", b"hello, not a zip", b"PK\x03\x04garbage"])
def test_files_that_are_not_archives_are_refused(tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(nncore.ModelFileError, match="not"):
        nncore.load(path)


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(nncore.ModelFileError, match="no such file"):
        nncore.load(tmp_path / "absent.npz")
    with pytest.raises(nncore.ModelFileError, match="directory"):
        nncore.load(tmp_path)


def test_a_model_file_is_not_a_checkpoint(tmp_path):
    nncore.MLP([3, 2], seed=0).save(tmp_path / "m.npz")
    with pytest.raises(nncore.ModelFileError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "m.npz")


def test_a_checkpoint_loads_as_its_model(tmp_path):
    X = np.random.default_rng(0).random((40, 3)).astype(np.float32)
    y = (X[:, 0] > 0.5).astype(int)
    model = nncore.MLP([3, 4, 2], seed=0)
    model.fit(X, y, epochs=2, backend="numpy", checkpoint_dir=tmp_path)
    loaded = nncore.load(tmp_path / "checkpoint.npz")
    assert np.array_equal(loaded.params, model.params)
    checkpoint = load_checkpoint(tmp_path / "checkpoint.npz")
    assert checkpoint["header"]["training"]["epochs_done"] == 2
    assert set(checkpoint["optimizer_state"]["buffers"]) == {"m", "v"}
