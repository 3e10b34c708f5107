"""ProgressBar: what a run shows while it trains (``fit(verbose=1)``, the default).

In a terminal: a tqdm bar over the run's epochs (rate, elapsed time, ETA, the last epoch's
loss and accuracy), each finished epoch's line printed above it, and, for an epoch still
running after ``batch_bar_after`` seconds, a second bar over that epoch's batches. The second
bar is fed by the backend's progress reports (``on_epoch_progress``): the compiled core
reports between batches at most every 20 ms, from inside its one call per epoch.

In a Jupyter notebook that can show widgets (ipywidgets installed), the same two bars as
tqdm's notebook widgets, as ``tqdm.auto`` would choose them; the finished epochs' lines are
printed below the cell as usual.

Anywhere else (a file, a pipe, CI logs, captured output, a notebook without ipywidgets): each
finished epoch's line with the run's ETA, and nothing else, since a redrawn bar there is a
pile of carriage returns.
"""
from __future__ import annotations

import os
import sys
import time
import warnings
from typing import Any, TextIO

from ._types import Logs
from .callbacks import Callback, display, format_epoch


def _is_terminal(stream):
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _in_jupyter_kernel():
    """Whether this process is a Jupyter kernel whose front end shows widgets (tqdm.autonotebook's test).

    Only modules already loaded are looked at: a process outside Jupyter never imports IPython here.
    """
    ipython = sys.modules.get("IPython")
    if "ipykernel.zmqshell" not in sys.modules or ipython is None:
        return False
    if any(name == "QT_API" or name.startswith("SPYDER") for name in os.environ):
        return False  # qtconsole and Spyder run a kernel but draw no widgets
    return type(ipython.get_ipython()).__name__ == "ZMQInteractiveShell"


def notebook_bar_class() -> type[Any] | None:
    """tqdm's widget bar when running in a Jupyter notebook with ipywidgets installed, else None."""
    if not _in_jupyter_kernel():
        return None
    with warnings.catch_warnings():  # tqdm warns on import when ipywidgets is missing: we fall back quietly
        warnings.simplefilter("ignore")
        from tqdm import notebook
    return notebook.tqdm if notebook.IProgress is not None else None


class ProgressBar(Callback):
    """A live bar over the epochs (and the batches of long epochs) in a terminal or a notebook; lines elsewhere.

    ``file``: where to write (default: ``sys.stdout`` as it is when training begins; in a
    Jupyter notebook with ipywidgets, widgets in the cell's output).
    ``batch_bar_after``: seconds an epoch runs before its batch bar appears (0: at once).
    ``live``: True or False to force the terminal bar or the lines (default: the widgets in a
    notebook, else the bar when ``file`` is a terminal).
    """

    def __init__(self, file: TextIO | None = None, batch_bar_after: float = 1.0, live: bool | None = None) -> None:
        self.file, self.batch_bar_after, self.live = file, float(batch_bar_after), live
        self._epochs_bar: Any = None
        self._batches_bar: Any = None

    def on_train_begin(self, logs: Logs | None = None) -> None:
        from tqdm import tqdm  # imported here: `import nncore` stays light

        widget = notebook_bar_class() if self.file is None and self.live is None else None
        self._tqdm = widget or tqdm
        self._stream = self.file if self.file is not None else sys.stdout
        self._live = widget is not None or (_is_terminal(self._stream) if self.live is None else bool(self.live))
        self._began, self._first_index = time.perf_counter(), None
        self._epochs_bar = self._batches_bar = None

    @display
    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        index = self.run.index_of(epoch)
        if self._first_index is None:
            self._first_index = index
        if not self._live:
            return
        if self._epochs_bar is None:
            self._epochs_bar = self._tqdm(total=self.run.epochs, initial=index, unit="epoch", desc="training",
                                          file=self._stream, dynamic_ncols=True)
        self._batches_bar = self._tqdm(total=self.run.batches_per_epoch, unit="batch", desc=f"epoch {index + 1}",
                                       file=self._stream, dynamic_ncols=True, leave=False,
                                       delay=self.batch_bar_after)

    @display
    def on_epoch_progress(self, epoch: int, logs: Logs) -> None:
        bar = self._batches_bar
        if bar is not None:
            bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)
            bar.update(logs["batches"] - bar.n)

    @display
    def on_epoch_end(self, epoch: int, logs: Logs | None = None) -> bool | None:
        logs = logs or {}
        index = self.run.index_of(epoch)
        line = format_epoch(index + 1, self.run.epochs, logs)
        self._close_batches_bar()
        if not self._live:
            remaining = self.run.epochs - index - 1
            if remaining:
                seconds_per_epoch = (time.perf_counter() - self._began) / (index + 1 - self._first_index)
                line += f"  ETA {self._tqdm.format_interval(seconds_per_epoch * remaining)}"
            print(line, file=self._stream, flush=True)
            return False
        self._tqdm.write(line, file=self._stream)
        metric = "val_accuracy" if logs.get("val_accuracy") is not None else "accuracy"
        self._epochs_bar.set_postfix({"loss": f"{logs['loss']:.4f}", metric: f"{logs[metric]:.4f}"}, refresh=False)
        self._epochs_bar.update(1)
        return False

    @display
    def on_train_end(self, logs: Logs | None = None) -> None:
        self._close_batches_bar()
        if self._epochs_bar is not None:
            self._epochs_bar.close()
            self._epochs_bar = None

    def _close_batches_bar(self):
        if self._batches_bar is not None:
            self._batches_bar.close()
            self._batches_bar = None
