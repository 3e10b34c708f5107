"""A checkpoint's training state: what it holds, which values are valid, and who may resume from it.

Beside the parameters and the optimizer state (``nncore.io.save_checkpoint``), a checkpoint
holds the ``TrainingState`` of the run that wrote it: the seed, the epoch counters, the base
learning rate, how its history ended (the records themselves are in a ``HistoryLog`` beside
it) and the settings that shaped the run (batch size, loss, validation, schedule, backend, a
fingerprint of the data). ``check_training_state`` validates every field as strictly as model
files' arrays are validated, and the writer runs the same check before writing: a checkpoint
that was written can always be read back.

Resuming compares the stored settings with the caller's (``compare_settings``). What would
make the resumed run another experiment (the data, seed, batch size, loss, validation, the
optimizer's kind, and any setting this module does not know) is refused, naming every
difference; what a caller may change on purpose (the optimizer's hyperparameters, the
schedule, the backend) is followed, with a warning. Nothing is taken over silently.
"""
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from .augment import Shift
from .errors import ModelFileError
from .history import LOG_NAME, History
from .losses import LOSSES

#: Counters beyond these are not a run nncore made; ``fit`` refuses to start one.
MAX_EPOCHS = 2**31 - 1
MAX_SEED = 2**128
MAX_STEPS = 2**62
#: A fingerprint reads the labels and rows spread over X, at most about this many bytes of X.
FINGERPRINT_BYTES = 16 << 20
#: Settings a caller may change when resuming: followed, with a warning.
FOLLOWED = ("optimizer", "lr_schedule", "backend", "step_threads")
#: Settings that describe the request, not the run: a resumed run may ask for more epochs.
IGNORED = ("epochs",)
_MAX_TEXT = 200


@dataclass
class TrainingState:
    """The training fields of a checkpoint's header (see the module docstring)."""

    seed: int
    epoch_offset: int
    epochs_done: int
    base_lr: float
    settings: dict
    log: "str | None"
    has_validation: bool
    stopped_early: bool
    best_epoch: "int | None"
    legacy_history: "History | None" = None  # version 2 checkpoints keep it in the header
    #: The first epoch the log holds: epoch_offset + 1, unless a run resumed after its log was lost.
    first_logged_epoch: "int | None" = None
    #: ``nncore.history.chain_digest`` of the records counted, in hex (None: not verified, as in version 3).
    log_digest: "str | None" = None

    def __post_init__(self):
        if self.first_logged_epoch is None:
            self.first_logged_epoch = self.epoch_offset + 1

    @property
    def logged_epochs(self):
        """How many of the epochs done the log holds (all, unless a log was lost)."""
        return self.epoch_offset + self.epochs_done + 1 - self.first_logged_epoch

    def to_header(self):
        return {"seed": self.seed, "epoch_offset": self.epoch_offset, "epochs_done": self.epochs_done,
                "base_lr": self.base_lr, "settings": self.settings,
                "history": {"log": self.log, "has_validation": self.has_validation,
                            "stopped_early": self.stopped_early, "best_epoch": self.best_epoch,
                            "first_epoch": self.first_logged_epoch, "digest": self.log_digest}}


def _is_integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(training, key, low, high, fail):
    value = training.get(key)
    if not _is_integer(value) or not low <= value <= high:
        fail(f"training state {key} must be an integer in [{low}, {high}], got {_short(value)}")
    return value


def _short(value):
    text = repr(value)
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


def check_training_state(training, format_version, fail):
    """The ``TrainingState`` in a header's ``training`` object; ``fail(problem)`` raises on anything invalid."""
    if not isinstance(training, dict):
        fail("missing training state in the header")
    seed = _integer(training, "seed", 0, MAX_SEED - 1, fail)
    offset = _integer(training, "epoch_offset", 0, MAX_EPOCHS, fail)
    done = _integer(training, "epochs_done", 1, MAX_EPOCHS - offset, fail)
    base_lr = training.get("base_lr")
    if not _is_number(base_lr) or not math.isfinite(base_lr) or base_lr < 0:
        fail(f"training state base_lr must be a finite number >= 0, got {_short(base_lr)}")
    settings = training.get("settings", {})
    check_settings(settings, done, fail)
    history = training.get("history")
    if not isinstance(history, dict):
        fail("training state history is missing")
    if format_version < 3:
        state = _legacy_history_state(history, offset, done, fail)
    else:
        state = _history_state(history, format_version, fail)
    log, has_validation, stopped_early, best_epoch, legacy = state
    if best_epoch is not None and (not _is_integer(best_epoch) or not offset < best_epoch <= offset + done):
        fail(f"history best_epoch must be one of epochs {offset + 1}..{offset + done}, got {_short(best_epoch)}")
    if stopped_early and best_epoch is None:
        fail("history says the run stopped early but names no best epoch")
    first_epoch, digest = _log_extent(history, format_version, offset, done, fail)
    return TrainingState(seed, offset, done, float(base_lr), settings, log, has_validation, stopped_early,
                         best_epoch, legacy, first_epoch, digest)


def _log_extent(history, format_version, offset, done, fail):
    """Version 4: (the first epoch the log holds, the digest of its records or None); before: (offset + 1, None)."""
    if format_version < 4:
        return offset + 1, None
    first_epoch, digest = history.get("first_epoch"), history.get("digest")
    if not _is_integer(first_epoch) or not offset < first_epoch <= offset + done + 1:
        fail(f"history first_epoch must be one of epochs {offset + 1}..{offset + done + 1}, got {_short(first_epoch)}")
    if digest is not None and not _is_hex_digest(digest):
        fail(f"history digest must be null or 32 hexadecimal digits, got {_short(digest)}")
    return first_epoch, digest


def _history_state(history, format_version, fail):
    """Version 3 and later: the log's name and how the history ended."""
    known = {"log", "has_validation", "stopped_early", "best_epoch"} | (
        {"first_epoch", "digest"} if format_version >= 4 else set())
    unknown = set(history) - known
    if unknown:
        fail(f"history holds unknown fields {sorted(unknown)[:5]}")
    log = history.get("log")
    if not isinstance(log, str) or not LOG_NAME.fullmatch(log):
        fail(f"history log must be a file name like history-1a2b.bin, got {_short(log)}")
    flags = {key: history.get(key) for key in ("has_validation", "stopped_early")}
    for key, value in flags.items():
        if not isinstance(value, bool):
            fail(f"history {key} must be true or false, got {_short(value)}")
    return log, flags["has_validation"], flags["stopped_early"], history.get("best_epoch"), None


def _legacy_history_state(history, offset, done, fail):
    """Version 2: the whole history as JSON lists in the header."""
    try:
        legacy = History.from_dict(history, first_epoch=offset + 1)
    except ModelFileError as error:
        fail(str(error))
    if len(legacy) != done:
        fail(f"history holds {len(legacy)} epochs, the training state says {done}")
    return None, legacy.has_validation, legacy.stopped_early, history.get("best_epoch"), legacy


def check_settings(settings, epochs_done, fail):
    """Each known setting's type and range; an unknown one must be a small JSON value (compared on resume)."""
    if not isinstance(settings, dict):
        fail(f"training settings must be an object, got {_short(settings)}")
    for key, value in settings.items():
        problem = _setting_problem(key, value, epochs_done)
        if problem:
            fail(f"training setting {key} {problem}, got {_short(value)}")


def _setting_problem(key, value, epochs_done):
    if key == "batch_size":
        return None if value is None or (_is_integer(value) and value >= 1) else "must be null or an integer >= 1"
    if key == "loss":
        return None if isinstance(value, str) and value in LOSSES else f"must be one of {tuple(LOSSES)}"
    if key == "epochs":
        return None if _is_integer(value) and epochs_done <= value <= MAX_EPOCHS else \
            f"must be an integer in [{epochs_done} (the epochs done), {MAX_EPOCHS}]"
    if key == "validation_split":
        return None if value is None or (_is_number(value) and 0 < value < 1) else "must be null or in (0, 1)"
    if key in ("data", "validation_data"):
        return None if value is None or _is_fingerprint(value) else "must be null or a data fingerprint"
    if key == "step_threads":
        return None if value is None or (_is_integer(value) and 1 <= value <= 256) else \
            "must be null or an integer from 1 to 256"
    if key in ("backend", "lr_schedule"):
        return None if value is None or (isinstance(value, str) and len(value) <= _MAX_TEXT) else \
            f"must be null or a string of at most {_MAX_TEXT} characters"
    if key == "augment":
        try:
            return None if value is None or Shift.from_dict(value) else None
        except (TypeError, ValueError) as error:
            return f"must be null or a recorded shift ({error})"
    # A setting this version does not know (a newer option): any small JSON value, compared as it is.
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:
        return "must not hold NaN or infinity"
    return None if len(text) <= _MAX_TEXT else f"must be a JSON value of at most {_MAX_TEXT} characters"


def _is_fingerprint(value):
    return (isinstance(value, dict) and set(value) == {"shape", "dtype", "digest"}
            and isinstance(value["shape"], list) and len(value["shape"]) == 2
            and all(_is_integer(n) and n >= 0 for n in value["shape"])
            and value["dtype"] in ("uint8", "float32", "float64") and _is_hex_digest(value["digest"]))


def _is_hex_digest(value):
    return isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef" for c in value)


# ---------------------------------------------------------------- settings of a run

def fingerprint(samples):
    """Shape, dtype and a BLAKE2 digest of the labels and of rows spread evenly over X (about 16 MB at most)."""
    if samples is None:
        return None
    X = samples.X
    step = max(1, math.ceil(X.nbytes / FINGERPRINT_BYTES))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((X.shape, X.dtype.name, step)).encode())
    digest.update(np.ascontiguousarray(X[::step], dtype=X.dtype.newbyteorder("<")).tobytes())
    if samples.y is not None:
        digest.update(np.ascontiguousarray(samples.y, dtype="<i4").tobytes())
    return {"shape": list(X.shape), "dtype": X.dtype.name, "digest": digest.hexdigest()}


def describe_schedule(schedules):
    """How the run's learning-rate schedules are recorded: repr of nncore's own, "custom" for functions."""
    from . import schedules as known
    names = [repr(s) if type(s) in known.SCHEDULES.values() else "custom" for s in schedules]
    return "; ".join(names)[:_MAX_TEXT] if names else None


def optimizer_setting(optimizer, base_lr):
    """An optimizer as the settings compare it: kind and hyperparameters, lr at its base rate."""
    return json.loads(json.dumps({"kind": optimizer.kind, **optimizer.hyperparameters(), "lr": base_lr}))


def compare_settings(stored, requested):
    """(refusals, followed): one line per setting whose stored and requested values differ.

    Keys missing on either side are not compared (version 2 checkpoints recorded fewer).
    """
    refusals, followed = [], []
    for key in sorted(set(stored) & set(requested)):
        if key in IGNORED or _same(stored[key], requested[key]):
            continue
        if key == "optimizer" and stored[key]["kind"] != requested[key]["kind"]:
            refusals.append(f"it was trained with {stored[key]['kind']}, not {requested[key]['kind']} "
                            "(pass optimizer=None to take the checkpoint's)")
            continue
        line = _difference(key, stored[key], requested[key])
        (followed if key in FOLLOWED else refusals).append(line)
    return refusals, followed


def _same(a, b):
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _difference(key, stored, requested):
    """One line for a setting that differs; of an optimizer, only the hyperparameters that differ."""
    if isinstance(stored, dict) and "kind" in stored and isinstance(requested, dict):
        changed = [name for name in stored if name != "kind" and not _same(stored[name], requested.get(name))]
        stored, requested = ({name: side.get(name) for name in changed} for side in (stored, requested))
    line = f"{key} {_describe(stored)} in the checkpoint, {_describe(requested)} in this run"
    if key == "step_threads":    # a training step's additions run in an order fixed per thread count
        line += " (the parameters will differ in their last bits from an uninterrupted run's)"
    return line


def _describe(value):
    if _is_fingerprint(value):
        return f"{value['shape'][0]} x {value['shape'][1]} {value['dtype']} (digest {value['digest'][:12]})"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items() if k != "kind")
    return "none" if value is None else str(value)
