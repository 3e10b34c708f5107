"""The ``nncore`` command: train | evaluate | predict | fetch | info | bench.

User mistakes (a missing file, a bad option value, malformed data, a damaged model file)
print one line, ``nncore: error: ...``, to stderr and exit non-zero without a traceback.
Exit codes: 0 success, 1 error, 2 bad command line (argparse), 3 training diverged,
130 interrupted (Ctrl-C).
"""
import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 3, 130
DATASETS = ("mnist", "fashion-mnist")

#: ``nncore train``'s defaults: 784-256-128-10, Adam 2e-3 with cosine decay, batch 128, 10 epochs.
#: "lr" holds the learning rates tuned on MNIST per optimizer kind; a kind not listed starts
#: from its class's default.
DEFAULTS = {"hidden": [256, 128], "epochs": 10, "batch_size": 128, "optimizer": "adam",
            "lr": {"adam": 2e-3, "sgd": 0.05}, "momentum": 0.9, "schedule": "cosine",
            "validation_split": 0.1, "seed": 0}


class UserError(Exception):
    """A mistake on the command line or in its inputs: reported in one line, exit code 1."""


# ---------------------------------------------------------------- option types

def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _batch_size(text):
    if text.lower() in ("full", "none", "0"):
        return None
    return _positive_int(text)


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _fraction(text):
    value = _non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def _loss(text):
    from .losses import LOSSES, get_loss
    try:
        return get_loss(text.lower()).name
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOSSES)}, got {text!r}") from None


# ---------------------------------------------------------------- the parser

class _Parser(argparse.ArgumentParser):
    """argparse, with command-line mistakes reported in one line (exit code 2)."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser():
    from .activations import ACTIVATIONS
    from .network import INITIALIZERS
    from .optim import OPTIMIZERS

    parser = _Parser(
        prog="nncore", description="Train and use MLPs on MNIST-class data (compiled core over BLAS).")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"nncore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    data_options = argparse.ArgumentParser(add_help=False)
    data_options.add_argument("--data-dir", metavar="DIR", help=(
        "read the dataset from DIR (official IDX names, raw or .gz, or Kaggle CSV files "
        "mnist_train.csv / mnist_test.csv) instead of the verified cache"))
    run_options = argparse.ArgumentParser(add_help=False)
    run_options.add_argument("--backend", choices=("cython", "numpy"), default="cython",
                             help="compute backend (default: cython, the compiled core)")
    run_options.add_argument("--threads", type=_positive_int, metavar="N",
                             help="limit BLAS/OpenMP threads (default: the libraries' own)")

    train = commands.add_parser(
        "train", parents=[data_options, run_options], help="train a model, print per-epoch progress and test accuracy",
        description="Train an MLP; print one line per epoch, then the test accuracy.")
    train.add_argument("dataset", nargs="?", choices=DATASETS, default="mnist", help="the dataset (default: %(default)s)")
    train.add_argument("--hidden", type=_positive_int, nargs="*", metavar="N", default=DEFAULTS["hidden"],
                       help="hidden layer widths, e.g. --hidden 256 128; none for a linear softmax model (default: 256 128)")
    train.add_argument("--epochs", type=_non_negative_int, default=DEFAULTS["epochs"], help="epochs (default: %(default)s)")
    train.add_argument("--batch-size", type=_batch_size, default=DEFAULTS["batch_size"],
                       help="samples per update; 'full' for full-batch gradient descent (default: %(default)s)")
    train.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu",
                       help="activation of the hidden layers (default: %(default)s)")
    train.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=DEFAULTS["optimizer"],
                       help="(default: %(default)s)")
    tuned = ", ".join(f"{lr:g} for {kind}" for kind, lr in DEFAULTS["lr"].items())
    train.add_argument("--lr", type=_non_negative_float, help=f"learning rate (default: {tuned})")
    train.add_argument("--momentum", type=_fraction, default=DEFAULTS["momentum"], help="SGD momentum (default: %(default)s)")
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    train.add_argument("--weight-decay", type=_non_negative_float, default=0.0, help="L2 weight decay")
    train.add_argument("--schedule", choices=("constant", "step", "cosine"), default=DEFAULTS["schedule"],
                       help="learning-rate schedule over the epochs (default: %(default)s)")
    train.add_argument("--loss", type=_loss, default="cross_entropy", help="cross-entropy or mse (default: cross-entropy)")
    train.add_argument("--init", choices=tuple(INITIALIZERS),
                       help="weight initialisation (default: the activation's: he for relu, xavier otherwise)")
    train.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="(default: %(default)s)")
    train.add_argument("--seed", type=_non_negative_int, default=DEFAULTS["seed"],
                       help="seed of the initial weights, the shuffling and the validation split (default: %(default)s)")
    train.add_argument("--validation-split", type=_fraction, default=DEFAULTS["validation_split"],
                       help="fraction of the training set held out for validation, 0 for none (default: %(default)s)")
    train.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                       help="stop when validation loss has not improved for PATIENCE epochs")
    train.add_argument("--save", metavar="PATH", help="save the trained model to PATH (.npz)")
    train.add_argument("--checkpoint-dir", metavar="DIR", help="write a checkpoint there after every epoch")
    train.add_argument("--resume", action="store_true", help="continue from the checkpoint in --checkpoint-dir")
    train.add_argument("--plots", metavar="DIR", help="write figures there (needs matplotlib)")
    train.add_argument("--quiet", action="store_true", help="print only the final test accuracy")

    evaluate = commands.add_parser(
        "evaluate", parents=[data_options, run_options], help="test accuracy, loss and confusion matrix of a model",
        description="Evaluate a saved model: accuracy, loss and a text confusion matrix.")
    evaluate.add_argument("model", metavar="MODEL", help="a model file written by `nncore train --save`")
    evaluate.add_argument("--dataset", choices=DATASETS, default="mnist", help="the dataset (default: mnist)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test", help="which split (default: test)")
    evaluate.add_argument("--loss", type=_loss, default="cross_entropy", help="loss to report")
    evaluate.add_argument("--plots", metavar="DIR", help="write figures there (needs matplotlib)")

    predict = commands.add_parser(
        "predict", parents=[data_options, run_options], help="predict classes of dataset images or of an IDX file",
        description="Print the predicted class and its probability for each image.")
    predict.add_argument("model", metavar="MODEL", help="a model file written by `nncore train --save`")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--indices", type=_non_negative_int, nargs="+", metavar="I",
                        help="indices of images in the dataset split")
    source.add_argument("--idx", metavar="FILE", help="an IDX file of images (N x 28 x 28 or N x 784, uint8)")
    predict.add_argument("--dataset", choices=DATASETS, default="mnist", help="the dataset (default: mnist)")
    predict.add_argument("--split", choices=("test", "train"), default="test", help="which split (default: test)")

    fetch = commands.add_parser("fetch", help="download and verify a dataset into the cache",
                                description="Fill the cache with a dataset, verified by SHA-256.")
    fetch.add_argument("dataset", choices=DATASETS)
    fetch.add_argument("--data-dir", metavar="DIR", help="try this local directory first")
    fetch.add_argument("--quiet", action="store_true", help="no progress output")

    commands.add_parser("info", help="versions, compiled core, BLAS library and threads",
                        description="Report versions, the compiled core, the BLAS library and thread counts.")
    commands.add_parser("bench", help="benchmark the backends (see `nncore bench --help`)", add_help=False)
    _add_export_parser(commands)
    return parser


def _add_export_parser(commands):
    from .onnx_export import INPUT_DTYPES  # onnx itself is imported only when exporting

    export = commands.add_parser(
        "export", help="write a model as an ONNX graph (needs nncore[onnx])",
        description="Write a saved model as an ONNX graph (opset 13): Gemm + activation per layer, Softmax.")
    export.add_argument("model", metavar="MODEL", help="a model file written by `nncore train --save`")
    export.add_argument("--onnx", metavar="PATH", required=True, help="where to write the .onnx file")
    export.add_argument("--input", choices=INPUT_DTYPES, default="uint8", help=(
        "uint8: the graph takes pixels 0..255 and scales them by 1/255; float: it takes values of the "
        "model's dtype as they are (default: %(default)s)"))


# ---------------------------------------------------------------- data

def load_split(dataset, split, data_dir=None):
    """The ``split`` of ``dataset``: from the verified cache, or read as-is from ``data_dir``.

    Either way the result's ``source``/``summary`` says where it came from; a split without
    labels (Kaggle's test.csv) is an ``nncore.data.ImageSet``.
    """
    from .data import load_dataset
    return load_dataset(dataset, split, data_dir=data_dir, progress=data_dir is None)


def _load_model(path):
    from .model import load
    return load(path)


def _plots(directory, model, dataset, history=None):
    try:
        from . import plot
    except ImportError as error:
        raise UserError(f"--plots needs nncore.plot ({error})") from None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UserError("--plots needs matplotlib: pip install 'nncore[plot]'") from None
    Path(directory).mkdir(parents=True, exist_ok=True)
    for path in plot.write_all(model, dataset, history=history, directory=directory):
        print(f"wrote {path}")


# ---------------------------------------------------------------- commands

def command_train(args):
    from .callbacks import EarlyStopping
    from .model import MLP
    from .optim import make_optimizer

    if args.resume and not args.checkpoint_dir:
        raise UserError("--resume needs --checkpoint-dir")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    train_set = load_split(args.dataset, "train", args.data_dir)
    test_set = load_split(args.dataset, "test", args.data_dir)
    layer_sizes = [train_set.n_features, *args.hidden, train_set.n_classes]
    model = MLP(layer_sizes, activation=args.activation, dtype=args.dtype, init=args.init, seed=args.seed)
    options = {"momentum": args.momentum, "nesterov": args.nesterov, "weight_decay": args.weight_decay}
    lr = args.lr if args.lr is not None else DEFAULTS["lr"].get(args.optimizer)
    if lr is not None:  # else the kind's own default
        options["lr"] = lr
    optimizer = make_optimizer(args.optimizer, **options)
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    n_val = round(args.validation_split * len(train_set))
    hidden = f"{args.activation} hidden layers, " if args.hidden else ""
    say(f"training {'-'.join(map(str, layer_sizes))} on {args.dataset} ({len(train_set) - n_val} train, "
        f"{n_val} validation), {hidden}{optimizer!r}, {args.schedule} schedule, {batch}, {args.epochs} epochs, "
        f"{args.loss} loss, backend {args.backend}")
    early = EarlyStopping(patience=args.early_stopping) if args.early_stopping else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # interruption is reported below
        history = model.fit(train_set.images, train_set.labels, epochs=args.epochs, batch_size=args.batch_size,
                            optimizer=optimizer, loss=args.loss, validation_split=args.validation_split or None,
                            backend=args.backend, early_stopping=early, checkpoint_dir=args.checkpoint_dir,
                            resume=args.resume, verbose=0 if args.quiet else 1,
                            lr_schedule=None if args.schedule == "constant" else args.schedule,
                            seed=args.seed, n_threads=args.threads)
    if history.interrupted:
        kept = f"; the checkpoint in {args.checkpoint_dir} is intact (--resume continues)" \
            if args.checkpoint_dir else ""
        print(f"nncore: interrupted after {len(history)} complete epoch(s){kept}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    result = model.evaluate(test_set, loss=args.loss, backend=args.backend, n_threads=args.threads)
    seconds = sum(history.seconds)
    print(f"test accuracy {result.accuracy:.2%} (loss {result.loss:.4f}) after {model.epochs_trained} epochs, "
          f"{seconds:.1f} s of training", flush=True)
    if args.save:
        model.save(args.save)
        say(f"saved model to {args.save}")
    if args.plots:
        _plots(args.plots, model, test_set, history)
    return 0


def command_evaluate(args):
    from .metrics import confusion_matrix, format_confusion_matrix

    model = _load_model(args.model)
    dataset = load_split(args.dataset, args.split, args.data_dir)
    _check_compatible(model, dataset.n_features, args.model)
    if dataset.n_classes != model.n_classes:
        raise UserError(f"{args.model} has {model.n_classes} outputs, {args.dataset} has {dataset.n_classes} classes")
    started = time.perf_counter()
    result = model.evaluate(dataset, loss=args.loss, backend=args.backend, n_threads=args.threads)
    predictions = model.predict(dataset.images, backend=args.backend, n_threads=args.threads)
    seconds = time.perf_counter() - started
    print(f"{args.dataset} {args.split}: {len(dataset)} images, accuracy {result.accuracy:.2%}, "
          f"{args.loss} loss {result.loss:.4f} ({seconds:.2f} s)")
    print(format_confusion_matrix(confusion_matrix(dataset.labels, predictions, model.n_classes),
                                  dataset.class_names))
    if args.plots:
        _plots(args.plots, model, dataset)
    return 0


def _check_compatible(model, n_features, path):
    if model.n_inputs != n_features:
        raise UserError(f"{path} takes {model.n_inputs} inputs, the images have {n_features} pixels")


def command_predict(args):
    model = _load_model(args.model)
    labels, class_names = None, None
    if args.idx:
        from .data import read_images
        images = read_images(args.idx).images
        indices = np.arange(len(images))
    else:
        dataset = load_split(args.dataset, args.split, args.data_dir)
        bad = [i for i in args.indices if i >= len(dataset)]
        if bad:
            raise UserError(f"index {bad[0]} is out of range: {args.dataset} {args.split} has {len(dataset)} images")
        indices = np.array(args.indices)
        images, labels, class_names = dataset.images[indices], dataset.labels[indices], dataset.class_names
    _check_compatible(model, images.shape[1], args.model)
    proba = model.predict_proba(images, backend=args.backend, n_threads=args.threads)
    predicted = proba.argmax(axis=1)
    name = (lambda k: class_names[k]) if class_names and len(class_names) == model.n_classes else str
    print("index  predicted  probability" + ("  label" if labels is not None else ""))
    for row, index in enumerate(indices):
        line = f"{index:>5}  {name(predicted[row]):>9}  {proba[row, predicted[row]]:>11.4f}"
        if labels is not None:
            mark = "" if labels[row] == predicted[row] else "  (wrong)"
            line += f"  {name(labels[row]):>5}{mark}"
        print(line)
    return 0


def command_export(args):
    from .onnx_export import OPSET, hidden_activations, to_onnx

    model = _load_model(args.model)
    to_onnx(model, args.onnx, input_dtype=args.input)
    takes = "uint8 pixels (scaled by 1/255 in the graph)" if args.input == "uint8" else \
        f"{model.dtype.name} values (as they are)"
    print(f"wrote {args.onnx}: {'-'.join(map(str, model.layer_sizes))} "
          f"({', '.join(hidden_activations(model)) or 'no hidden layers'}), {model.dtype.name}, "
          f"input {takes}, ONNX opset {OPSET}")
    return 0


def command_fetch(args):
    from .data import fetch_dataset
    directory = fetch_dataset(args.dataset, data_dir=args.data_dir, progress=not args.quiet)
    print(f"{args.dataset}: ready in {directory}")
    return 0


def command_info(args):
    try:
        from . import info
    except ImportError as error:
        raise UserError(f"`nncore info` is not available in this installation ({error})") from None
    if hasattr(info, "format_report"):
        print(info.format_report(info.collect()))
        return 0
    return info.main([])


def command_bench(argv):
    try:
        import nncore_bench
    except ImportError as error:
        if error.name != "nncore_bench":
            raise
        raise UserError("`nncore bench` needs the nncore_bench package, which `pip install .` of an nncore "
                        "checkout installs beside nncore (from benchmarks/)") from None
    return nncore_bench.main(argv)


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
            "fetch": command_fetch, "info": command_info, "export": command_export}


def _error(message, code=EXIT_ERROR):
    print(f"nncore: error: {message}", file=sys.stderr, flush=True)
    return code


def main(argv=None):
    """Run the command line; return the exit code (the console script exits with it)."""
    from .errors import DataError, ModelFileError, TrainingDiverged

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "bench":
            return command_bench(argv[1:])
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except TrainingDiverged as error:
        return _error(str(error), EXIT_DIVERGED)
    except KeyboardInterrupt:
        print("nncore: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except (UserError, DataError, ModelFileError) as error:
        return _error(str(error))
    except ImportError as error:  # e.g. --backend cython when the extension did not build
        return _error(f"{error}")
    except BrokenPipeError:
        return 0
    except (ValueError, TypeError, OSError) as error:
        # Argument checks inside the library (e.g. a model for other data) and unreadable files
        # are user mistakes too; NNCORE_DEBUG=1 shows the traceback.
        if os.environ.get("NNCORE_DEBUG"):
            raise
        if isinstance(error, OSError) and error.filename and error.strerror:
            return _error(f"{error.filename}: {error.strerror}")
        return _error(str(error))


if __name__ == "__main__":
    sys.exit(main())
