"""The exceptions and warnings nncore raises on purpose, so callers can catch them by kind."""


class NNCoreError(Exception):
    """Base class of every error nncore raises on purpose."""


class DataError(NNCoreError, ValueError):
    """A data file or array is malformed: says which file (or argument) and what is wrong."""


class TrainingDiverged(NNCoreError, FloatingPointError):
    """The loss, or the parameters after an update, became NaN or infinite during training.

    ``epoch`` and ``batch`` (both 1-based) say where; the model keeps the parameters
    from before the batch that diverged.
    """

    def __init__(self, message: str, epoch: int | None = None, batch: int | None = None) -> None:
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


class NonFiniteOutputError(NNCoreError, FloatingPointError):
    """The network's outputs are NaN or infinite (its logits overflow), so there is no answer to give."""


class ModelFileError(NNCoreError, ValueError):
    """A model or checkpoint file is missing, corrupt, or not a file nncore wrote."""


class CheckpointMismatch(ModelFileError):
    """A valid checkpoint belongs to another run than the one asked to resume from it
    (another architecture, optimizer kind, data, seed, batch size, loss or validation)."""


class HistoryLogError(ModelFileError):
    """A checkpoint is valid but its history log is missing, damaged or another run's: its parameters and
    optimizer state are intact, and resuming continues from them without that history.

    ``problem`` says what is wrong with the log, without the advice the message adds.
    """

    def __init__(self, message: str, problem: str | None = None) -> None:
        super().__init__(message)
        self.problem = problem or message


class OutputPathError(NNCoreError, OSError):
    """An output path (model file, checkpoint or plots directory) cannot be written, or is in use."""


class NNCoreWarning(UserWarning):
    """Something the caller asked for was done differently, or a result is only partly meaningful."""
