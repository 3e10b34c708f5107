"""What a model remembers of the data it was trained on, as its files record it.

Three optional fields, each None until known: ``dataset_name`` ("mnist"), ``class_names``
(one per output) and ``input_shape`` (one image's shape, e.g. (28, 28)). ``MLP.fit`` on a
Dataset sets them; a model file keeps them in its JSON header as the object ``data``; the
command line and the ONNX exporter read them. Files without ``data`` load with all three None.

One check (``data_problem``) decides what the fields may hold, and every side calls it: the
reader of model files and checkpoints, the writer before it writes a byte, and ``fit`` before
the first epoch when the fields come with the data (``checked_fields``). So a file nncore
wrote always loads, and a run is never trained into a model that cannot be saved.
"""
import math
import numbers
import operator

import numpy as np

#: The fields, in the order a header lists them.
DATA_FIELDS = ("dataset_name", "class_names", "input_shape")
# A crafted file cannot make a name (and so a message or a table column) arbitrarily long.
MAX_NAME_CHARACTERS = 200
_SHOWN_CHARACTERS = 60


def as_header(dataset_name, class_names, input_shape):
    """The header's ``data`` object for the three fields (None ones left out), converted without loss.

    Numbers among the names become their text (class labels are often numbers); anything else
    that is not a string (None, bytes, objects) stays what it is and is refused by
    ``data_problem``. Sizes become ``int`` only when they are integers (``operator.index``), so
    (4.5, 4) is refused rather than written as (4, 4). A string is never split into names.
    """
    data = {}
    if dataset_name is not None:
        data["dataset_name"] = _as_name(dataset_name)
    if class_names is not None:
        data["class_names"] = class_names if isinstance(class_names, (str, bytes)) or not _is_sequence(class_names) \
            else [_as_name(name) for name in class_names]
    if input_shape is not None:
        data["input_shape"] = input_shape if isinstance(input_shape, (str, bytes)) or not _is_sequence(input_shape) \
            else [_exact_integer(size) for size in input_shape]
    return data


def data_header(model):
    """The header's ``data`` object for ``model`` ({} when it knows nothing of its data).

    Raises ValueError, naming the field, for anything the reader would refuse: class names
    not one per output or longer than ``MAX_NAME_CHARACTERS``, an input shape that does not
    hold the inputs or is not made of integers, ...
    """
    data = as_header(model.dataset_name, model.class_names, model.input_shape)
    problem = data_problem(data, model.network)
    if problem:
        raise ValueError(f"the model's {problem}")
    return data


def checked_fields(network, dataset_name, class_names, input_shape, what):
    """(dataset_name, class_names, input_shape) as a model keeps them; ValueError naming ``what``
    for anything its model file could not hold (``fit`` calls this before training)."""
    data = as_header(dataset_name, class_names, input_shape)
    problem = data_problem(data, network)
    if problem:
        raise ValueError(f"{what}: {problem}")
    checked = {field: tuple(value) if isinstance(value, list) else value for field, value in data.items()}
    return tuple(checked.get(field) for field in DATA_FIELDS)


def checked_data(data, network, fail):
    """The fields of a header's ``data`` object, checked against ``network``.

    ``class_names`` and ``input_shape`` come back as tuples; absent fields are left out.
    ``fail(problem)`` is called (and must raise) for anything malformed or unknown.
    """
    problem = data_problem(data, network)
    if problem:
        fail(f"invalid {problem}")
    return {field: tuple(value) if isinstance(value, list) else value for field, value in data.items()}


def data_problem(data, network):
    """What is wrong with a header's ``data`` object for ``network``, in a few words, or None."""
    if not isinstance(data, dict):
        return f"data: must be an object, got {_shown(data)}"
    unknown = sorted(set(data) - set(DATA_FIELDS))
    if unknown:
        return f"data field {_shown(unknown[0])} (known: {', '.join(DATA_FIELDS)})"
    name = data.get("dataset_name")
    if name is not None and not _is_name(name):
        return f"dataset_name {_shown(name)}: {_name_problem(name)}"
    names = data.get("class_names")
    if names is not None:
        if not isinstance(names, list) or len(names) != network.n_classes:
            given = f"{len(names)} class names" if isinstance(names, list) else _shown(names)
            return f"class_names: {given} for {network.n_classes} outputs, expected one name per output"
        bad = next((index for index, name in enumerate(names) if not _is_name(name)), None)
        if bad is not None:
            return f"class_names: name {bad} {_shown(names[bad])}: {_name_problem(names[bad])}"
    shape = data.get("input_shape")
    if shape is not None:
        if not isinstance(shape, list) or not shape or not all(_is_size(size, network.n_inputs) for size in shape):
            return f"input_shape {_shown(shape)}: expected a list of positive integers"
        if math.prod(shape) != network.n_inputs:
            return f"input_shape {_shown(shape)} for {network.n_inputs} inputs: it holds {math.prod(shape)}"
    return None


def _as_name(value):
    is_number = isinstance(value, (numbers.Number, np.generic)) and not isinstance(value, (bool, np.bool_))
    return str(value) if is_number and not isinstance(value, str) else value


def _is_sequence(value):
    try:
        len(value)
        iter(value)
    except TypeError:
        return False
    return True


def _exact_integer(value):
    """``value`` as an int when it is an integer of any kind (NumPy's too), else unchanged."""
    if isinstance(value, bool):
        return value
    try:
        return operator.index(value)
    except TypeError:
        return value


def _is_name(value):
    return isinstance(value, str) and len(value) <= MAX_NAME_CHARACTERS and _is_text(value)


def _is_text(value):
    """Whether ``value`` is Unicode text: a lone surrogate has no UTF-8 (an ONNX graph's metadata refused it)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name_problem(value):
    if not isinstance(value, str):
        return "not a string"
    if not _is_text(value):
        return "not Unicode text (it holds a lone surrogate, which has no UTF-8)"
    return f"{len(value)} characters, more than the {MAX_NAME_CHARACTERS} a model file keeps"


def _is_size(value, largest):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= largest


def _shown(value):
    """``repr(value)``, cut to a readable length: a name may be 1 MB in a crafted file."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARACTERS else text[:_SHOWN_CHARACTERS] + f"... ({len(text)} characters)"
