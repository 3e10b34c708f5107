"""The demo page in a real browser: Chromium driven by Playwright, strokes drawn with the mouse.

For each drawing the test reads what the page sent (the raw ink) and what it got back, puts
the ink through ``mnist_style`` itself, and checks that the page shows exactly that image
and exactly ``predict_proba``'s probabilities on it. The model is trained offline on digits
drawn by a program (tests/_drawn_digits.py), so it recognises these mouse drawings for real.
Skipped where there is no browser, except under NNCORE_REQUIRE_BROWSER (CI).
"""
import base64
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _demo_helpers import chromium, chromium_path, open_page, running_server
from _drawn_digits import drawn_digits_model, drawn_test_set, strokes_on_canvas

from nncore.preprocess import mnist_style

#: Where the screenshot goes besides the test's own directory (e.g. to look at it, or for the docs).
SCREENSHOT_COPY = "NNCORE_DEMO_SCREENSHOT"

_PAGE_STATE = """() => {
    const pixels = document.getElementById("received").getContext("2d").getImageData(0, 0, 28, 28).data;
    const rows = [...document.querySelectorAll("#bars li")];
    return {
        image: Array.from({length: 784}, (_, i) => pixels[4 * i]),
        probabilities: rows.map((row) => row.dataset.probability === undefined ? null : Number(row.dataset.probability)),
        values: rows.map((row) => row.querySelector(".value").textContent),
        highlighted: rows.map((row) => row.classList.contains("predicted")),
        predicted: document.getElementById("predicted").textContent,
        truth: document.getElementById("truth").textContent,
        inkOnCanvas: document.getElementById("drawing").getContext("2d")
            .getImageData(0, 0, 280, 280).data.reduce((sum, value, i) => i % 4 === 0 ? sum + value : sum, 0),
    };
}"""


@pytest.fixture(scope="module")
def model():
    return drawn_digits_model()


@pytest.fixture(scope="module")
def test_set():
    return drawn_test_set(seed=11)


@pytest.fixture(scope="module")
def server(model, test_set):
    with running_server(model, test_set=test_set, title="drawn-digits model") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server.url)
    yield page
    page.context.close()


def _is_predict(response):
    return response.url.endswith("/api/predict")


def draw_with_the_mouse(page, digit):
    """Draw the digit's strokes on the canvas, one mouse stroke each; the last stroke's /api/predict response."""
    canvas = page.locator("#drawing").bounding_box()
    response = None
    for stroke in strokes_on_canvas(digit):
        with page.expect_response(_is_predict) as reply:
            page.mouse.move(canvas["x"] + stroke[0][0], canvas["y"] + stroke[0][1])
            page.mouse.down()
            for x, y in stroke[1:]:
                page.mouse.move(canvas["x"] + x, canvas["y"] + y, steps=6)
            page.mouse.up()
        response = reply.value
    return response


def page_state_after(page, reply):
    """What the page shows, once it shows the answer ``reply``."""
    page.wait_for_function("(first) => Number(document.querySelector('#bars li').dataset.probability) === first",
                           arg=reply["probabilities"][0])
    return page.evaluate(_PAGE_STATE)


def sent_ink(request):
    body = request.post_data_json
    return np.frombuffer(base64.b64decode(body["ink"]), dtype=np.uint8).reshape(body["height"], body["width"])


@pytest.mark.parametrize("digit", [2, 4, 7])
def test_a_digit_drawn_with_the_mouse_shows_the_image_the_server_received_and_its_probabilities(page, model, digit):
    response = draw_with_the_mouse(page, digit)
    assert response.status == 200
    reply = response.json()
    ink = sent_ink(response.request)
    # The raw ink went to the server: brush-wide strokes along the mouse's path.
    for stroke in strokes_on_canvas(digit):
        for x, y in stroke.astype(int):
            assert ink[y, x] == 255
    assert 0.05 < np.count_nonzero(ink) / ink.size < 0.3
    image = mnist_style(ink)
    assert reply["image"] == image.reshape(-1).tolist()
    probabilities = model.predict_proba(image.reshape(1, -1))[0].astype(np.float64)
    assert reply["probabilities"] == probabilities.tolist()

    shown = page_state_after(page, reply)
    assert shown["image"] == reply["image"]  # the enlarged 28x28 picture is the image the server used
    assert shown["probabilities"] == probabilities.tolist()
    predicted = int(np.argmax(probabilities))
    assert predicted == digit and shown["predicted"] == str(digit)
    assert shown["highlighted"] == [k == predicted for k in range(10)]
    assert shown["values"][predicted] == f"{100 * probabilities[predicted]:.1f}%"


def test_a_finger_draws_too(browser, server, model):
    page = open_page(browser, server.url, has_touch=True)
    try:
        canvas = page.locator("#drawing").bounding_box()
        touch = page.context.new_cdp_session(page)
        stroke = strokes_on_canvas(1)[0]
        points = [{"x": canvas["x"] + x, "y": canvas["y"] + y} for x, y in stroke]
        dense = [{"x": a["x"] + (b["x"] - a["x"]) * t, "y": a["y"] + (b["y"] - a["y"]) * t}
                 for a, b in zip(points[:-1], points[1:]) for t in np.linspace(0, 1, 8)]
        with page.expect_response(_is_predict) as reply:
            touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [dense[0]]})
            for point in dense[1:]:
                touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
            touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        shown = page_state_after(page, reply.value.json())
        assert shown["predicted"] == "1"
        assert shown["image"] == mnist_style(sent_ink(reply.value.request)).reshape(-1).tolist()
    finally:
        page.context.close()


def test_clear_empties_the_drawing_and_the_answer(page):
    draw_with_the_mouse(page, 7)
    assert page.evaluate(_PAGE_STATE)["inkOnCanvas"] > 0
    page.click("#clear")
    shown = page.evaluate(_PAGE_STATE)
    assert shown["inkOnCanvas"] == 0 and shown["image"] == [0] * 784
    assert shown["probabilities"] == [None] * 10 and shown["predicted"] == "–"


def test_the_test_image_button_shows_a_test_image_with_its_true_label_and_the_prediction(page, model, test_set):
    with page.expect_response(lambda response: response.url.endswith("/api/test-image")) as reply:
        page.click("#test-image")
    answer = reply.value.json()
    shown = page_state_after(page, answer)
    index = answer["index"]
    assert shown["image"] == test_set.images[index].tolist()
    assert shown["truth"] == f"(true label: {test_set.labels[index]})"
    expected = model.predict_proba(test_set.images[index:index + 1])[0].astype(np.float64)
    assert shown["probabilities"] == expected.tolist()
    assert shown["predicted"] == str(int(np.argmax(expected)))


def test_the_first_layer_weights_are_drawn_red_positive_blue_negative(page, model):
    colours = page.evaluate("""() => [...document.querySelectorAll("#weights canvas")].map((canvas) =>
        Array.from(canvas.getContext("2d").getImageData(0, 0, 28, 28).data))""")
    assert len(colours) == 64
    weights = np.asarray(model.layers[0][0]).T
    limit = np.percentile(np.abs(weights), 99.5)
    for unit in (0, 31, 63):
        rgba = np.array(colours[unit]).reshape(784, 4)
        clear = np.abs(weights[unit]) > 0.1 * limit
        assert np.array_equal((rgba[:, 0] > rgba[:, 2])[clear], (weights[unit] > 0)[clear])


def test_a_refusal_is_shown_on_the_page(page):
    page.evaluate("""() => { const pen = document.getElementById("drawing").getContext("2d");
                             pen.fillStyle = "#000"; pen.fillRect(0, 0, 280, 280); }""")
    page.route("**/api/predict", lambda route: route.continue_(post_data=b'{"width": 3}'))
    canvas = page.locator("#drawing").bounding_box()
    with page.expect_response(_is_predict):
        page.mouse.click(canvas["x"] + 140, canvas["y"] + 140)  # a dot: a stroke of its own
    # A function, not an expression: the page's Content-Security-Policy forbids eval, which polling one uses.
    page.wait_for_function("() => document.getElementById('status').classList.contains('error')")
    assert page.text_content("#status").startswith("400 Bad Request: expected a JSON object")


def test_a_screenshot_shows_the_drawing_and_the_answer(page, tmp_path):
    from PIL import Image

    response = draw_with_the_mouse(page, 2)
    page_state_after(page, response.json())
    path = tmp_path / "demo.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get(SCREENSHOT_COPY):
        shutil.copyfile(path, os.environ[SCREENSHOT_COPY])
    picture = np.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("L"))
    canvas = page.locator("#drawing").bounding_box()
    drawn = picture[int(canvas["y"]):int(canvas["y"] + 280), int(canvas["x"]):int(canvas["x"] + 280)]
    assert np.count_nonzero(drawn > 200) > 1000  # the white strokes on the black canvas are in the picture
    assert page.locator("#received").bounding_box()["width"] == 224  # the 28x28 image, enlarged 8 times


def test_the_guide_s_pictures_are_drawn_from_a_mouse_drawing_on_the_page(tmp_path, model):
    from PIL import Image

    chromium_path()  # the script needs the browser: skip or fail as the other tests here
    path = tmp_path / "digits.npz"
    model.save(path)
    script = Path(__file__).resolve().parent.parent / "examples" / "demo_pictures.py"
    completed = subprocess.run([sys.executable, str(script), "--model", str(path), "--out", str(tmp_path)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    for name, size in (("demo.png", (1360, 560)), ("demo_preprocessing.png", (1200, 390))):
        with Image.open(tmp_path / name) as picture:
            assert picture.size == size
