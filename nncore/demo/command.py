"""``nncore demo [MODEL]``: its options, and running the server until Ctrl-C.

Everything that can fail on the user's input fails before the server starts: a model file
that does not load, a model that does not take 28x28 images, a port in use. The cli module
only registers the command; the work is here.
"""
import argparse
import signal
import sys
import webbrowser
from pathlib import Path


class DemoError(ValueError):
    """A reason the demo cannot start, in one line (``nncore: error: ...``, exit code 1)."""


def add_demo_parser(commands):
    """Register ``demo`` among the ``nncore`` subcommands (``commands``: argparse's subparsers)."""
    demo = commands.add_parser(
        "demo", help="a local web page: draw a digit and watch the network answer",
        description="Serve a page on 127.0.0.1 where you draw a digit and see what the network receives "
                    "(preprocessed as MNIST was), its probabilities and its first-layer weights. Ctrl-C stops it.")
    demo.add_argument("model", nargs="?", metavar="MODEL", help=(
        "a model file written by `nncore train --save` (default: a 784-256-128-10 network trained on MNIST "
        "on first use and cached)"))
    demo.add_argument("--port", type=_port, default=0, help="the port (default: a free one)")
    demo.add_argument("--open", action="store_true", help="open the page in the web browser")
    demo.add_argument("--data-dir", metavar="DIR", help=(
        "read the test images of the random-test-image button from DIR (IDX or CSV files) instead of the "
        "dataset the model file names"))


def _port(text):
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number in 0..65535, got {text!r}")
    return port


def command_demo(args):
    """Load the model, start the server, print its URL, serve until Ctrl-C; the exit code."""
    from .app import DemoApp

    model, title = _model(args.model)
    try:
        app = DemoApp(model, test_set=_test_set_loader(model, args.data_dir), title=title)
    except ValueError as error:
        raise DemoError(str(error)) from None
    server = _listening_server(app, args.port)
    print(f"nncore demo: {title} at {server.url} (Ctrl-C stops it)", flush=True)
    if args.open:
        webbrowser.open(server.url)
    previous_handler = signal.signal(signal.SIGTERM, _stop)  # `kill` stops it as cleanly as Ctrl-C
    try:
        server.serve_forever(poll_interval=0.25)
    except KeyboardInterrupt:
        print("nncore demo: stopped", file=sys.stderr, flush=True)
    finally:
        server.server_close()
        signal.signal(signal.SIGTERM, previous_handler)
    return 0


def _stop(signal_number, frame):
    raise KeyboardInterrupt


def _model(path):
    """(the MLP, its name on the page): the file's, else the cached default model."""
    from ..model import load
    from .default_model import load_default_model

    if path is None:
        return load_default_model(), "the default MNIST model"
    return load(path), Path(path).name


def _test_set_loader(model, data_dir):
    """What loads the random-test-image button's images, or None: the model's dataset, or ``data_dir``."""
    from ..data.fetch import DATASETS, load_dataset

    name = model.dataset_name
    if data_dir is not None:
        return lambda: load_dataset(name if name in DATASETS else "mnist", "test", data_dir=data_dir)
    if name in DATASETS:
        return lambda: load_dataset(name, "test", progress=True)
    return None


def _listening_server(app, port):
    from .server import HOST, DemoServer

    try:
        return DemoServer(app, port)
    except OSError as error:
        raise DemoError(f"cannot listen on {HOST}:{port}: {error.strerror or error}") from None
