"""``nncore bench --threads``: one thread against the default, on an idle machine and on a busy one.

The busy machine is made here: ``COMPETITORS`` CPU-bound processes (pure spinning Python, each
ending by itself after a deadline, and killed when the cell is done) run while the same
candidates are timed again. Every cell alternates its candidates (1 thread, the default) after
a warm-up, several rounds, and reports medians of wall and CPU seconds (the process's CPU time,
every thread of it), and the ratios default / 1 thread. PyTorch, when installed, is timed the
same way (torch.set_num_threads(1) against its default).

The data are random uint8 pixels of MNIST's shape: the speed does not depend on their values.
"""
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from .timers import SETTLE_SECONDS
from .torch_candidates import TorchTrainer, import_torch

#: (layer sizes, batch size or None for the full batch, dtype, rows, epochs per timing): each
#: timing is long enough (~0.2 s or more at one thread) that a scheduler's hiccup is not the result.
CELLS = [((784, 1024, 1024, 10), 128, "float32", 12_800, 1),
         ((784, 256, 128, 10), 128, "float32", 25_600, 1),
         ((784, 128, 10), 128, "float32", 51_200, 1),
         ((784, 10, 10), 32, "float32", 60_000, 4),
         ((784, 10, 10), None, "float32", 60_000, 8),
         ((784, 10, 10), None, "float64", 60_000, 6)]
QUICK_CELLS = [((784, 256, 128, 10), 128, "float32", 6_400, 1), ((784, 10, 10), None, "float32", 20_000, 4)]
COMPETITORS = 2
#: The longest a competitor may live: it ends by itself even if this process dies.
COMPETITOR_SECONDS = 600
SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"
#: A fixed amount of pure-Python work: its time alone and two copies' time side by side say how
#: many cores this machine gives now (a virtual machine's second core may be a shared one).
COUNT = "import time\nbegan = time.perf_counter()\nx = 0\nfor i in range(4_000_000):\n    x += i\nprint(time.perf_counter() - began)\n"


def cores_available(copies=2):
    """``copies`` times one process's time alone over the slowest of ``copies`` run at once (2.0: two whole cores)."""
    def run(n):
        processes = [subprocess.Popen([sys.executable, "-c", COUNT], stdout=subprocess.PIPE, text=True)
                     for _ in range(n)]
        return max(float(process.communicate()[0]) for process in processes)
    alone = min(run(1) for _ in range(3))
    together = min(run(copies) for _ in range(3))
    return copies * alone / together


class Competitors:
    """``count`` CPU-bound processes for the life of a ``with`` block (and at most ``seconds``)."""

    def __init__(self, count=COMPETITORS, seconds=COMPETITOR_SECONDS):
        self.count, self.seconds, self.processes = count, seconds, []

    def __enter__(self):
        code = SPIN.format(seconds=self.seconds)
        self.processes = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(self.count)]
        time.sleep(0.5)  # running, and the scheduler has seen them
        return self

    def __exit__(self, *exc_info):
        for process in self.processes:
            process.kill()
        for process in self.processes:
            process.wait()


class NncoreEpoch:
    """One epoch of ``fit``'s work (Adam, the default) through the compiled backend with ``n_threads``."""

    def __init__(self, layer_sizes, batch_size, dtype, X, y, n_threads, epochs=1):
        import nncore
        from nncore.backends import get_backend
        from nncore.losses import get_loss
        self.model = nncore.MLP(layer_sizes, dtype=dtype, seed=0)
        self.optimizer = nncore.Adam(lr=1e-3)
        self.optimizer.ensure_state(self.model.n_parameters, self.model.dtype)
        self.backend = get_backend("cython", n_threads)
        self.loss = get_loss("cross_entropy")
        self.X, self.y, self.batch_size = X, y.astype(np.int32), batch_size or len(X)
        self.epoch, self.epochs = 0, epochs

    def run(self):
        for _ in range(self.epochs):
            self.backend.train_epoch(self.model.network, self.model.params, self.optimizer, self.X, self.y,
                                     self.batch_size, self.epoch, self.loss)
            self.epoch += 1


class TorchEpoch:
    """The same in PyTorch (SGD; its loop as torch_candidates.TorchTrainer), ``threads`` None: its default."""

    def __init__(self, torch, layer_sizes, batch_size, dtype, X, y, threads, epochs=1):
        self.torch, self.default, self.epochs = torch, torch.get_num_threads(), epochs
        self.trainer = TorchTrainer(torch, layer_sizes, dtype, X, y, batch_size, threads or self.default)

    def run(self):
        for _ in range(self.epochs):
            self.trainer.run()


def _time(candidate):
    # A pause first: PyTorch's OpenMP threads (and OpenBLAS's) spin for a while after their last
    # call, and that CPU time would be counted to the next candidate, which shares the process.
    time.sleep(SETTLE_SECONDS)
    wall, cpu = time.perf_counter(), time.process_time()
    candidate.run()
    return time.perf_counter() - wall, time.process_time() - cpu


def time_cell(candidates, rounds):
    """{name: (median wall s, median CPU s)} over ``rounds`` alternating rounds, after one warm-up each."""
    for candidate in candidates.values():
        candidate.run()
    samples = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, candidate in candidates.items():
            samples[name].append(_time(candidate))
    return {name: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for name, values in samples.items()}


def _candidates(cell, default_threads, torch):
    layer_sizes, batch_size, dtype, rows, epochs = cell
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (rows, layer_sizes[0]), dtype=np.uint8)
    y = rng.integers(0, layer_sizes[-1], rows)
    data = (layer_sizes, batch_size, dtype, X, y)
    candidates = {"nncore 1 thread": NncoreEpoch(*data, 1, epochs),
                  f"nncore default ({default_threads})": NncoreEpoch(*data, None, epochs)}
    if torch is not None:
        candidates["torch 1 thread"] = TorchEpoch(torch, *data, 1, epochs)
        candidates[f"torch default ({torch.get_num_threads()})"] = TorchEpoch(torch, *data, None, epochs)
    return candidates


def run_thread_scaling(quick, rounds, with_torch, log=print):
    """Every cell idle, then busy; returns the result (rows with medians and ratios)."""
    from nncore import _core
    torch, torch_note = import_torch(with_torch)
    default_threads = _core.get_num_threads()
    capacity = cores_available()
    log(f"  this machine gives {capacity:.2f} cores to two CPU-bound processes now (2.00: two whole cores)")
    rows = []
    for cell in QUICK_CELLS if quick else CELLS:
        layer_sizes, batch_size, dtype, n_rows, epochs = cell
        candidates = _candidates(cell, default_threads, torch)
        for condition in ("idle", "busy"):
            if condition == "busy":
                with Competitors():
                    medians = time_cell(candidates, rounds)
            else:
                medians = time_cell(candidates, rounds)
            row = {"network": "-".join(map(str, layer_sizes)), "batch_size": batch_size or "full", "dtype": dtype,
                   "rows": n_rows, "epochs": epochs, "condition": condition, "seconds": medians,
                   "threads_used": _core.step_threads(candidates["nncore 1 thread"].model.network.table,
                                                      candidates["nncore 1 thread"].model.n_parameters,
                                                      batch_size or n_rows, None)[0]}
            row["ratios"] = _ratios(medians)
            rows.append(row)
            log(format_row(row))
    return {"mode": "threads", "created": time.strftime("%Y-%m-%d %H:%M:%S"), "rounds": rounds,
            "competitors": COMPETITORS, "default_threads": default_threads, "cpu_count": os.cpu_count(),
            "cores_available": capacity,
            "torch": torch.__version__ if torch is not None else torch_note, "rows": rows}


def _ratios(medians):
    """{"nncore": (wall default / 1 thread, CPU default / 1 thread), "torch": ...} for each pair timed."""
    ratios = {}
    for who in ("nncore", "torch"):
        one = medians.get(f"{who} 1 thread")
        default = next((value for name, value in medians.items() if name.startswith(f"{who} default")), None)
        if one and default:
            ratios[who] = (default[0] / one[0], default[1] / one[1])
    return ratios


def format_row(row):
    parts = ", ".join(f"{name} {wall:.3f} s ({cpu:.3f} CPU)" for name, (wall, cpu) in row["seconds"].items())
    ratios = "; ".join(f"{who} default/1: wall {wall:.2f}x, CPU {cpu:.2f}x" for who, (wall, cpu) in row["ratios"].items())
    return (f"  {row['condition']:>4} {row['network']:>16} b={row['batch_size']!s:>4} {row['dtype']} "
            f"({row['threads_used']} thread(s) per step): {parts} | {ratios}")


def markdown(result, info_text, command):
    """The Markdown report: the command, ``nncore info``, and one table of every cell."""
    lines = [f"# nncore bench --threads ({result['created']})", "",
             f"Command: `{command}`", "",
             f"Default thread count {result['default_threads']} on {result['cpu_count']} CPUs, which gave "
             f"{result['cores_available']:.2f} cores' worth to two CPU-bound processes at the start (2.00: two "
             f"whole cores; a shared virtual machine gives less); busy = "
             f"{result['competitors']} CPU-bound competitor processes started by the benchmark; medians of "
             f"{result['rounds']} alternating rounds after a warm-up; CPU = the process's CPU time (all its threads). "
             f"PyTorch: {result['torch']}.", "",
             "| machine | network | batch | dtype | rows x epochs | threads per step | nncore 1 thread wall (CPU) s | "
             "nncore default wall (CPU) s | default / 1 thread: wall, CPU | torch default / 1 thread: wall, CPU |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["rows"]:
        seconds = row["seconds"]
        one = seconds["nncore 1 thread"]
        default = next(value for name, value in seconds.items() if name.startswith("nncore default"))
        wall, cpu = row["ratios"]["nncore"]
        torch = row["ratios"].get("torch")
        lines.append(f"| {row['condition']} | {row['network']} | {row['batch_size']} | {row['dtype']} "
                     f"| {row['rows']} x {row['epochs']} "
                     f"| {row['threads_used']} | {one[0]:.3f} ({one[1]:.3f}) | {default[0]:.3f} ({default[1]:.3f}) "
                     f"| {wall:.2f}, {cpu:.2f} | {f'{torch[0]:.2f}, {torch[1]:.2f}' if torch else '-'} |")
    lines += ["", "```", info_text, "```", ""]
    return "\n".join(lines)
