"""Train an MLP on real MNIST and draw the documentation's pictures.

    python examples/make_pictures.py --out pictures      # MNIST, 784-128-10, 10 epochs, into ./pictures
    python examples/make_pictures.py                      # the same, into a new temporary folder
    python examples/make_pictures.py --dataset fashion-mnist --out /tmp/fashion-pictures
    python examples/make_pictures.py --out docs/images    # refresh the pictures docs/guide/pictures.md shows

Needs the ``[plot]`` extra (matplotlib) and the data (fetched into the cache on first use,
see ``nncore fetch``). The PNGs are reduced to a 256-colour palette so that each stays small
enough to commit (the weights picture is noise-like and would otherwise be ~230 KB).
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

from nncore.backends import DEFAULT_BACKEND
from nncore.data import FetchError, load_dataset
from nncore.model import MLP
from nncore.optim import Adam

try:
    import matplotlib  # noqa: F401 -- nncore.plot imports it per figure; say what is missing before training
except ImportError:
    sys.exit('make_pictures.py needs matplotlib: pip install "nncore[plot]"')
from nncore import plot  # noqa: E402


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    parser.add_argument("--hidden", type=int, nargs="*", default=[128],
                        help="hidden layer widths (default: 128)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backend", default=DEFAULT_BACKEND, choices=("cython", "numpy"))
    parser.add_argument("--out", type=Path,
                        help="folder for the PNG files (default: a new temporary folder, printed at the end)")
    return parser.parse_args()


def shrink_png(path):
    """Rewrite ``path`` as a 256-colour palette PNG: a third of the size, no visible change here."""
    from PIL import Image  # Pillow comes with matplotlib

    with Image.open(path) as image:
        palette_image = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    palette_image.save(path, optimize=True)


def main():
    arguments = parse_arguments()
    try:
        train_and_validation = load_dataset(arguments.dataset, "train")
        test = load_dataset(arguments.dataset, "test")
    except FetchError as error:
        sys.exit(f"make_pictures.py: {error.headline}")
    # Never the repository's own docs/images unless asked: a run with defaults must not overwrite them.
    out = arguments.out or Path(tempfile.mkdtemp(prefix="nncore-pictures-"))
    train, validation = train_and_validation.split(1 / 6, seed=arguments.seed)

    model = MLP((train.n_features, *arguments.hidden, train.n_classes), seed=arguments.seed)
    started = time.perf_counter()
    history = model.fit(train, epochs=arguments.epochs, batch_size=arguments.batch_size,
                        optimizer=Adam(lr=arguments.lr), validation_data=validation,
                        backend=arguments.backend)
    print(f"trained {model} on {len(train):,} images in {time.perf_counter() - started:.1f} s; "
          f"test accuracy {model.evaluate(test, backend=arguments.backend).accuracy:.4f}")

    figures = {
        "training_curves": plot.training_curves(history),
        "predictions": plot.prediction_grid(model, test, n=36),
        "prediction_errors": plot.prediction_grid(model, test, n=36, only_errors=True),
        "confusion_matrix": plot.confusion_matrix(model, test),
        "first_layer_weights": plot.first_layer_weights(model, max_units=64),
    }
    for name, figure in figures.items():
        path = plot.save_figure(figure, out / f"{name}.png")
        shrink_png(path)
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    print(f"pictures in {out}")


if __name__ == "__main__":
    main()
