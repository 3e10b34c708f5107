"""nncore.plot: each figure drawn headless from a tiny trained model, and its content checked."""
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nncore import plot
from nncore.data.dataset import Dataset
from nncore.model import MLP

# matplotlib is in the [dev] extra; without it only the figures' ImportError could be tested.
FigureCanvasAgg = pytest.importorskip("matplotlib.backends.backend_agg").FigureCanvasAgg
to_hex = pytest.importorskip("matplotlib.colors").to_hex

CLASS_NAMES = ("T-shirt/top", "Trouser", "Sneaker")


def synthetic_images(n_samples, seed):
    """28x28 uint8 images of three classes: a bright bar at the top, middle or bottom, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n_samples).astype(np.uint8)
    images = rng.integers(0, 60, (n_samples, 28, 28)).astype(np.uint8)
    for index, label in enumerate(labels):
        top = 3 + 9 * int(label)
        images[index, top:top + 5, 4:24] = 230
    return images.reshape(n_samples, 784), labels


@pytest.fixture(scope="module")
def trained():
    """(model, history, test Dataset with a few labels flipped, so some predictions are wrong)."""
    X, y = synthetic_images(300, seed=1)
    X_validation, y_validation = synthetic_images(60, seed=2)
    model = MLP((784, 20, 3), seed=0)
    history = model.fit(X, y, epochs=4, batch_size=32, validation_data=(X_validation, y_validation),
                        backend="numpy")
    X_test, y_test = synthetic_images(40, seed=3)
    y_test[[1, 5, 6]] = (y_test[[1, 5, 6]] + 1) % 3
    test = Dataset(X_test, y_test, CLASS_NAMES, name="tiny test")
    return model, history, test


def title_color(axes):
    return to_hex(axes.title.get_color())


def png_size(path):
    """(width, height) in pixels, read from the PNG's IHDR chunk."""
    with open(path, "rb") as file:
        header = file.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", header[16:24])


# ---------------------------------------------------------------- without matplotlib

def test_figures_without_matplotlib_raise_import_error_naming_the_extra(monkeypatch, trained):
    model, history, test = trained
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    draws = (lambda: plot.prediction_grid(model, test), lambda: plot.training_curves(history),
             lambda: plot.confusion_matrix(model, test), lambda: plot.first_layer_weights(model),
             lambda: plot.write_all(model, test, history))
    for draw in draws:
        with pytest.raises(ImportError, match=r'pip install "nncore\[plot\]"'):
            draw()


def test_module_imports_and_formats_text_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "nncore.plot")
    import nncore.plot as fresh_plot

    assert "accuracy" in fresh_plot.format_confusion_matrix(np.eye(2, dtype=int) * 3)


def test_figures_never_import_pyplot():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        from nncore import plot

        class Model:  # all a figure asks of a model
            layer_sizes = (784, 4, 2)
            layers = [(np.zeros((784, 4), np.float32), np.zeros(4, np.float32)),
                      (np.zeros((4, 2), np.float32), np.zeros(2, np.float32))]
            def predict(self, X):
                return np.zeros(len(X), int)

        model, X, y = Model(), np.zeros((3, 784), np.uint8), np.array([0, 1, 0])
        plot.write_all(model, (X, y), {"loss": [1.0, 0.5]}, directory=sys.argv[1])
        assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
    """)
    import tempfile
    with tempfile.TemporaryDirectory() as directory:
        subprocess.run([sys.executable, "-c", code, directory], check=True)


# ---------------------------------------------------------------- prediction grid

def test_prediction_grid_titles_are_green_when_right_and_red_with_the_truth_when_wrong(trained):
    model, _, test = trained
    figure = plot.prediction_grid(model, test, n=12)
    predictions = model.predict(test.images[:12])

    assert isinstance(figure.canvas, FigureCanvasAgg)
    assert len(figure.axes) == 12
    wrong = 0
    for axes, predicted, true in zip(figure.axes, predictions, test.labels[:12], strict=True):
        if predicted == true:
            assert axes.get_title() == f"pred {CLASS_NAMES[predicted]}"
            assert title_color(axes) == plot.RIGHT_COLOR
        else:
            wrong += 1
            assert axes.get_title() == f"pred {CLASS_NAMES[predicted]}\ntrue {CLASS_NAMES[true]}"
            assert title_color(axes) == plot.WRONG_COLOR
    assert wrong >= 3  # the flipped labels
    assert figure.get_suptitle() == f"First 12 images of tiny test: {12 - wrong} predicted right"


def test_prediction_grid_shows_each_image_as_28_by_28_grayscale(trained):
    model, _, test = trained
    figure = plot.prediction_grid(model, test, n=4)
    for index, axes in enumerate(figure.axes):
        (image,) = axes.get_images()
        np.testing.assert_array_equal(image.get_array(), test.images[index].reshape(28, 28))
        assert image.get_cmap().name == "gray_r"
        assert image.get_clim() == (0, 255)


def test_prediction_grid_of_errors_shows_only_misclassified_images(trained):
    model, _, test = trained
    wrong = np.flatnonzero(model.predict(test.images) != test.labels)
    figure = plot.prediction_grid(model, test, n=100, only_errors=True)

    assert len(figure.axes) == len(wrong)
    assert all(title_color(axes) == plot.WRONG_COLOR for axes in figure.axes)
    for axes, index in zip(figure.axes, wrong, strict=True):
        assert axes.get_title().endswith(f"true {CLASS_NAMES[test.labels[index]]}")
    assert f"{len(wrong)} misclassified images of tiny test" in figure.get_suptitle()


def test_prediction_grid_of_errors_says_so_when_there_are_none(trained):
    model, _, test = trained
    right = model.predict(test.images)
    figure = plot.prediction_grid(model, (test.images, right), only_errors=True)
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert texts == ["no misclassified images"]


def test_prediction_grid_takes_an_images_labels_tuple_and_titles_with_digits(trained):
    model, _, test = trained
    figure = plot.prediction_grid(model, (test.images, test.labels), n=3)
    predictions = model.predict(test.images[:3])
    assert [axes.get_title().split("\n")[0] for axes in figure.axes] == [f"pred {p}" for p in predictions]


# ---------------------------------------------------------------- training curves

def test_training_curves_plot_loss_and_accuracy_for_training_and_validation(trained):
    _, history, _ = trained
    values = getattr(history, "history", history)
    figure = plot.training_curves(history)

    loss_axes, accuracy_axes = figure.axes
    assert loss_axes.get_title() == "Loss"
    assert accuracy_axes.get_title() == "Accuracy"
    for axes, key in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        assert axes.get_xlabel() == "epoch"
        training, validation = axes.get_lines()
        assert [t.get_text() for t in axes.get_legend().get_texts()] == ["training", "validation"]
        np.testing.assert_array_equal(training.get_xdata(), [1, 2, 3, 4])
        np.testing.assert_allclose(training.get_ydata(), values[key])
        np.testing.assert_allclose(validation.get_ydata(), values["val_" + key])
        assert validation.get_linestyle() == "--"
    assert figure.get_suptitle().startswith("After epoch 4: training accuracy")


def test_training_curves_accept_a_plain_dict_without_validation():
    history = {"loss": [1.0, 0.5, 0.25], "accuracy": [0.5, 0.7, 0.9],
               "val_loss": [None, None, None], "seconds": [0.1, 0.1, 0.1]}
    loss_axes, accuracy_axes = plot.training_curves(history).axes
    assert [line.get_label() for line in loss_axes.get_lines()] == ["training"]
    assert [line.get_label() for line in accuracy_axes.get_lines()] == ["training"]


def test_training_curves_number_epochs_from_the_history_of_a_resumed_run():
    history = {"epoch": [4, 5, 6], "loss": [0.3, 0.2, 0.1], "accuracy": [0.8, 0.85, 0.9]}
    figure = plot.training_curves(history)
    (line,) = figure.axes[0].get_lines()
    np.testing.assert_array_equal(line.get_xdata(), [4, 5, 6])
    assert figure.get_suptitle() == "After epoch 6: training accuracy 90.00%"


def test_training_curves_need_some_values():
    with pytest.raises(ValueError, match="no 'loss'"):
        plot.training_curves({"seconds": [1.0]})
    with pytest.raises(TypeError, match="History or a dict"):
        plot.training_curves([0.5, 0.4])


# ---------------------------------------------------------------- confusion matrix

def test_confusion_matrix_annotates_every_nonzero_count_and_each_class_accuracy(trained):
    model, _, test = trained
    predictions = model.predict(test.images)
    expected = np.zeros((3, 3), int)
    for true, predicted in zip(test.labels, predictions, strict=True):
        expected[true, predicted] += 1

    figure = plot.confusion_matrix(model, test)
    matrix_axes, accuracy_axes = figure.axes
    shown = {(round(text.get_position()[1]), round(text.get_position()[0])): int(text.get_text())
             for text in matrix_axes.texts}
    assert shown == {(t, p): expected[t, p] for t in range(3) for p in range(3) if expected[t, p]}
    assert [label.get_text() for label in matrix_axes.get_xticklabels()] == list(CLASS_NAMES)
    assert [label.get_text() for label in matrix_axes.get_yticklabels()] == list(CLASS_NAMES)
    assert (matrix_axes.get_xlabel(), matrix_axes.get_ylabel()) == ("predicted class", "true class")

    per_class = [f"{100 * expected[k, k] / expected[k].sum():.1f}%" for k in range(3)]
    assert [text.get_text() for text in accuracy_axes.texts] == per_class
    overall = f"{100 * np.trace(expected) / expected.sum():.2f}%"
    assert figure.get_suptitle() == f"Confusion matrix on tiny test (40 images): accuracy {overall}"


def test_format_confusion_matrix_aligns_counts_and_names_classes_in_full():
    text = plot.format_confusion_matrix(np.array([[8, 2], [0, 10]]), ["Sandal", "Ankle boot"])
    assert text.splitlines() == [
        "true \\ predicted    0   1  accuracy",
        "0 Sandal            8   2     80.0%",
        "1 Ankle boot        0  10    100.0%",
        "accuracy 90.00% (18 of 20)",
    ]


def test_format_confusion_matrix_marks_a_class_without_examples():
    text = plot.format_confusion_matrix(np.array([[3, 0], [0, 0]]))
    assert text.splitlines()[2].split() == ["1", "0", "0", "-"]


# ---------------------------------------------------------------- first-layer weights

def test_first_layer_weights_show_each_units_incoming_weights_centred_at_zero(trained):
    model, _, _ = trained
    figure = plot.first_layer_weights(model, max_units=8)
    W = model.layers[0][0]

    images = [image for axes in figure.axes for image in axes.get_images()]
    assert len(images) == 8
    for unit, image in enumerate(images):
        np.testing.assert_allclose(image.get_array(), W[:, unit].reshape(28, 28), rtol=1e-6)
        low, high = image.get_clim()
        assert low == -high > -np.inf and high > 0
        assert image.get_cmap().name == "RdBu_r"
    colorbars = [axes for axes in figure.axes if axes.get_ylabel() == "weight"]
    assert len(colorbars) == 1
    assert figure.get_suptitle().startswith("First-layer weights: 8 of 20 hidden units")


def test_first_layer_weights_show_all_units_up_to_the_limit(trained):
    model, _, _ = trained
    figure = plot.first_layer_weights(model)
    assert sum(len(axes.get_images()) for axes in figure.axes) == 20


# ---------------------------------------------------------------- saving

def test_save_figure_writes_png_of_the_figures_pixel_size(tmp_path, trained):
    _, history, _ = trained
    figure = plot.training_curves(history)
    path = plot.save_figure(figure, tmp_path / "sub" / "curves.png", dpi=50)
    width, height = figure.get_size_inches()
    assert png_size(path) == (round(width * 50), round(height * 50))


def test_save_figure_writes_svg_by_suffix_and_refuses_others(tmp_path, trained):
    _, history, _ = trained
    figure = plot.training_curves(history)
    path = plot.save_figure(figure, tmp_path / "curves.svg")
    assert "<svg" in path.read_text()[:1000]
    with pytest.raises(ValueError, match=".png or .svg"):
        plot.save_figure(figure, tmp_path / "curves.jpg")


def test_write_all_writes_every_figure_and_returns_the_paths(tmp_path, trained):
    model, history, test = trained
    paths = plot.write_all(model, test, history, directory=tmp_path / "plots")
    assert [path.name for path in paths] == [
        "training_curves.png", "predictions.png", "prediction_errors.png",
        "confusion_matrix.png", "first_layer_weights.png"]
    for path in paths:
        width, height = png_size(path)
        assert width > 100 and height > 100


def test_write_all_without_history_skips_the_training_curves(tmp_path, trained):
    model, _, test = trained
    paths = plot.write_all(model, test, directory=tmp_path)
    assert "training_curves.png" not in [path.name for path in paths]
    assert len(paths) == 4
