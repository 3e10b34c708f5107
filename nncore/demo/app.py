"""What the demo page asks of a model, without the HTTP: each reply as a JSON-able dict.

``DemoApp`` answers three questions: what the model is (its class names and first-layer
weight images), what it makes of a drawing (the raw ink, put through MNIST's preprocessing
in ``nncore.preprocess``, then ``predict_proba``), and what it makes of a random image of its
own test set. Bad input raises ``RequestError``, whose message is the one line the client
gets back with its status code.
"""
import base64
import binascii
import random
import threading

import numpy as np

from ..preprocess import FRAME_SIDE, mnist_style

#: The sides of the ink the page may send: the page's canvas is 280 x 280; smaller canvases are fine,
#: and the limit keeps the body (base64 of width * height bytes) small.
MIN_INK_SIDE, MAX_INK_SIDE = FRAME_SIDE, 280
#: First-layer units shown on the page, as plot.first_layer_weights shows them.
MAX_WEIGHT_IMAGES = 64


class RequestError(Exception):
    """A request the demo cannot answer: ``status`` (4xx or 503) and a one-line message."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class DemoApp:
    """The demo's answers for ``model`` (an ``MLP`` taking 28 x 28 images).

    ``test_set`` is the Dataset the random-test-image button draws from, or a function that
    loads it (called once, on the first request: the page must not wait for it at start);
    None when there is none. ``title`` names the model on the page.
    """

    def __init__(self, model, test_set=None, title="model", seed=None):
        check_model(model, title)
        self.model, self.title = model, title
        self.class_names = class_names_of(model)
        self._test_set, self._test_set_lock = test_set, threading.Lock()
        # The compiled core's forward pass owns its threads: one request at a time uses it.
        self._model_lock = threading.Lock()
        self._random = random.Random(seed)

    # ------------------------------------------------------------ the three questions

    def describe(self):
        """The model: title, dataset, class names, layer sizes, first-layer weight images."""
        return {"title": self.title, "dataset": self.model.dataset_name, "class_names": list(self.class_names),
                "layer_sizes": list(self.model.layer_sizes), "image_side": FRAME_SIDE,
                "ink_sides": [MIN_INK_SIDE, MAX_INK_SIDE], "first_layer": first_layer_images(self.model)}

    def predict_drawing(self, request):
        """The drawing ``{"width", "height", "ink": base64 of width * height bytes, 0 = no ink}``,
        preprocessed as MNIST was, and the model's answer on it."""
        ink = decode_ink(request)
        try:
            image = mnist_style(ink)
        except ValueError as error:  # an empty canvas
            raise RequestError(422, str(error)) from None
        return self.answer(image)

    def random_test_image(self):
        """A random image of the model's test set, its true label and the model's answer."""
        test_set = self._loaded_test_set()
        index = self._random.randrange(len(test_set))
        image = np.asarray(test_set.images[index], dtype=np.uint8).reshape(FRAME_SIDE, FRAME_SIDE)
        label = int(test_set.labels[index])
        return dict(self.answer(image), index=index, label=label, label_name=self.class_names[label],
                    source=test_set.name)

    # ------------------------------------------------------------ helpers

    def answer(self, image):
        """The model's answer on one 28 x 28 uint8 image: the image, float64 probabilities, the prediction."""
        with self._model_lock:
            probabilities = self.model.predict_proba(image.reshape(1, -1))[0].astype(np.float64)
        predicted = int(np.argmax(probabilities))
        return {"image": image.reshape(-1).tolist(), "probabilities": probabilities.tolist(),
                "predicted": predicted, "class_name": self.class_names[predicted]}

    def _loaded_test_set(self):
        with self._test_set_lock:
            if callable(self._test_set):
                try:
                    self._test_set = self._test_set()
                except (OSError, ValueError) as error:  # DataError and FetchError are ValueErrors
                    self._test_set = None
                    raise RequestError(503, f"no test images: {_first_line(error)}") from None
            if self._test_set is None:
                raise RequestError(404, f"{self.title} names no dataset nncore can load test images from")
            if not self._test_set.labeled or len(self._test_set) == 0:
                raise RequestError(404, f"{self._test_set.name} has no labeled images to compare with")
            return self._test_set


def check_model(model, title):
    """Refuse (ValueError) a model the page cannot feed: it must take 28 x 28 images."""
    if model.n_inputs != FRAME_SIDE * FRAME_SIDE or \
            model.input_shape not in (None, (FRAME_SIDE, FRAME_SIDE), (FRAME_SIDE * FRAME_SIDE,)):
        takes = (f"{'x'.join(map(str, model.input_shape))} images" if model.input_shape
                 else f"{model.n_inputs} pixels per image")
        raise ValueError(f"{title} takes {takes}; the demo draws {FRAME_SIDE}x{FRAME_SIDE} digits")


def class_names_of(model):
    """The model file's class names, else the class indices."""
    if model.class_names is not None:
        return tuple(model.class_names)
    return tuple(str(k) for k in range(model.n_classes))


def decode_ink(request):
    """The (height, width) uint8 ink of a predict request, checked; RequestError says what is wrong."""
    if not isinstance(request, dict) or set(request) != {"width", "height", "ink"}:
        raise RequestError(400, 'expected a JSON object {"width": W, "height": H, "ink": base64 of W*H bytes}')
    width, height, ink = request["width"], request["height"], request["ink"]
    for name, side in (("width", width), ("height", height)):
        if isinstance(side, bool) or not isinstance(side, int):
            raise RequestError(400, f"{name} must be an integer, got {side!r:.40}")
        if not MIN_INK_SIDE <= side <= MAX_INK_SIDE:
            raise RequestError(422, f"{name} {side} is outside {MIN_INK_SIDE}..{MAX_INK_SIDE} pixels")
    if not isinstance(ink, str):
        raise RequestError(400, "ink must be a base64 string")
    try:
        pixels = base64.b64decode(ink, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError(400, "ink is not valid base64") from None
    if len(pixels) != width * height:
        raise RequestError(422, f"ink holds {len(pixels)} pixels, a {width}x{height} image has {width * height}")
    return np.frombuffer(pixels, dtype=np.uint8).reshape(height, width)


def first_layer_images(model):
    """The first layer's incoming weights per unit (up to 64), as uint8 with 128 = 0.

    The scale is symmetric, its ends at the 99.5th percentile of |W| (as ``nncore.plot``'s
    picture), so that a few large weights do not wash out the rest; base64 keeps 50,000
    weights to 67 kB.
    """
    weights = np.asarray(model.layers[0][0], dtype=np.float64)
    shown = weights[:, :MAX_WEIGHT_IMAGES].T  # (units, 784)
    limit = float(np.percentile(np.abs(shown), 99.5)) or 1.0
    levels = np.rint(np.clip(shown / limit, -1.0, 1.0) * 127.0 + 128.0).astype(np.uint8)
    return {"units": int(shown.shape[0]), "of_units": int(weights.shape[1]), "limit": limit,
            "weights": base64.b64encode(levels.tobytes()).decode("ascii")}


def _first_line(error):
    return str(error).splitlines()[0] if str(error) else type(error).__name__
