"""Models remember their data (issue 15 item 3): ``fit`` on a Dataset records the dataset's name,
class names and image shape on the model, model files keep them, ``nncore evaluate``/``predict``
use them by default and refuse data of another width or class count; old files still load."""
import json
import zipfile

import numpy as np
import pytest
from test_cli import run, tiny_images
from test_model import blobs

import nncore
from nncore.cli import main
from nncore.data import Dataset, write_idx
from nncore.data.fetch import FASHION_MNIST_CLASS_NAMES
from nncore.errors import ModelFileError

FASHION = FASHION_MNIST_CLASS_NAMES


def tiny_dataset(n=200, seed=0, name="fashion-mnist/train", class_names=FASHION):
    images, labels = tiny_images(n, seed)
    return Dataset(images.reshape(n, -1), labels, class_names, name=name)


def header_of(path):
    with zipfile.ZipFile(path) as archive, archive.open("header.npy") as stream:
        return json.loads(np.lib.format.read_array(stream).tobytes())


def test_fit_on_a_dataset_records_its_name_class_names_and_image_shape():
    model = nncore.MLP([784, 16, 10], seed=0)
    assert (model.dataset_name, model.class_names, model.input_shape) == (None, None, None)
    model.fit(tiny_dataset(), epochs=1, backend="numpy", verbose=0)
    assert model.dataset_name == "fashion-mnist"
    assert model.class_names == FASHION
    assert model.input_shape == (28, 28)


def test_fit_on_arrays_keeps_what_the_model_knew():
    model = nncore.MLP([784, 16, 10], seed=0)
    model.fit(tiny_dataset(), epochs=1, backend="numpy", verbose=0)
    images, labels = tiny_images(50, 1)
    model.fit(images.reshape(50, -1), labels, epochs=1, backend="numpy", verbose=0)
    assert model.dataset_name == "fashion-mnist" and model.class_names == FASHION


def test_a_dataset_with_another_class_count_is_refused_by_fit():
    model = nncore.MLP([784, 16, 12], seed=0)
    with pytest.raises(ValueError, match="fashion-mnist/train has 10 classes, the model 12 outputs"):
        model.fit(tiny_dataset(), epochs=1, backend="numpy", verbose=0)


def test_the_model_file_keeps_them_and_load_restores_them(tmp_path):
    model = nncore.MLP([784, 16, 10], seed=0)
    model.fit(tiny_dataset(), epochs=1, backend="numpy", verbose=0)
    model.save(tmp_path / "m.npz")
    assert header_of(tmp_path / "m.npz")["data"] == {
        "dataset_name": "fashion-mnist", "class_names": list(FASHION), "input_shape": [28, 28]}
    again = nncore.load(tmp_path / "m.npz")
    assert (again.dataset_name, again.class_names, again.input_shape) == ("fashion-mnist", FASHION, (28, 28))
    assert again.copy().class_names == FASHION


def test_files_without_the_data_fields_still_load(tmp_path):
    model = nncore.MLP([16, 8, 4], seed=0)
    model.save(tmp_path / "plain.npz")
    assert "data" not in header_of(tmp_path / "plain.npz")
    again = nncore.load(tmp_path / "plain.npz")
    assert (again.dataset_name, again.class_names, again.input_shape) == (None, None, None)
    np.testing.assert_array_equal(again.params, model.params)


def test_class_names_set_by_hand_must_match_the_outputs(tmp_path):
    model = nncore.MLP([16, 8, 4], seed=0)
    model.class_names = ("a", "b", "c")
    with pytest.raises(ValueError, match="3 class names for 4 outputs"):
        model.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("data, message", [
    ({"class_names": ["a", "b"]}, "class_names"),
    ({"class_names": [1, 2, 3, 4]}, "class_names"),
    ({"input_shape": [5, 5]}, "input_shape"),
    ({"dataset_name": 7}, "dataset_name"),
    ({"colour": "red"}, "colour"),
    ("mnist", "data"),
])
def test_malformed_data_fields_are_refused(tmp_path, data, message):
    from nncore.io import FORMAT_NAME, FORMAT_VERSION, write_npz_atomic
    model = nncore.MLP([16, 8, 4], seed=0)
    header = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "kind": "model", "layer_sizes": [16, 8, 4],
              "activations": ["relu"], "dtype": "float32", "data": data}
    write_npz_atomic(tmp_path / "bad.npz", header, {"params": model.params})
    with pytest.raises(ModelFileError, match=message):
        nncore.load(tmp_path / "bad.npz")


def test_the_estimator_names_the_classes_of_its_model():
    X, y = blobs(120)
    classifier = nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, backend="numpy")
    classifier.fit(X, np.array(["cat", "dog", "eel", "fox"])[y])
    assert classifier.model_.class_names == ("cat", "dog", "eel", "fox")


def test_onnx_metadata_carries_what_the_model_remembers(tmp_path):
    pytest.importorskip("onnx")
    model = nncore.MLP([784, 8, 10], seed=0)
    model.fit(tiny_dataset(), epochs=1, backend="numpy", verbose=0)
    proto = model.to_onnx(tmp_path / "m.onnx")
    metadata = {entry.key: entry.value for entry in proto.metadata_props}
    assert metadata["dataset"] == "fashion-mnist"
    assert json.loads(metadata["class_names"]) == list(FASHION)
    assert json.loads(metadata["input_shape"]) == [28, 28]


# ---------------------------------------------------------------- the command line

@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fashion")
    for split, (n, seed) in {"train": (300, 0), "t10k": (60, 1)}.items():
        images, labels = tiny_images(n, seed)
        write_idx(directory / f"{split}-images-idx3-ubyte", images)
        write_idx(directory / f"{split}-labels-idx1-ubyte", labels)
    return directory


@pytest.fixture(scope="module")
def fashion_model(fashion_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("fashion-model") / "fashion.npz"
    assert main(["train", "fashion-mnist", "--data-dir", str(fashion_dir), "--backend", "numpy", "--hidden", "16",
                 "--epochs", "3", "--batch-size", "32", "--lr", "0.005", "--save", str(path), "--quiet"]) == 0
    return path


def test_train_saves_the_dataset_it_trained_on(fashion_model):
    model = nncore.load(fashion_model)
    assert (model.dataset_name, model.class_names, model.input_shape) == ("fashion-mnist", FASHION, (28, 28))


def test_evaluate_uses_the_models_dataset_by_default(fashion_model, fashion_dir, capsys):
    code, out, err = run(capsys, "evaluate", fashion_model, "--data-dir", fashion_dir, "--backend", "numpy")
    assert code == 0, err
    assert out.startswith("fashion-mnist test: 60 images, accuracy ")
    assert "Ankle boot" in out


def test_evaluate_on_another_dataset_than_the_models_says_so(fashion_model, fashion_dir, capsys):
    code, out, err = run(capsys, "evaluate", fashion_model, "--dataset", "mnist", "--data-dir", fashion_dir,
                         "--backend", "numpy")
    assert code == 0, err
    assert out.startswith("mnist test: ")
    assert err.strip() == f"nncore: note: {fashion_model} was trained on fashion-mnist; evaluating on mnist as asked"


def test_predict_names_the_models_classes_for_a_file_of_images(fashion_model, tmp_path, capsys):
    images, labels = tiny_images(4, 2)
    write_idx(tmp_path / "four-idx3-ubyte", images)
    code, out, err = run(capsys, "predict", fashion_model, "--idx", tmp_path / "four-idx3-ubyte", "--backend", "numpy")
    assert code == 0, err
    rows = out.splitlines()[1:]
    assert len(rows) == 4 and all(any(name in row for name in FASHION) for row in rows)


def test_predict_refuses_images_of_another_size_naming_the_models_shape(fashion_model, tmp_path, capsys):
    write_idx(tmp_path / "small-idx3-ubyte", np.zeros((3, 16, 16), np.uint8))
    code, _, err = run(capsys, "predict", fashion_model, "--idx", tmp_path / "small-idx3-ubyte")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert f"{fashion_model} takes 28x28 images (784 pixels); " in err and "256 pixels" in err


def test_evaluate_refuses_a_dataset_with_another_class_count(tmp_path, fashion_dir, capsys):
    model = nncore.MLP([784, 8, 5], seed=0)
    model.save(tmp_path / "five.npz")
    code, _, err = run(capsys, "evaluate", tmp_path / "five.npz", "--data-dir", fashion_dir, "--backend", "numpy")
    assert code == 1 and "5 classes" in err and "10 classes" in err and len(err.strip().splitlines()) == 1


def test_a_model_of_an_unknown_dataset_needs_data_named(tmp_path, capsys):
    model = nncore.MLP([784, 8, 10], seed=0)
    model.fit(tiny_dataset(name="my-digits", class_names=[str(d) for d in range(10)]), epochs=1,
              backend="numpy", verbose=0)
    model.save(tmp_path / "mine.npz")
    code, _, err = run(capsys, "evaluate", tmp_path / "mine.npz")
    assert code == 1 and "trained on my-digits" in err and "--data-dir" in err
