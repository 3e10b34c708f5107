"""The exceptions nncore raises on purpose, so callers can catch them by kind."""


class NNCoreError(Exception):
    """Base class of every error nncore raises on purpose."""


class DataError(NNCoreError, ValueError):
    """A data file or array is malformed: says which file (or argument) and what is wrong."""


class TrainingDiverged(NNCoreError, FloatingPointError):
    """The loss became NaN or infinite during training.

    ``epoch`` and ``batch`` (both 1-based) say where; the model keeps the parameters
    from before the batch that diverged.
    """

    def __init__(self, message, epoch=None, batch=None):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch


class ModelFileError(NNCoreError, ValueError):
    """A model or checkpoint file is missing, corrupt, or not a file nncore wrote."""
