"""History: the per-epoch record of a training run, as ``fit`` returns it and checkpoints keep it."""
from .errors import ModelFileError

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "seconds", "lr")


class History:
    """Per-epoch records of one ``fit`` call (or of a run resumed from a checkpoint).

    Lists of equal length: ``epoch`` (1-based, counted over the model's whole training),
    ``loss`` and ``accuracy`` (training, measured during the epoch before each batch's
    update), ``val_loss`` and ``val_accuracy`` (None without validation data), ``seconds``
    (wall time of the epoch, validation included) and ``lr``. ``history`` is the same as a
    dict, as Keras has it. ``interrupted`` says Ctrl-C ended the run; ``stopped_early`` that
    early stopping did, and ``best_epoch`` which epoch it kept.
    """

    def __init__(self):
        self.epoch = []
        for key in HISTORY_KEYS:
            setattr(self, key, [])
        self.interrupted = False
        self.stopped_early = False
        self.best_epoch = None

    def append(self, epoch, logs):
        self.epoch.append(int(epoch))
        for key in HISTORY_KEYS:
            getattr(self, key).append(logs.get(key))

    @property
    def history(self):
        return {"epoch": list(self.epoch), **{key: list(getattr(self, key)) for key in HISTORY_KEYS}}

    @property
    def has_validation(self):
        return any(value is not None for value in self.val_loss)

    def to_dict(self):
        return {**self.history, "interrupted": self.interrupted, "stopped_early": self.stopped_early,
                "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, data):
        history = cls()
        try:
            history.epoch = [int(e) for e in data["epoch"]]
            for key in HISTORY_KEYS:
                values = [None if v is None else float(v) for v in data[key]]
                if len(values) != len(history.epoch):
                    raise ValueError(f"{key} has {len(values)} entries for {len(history.epoch)} epochs")
                setattr(history, key, values)
        except (KeyError, TypeError, ValueError) as error:
            raise ModelFileError(f"invalid history in checkpoint ({error})") from None
        history.stopped_early = bool(data.get("stopped_early", False))
        best = data.get("best_epoch")
        history.best_epoch = None if best is None else int(best)
        return history

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        last = f", last={self.last()}" if self.epoch else ""
        return f"History(epochs={len(self)}{last})"

    def last(self):
        """The last epoch's record as a dict."""
        return {"epoch": self.epoch[-1], **{key: getattr(self, key)[-1] for key in HISTORY_KEYS}}
