"""MLP: construction, initialisation, inference, training on small synthetic data, input checks."""
import numpy as np
import pytest

import nncore
from nncore.backends import get_backend


def _available(name):
    try:
        get_backend(name)
    except ImportError:
        return False
    return True


BACKENDS = ["numpy", pytest.param("cython", marks=pytest.mark.skipif(
    not _available("cython"), reason="the compiled backend is not built"))]


def blobs(n=400, n_features=16, n_classes=4, seed=0, spread=0.6):
    """Separable Gaussian blobs: class k centred on a random unit-ish vector."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, n_features)) * 2
    y = rng.integers(0, n_classes, n)
    X = centres[y] + spread * rng.normal(size=(n, n_features))
    return X.astype(np.float32), y


def blobs_uint8(n=400, n_features=16, n_classes=4, seed=0):
    X, y = blobs(n, n_features, n_classes, seed)
    scaled = (X - X.min()) / (X.max() - X.min()) * 255
    return np.round(scaled).astype(np.uint8), y


def test_layer_sizes_any_depth_and_width():
    model = nncore.MLP([5, 7, 3, 11, 2], seed=0)
    assert [W.shape for W, _ in model.layers] == [(5, 7), (7, 3), (3, 11), (11, 2)]
    assert model.n_parameters == 5 * 7 + 7 + 7 * 3 + 3 + 3 * 11 + 11 + 11 * 2 + 2
    assert all(np.all(b == 0) for _, b in model.layers)


def test_layers_are_views_into_the_flat_buffer():
    model = nncore.MLP([3, 4, 2], seed=0)
    model.layers[0][0][0, 0] = 42.0
    assert model.params[0] == 42.0


def test_he_init_has_std_sqrt_2_over_fan_in_and_seed_reproduces_it():
    model = nncore.MLP([400, 300, 10], init="he", seed=3)
    W = model.layers[0][0]
    assert abs(W.std() - np.sqrt(2 / 400)) < 0.01 * np.sqrt(2 / 400) * 5
    assert np.array_equal(model.params, nncore.MLP([400, 300, 10], init="he", seed=3).params)
    assert not np.array_equal(model.params, nncore.MLP([400, 300, 10], init="he", seed=4).params)


def test_xavier_init_stays_within_the_glorot_limit():
    model = nncore.MLP([50, 30, 10], init="xavier", seed=0, dtype="float64")
    W = model.layers[0][0]
    limit = np.sqrt(6 / 80)
    assert W.dtype == np.float64 and np.abs(W).max() <= limit and np.abs(W).max() > 0.9 * limit


@pytest.mark.parametrize("kwargs, error", [
    ({"layer_sizes": [4]}, ValueError), ({"layer_sizes": [4, 0, 2]}, ValueError),
    ({"layer_sizes": [4, 3, 2], "activation": "softsign"}, ValueError),
    ({"layer_sizes": [4, 3, 3, 2], "activation": ["relu"]}, ValueError),
    ({"layer_sizes": [4, 2], "init": "zeros"}, ValueError),
    ({"layer_sizes": [4, 2], "dtype": "float16"}, ValueError)])
def test_bad_constructor_arguments_raise(kwargs, error):
    with pytest.raises(error):
        nncore.MLP(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_proba_rows_are_distributions_and_predict_is_their_argmax(backend):
    X, _ = blobs(50)
    model = nncore.MLP([16, 8, 4], seed=0)
    proba = model.predict_proba(X, backend=backend)
    assert proba.shape == (50, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert np.array_equal(model.predict(X, backend=backend), proba.argmax(axis=1))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_learns_separable_blobs(backend, dtype):
    X, y = blobs()
    model = nncore.MLP([16, 32, 4], dtype=dtype, seed=0)
    history = model.fit(X, y, epochs=15, batch_size=32, backend=backend)
    assert len(history) == 15 and history.loss[-1] < history.loss[0]
    assert model.evaluate(X, y, backend=backend).accuracy > 0.95


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_on_uint8_inputs_scales_them(backend):
    X, y = blobs_uint8()
    model = nncore.MLP([16, 32, 4], seed=0)
    model.fit(X, y, epochs=20, batch_size=32, backend=backend, optimizer=nncore.Adam(lr=1e-2))
    assert model.evaluate(X, y, backend=backend).accuracy > 0.95
    # uint8 pixels mean value / 255:
    np.testing.assert_allclose(model.predict_proba(X, backend=backend),
                               model.predict_proba(X.astype(np.float32) / 255, backend=backend), rtol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_batch_gradient_descent_takes_one_step_per_epoch(backend):
    X, y = blobs(200)
    optimizer = nncore.SGD(lr=0.5)
    model = nncore.MLP([16, 4], seed=0)
    model.fit(X, y, epochs=30, batch_size=None, optimizer=optimizer, backend=backend, loss="mse")
    assert optimizer.step == 30
    assert model.evaluate(X, y, backend=backend).accuracy > 0.9


@pytest.mark.parametrize("backend", BACKENDS)
def test_fitting_again_continues_like_one_longer_fit(backend):
    X, y = blobs()
    once = nncore.MLP([16, 8, 4], seed=5)
    once.fit(X, y, epochs=4, batch_size=50, backend=backend)
    twice = nncore.MLP([16, 8, 4], seed=5)
    twice.fit(X, y, epochs=2, batch_size=50, backend=backend)
    optimizer = twice.optimizer
    history = twice.fit(X, y, epochs=2, batch_size=50, backend=backend)
    assert twice.optimizer is optimizer and optimizer.step == 4 * 8
    assert history.epoch == [3, 4] and twice.epochs_trained == 4
    assert np.array_equal(once.params, twice.params)


def test_a_new_optimizer_starts_with_fresh_state():
    X, y = blobs()
    model = nncore.MLP([16, 4], seed=0)
    model.fit(X, y, epochs=1, backend="numpy")
    fresh = nncore.SGD(lr=0.1, momentum=0.9)
    model.fit(X, y, epochs=1, optimizer=fresh, backend="numpy")
    assert model.optimizer is fresh and fresh.step == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluate_matches_predict(backend):
    X, y = blobs(120)
    model = nncore.MLP([16, 6, 4], seed=1)
    result = model.evaluate(X, y, backend=backend)
    assert result.accuracy == pytest.approx(np.mean(model.predict(X, backend=backend) == y))
    proba = model.predict_proba(X.astype(np.float64), backend=backend).astype(np.float64)
    assert result.loss == pytest.approx(-np.mean(np.log(proba[np.arange(len(y)), y])), rel=1e-4)
    loss, accuracy = result
    assert (loss, accuracy) == (result.loss, result.accuracy)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_inputs_are_rejected_before_training(bad):
    X, y = blobs(50)
    X[7, 3] = bad
    model = nncore.MLP([16, 4], seed=0)
    before = model.params.copy()
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        model.fit(X, y, epochs=1, backend="numpy")
    with pytest.raises(ValueError, match="validation_data X contains NaN"):
        model.fit(X[:7], y[:7], validation_data=(X, y), epochs=1, backend="numpy")
    assert np.array_equal(model.params, before)


def test_labels_out_of_range_are_rejected_naming_the_argument():
    X, y = blobs(50)
    model = nncore.MLP([16, 4], seed=0)
    with pytest.raises(ValueError, match=r"y holds label 4, outside 0..3"):
        model.fit(X, np.where(y == 0, 4, y), epochs=1, backend="numpy")
    with pytest.raises(ValueError, match=r"validation_data y holds label -1"):
        model.fit(X, y, validation_data=(X, y - 1), epochs=1, backend="numpy")
    with pytest.raises(ValueError, match="features"):
        model.fit(X[:, :5], y, epochs=1, backend="numpy")


@pytest.mark.parametrize("backend", BACKENDS)
def test_huge_learning_rate_raises_training_diverged_and_keeps_finite_parameters(backend):
    X, y = blobs()
    model = nncore.MLP([16, 32, 4], seed=0)
    with pytest.raises(nncore.TrainingDiverged) as caught:
        model.fit(X, y, epochs=5, batch_size=32, optimizer=nncore.SGD(lr=1e3), backend=backend)
    assert caught.value.epoch >= 1 and caught.value.batch >= 1
    assert f"epoch {caught.value.epoch}, batch {caught.value.batch}" in str(caught.value)
    assert np.all(np.isfinite(model.params))


@pytest.mark.parametrize("backend", BACKENDS)
def test_n_threads_limits_threads_without_changing_results(backend):
    X, y = blobs()
    a, b = nncore.MLP([16, 8, 4], seed=2), nncore.MLP([16, 8, 4], seed=2)
    a.fit(X, y, epochs=2, backend=backend, n_threads=1)
    b.fit(X, y, epochs=2, backend=backend)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-4, atol=1e-6)
    assert a.predict(X, n_threads=1, backend=backend).shape == (len(X),)
    with pytest.raises(ValueError, match="n_threads"):
        a.predict(X, n_threads=0, backend=backend)


def test_fit_and_evaluate_take_a_dataset_like_object():
    X, y = blobs_uint8(100)

    class Data:
        images, labels = X, y

    model = nncore.MLP([16, 4], seed=0)
    model.fit(Data(), epochs=1, backend="numpy", validation_data=Data())
    assert 0 <= model.evaluate(Data(), backend="numpy").accuracy <= 1


def test_copy_is_independent():
    model = nncore.MLP([4, 3, 2], seed=0)
    clone = model.copy()
    clone.params[:] = 0
    assert np.any(model.params != 0)


def test_integer_pixels_of_any_integer_dtype_are_scaled_like_uint8_everywhere():
    X, y = blobs_uint8(60)
    wide = X.astype(np.int64)  # e.g. np.array(list_of_pixels)
    model = nncore.MLP([16, 8, 4], seed=0)
    np.testing.assert_array_equal(model.predict_proba(wide), model.predict_proba(X))
    assert model.evaluate(wide, y) == model.evaluate(X, y)
    fitted = {}
    for name, data in (("uint8", X), ("int64", wide)):
        fitted[name] = nncore.MLP([16, 8, 4], seed=0)
        fitted[name].fit(data, y, epochs=2, batch_size=16, backend="numpy")
    np.testing.assert_array_equal(fitted["uint8"].params, fitted["int64"].params)
    classifiers = [nncore.MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0, backend="numpy")
                   .fit(data, y) for data in (X, wide)]
    np.testing.assert_array_equal(classifiers[0].predict_proba(X), classifiers[1].predict_proba(wide))


@pytest.mark.parametrize("bad", [256, -1])
def test_integer_inputs_outside_the_pixel_range_are_refused_by_model_fit_and_estimator(bad):
    X, y = blobs_uint8(40)
    X = X.astype(np.int32)
    X[3, 2] = bad
    model = nncore.MLP([16, 4], seed=0)
    for call in (lambda: model.predict_proba(X), lambda: model.fit(X, y, epochs=1, backend="numpy"),
                 lambda: nncore.MLPClassifier(max_iter=1, backend="numpy").fit(X, y)):
        with pytest.raises(ValueError, match="pixels 0..255"):
            call()


def test_boolean_inputs_are_refused():
    with pytest.raises(TypeError, match="booleans"):
        nncore.MLP([3, 2], seed=0).predict_proba(np.ones((2, 3), dtype=bool))


def test_values_finite_in_float64_but_infinite_in_the_model_dtype_are_refused():
    model = nncore.MLP([2, 3], dtype="float32", seed=0)
    X = np.array([[1e300, 0.0], [0.0, 1.0]])  # finite float64, inf once float32
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.predict_proba(X)
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.fit(X, np.array([0, 1]), epochs=1, backend="numpy")
    with pytest.raises(ValueError, match="NaN or infinity"):
        nncore.MLPClassifier(hidden_layer_sizes=(3,), max_iter=1, backend="numpy").fit(X, np.array([0, 1]))
