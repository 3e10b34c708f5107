"""The type aliases of nncore's public signatures (for readers and type checkers alike)."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

#: A file or directory path, as ``open`` takes it.
PathLike = Union[str, "os.PathLike[str]"]
#: What a callback's hooks receive: an epoch's History keys and values.
Logs = dict[str, Any]
#: A learning-rate schedule: a name ("constant", "step", "cosine") or ``f(epoch, epochs, base_lr) -> lr``.
Schedule = Union[str, Callable[[int, int, float], float]]
#: Parameters and outputs: float32 or float64 arrays.
FloatArray = NDArray[np.floating[Any]]

__all__ = ["ArrayLike", "DTypeLike", "FloatArray", "Logs", "NDArray", "PathLike", "Schedule"]
