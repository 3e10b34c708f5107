"""The type aliases of nncore's public signatures (for readers and type checkers alike)."""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol, Union

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



class Model(Protocol):
    """What the training loop, the callbacks, the summary and the ONNX export use of a model: an
    ``nncore.MLP``. Written as an interface so that those modules need not import the one that
    calls them (``nncore.model`` imports ``nncore.train``, not the other way round)."""

    network: Any
    optimizer: Any
    history: Any
    epochs_trained: int
    loss: str
    seed: int | None
    dataset_name: str | None
    class_names: tuple[str, ...] | None
    input_shape: tuple[int, ...] | None

    @property
    def params(self) -> FloatArray: ...

    @property
    def layers(self) -> list[tuple[FloatArray, FloatArray]]: ...

    @property
    def layer_sizes(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    @property
    def dropout(self) -> tuple[float, ...]: ...

    @property
    def input_dropout(self) -> float: ...

    @property
    def n_inputs(self) -> int: ...

    @property
    def n_classes(self) -> int: ...

    def remember_data(self, dataset: Any) -> None: ...

    def copy(self) -> Any: ...


__all__ = ["ArrayLike", "DTypeLike", "FloatArray", "Logs", "Model", "NDArray", "PathLike", "Schedule"]
