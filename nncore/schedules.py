"""Learning-rate schedules: the trainer sets ``optimizer.lr`` from one before every epoch.

A schedule is any callable ``schedule(epoch, epochs, base_lr) -> lr`` where ``epoch``
counts from 0 within one ``fit`` call, ``epochs`` is that call's number of epochs and
``base_lr`` the optimizer's learning rate when the call began. ``fit`` restores ``base_lr``
when it returns, so a later ``fit`` starts the schedule again from it.
"""
from __future__ import annotations

import math

from ._numbers import finite, real, shown, whole


class Constant:
    """The base learning rate throughout."""

    def __call__(self, epoch: int, epochs: int, base_lr: float) -> float:
        return base_lr

    def __repr__(self):
        return "Constant()"


class StepDecay:
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        self.step_size, self.gamma = whole("step_size", step_size, 1), finite("gamma", gamma, 0, strict=True)

    def __call__(self, epoch: int, epochs: int, base_lr: float) -> float:
        try:
            return base_lr * self.gamma ** (epoch // self.step_size)
        except OverflowError:  # gamma > 1 for long enough: the rate the scheduler then refuses
            return math.inf

    def __repr__(self):
        return f"StepDecay(step_size={self.step_size}, gamma={self.gamma})"


class Cosine:
    """Cosine annealing from ``base_lr`` to ``min_lr`` over the call's epochs, after a linear warm-up.

    Epoch e of E (after ``warmup_epochs`` epochs at base_lr * (e + 1) / (warmup + 1)) uses
    min_lr + (base_lr - min_lr) * (1 + cos(pi * t / T)) / 2, with t = e - warmup, T = E - warmup;
    the last epoch therefore still trains with a learning rate above ``min_lr``.
    """

    def __init__(self, min_lr: float = 0.0, warmup_epochs: int = 0) -> None:
        self.min_lr, self.warmup_epochs = finite("min_lr", min_lr, 0), whole("warmup_epochs", warmup_epochs, 0)

    def __call__(self, epoch: int, epochs: int, base_lr: float) -> float:
        if epoch < self.warmup_epochs:
            return base_lr * (epoch + 1) / (self.warmup_epochs + 1)
        span = max(epochs - self.warmup_epochs, 1)
        t = epoch - self.warmup_epochs
        return self.min_lr + (base_lr - self.min_lr) * (1 + math.cos(math.pi * t / span)) / 2

    def __repr__(self):
        return f"Cosine(min_lr={self.min_lr}, warmup_epochs={self.warmup_epochs})"


SCHEDULES = {"constant": Constant, "step": StepDecay, "cosine": Cosine}


def checked_rate(lr, epoch):
    """The rate a schedule returned for (1-based) ``epoch``: a finite number >= 0, else ValueError naming the epoch."""
    rate = real(lr)
    if rate is None or not math.isfinite(rate) or rate < 0:
        raise ValueError(f"lr_schedule returned {shown(lr)} for epoch {epoch}: a learning rate must be a finite "
                         "number >= 0")
    return rate


def get_schedule(schedule):
    """None, a name ("constant", "step", "cosine") or a callable -> a schedule callable or None."""
    if schedule is None:
        return None
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {tuple(SCHEDULES)} or a callable, got {schedule!r}")
        return SCHEDULES[schedule]()
    if not callable(schedule):
        raise TypeError(f"lr_schedule must be a name or a callable (epoch, epochs, base_lr) -> lr, "
                        f"got {type(schedule).__name__}")
    return schedule
