"""History: the per-epoch record of a training run, as ``fit`` returns it and checkpoints keep it.

Checkpoints keep it outside their JSON header, as fixed-size binary records (``RECORD``) in an
append-only file beside the checkpoint (``HistoryLog``): writing an epoch costs the same at
epoch 20,000 as at epoch 1, and a header never grows past what the reader accepts. Every
record is checked the same way when it is written and when it is read (``check_records``).
The checkpoint also records a digest chained over the records it counts (``chain_digest``),
O(1) to extend per epoch, so a log copied from another run, or edited, is recognised.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import stat
import tempfile
from collections.abc import Mapping
from typing import Any
from pathlib import Path

import numpy as np

from ._reading import open_regular_file
from .errors import ModelFileError, OutputPathError

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds", "lr")
#: One epoch on disk; NaN stands for a missing validation value (None in History).
RECORD = np.dtype([("epoch", "<i8")] + [(key, "<f8") for key in HISTORY_KEYS])
LOG_MAGIC = b"NNCORE-HISTORY-1"
#: What a log's name must look like: a plain file name in the checkpoint's own directory.
LOG_NAME = re.compile(r"history-[A-Za-z0-9_]{1,64}\.bin")
#: The digest of no records; each record extends it: digest(n + 1) = BLAKE2b(digest(n) + record n).
EMPTY_DIGEST = bytes(16)


def chain_digest(records, digest=EMPTY_DIGEST):
    """The digest chained over ``records`` (a RECORD array) from ``digest``, as bytes."""
    for record in records:
        digest = hashlib.blake2b(digest + record.tobytes(), digest_size=16).digest()
    return digest


class History:
    """Per-epoch records of one ``fit`` call (or of a run resumed from a checkpoint).

    Lists of equal length: ``epoch`` (1-based, counted over the model's whole training),
    ``loss`` and ``accuracy`` (training, measured during the epoch before each batch's
    update), ``val_loss`` and ``val_accuracy`` (None without validation data; inf and NaN
    when the network's outputs on it were not finite), ``seconds`` (wall time of the epoch, validation
    included) and ``lr``. ``history`` is the same as a dict, as Keras has it. ``interrupted``
    says Ctrl-C ended the run; ``stopped_early`` that early stopping did, and ``best_epoch``
    which epoch it kept.
    """

    # The per-epoch lists, set from HISTORY_KEYS in __init__; declared here for type checkers.
    loss: list[float]
    accuracy: list[float]
    val_loss: list[float | None]
    val_accuracy: list[float | None]
    seconds: list[float]
    lr: list[float]

    def __init__(self) -> None:
        self.epoch: list[int] = []
        for key in HISTORY_KEYS:
            setattr(self, key, [])
        self.interrupted = False
        self.stopped_early = False
        self.best_epoch: int | None = None

    def append(self, epoch: int, logs: Mapping[str, float | None]) -> None:
        self.epoch.append(int(epoch))
        for key in HISTORY_KEYS:
            value = logs.get(key)
            getattr(self, key).append(None if value is None else float(value))

    @property
    def history(self) -> dict[str, list]:
        return {"epoch": list(self.epoch), **{key: list(getattr(self, key)) for key in HISTORY_KEYS}}

    @property
    def has_validation(self) -> bool:
        return any(value is not None for value in self.val_loss)

    def to_dict(self) -> dict[str, object]:
        return {**self.history, "interrupted": self.interrupted, "stopped_early": self.stopped_early,
                "best_epoch": self.best_epoch}

    def records(self, start: int = 0) -> np.ndarray:
        """Epochs ``start``.. as a ``RECORD`` array (None becomes NaN)."""
        records = np.zeros(len(self) - start, dtype=RECORD)
        records["epoch"] = self.epoch[start:]
        for key in HISTORY_KEYS:
            records[key] = [math.nan if value is None else value for value in getattr(self, key)[start:]]
        return records

    @classmethod
    def from_records(cls, records: np.ndarray, has_validation: bool) -> History:
        """A History of checked ``records`` (see ``check_records``); NaN validation values are None without validation."""
        history = cls()
        history.epoch = records["epoch"].tolist()
        for key in HISTORY_KEYS:
            values = records[key].tolist()
            if key.startswith("val_") and not has_validation:
                values = [None] * len(values)
            setattr(history, key, values)
        return history

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], first_epoch: int | None = None) -> History:
        """The History ``to_dict`` described (as version 2 checkpoints store it), checked strictly."""
        try:
            n = len(data["epoch"])
            records = np.zeros(n, dtype=RECORD)
            records["epoch"] = [_integer(value, "epoch") for value in data["epoch"]]
            for key in HISTORY_KEYS:
                values = data[key]
                if not isinstance(values, list) or len(values) != n:
                    raise ValueError(f"{key} has {len(values) if isinstance(values, list) else 'no'} entries "
                                     f"for {n} epochs")
                records[key] = [_number(value, key, allow_none=key.startswith("val_")) for value in values]
            has_validation = any(value is not None for value in data["val_loss"])
            if has_validation:  # version 2 wrote NaN where the outputs were not finite; now inf
                records["val_loss"][np.isnan(records["val_loss"])] = math.inf
            flags = {name: data.get(name, False) for name in ("interrupted", "stopped_early")}
            if not all(isinstance(value, bool) for value in flags.values()):
                raise ValueError(f"interrupted and stopped_early must be true or false, got {flags}")
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"invalid history in checkpoint ({error})") from None
        problem = check_records(records, records["epoch"][0] if first_epoch is None and n else first_epoch,
                                has_validation)
        if problem:
            raise ModelFileError(f"invalid history in checkpoint ({problem})")
        history = cls.from_records(records, has_validation)
        history.interrupted, history.stopped_early = flags["interrupted"], flags["stopped_early"]
        history.best_epoch = data.get("best_epoch")
        return history

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        last = f", last={self.last()}" if self.epoch else ""
        return f"History(epochs={len(self)}{last})"

    def last(self) -> dict[str, float | None]:
        """The last epoch's record as a dict."""
        return {"epoch": self.epoch[-1], **{key: getattr(self, key)[-1] for key in HISTORY_KEYS}}


def _integer(value, name):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} holds {value!r}, not an integer")
    return value


def _number(value, name, allow_none=False):
    if value is None and allow_none:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} holds {value!r}, not a number")
    return float(value)


def check_records(records, first_epoch, has_validation):
    """What is wrong with ``records`` (a RECORD array) as epochs first_epoch.. of a run, or None.

    Losses, seconds and rates are finite and >= 0, accuracies in [0, 1]; validation values
    are NaN without validation, and with it a loss >= 0 (inf where the outputs were not
    finite, never NaN: a NaN loss would be a record of a run without validation) and an
    accuracy in [0, 1] or NaN (outputs that were not finite).
    """
    if not len(records):
        return None
    if not np.array_equal(records["epoch"], np.arange(first_epoch, first_epoch + len(records))):
        return f"epochs are not numbered {first_epoch}..{first_epoch + len(records) - 1}"
    for key, low, high in (("loss", 0, math.inf), ("accuracy", 0, 1), ("seconds", 0, math.inf),
                           ("lr", 0, math.inf)):
        values = records[key]
        ok = np.isfinite(values) & (values >= low) & (values <= high)
        if not np.all(ok):
            return f"{key} holds {_first_bad(values, ok)}, outside [{low}, {high}]"
    for key, high in (("val_loss", math.inf), ("val_accuracy", 1)):
        values = records[key]
        missing = np.isnan(values)
        if not has_validation and not np.all(missing):
            return f"{key} holds values although the run had no validation data"
        ok = (values >= 0) & (values <= high) | (missing if key == "val_accuracy" else False)
        if has_validation and not np.all(ok):
            return f"{key} holds {_first_bad(values, ok)}, outside [0, {high}]"
    return None


def _first_bad(values, ok):
    return repr(float(values[~ok][0]))


class HistoryLog:
    """One run's history as an append-only file of ``RECORD``s beside its checkpoint.

    The checkpoint names the log and says how many of its records are valid, so a record
    written for an epoch whose checkpoint never got written (a kill in between) is ignored
    and overwritten. Each write is fsynced before the checkpoint that counts it is renamed
    into place.
    """

    def __init__(self, path, stream):
        self.path, self.stream = Path(path), stream
        self._digests = [EMPTY_DIGEST]  # _digests[n]: the chain over the first n records

    @classmethod
    def create(cls, directory):
        try:
            descriptor, name = tempfile.mkstemp(dir=directory, prefix="history-", suffix=".bin")
        except OSError as error:
            raise OutputPathError(f"{directory}: cannot write a history log there ({error.strerror or error})") from None
        stream = os.fdopen(descriptor, "r+b")
        if hasattr(os, "fchmod"):
            os.fchmod(descriptor, 0o644)  # like the checkpoint beside it, not mkstemp's 0600
        log = cls(name, stream)
        log._written(lambda: stream.write(LOG_MAGIC))
        return log

    @classmethod
    def reopen(cls, path, n_records=0):
        """The log at ``path``, whose first ``n_records`` records ``read_log`` found valid, to write on after them.

        Opened without following a link: a log planted as a link to another file is not written into.
        """
        flags = os.O_RDWR | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        try:
            descriptor = os.open(path, flags)
        except OSError as error:
            raise OutputPathError(f"{path}: cannot reopen the history log ({error.strerror or error})") from None
        if os.path.islink(path) or not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise OutputPathError(f"{path}: the history log is not a regular file")
        log = cls(path, os.fdopen(descriptor, "r+b"))
        log.stream.seek(len(LOG_MAGIC))
        log._extend_digests(np.frombuffer(log.stream.read(n_records * RECORD.itemsize), dtype=RECORD))
        return log

    def write(self, index, records):
        """Put ``records`` at position ``index`` and drop anything after them (OutputPathError naming the log)."""
        records = np.ascontiguousarray(records, dtype=RECORD)

        def put():
            self.stream.seek(len(LOG_MAGIC) + index * RECORD.itemsize)
            self.stream.write(records.tobytes())
            self.stream.truncate()
        self._written(put)
        if self._digests is not None and index < len(self._digests):
            del self._digests[index + 1:]
            self._extend_digests(records)
        else:
            self._digests = None  # records before ``index`` were never read: their digest is unknown

    def _extend_digests(self, records):
        for record in np.ascontiguousarray(records, dtype=RECORD):
            self._digests.append(chain_digest((record,), self._digests[-1]))

    def digest(self, n_records):
        """The chained digest of the first ``n_records`` records, in hex (what a checkpoint records); None
        when records were written past what this log object read."""
        return None if self._digests is None else self._digests[n_records].hex()

    def _written(self, write):
        """Run ``write`` and make it durable; a full disk or I/O error names the log, not a bare errno."""
        try:
            write()
            self.stream.flush()
            os.fsync(self.stream.fileno())
        except OSError as error:
            raise OutputPathError(f"{self.path}: cannot write the history log ({error.strerror or error})") from None

    def close(self):
        self.stream.close()


def read_log(path, n_records, fail):
    """The first ``n_records`` records of the log at ``path``; ``fail(problem)`` raises on anything wrong."""
    if os.path.islink(path):  # nncore writes its logs itself: a link was planted
        fail(f"its history log {Path(path).name} is a symbolic link, not the log nncore wrote")
    try:
        stream = open_regular_file(path, ModelFileError)
    except FileNotFoundError:
        fail(f"its history log {Path(path).name} is missing")
    except (ModelFileError, OSError) as error:
        fail(f"its history log cannot be read ({error})")
    with stream:
        if stream.read(len(LOG_MAGIC)) != LOG_MAGIC:
            fail(f"{Path(path).name} is not an nncore history log")
        data = stream.read(n_records * RECORD.itemsize)
    if len(data) != n_records * RECORD.itemsize:
        fail(f"its history log {Path(path).name} holds {len(data) // RECORD.itemsize} of {n_records} epochs")
    return np.frombuffer(data, dtype=RECORD).copy()
