"""``MLP.summary()``: a Keras-style table of a model's layers, shapes and parameter counts.

One row per layer, input first: the output shape with ``None`` for the batch dimension, the
activation, the shapes of W (fan_in, fan_out) and b, and the parameter count; a dropout
column appears when some layer drops units in training. Below the table: the total (and the
bytes it takes in the model's dtype) and what the model knows of its training.
"""
from __future__ import annotations

from ._types import Model


def summary_lines(model: Model) -> list[str]:
    """The summary of ``model`` as lines of text (what ``MLP.summary`` prints)."""
    network = model.network
    has_dropout = model.input_dropout > 0 or any(rate > 0 for rate in model.dropout)
    header = ["layer", "output shape", "activation"] + (["dropout"] if has_dropout else []) + \
             ["weights", "biases", "parameters"]
    rows = [["input", f"(None, {network.n_inputs})", "-"] + ([_rate(model.input_dropout)] if has_dropout else [])
            + ["-", "-", "0"]]
    activations = list(network.activation_names) + ["softmax"]
    for index, (fan_in, fan_out) in enumerate(zip(network.layer_sizes, network.layer_sizes[1:])):
        is_output = index == network.n_layers - 1
        name = "output" if is_output else f"hidden {index + 1}"
        dropout = ["-" if is_output else _rate(model.dropout[index])] if has_dropout else []
        rows.append([name, f"(None, {fan_out})", activations[index]] + dropout
                    + [f"({fan_in}, {fan_out})", f"({fan_out},)", f"{fan_in * fan_out + fan_out:,}"])
    right_aligned = {len(header) - 1}
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.rjust(width) if column in right_aligned else cell.ljust(width)
                         for column, (cell, width) in enumerate(zip(cells, widths))).rstrip()

    rule = "-" * len(line(header))
    sizes = "-".join(str(size) for size in network.layer_sizes)
    lines = [f"MLP {sizes}, {network.dtype.name}", rule, line(header), rule, *map(line, rows), rule]
    n_bytes = network.n_params * network.dtype.itemsize
    lines.append(f"total parameters: {network.n_params:,} ({_bytes(n_bytes)} as {network.dtype.name})")
    lines.append(_training_line(model))
    return lines


def _rate(rate: float) -> str:
    return f"{rate:g}" if rate else "-"


def _bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 ** 2:
        return f"{count / 1024:.1f} KB"
    return f"{count / 1024 ** 2:.1f} MB"


def _training_line(model: Model) -> str:
    if not model.epochs_trained:
        trained = "not trained yet"
    else:
        trained = f"trained {model.epochs_trained} epoch{'s' if model.epochs_trained != 1 else ''}"
        if model.optimizer is not None:
            trained += f" with {model.optimizer!r}"
    if model.dataset_name:
        trained += f" on {model.dataset_name}"
    if model.input_shape:
        trained += f"; inputs are {'x'.join(str(side) for side in model.input_shape)} images"
    return trained
