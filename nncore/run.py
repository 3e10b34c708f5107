"""``TrainingRun``: the state of one ``fit`` run, which the training loop (``nncore.train``) and
its callbacks (``nncore.callbacks``) share: a module of its own so that neither imports the other
for it."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import inputs
from ._types import Model
from .history import History
from .optim import Optimizer


@dataclass
class TrainingRun:
    """The state of one run that the loop and its callbacks share (``callback.run``).

    ``epochs`` is the run's length; it trains its epochs ``start``..``epochs``-1, which are the
    model's epochs ``epoch_offset + 1``.. (1-based, as callbacks see them). A resumed run takes
    the counters, ``history`` and ``best_params`` from its checkpoint, and ``optimizer``,
    ``base_lr`` and ``seed`` unless the caller gave them (``optimizer_given``, ``seed_given``).
    ``settings`` are what a checkpoint records and a resumed run is compared with
    (``nncore.checkpoint``).
    ``samples_per_epoch`` and ``batches_per_epoch`` are known once the validation split is made
    (after ``on_train_begin``).
    """

    model: Model
    optimizer: Optimizer
    optimizer_given: bool
    epochs: int
    seed: int
    epoch_offset: int
    base_lr: float
    settings: dict
    verbose: bool
    seed_given: bool = False
    data: "inputs.Samples | None" = None  # what fit was given, before any validation split
    validation: "inputs.Samples | None" = None  # validation_data as given (None with a split)
    start: int = 0
    history: History = field(default_factory=History)
    best_params: "np.ndarray | None" = None
    has_validation: bool = False
    samples_per_epoch: int = 0
    batches_per_epoch: int = 0
    augment: object = None  # a resolved nncore.augment.Shift, or None
    notes: list = field(default_factory=list)  # what on_train_end adds to an interruption's warning

    def index_of(self, epoch):
        """The 0-based index within this run of the model's (1-based) epoch ``epoch``."""
        return epoch - 1 - self.epoch_offset

    def say(self, message):
        if self.verbose:
            print(message, flush=True)
