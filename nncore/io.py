"""Model and checkpoint files: a safe, versioned ``.npz`` format, written atomically.

A file is an uncompressed zip of ``.npy`` members, as ``numpy.savez`` writes, holding:

- ``header.npy``: the UTF-8 bytes of a JSON object (uint8, at most ``MAX_HEADER_BYTES``):
  ``format`` ("nncore"), ``format_version``, ``kind`` ("model" or "checkpoint"),
  ``layer_sizes``, ``activations`` (one name per hidden layer; version 1 files have
  ``activation``: "relu" instead), ``dropout`` (one rate per hidden layer; files without it
  have none), ``input_dropout`` (one rate; files without it have none), ``dtype``, ``arrays`` (each member's shape and dtype),
  for model files ``epochs_trained`` (files without it: 0), optionally ``data`` (what the model remembers of its data: see ``nncore.model_data``), and
  for checkpoints the optimizer's kind, hyperparameters and step count and the training
  state (``nncore.checkpoint``: epoch counters, seed, base learning rate, the run's settings,
  how its history ended);
- ``params.npy``: the flat parameter buffer (see ``nncore.network``);
- in checkpoints, ``optimizer.<name>.npy`` for each optimizer state buffer and optionally
  ``best_params.npy`` (early stopping's best weights).

Model files are format version 2 (version 1, all ReLU, is still read). Checkpoints are
version 4: their history is a ``HistoryLog`` file beside them, named in the header with the
first epoch it holds and a digest chained over its records, so a checkpoint's size and cost do
not grow with the epochs and a log of another run is recognised; version 3 (no digest) and
version 2 checkpoints, which hold the history in the header, are still read. A log that is
missing, damaged or another run's is a ``HistoryLogError``: the checkpoint's parameters and
optimizer state are intact, and ``load_checkpoint(path, history_optional=True)`` returns them.

Reading never unpickles and never trusts a size it has not checked: every member's ``.npy``
header is parsed by hand, its dtype must be a plain float or uint8 (never object), and its
shape must equal the one the header's layer sizes imply, before its bytes are read. Only a
regular file is opened (a FIFO or ``/dev/zero`` is refused, not read forever); the zip's
central directory is bounded before ``zipfile`` parses it, a member name may appear only
once (no "last one wins"), and the JSON header may name a key only once and nest only
``MAX_HEADER_DEPTH`` deep. Anything else raises ``ModelFileError`` naming the file and the
problem, in one line of bounded length.

Writing goes to a temporary file in the destination's directory, is fsynced, then renamed
over the destination (``os.replace``), so a reader (or a resumed run) sees the old file or the
new one, never half of one. The writer refuses what the reader would refuse (non-finite
parameters, an invalid training state, a header over the size or nesting limits), so a file
nncore wrote always loads; a write that fails names the destination, not the temporary file.
"""
import collections
import io
import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._atomic import atomic_open
from ._output_paths import output_path
from ._reading import open_regular_file
from .activations import ACTIVATIONS
from .checkpoint import MAX_EPOCHS, check_training_state
from .errors import HistoryLogError, ModelFileError
from .history import History, chain_digest, check_records, read_log
from .model_data import checked_data, data_header
from .network import MAX_PARAMETERS, Network
from .optim import OPTIMIZERS

FORMAT_NAME = "nncore"
#: Model files: 2 stores each hidden layer's activation; 1 (all ReLU) is still read.
MODEL_FORMAT_VERSION = FORMAT_VERSION = 2
#: Checkpoints: 4 records which epochs the history log beside them holds and their digest; 3 (no digest)
#: and 2 (the history in the header) are still read.
CHECKPOINT_FORMAT_VERSION = 4
NEWEST_VERSION = {"model": MODEL_FORMAT_VERSION, "checkpoint": CHECKPOINT_FORMAT_VERSION}
MAX_HEADER_BYTES = 1 << 20
DTYPES = ("float32", "float64")
OPTIMIZER_BUFFERS = {kind: cls.buffer_names for kind, cls in OPTIMIZERS.items()}
#: More members than any nncore file holds, and a central directory that could list them:
#: zipfile parses the whole directory on open, so it is bounded before that.
MAX_MEMBERS = 64
MAX_CENTRAL_DIRECTORY_BYTES = 1 << 20
#: The header's JSON nests 3-4 levels; deeper is crafted (and Python's parser recurses).
MAX_HEADER_DEPTH = 32
# Messages quote what the file says; this keeps a crafted field from making a 1 MB line.
_MAX_PROBLEM_CHARACTERS = 400
_LISTED_MEMBERS = 5
# What zipfile raises on a damaged or crafted archive: besides BadZipFile, NotImplementedError
# (unknown compression method or zip version), RuntimeError (encrypted member), zlib.error.
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, RuntimeError,
               zlib.error)


# ---------------------------------------------------------------- writing

def _npy_bytes(array):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_npz_atomic(path, header, arrays, streams=False):
    """Write ``header`` (a JSON-able dict) and ``arrays`` (name -> ndarray) to ``path`` atomically.

    Refuses (ValueError) a header the reader would refuse: over ``MAX_HEADER_BYTES``, nested
    deeper than ``MAX_HEADER_DEPTH``, holding NaN or infinity, or more than ``MAX_MEMBERS``
    members. An OSError while writing is an ``OutputPathError`` naming ``path``. ``streams``:
    a device or pipe at ``path`` (``/dev/stdout``) is written through (``nncore._atomic``).
    """
    path = output_path(path)
    header = dict(header, arrays={name: {"shape": list(a.shape), "dtype": a.dtype.name}
                                  for name, a in arrays.items()})
    try:
        header_bytes = json.dumps(header, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise ValueError(f"refusing to write {path}: its header is not plain JSON ({error})") from None
    if len(header_bytes) > MAX_HEADER_BYTES or _nesting_depth(header) > MAX_HEADER_DEPTH or \
            len(arrays) + 1 > MAX_MEMBERS:
        raise ValueError(f"refusing to write {path}: its header ({len(header_bytes)} bytes, {len(arrays) + 1} "
                         f"members) exceeds what nncore reads back ({MAX_HEADER_BYTES} bytes, "
                         f"{MAX_HEADER_DEPTH} levels, {MAX_MEMBERS} members)")
    # The temporary name matches the leftovers ModelCheckpoint removes (".checkpoint.npz.*.tmp").
    with atomic_open(path, prefix=f".{path.name}.", suffix=".tmp", streams=streams) as stream:
        with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("header.npy", _npy_bytes(np.frombuffer(header_bytes, dtype=np.uint8)))
            for name, array in arrays.items():
                archive.writestr(f"{name}.npy", _npy_bytes(array))


def network_header(network, kind="model"):
    return {"format": FORMAT_NAME, "format_version": NEWEST_VERSION[kind], "kind": kind,
            "layer_sizes": list(network.layer_sizes), "activations": list(network.activation_names),
            "dropout": list(network.dropout), "input_dropout": network.input_dropout, "dtype": network.dtype.name}


def model_header(model, path, kind="model"):
    """The header of ``model``'s file at ``path``; ValueError, naming ``path``, for data fields the reader refuses."""
    header = network_header(model.network, kind)
    try:
        data = data_header(model)  # what the model remembers of its data (nncore.model_data)
    except ValueError as error:
        raise ValueError(f"refusing to write {path}: {error}") from None
    if data:
        header["data"] = data
    if kind == "model":  # a checkpoint's training state counts its epochs
        header["epochs_trained"] = model.epochs_trained
        problem = _epochs_trained_problem(model.epochs_trained)
        if problem:
            raise ValueError(f"refusing to write {path}: the model's {problem}")
    return header


def _epochs_trained_problem(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_EPOCHS:
        return f"epochs_trained must be an integer in [0, {MAX_EPOCHS}], got {value!r:.60}"
    return None


def save_model(model, path):
    """Save ``model``'s network, parameters and data fields to ``path`` (written exactly there, atomically)."""
    if not np.all(np.isfinite(model.params)):
        raise ValueError(f"refusing to write {path}: the parameters contain NaN or infinity")
    write_npz_atomic(path, model_header(model, path), {"params": model.params}, streams=True)


def save_checkpoint(path, model, optimizer, training_state, best_params=None):
    """Save parameters, optimizer state and ``training_state`` (a ``nncore.checkpoint.TrainingState``)
    to ``path``; its history log must already hold the epochs it counts. Raises ValueError, before
    writing anything, if ``load_checkpoint`` would refuse the result."""
    path = Path(path)
    header = model_header(model, path, kind="checkpoint")
    header["optimizer"] = {"kind": optimizer.kind, "step": optimizer.step,
                           "hyperparameters": optimizer.hyperparameters()}
    header["training"] = training_state.to_header()
    header = json.loads(json.dumps(header))  # what the reader will see: tuples as lists

    def refuse(problem):
        raise ValueError(f"refusing to write checkpoint {path}: {problem}")

    buffers = optimizer.state_buffers()
    _check_checkpoint(header, CHECKPOINT_FORMAT_VERSION, model.params, buffers, best_params, refuse)
    arrays = {"params": model.params, **{f"optimizer.{name}": buffer for name, buffer in buffers.items()}}
    if best_params is not None:
        arrays["best_params"] = best_params
    write_npz_atomic(path, header, arrays)


def _check_checkpoint(header, version, params, buffers, best_params, fail):
    """What a checkpoint must satisfy, on reading and (before it is written) on writing.

    Returns (TrainingState, the optimizer's state dict).
    """
    optimizer = header.get("optimizer")
    if not isinstance(optimizer, dict) or not isinstance(optimizer.get("kind"), str) or optimizer["kind"] not in OPTIMIZERS:
        fail("invalid optimizer state in the header")
    training = check_training_state(header.get("training"), version, fail)
    state = {"kind": optimizer["kind"], "step": optimizer.get("step"),
             "hyperparameters": optimizer.get("hyperparameters"), "buffers": buffers}
    try:
        OPTIMIZERS[state["kind"]]().check_state_dict(state)
    except (TypeError, ValueError) as error:
        fail(f"invalid optimizer state ({error})")
    if state["step"] < training.epochs_done:
        fail(f"optimizer step {state['step']} is less than the {training.epochs_done} epochs done")
    for name, array in (("params", params), ("best_params", best_params)):
        if array is not None and not np.all(np.isfinite(array)):
            fail(f"{name} contain NaN or infinity")
    return training, state


# ---------------------------------------------------------------- reading

class _Reader:
    """Reads one nncore file, checking everything before trusting it."""

    def __init__(self, path):
        self.path = Path(path)

    def fail(self, problem):
        if len(problem) > _MAX_PROBLEM_CHARACTERS:
            problem = problem[:_MAX_PROBLEM_CHARACTERS] + f"... ({len(problem)} characters)"
        raise ModelFileError(f"{self.path}: {problem}")

    def open(self):
        try:
            self.stream = open_regular_file(self.path, ModelFileError)
        except FileNotFoundError:
            raise ModelFileError(f"{self.path}: no such file") from None
        try:
            _check_central_directory_size(self.stream, self)
            self.archive = zipfile.ZipFile(self.stream)
        except ModelFileError:
            self.stream.close()
            raise
        except _ZIP_ERRORS as error:
            self.stream.close()
            self.fail(f"not an nncore model file (not a valid .npz archive: {error})")
        except BaseException:
            self.stream.close()
            raise
        infos = self.archive.infolist()
        self.members = {info.filename: info for info in infos}
        if len(self.members) != len(infos):
            self.close()
            name, count = collections.Counter(info.filename for info in infos).most_common(1)[0]
            self.fail(f"member {name!r} appears {count} times; a model file holds each array once")
        if len(infos) > MAX_MEMBERS:
            self.close()
            self.fail(f"holds {len(infos)} members; an nncore file has at most {MAX_MEMBERS}")
        return self

    def close(self):
        self.archive.close()
        self.stream.close()

    def check_stored(self, name, info):
        # nncore writes stored (uncompressed) members: a compressed one could be a zip bomb,
        # an encrypted one cannot be read.
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            self.fail(f"array {name!r} is compressed or encrypted; nncore writes it uncompressed")

    def read_member(self, name, shape, dtype):
        """The array stored as ``name``.npy, which must have exactly ``shape`` and ``dtype``."""
        info = self.members.get(f"{name}.npy")
        if info is None:
            self.fail(f"missing array {name!r}")
        self.check_stored(name, info)
        expected_bytes = math.prod(shape) * np.dtype(dtype).itemsize
        try:
            with self.archive.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                if version == (1, 0):
                    stored_shape, fortran, stored_dtype = np.lib.format.read_array_header_1_0(stream)
                elif version == (2, 0):
                    stored_shape, fortran, stored_dtype = np.lib.format.read_array_header_2_0(stream)
                else:
                    self.fail(f"array {name!r} has an unsupported .npy version {version}")
                if stored_dtype.hasobject or stored_dtype != np.dtype(dtype):
                    self.fail(f"array {name!r} has dtype {stored_dtype}, expected {np.dtype(dtype)}")
                if tuple(stored_shape) != tuple(shape):
                    self.fail(f"array {name!r} has shape {tuple(stored_shape)}, "
                              f"expected {tuple(shape)} from the header")
                if fortran and len(shape) > 1:
                    self.fail(f"array {name!r} is in Fortran order; nncore writes C order")
                data = stream.read(expected_bytes)
        except ModelFileError:
            raise
        except _ZIP_ERRORS as error:
            self.fail(f"array {name!r} is corrupt ({error})")
        if len(data) != expected_bytes:
            self.fail(f"array {name!r} is truncated ({len(data)} of {expected_bytes} bytes)")
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()

    def header(self):
        info = self.members.get("header.npy")
        if info is None:
            self.fail("not an nncore model file (no header)")
        if info.file_size > MAX_HEADER_BYTES + 256:
            self.fail(f"header is too large ({info.file_size} bytes)")
        self.check_stored("header", info)
        try:
            with self.archive.open(info) as stream:
                version = np.lib.format.read_magic(stream)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = reader(stream)
        except _ZIP_ERRORS as error:
            self.fail(f"header is corrupt ({error})")
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_HEADER_BYTES:
            self.fail("header is not a JSON byte string")
        raw = self.read_member("header", shape, np.uint8).tobytes()
        header = self.parse_json(raw)
        if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
            self.fail("not an nncore model file (wrong format name)")
        return header


    def parse_json(self, raw):
        """The header's JSON: keys unique at every level, nesting bounded."""
        try:
            header = json.loads(raw.decode("utf-8"), object_pairs_hook=_object_with_unique_keys)
        except RecursionError:
            self.fail(f"header nests deeper than {MAX_HEADER_DEPTH} levels")
        except _DuplicateKey as error:
            self.fail(f"header names {error.args[0]!r} twice in one object; which one is meant?")
        except ValueError as error:
            # JSONDecodeError and UnicodeDecodeError are ValueErrors; so is an integer
            # literal longer than Python converts (4,300 digits).
            self.fail(f"header is not valid JSON ({error})")
        if _nesting_depth(header) > MAX_HEADER_DEPTH:
            self.fail(f"header nests deeper than {MAX_HEADER_DEPTH} levels")
        return header


class _DuplicateKey(ValueError):
    pass


def _object_with_unique_keys(pairs):
    keys = collections.Counter(key for key, _ in pairs)
    if len(keys) != len(pairs):
        raise _DuplicateKey(keys.most_common(1)[0][0])
    return dict(pairs)


def _nesting_depth(value):
    """Levels of lists and objects in ``value``: 0 for a scalar, 2 for {"a": [1]}; no recursion."""
    depth, containers = 0, [value] if isinstance(value, (dict, list)) else []
    while containers:
        depth += 1
        children = [child for item in containers
                    for child in (item.values() if isinstance(item, dict) else item)]
        containers = [child for child in children if isinstance(child, (dict, list))]
    return depth


_END_RECORD = struct.Struct("<4s4H2LH")  # signature, disks, entries, directory size/offset, comment
_ZIP64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 end record, disks
_ZIP64_END_RECORD = struct.Struct("<4sQ2H2L4Q")  # ..., entries, directory size, directory offset


def _check_central_directory_size(stream, reader):
    """Refuse a central directory larger than any nncore file's before zipfile reads it.

    Finds the end record as zipfile does (at the very end, else the last one within the
    comment-length window) and, for zip64 archives, the zip64 end record it points to.
    Anything it cannot find is left to zipfile, which refuses it.
    """
    size = os.fstat(stream.fileno()).st_size
    tail_size = min(size, _END_RECORD.size + 0xFFFF)
    stream.seek(size - tail_size)
    tail = stream.read(tail_size)
    position = len(tail) - _END_RECORD.size
    if position < 0:
        return
    if tail[position:position + 4] != b"PK\x05\x06":
        position = tail.rfind(b"PK\x05\x06")
        if position < 0 or position + _END_RECORD.size > len(tail):
            return
    entries, directory_size = _END_RECORD.unpack_from(tail, position)[4:6]
    locator_position = position - _ZIP64_LOCATOR.size
    if (entries == 0xFFFF or directory_size == 0xFFFFFFFF) and locator_position >= 0:
        signature, _, zip64_offset, _ = _ZIP64_LOCATOR.unpack_from(tail, locator_position)
        if signature == b"PK\x06\x07" and zip64_offset + _ZIP64_END_RECORD.size <= size:
            stream.seek(zip64_offset)
            record = stream.read(_ZIP64_END_RECORD.size)
            if record[:4] == b"PK\x06\x06":
                entries, directory_size = _ZIP64_END_RECORD.unpack(record)[7:9]
    if entries > MAX_MEMBERS or directory_size > MAX_CENTRAL_DIRECTORY_BYTES:
        reader.fail(f"its zip directory lists {entries} members in {directory_size} bytes; "
                    f"an nncore file has at most {MAX_MEMBERS} members")
    stream.seek(0)


def _check_header(reader, header):
    """Validate the architecture fields; return (Network, kind, format version)."""
    version = header.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        reader.fail(f"invalid format_version {version!r}")
    kind = header.get("kind")
    if not isinstance(kind, str) or kind not in NEWEST_VERSION:
        reader.fail(f"unknown kind {kind!r}")
    if version > NEWEST_VERSION[kind]:
        reader.fail(f"format version {version} is newer than this nncore reads for a {kind} "
                    f"({NEWEST_VERSION[kind]}); upgrade nncore")
    sizes = header.get("layer_sizes")
    if (not isinstance(sizes, list) or len(sizes) < 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_PARAMETERS
                       for s in sizes)):
        reader.fail(f"invalid layer_sizes {sizes!r}")
    if version == 1:
        if header.get("activation") != "relu":
            reader.fail(f"unsupported activation {header.get('activation')!r}")
        activations = ["relu"] * (len(sizes) - 2)
    else:
        activations = header.get("activations")
        if (not isinstance(activations, list) or len(activations) != len(sizes) - 2
                or not all(isinstance(name, str) and name in ACTIVATIONS for name in activations)):
            reader.fail(f"invalid activations {activations!r} for {len(sizes) - 2} hidden layers "
                        f"(each one of {tuple(ACTIVATIONS)})")
    if header.get("dtype") not in DTYPES:
        reader.fail(f"unsupported dtype {header.get('dtype')!r}")
    dropout = header.get("dropout", [0.0] * (len(sizes) - 2))
    if not isinstance(dropout, list) or not all(type(rate) in (int, float) for rate in dropout):
        reader.fail(f"invalid dropout {dropout!r}: one rate per hidden layer")
    input_dropout = header.get("input_dropout", 0.0)
    if type(input_dropout) not in (int, float):
        reader.fail(f"invalid input_dropout {input_dropout!r}: one rate")
    try:
        network = Network(sizes, activations, header["dtype"], dropout, input_dropout)
    except ValueError as error:  # sizes, activations and dtype passed above: a rate did not
        reader.fail(f"invalid dropout {dropout!r} or input_dropout {input_dropout!r}: {error}")
    if network.n_params > MAX_PARAMETERS:
        reader.fail(f"layer_sizes {sizes} declare {network.n_params} parameters, "
                    f"more than the {MAX_PARAMETERS} nncore loads")
    return network, kind, version


def _known_members(reader, allowed):
    unknown = sorted(set(reader.members) - {f"{name}.npy" for name in allowed})
    if unknown:
        listed = ", ".join(repr(name[:80]) for name in unknown[:_LISTED_MEMBERS])
        more = f" and {len(unknown) - _LISTED_MEMBERS} more" if len(unknown) > _LISTED_MEMBERS else ""
        reader.fail(f"unexpected members {listed}{more}")


def read_model(path):
    """(Network, params, fields) of a model file (or of the model inside a checkpoint) saved by ``MLP.save``.

    ``fields``: the model's attributes the file records: those of ``nncore.model_data.DATA_FIELDS``
    it holds, and ``epochs_trained`` (a checkpoint's epochs; 0 for model files older than the field).
    Raises ``ModelFileError`` if the file is missing, corrupt, crafted or from a newer nncore.
    ``nncore.load`` builds the ``MLP``.
    """
    reader = _Reader(path).open()
    try:
        header = reader.header()
        network, kind, version = _check_header(reader, header)
        data = checked_data(header.get("data", {}), network, reader.fail)
        if kind == "model":
            _known_members(reader, {"header", "params"})
            data["epochs_trained"] = header.get("epochs_trained", 0)
            problem = _epochs_trained_problem(data["epochs_trained"])
            if problem:
                reader.fail(problem)
        else:
            training = check_training_state(header.get("training"), version, reader.fail)
            data["epochs_trained"] = training.epoch_offset + training.epochs_done
        params = reader.read_member("params", (network.n_params,), network.dtype)
    finally:
        reader.close()
    if not np.all(np.isfinite(params)):
        raise ModelFileError(f"{path}: parameters contain NaN or infinity")
    return network, params, data


def load_checkpoint(path, history_optional=False):
    """Read a checkpoint and its history log, checking every field (see ``nncore.checkpoint``).

    Returns a dict: ``header``, ``network``, ``params``, ``optimizer_state`` (as ``state_dict``
    gives it), ``best_params`` (or None), ``training`` (a ``TrainingState``), ``history`` and
    ``history_problem`` (None). Raises ``ModelFileError`` naming the file and the problem; for a
    history log that is missing, damaged or another run's, ``HistoryLogError``, unless
    ``history_optional``: then ``history`` is None and ``history_problem`` says why.
    """
    path = Path(path)
    reader = _Reader(path).open()
    try:
        header = reader.header()
        network, kind, version = _check_header(reader, header)
        if kind != "checkpoint":
            reader.fail("is a model file, not a checkpoint")
        checked_data(header.get("data", {}), network, reader.fail)  # as nncore.load checks them
        optimizer = header.get("optimizer")
        if (not isinstance(optimizer, dict) or not isinstance(optimizer.get("kind"), str)
                or optimizer["kind"] not in OPTIMIZER_BUFFERS):
            reader.fail("invalid optimizer state in the header")
        declared = header.get("arrays")
        if not isinstance(declared, dict):
            reader.fail("missing array list in the header")
        n, dtype = network.n_params, network.dtype
        buffer_names = [name for name in OPTIMIZER_BUFFERS[optimizer["kind"]] if f"optimizer.{name}" in declared]
        _known_members(reader, {"header", "params", "best_params"} | {f"optimizer.{name}" for name in buffer_names})
        params = reader.read_member("params", (n,), dtype)
        buffers = {name: reader.read_member(f"optimizer.{name}", (n,), dtype) for name in buffer_names}
        best = reader.read_member("best_params", (n,), dtype) if "best_params" in declared else None
    finally:
        reader.close()
    training, optimizer_state = _check_checkpoint(header, version, params, buffers, best, reader.fail)
    history, problem = None, None
    try:
        history = _checkpoint_history(reader, training)
    except HistoryLogError as error:
        if not history_optional:
            raise
        problem = error.problem
    return {"header": header, "network": network, "params": params, "optimizer_state": optimizer_state,
            "best_params": best, "training": training, "history": history, "history_problem": problem}


def _checkpoint_history(reader, training):
    """The run's History: from the header (version 2) or the log beside the checkpoint, checked
    (HistoryLogError for a log that is missing, damaged or does not hold the epochs the checkpoint counts)."""
    if training.legacy_history is not None:
        history = training.legacy_history
    else:
        def lost(problem):
            raise HistoryLogError(f"{reader.path}: {problem}; its parameters and optimizer state are intact: "
                                  "resuming (resume=True, nncore train --resume) continues from them without the "
                                  "history of those epochs", problem=f"{reader.path}: {problem}")

        records = read_log(reader.path.parent / training.log, training.logged_epochs, lost)
        problem = check_records(records, training.first_logged_epoch, training.has_validation)
        if problem:
            lost(f"invalid history ({problem})")
        if training.log_digest is not None and chain_digest(records).hex() != training.log_digest:
            lost(f"its history log {training.log} does not hold the epochs this checkpoint counts "
                 "(a log of another run, or an edited one)")
        history = History.from_records(records, training.has_validation)
    history.stopped_early, history.best_epoch = training.stopped_early, training.best_epoch
    return history
