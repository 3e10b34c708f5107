"""What a model remembers of the data it was trained on, as its files record it.

Three optional fields, each None until known: ``dataset_name`` ("mnist"), ``class_names``
(one per output) and ``input_shape`` (one image's shape, e.g. (28, 28)). ``MLP.fit`` on a
Dataset sets them; a model file keeps them in its JSON header as the object ``data``; the
command line and the ONNX exporter read them. Files without ``data`` load with all three None.
"""
import math

#: The fields, in the order a header lists them.
DATA_FIELDS = ("dataset_name", "class_names", "input_shape")
# A crafted file cannot make a name (and so a message or a table column) arbitrarily long.
MAX_NAME_CHARACTERS = 200


def data_header(model):
    """The header's ``data`` object for ``model`` ({} when it knows nothing of its data).

    Raises ValueError when the fields do not fit the network: class names not one per output,
    an input shape that does not hold the inputs.
    """
    network, data = model.network, {}
    if model.dataset_name is not None:
        data["dataset_name"] = str(model.dataset_name)
    if model.class_names is not None:
        data["class_names"] = [str(name) for name in model.class_names]
        if len(data["class_names"]) != network.n_classes:
            raise ValueError(f"the model has {len(data['class_names'])} class names for "
                             f"{network.n_classes} outputs")
    if model.input_shape is not None:
        data["input_shape"] = [int(size) for size in model.input_shape]
        if min(data["input_shape"], default=0) < 1 or math.prod(data["input_shape"]) != network.n_inputs:
            raise ValueError(f"input_shape {tuple(data['input_shape'])} does not hold the model's "
                             f"{network.n_inputs} inputs")
    return data


def checked_data(data, network, fail):
    """The fields of a header's ``data`` object, checked against ``network``.

    ``class_names`` and ``input_shape`` come back as tuples; absent fields are left out.
    ``fail(problem)`` is called (and must raise) for anything malformed or unknown.
    """
    if not isinstance(data, dict):
        fail(f"data must be an object, got {data!r}")
    unknown = sorted(set(data) - set(DATA_FIELDS))
    if unknown:
        fail(f"unknown data field {unknown[0]!r} (known: {', '.join(DATA_FIELDS)})")
    checked = {}
    name = data.get("dataset_name")
    if name is not None:
        if not _is_name(name):
            fail(f"invalid dataset_name {name!r}")
        checked["dataset_name"] = name
    names = data.get("class_names")
    if names is not None:
        if not isinstance(names, list) or len(names) != network.n_classes or not all(map(_is_name, names)):
            fail(f"invalid class_names {names!r}: expected {network.n_classes} names")
        checked["class_names"] = tuple(names)
    shape = data.get("input_shape")
    if shape is not None:
        if not isinstance(shape, list) or not shape or not all(_is_size(size, network.n_inputs) for size in shape) \
                or math.prod(shape) != network.n_inputs:
            fail(f"invalid input_shape {shape!r} for {network.n_inputs} inputs")
        checked["input_shape"] = tuple(shape)
    return checked


def _is_name(value):
    return isinstance(value, str) and len(value) <= MAX_NAME_CHARACTERS


def _is_size(value, largest):
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= largest
