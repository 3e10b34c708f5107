"""Draw the demo guide's pictures into docs/images/: the page, and MNIST's preprocessing step by step.

    python examples/demo_pictures.py                       # the default model (trained on first use)
    python examples/demo_pictures.py --model my.npz --out /tmp/pictures

It draws a digit with the mouse on the real page in a real browser, as a learner would (small
and off-centre, as learners do), takes a screenshot, then puts the ink the page sent through
each step of ``nncore.preprocess`` and draws them beside what a plain shrink of the canvas
gives. Needs the ``[plot]`` extra (matplotlib), Playwright and Debian's ``chromium``.
"""
import argparse
import base64
import shutil
import sys
import threading
from pathlib import Path

import numpy as np

from nncore import load
from nncore.demo import DemoApp, DemoServer, load_default_model
from nncore.preprocess import FRAME_SIDE, centre_of_mass, preprocessing_steps

REPOSITORY = Path(__file__).resolve().parent.parent
#: A "3" in the canvas's upper left, two strokes (canvas pixels): smaller and further from the
#: centre than MNIST's digits, which is what the preprocessing is for.
STROKES = [
    [(52, 48), (80, 36), (112, 40), (124, 60), (112, 82), (86, 94)],
    [(86, 94), (116, 104), (130, 128), (118, 152), (88, 162), (56, 154)],
]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model file (default: nncore demo's default model)")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "docs" / "images")
    return parser.parse_args()


def draw_on_the_page(url, screenshot_path):
    """Draw STROKES with the mouse, screenshot the page; return the ink the page sent last."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 560})
        page.goto(url)
        page.evaluate("() => window.nncoreDemo.ready.then(() => true)")
        canvas = page.locator("#drawing").bounding_box()
        for stroke in STROKES:
            with page.expect_response(lambda response: response.url.endswith("/api/predict")) as reply:
                page.mouse.move(canvas["x"] + stroke[0][0], canvas["y"] + stroke[0][1])
                page.mouse.down()
                for x, y in stroke[1:]:
                    page.mouse.move(canvas["x"] + x, canvas["y"] + y, steps=8)
                page.mouse.up()
        request = reply.value.request.post_data_json
        page.wait_for_function("() => document.getElementById('predicted').textContent !== '–'")
        page.screenshot(path=str(screenshot_path), full_page=True)
        browser.close()
    return np.frombuffer(base64.b64decode(request["ink"]), dtype=np.uint8).reshape(request["height"], request["width"])


def steps_figure(model, ink):
    """The preprocessing's steps, and a plain shrink of the canvas, each with the network's answer."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    steps = preprocessing_steps(ink)
    shrunk = np.rint(ink.reshape(FRAME_SIDE, 10, FRAME_SIDE, 10).mean(axis=(1, 3))).astype(np.uint8)
    figure = Figure(figsize=(12, 3.9), layout="constrained")
    axes = figure.subplots(1, 4)
    top, left, bottom, right = steps.box
    axes[0].imshow(steps.ink, cmap="gray", vmin=0, vmax=1)
    axes[0].add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, color="tab:orange"))
    axes[0].set_title(f"1. the drawing ({ink.shape[1]}x{ink.shape[0]}):\nits ink's bounding box", fontsize=10)
    axes[1].imshow(steps.boxed, cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("2. the box scaled to 20 pixels,\naspect kept, area-averaged", fontsize=10)
    axes[2].imshow(steps.image, cmap="gray", vmin=0, vmax=255)
    y, x = centre_of_mass(steps.image)
    axes[2].plot(x - 0.5, y - 0.5, "+", color="tab:orange", markersize=12)
    axes[2].add_patch(Rectangle((13.5, 13.5), 1, 1, fill=False, color="tab:orange", linestyle=":"))
    axes[2].set_title(f"3. in 28x28, centre of mass in pixel 14:\n{_answer(model, steps.image)}", fontsize=10)
    axes[3].imshow(shrunk, cmap="gray", vmin=0, vmax=255)
    axes[3].set_title(f"without it: the canvas shrunk to 28x28:\n{_answer(model, shrunk)}", fontsize=10)
    for each in axes:
        each.set_xticks([])
        each.set_yticks([])
    return figure


def _answer(model, image):
    probabilities = model.predict_proba(image.reshape(1, -1))[0]
    k = int(np.argmax(probabilities))
    names = model.class_names or [str(c) for c in range(model.n_classes)]
    return f"the network says {names[k]} ({probabilities[k]:.0%})"


def main():
    arguments = parse_arguments()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_pictures import shrink_png

    from nncore.plot import save_figure

    model = load(arguments.model) if arguments.model else load_default_model()
    arguments.out.mkdir(parents=True, exist_ok=True)
    server = DemoServer(DemoApp(model, title=Path(arguments.model).name if arguments.model else
                                "the default MNIST model"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    screenshot = arguments.out / "demo.png"
    try:
        ink = draw_on_the_page(server.url, screenshot)
    finally:
        server.shutdown()
        server.server_close()
    steps = save_figure(steps_figure(model, ink), arguments.out / "demo_preprocessing.png")
    for path in (screenshot, steps):
        shrink_png(path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
