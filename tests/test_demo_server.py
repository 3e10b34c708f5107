"""The demo's server, spoken to directly: its answers, its refusals, and what it never does.

The model is a small MLP trained on digits drawn by a program (tests/_drawn_digits.py), so
these tests run offline; the browser's side is tests/test_demo_browser.py.
"""
import base64
import http.client
import json
import os

import numpy as np
import pytest
from _demo_helpers import running_server
from _drawn_digits import drawn_digits_model, drawn_test_set, render, strokes_on_canvas

from nncore.demo import DemoApp
from nncore.demo.server import MAX_BODY_BYTES
from nncore.model import MLP
from nncore.preprocess import mnist_style


@pytest.fixture(scope="module")
def model():
    return drawn_digits_model()


@pytest.fixture(scope="module")
def test_set():
    return drawn_test_set(seed=7)


@pytest.fixture(scope="module")
def server(model, test_set):
    with running_server(model, test_set=test_set, title="drawn-digits model") as server:
        yield server


def _request(server, method, path, body=None, headers=None, host=None):
    """(status, headers, body bytes) of one request on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host or f"127.0.0.1:{server.port}")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def _post_json(server, payload, **options):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return _request(server, "POST", "/api/predict", body, headers, **options)


def _ink_request(ink):
    height, width = ink.shape
    return {"width": width, "height": height, "ink": base64.b64encode(ink.tobytes()).decode()}


def test_it_listens_on_127_0_0_1_only(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_a_drawing_is_answered_with_the_preprocessed_image_and_predict_proba_in_float64(server, model):
    drawing = render(strokes_on_canvas(3))
    status, _, body = _post_json(server, _ink_request(drawing))
    assert status == 200
    reply = json.loads(body)
    image = mnist_style(drawing)
    assert reply["image"] == image.reshape(-1).tolist()
    expected = model.predict_proba(image.reshape(1, -1))[0].astype(np.float64)
    assert reply["probabilities"] == expected.tolist()  # exactly: JSON carries float64 both ways
    assert reply["predicted"] == 3 and reply["class_name"] == "3"


def test_the_random_test_image_is_one_of_the_test_set_with_its_label_and_the_model_s_answer(server, model, test_set):
    seen = set()
    for _ in range(5):
        status, _, body = _request(server, "GET", "/api/test-image")
        assert status == 200
        reply = json.loads(body)
        index = reply["index"]
        seen.add(index)
        assert reply["image"] == test_set.images[index].tolist()
        assert reply["label"] == test_set.labels[index] and reply["label_name"] == str(test_set.labels[index])
        expected = model.predict_proba(test_set.images[index:index + 1])[0].astype(np.float64)
        assert reply["probabilities"] == expected.tolist()
        assert reply["source"] == "drawn-digits/test"
    assert len(seen) > 1  # random, not always the same


def test_the_model_description_has_the_class_names_and_the_first_layer_weight_images(server, model):
    status, _, body = _request(server, "GET", "/api/model")
    assert status == 200
    description = json.loads(body)
    assert description["class_names"] == [str(k) for k in range(10)]
    assert description["layer_sizes"] == [784, 64, 10] and description["dataset"] == "drawn-digits"
    first_layer = description["first_layer"]
    assert first_layer["units"] == 64 and first_layer["of_units"] == 64
    levels = np.frombuffer(base64.b64decode(first_layer["weights"]), dtype=np.uint8).reshape(64, 784)
    weights = np.asarray(model.layers[0][0]).T
    clear = np.abs(weights) > 0.05 * first_layer["limit"]
    assert np.array_equal(levels[clear] > 128, weights[clear] > 0)  # 128 is zero, above it positive


def test_the_page_and_its_files_are_served_with_a_strict_content_security_policy(server):
    for path, content_type in (("/", "text/html"), ("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, headers, body = _request(server, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(content_type) and len(body) > 500
        assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert b'<canvas id="drawing"' in _request(server, "GET", "/")[2]


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                                  "/static/app.js", "/nncore/demo/server.py", "/app.js/..", "/index.html"])
def test_no_path_from_a_request_reaches_the_disk(server, path):
    status, _, body = _request(server, "GET", path)
    assert status == 404 and body.startswith(b"404 Not Found: no such page")


def test_serving_the_page_reads_no_file(server, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"the server opened a file: {args[:1]}")

    monkeypatch.setattr("builtins.open", refuse)
    monkeypatch.setattr(os, "open", refuse)
    assert _request(server, "GET", "/")[0] == 200
    assert _request(server, "GET", "/app.js")[0] == 200


def test_a_request_for_another_host_name_is_refused(server):
    # A page elsewhere that rebinds its own name to 127.0.0.1 still sends its own name as Host.
    status, _, body = _request(server, "GET", "/api/model", host=f"attacker.example:{server.port}")
    assert status == 403 and b"answers requests for" in body
    assert _request(server, "GET", "/api/model", host=f"localhost:{server.port}")[0] == 200


def _refusal(status, body):
    """The refusal's one line (asserting that it is one line, starting with its status)."""
    text = body.decode()
    assert text.endswith("\n") and text.count("\n") == 1, text
    assert text.startswith(str(status)), text
    return text


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.putrequest("POST", "/api/predict")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(50 * MAX_BODY_BYTES))
    connection.endheaders()  # and no body: the answer comes without it
    response = connection.getresponse()
    assert response.status == 413
    assert "over the limit" in _refusal(413, response.read())
    connection.close()


def _wrong_size(width, height, pixels):
    return {"width": width, "height": height, "ink": base64.b64encode(bytes(pixels)).decode()}


@pytest.mark.parametrize("payload, status, words", [
    (b'{"width": 280, "height"', 400, "malformed JSON"),
    (b"\xff\xfe not utf-8", 400, "malformed JSON"),
    (b"[1, 2, 3]", 400, "expected a JSON object"),
    ({"width": 280, "height": 280}, 400, "expected a JSON object"),
    ({"width": "280", "height": 280, "ink": ""}, 400, "width must be an integer"),
    ({"width": 280, "height": 280, "ink": "not base64!"}, 400, "not valid base64"),
    (_wrong_size(280, 280, [0] * 100), 422, "ink holds 100 pixels, a 280x280 image has 78400"),
    (_wrong_size(1000, 10, [0] * 10000), 422, "width 1000 is outside 28..280"),
    (_wrong_size(28, 0, []), 422, "height 0 is outside 28..280"),
    (_wrong_size(28, 28, [0] * 784), 422, "no ink"),
])
def test_malformed_requests_get_a_4xx_and_one_line(server, payload, status, words):
    got, _, body = _post_json(server, payload)
    assert got == status
    assert words in _refusal(status, body)


def test_a_post_must_be_json_with_a_length(server):
    status, _, body = _request(server, "POST", "/api/predict", b"width=28", {"Content-Type": "text/plain",
                                                                             "Content-Length": "8"})
    assert status == 415 and "application/json" in _refusal(415, body)
    status, _, body = _request(server, "POST", "/api/predict", None, {"Content-Type": "application/json"})
    assert status == 411 and "Content-Length" in _refusal(411, body)
    status, _, body = _request(server, "GET", "/api/predict")
    assert status == 405 and "POST" in _refusal(405, body)


def test_after_bad_requests_the_server_still_answers(server):
    for payload in (b"{", b"[]", _wrong_size(28, 28, [1] * 10)):
        assert _post_json(server, payload)[0] in (400, 422)
    status, _, body = _post_json(server, _ink_request(render(strokes_on_canvas(7))))
    assert status == 200 and json.loads(body)["predicted"] == 7


def test_a_model_for_other_images_is_refused():
    with pytest.raises(ValueError, match="the demo draws 28x28 digits"):
        DemoApp(MLP([100, 10], seed=0), title="small.npz")


def test_without_a_test_set_the_test_image_button_says_why(model):
    with running_server(model, test_set=None, title="arrays.npz") as server:
        status, _, body = _request(server, "GET", "/api/test-image")
    assert status == 404 and "names no dataset" in _refusal(404, body)


def test_a_test_set_that_fails_to_load_is_a_503_with_the_reason(model):
    def unavailable():
        raise OSError("the network is down")

    with running_server(model, test_set=unavailable) as server:
        status, _, body = _request(server, "GET", "/api/test-image")
    assert status == 503 and "the network is down" in _refusal(503, body)
