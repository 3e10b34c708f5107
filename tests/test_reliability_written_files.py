"""Issue 22, class 1: a file the writer wrote, the reader refuses.

One check (``nncore.model_data.data_problem``) decides what a model's data fields may hold; the
reader, the writer (``save``, checkpoints) and ``fit`` (names that come with the data) all call
it. So nothing is written that does not load, and nothing trains into a model that cannot be
saved. Each test failed on the code before: names over 200 characters saved and never loaded,
checkpoints holding them resumed but did not load, and ``input_shape=(4.5, 4)`` became (4, 4).
"""
import numpy as np
import pytest

import nncore
from nncore.data import Dataset
from nncore.errors import ModelFileError
from nncore.estimator import MLPClassifier
from nncore.io import load_checkpoint
from nncore.model_data import MAX_NAME_CHARACTERS

from test_reliability_checkpoints import rewrite_header
from test_reliability_training import blobs

LONG = "n" * (MAX_NAME_CHARACTERS + 1)


def pixels(n=60, n_features=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, n_features)).astype(np.uint8), np.arange(n) % 3


@pytest.mark.parametrize("field, value", [
    ("dataset_name", LONG),
    ("dataset_name", "lone \udcff surrogate"),
    ("class_names", ("a", LONG, "c")),
    ("class_names", ("a", "b")),
    ("class_names", "abc"),  # a string is not three names
    ("class_names", ("a", "b", None)),  # None is no name (it was written as "None")
    ("input_shape", (4.5, 4)),
    ("input_shape", (4.0, 4)),
    ("input_shape", (True, 16)),
    ("input_shape", 16),
    ("input_shape", (4, 5)),
])
def test_save_refuses_what_load_would_refuse_and_writes_nothing(tmp_path, field, value):
    model = nncore.MLP([16, 4, 3], seed=0)
    setattr(model, field, value)
    with pytest.raises(ValueError, match=f"refusing to write .*m.npz: the model's .*{field}"):
        model.save(tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


def test_the_onnx_writer_checks_the_data_fields_as_the_model_writer_does(tmp_path):
    pytest.importorskip("onnx")
    model = nncore.MLP([16, 4, 3], seed=0)
    model.dataset_name = "lone \udcff surrogate"  # was a UnicodeEncodeError from protobuf
    with pytest.raises(ValueError, match="dataset_name .*not Unicode text"):
        model.to_onnx(tmp_path / "m.onnx")
    model.dataset_name, model.input_shape = None, (4.5, 4)  # was written as [4, 4]
    with pytest.raises(ValueError, match="input_shape"):
        model.to_onnx(tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []


def test_integers_of_any_kind_are_an_input_shape_and_the_file_loads_as_written(tmp_path):
    model = nncore.MLP([16, 4, 3], seed=0)
    model.input_shape, model.class_names = (np.int64(4), np.uint8(4)), (0, 1, 2)
    model.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    assert loaded.input_shape == (4, 4) and all(type(size) is int for size in loaded.input_shape)
    assert loaded.class_names == ("0", "1", "2")


def test_names_at_the_limit_save_and_load(tmp_path):
    model = nncore.MLP([16, 4, 3], seed=0)
    limit = "x" * MAX_NAME_CHARACTERS
    model.dataset_name, model.class_names = limit, (limit, "b", "\x1b[31m")
    model.save(tmp_path / "m.npz")
    loaded = nncore.load(tmp_path / "m.npz")
    assert (loaded.dataset_name, loaded.class_names) == (limit, (limit, "b", "\x1b[31m"))


def test_fit_refuses_a_dataset_whose_names_no_model_file_keeps_before_training():
    images, labels = pixels()
    epochs = []
    for class_names, name in ((("a", LONG, "c"), "ds"), (("a", "b", "c"), LONG)):
        model = nncore.MLP([16, 4, 3], seed=0)
        before = model.params.copy()
        with pytest.raises(ValueError, match="class_names: name 1|dataset_name"):
            model.fit(Dataset(images, labels, class_names, name=name), epochs=1, verbose=0, backend="numpy",
                      callbacks=[lambda epoch, logs: epochs.append(epoch)])
        assert epochs == [] and np.array_equal(model.params, before)
        assert (model.dataset_name, model.class_names, model.input_shape) == (None, None, None)


def test_the_estimator_refuses_labels_no_model_file_keeps_before_training():
    X, _ = pixels()
    labels = np.array([LONG + str(k % 3) for k in range(len(X))])
    classifier = MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, backend="numpy")
    with pytest.raises(ValueError, match="y's labels: class_names: name 0 .* more than the 200"):
        classifier.fit(X, labels)
    assert not hasattr(classifier, "model_") and not hasattr(classifier, "classes_")


def test_fit_with_checkpoints_refuses_hand_set_names_before_the_first_epoch(tmp_path):
    X, y = blobs()
    model = nncore.MLP([12, 4, 3], seed=0)
    model.class_names = ("a", LONG, "c")
    with pytest.raises(ValueError, match="cannot write checkpoints into .*class_names: name 1"):
        model.fit(X, y, epochs=2, verbose=0, backend="numpy", checkpoint_dir=tmp_path / "ck")
    assert model.epochs_trained == 0 and not (tmp_path / "ck" / "checkpoint.npz").exists()


def test_resume_and_load_agree_on_a_checkpoint_with_invalid_names(tmp_path):
    X, y = blobs()
    nncore.MLP([12, 4, 3], seed=0).fit(X, y, epochs=1, verbose=0, backend="numpy", checkpoint_dir=tmp_path)
    path = tmp_path / "checkpoint.npz"
    rewrite_header(path, lambda header: header.update(data={"class_names": ["a", LONG, "c"]}))
    with pytest.raises(ModelFileError, match="invalid class_names"):
        nncore.load(path)
    with pytest.raises(ModelFileError, match="invalid class_names"):
        load_checkpoint(path)
    with pytest.raises(ModelFileError, match="invalid class_names"):
        nncore.MLP([12, 4, 3], seed=0).fit(X, y, epochs=2, verbose=0, backend="numpy", checkpoint_dir=tmp_path,
                                           resume=True)
