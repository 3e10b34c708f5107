"""The ``nncore`` command: train | evaluate | predict | fetch | info | bench | demo.

User mistakes (a missing file, a bad option value, malformed data, a damaged model file)
print one line, ``nncore: error: ...``, to stderr and exit non-zero without a traceback. A
mistyped option is reported as an unrecognized option (with the closest real one), before
any positional argument it would otherwise have been read as.
Exit codes: 0 success, 1 error, 2 bad command line (argparse), 3 training diverged,
130 interrupted (Ctrl-C).
"""
import argparse
import difflib
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ._numbers import finite, whole
from ._terminal import ReaderMayLeave, printable

EXIT_ERROR, EXIT_USAGE, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 3, 130
DATASETS = ("mnist", "fashion-mnist")
_DATASET_CHOICES = "{" + ",".join(DATASETS) + "}"

#: ``nncore train``'s defaults: 784-256-128-10, Adam 2e-3 with cosine decay, batch 128, 10 epochs.
#: "lr" holds the learning rates tuned on MNIST per optimizer kind; a kind not listed starts
#: from its class's default.
DEFAULTS = {"hidden": [256, 128], "epochs": 10, "batch_size": 128, "optimizer": "adam",
            "lr": {"adam": 2e-3, "sgd": 0.05}, "momentum": 0.9, "schedule": "cosine",
            "validation_split": 0.1, "seed": 0}


class UserError(Exception):
    """A mistake on the command line or in its inputs: reported in one line, exit code 1."""


# ---------------------------------------------------------------- option types

def _number_argument(parse, check, expected):
    """An argparse type: the text parsed (``int`` or ``float``), then held to ``check`` (nncore._numbers,
    the one wording of every numeric check); anything else is "expected <expected>, got '<text>'"."""
    def convert(text):
        try:
            return check(parse(text))
        except (TypeError, ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    return convert


_positive_int = _number_argument(int, lambda value: whole("value", value, 1), "a positive integer")
_non_negative_int = _number_argument(int, lambda value: whole("value", value, 0), "a non-negative integer")
_non_negative_float = _number_argument(float, lambda value: finite("value", value, 0), "a finite number >= 0")
_fraction = _number_argument(float, lambda value: finite("value", value, 0, upper=1), "a fraction in [0, 1)")


def _batch_size(text):
    if text.lower() in ("full", "none"):
        return None
    try:
        return _positive_int(text)
    except argparse.ArgumentTypeError:  # 0 is not full batch: fit refuses it too
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'full', got {text!r}") from None


def _augment(text):
    from .augment import get_augment
    try:
        return get_augment(text.lower())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected none or shift:K (K pixels, e.g. shift:2), got {text!r}") from None


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

    def unrecognized(self, extras):
        """Report what parse_known_args left over: the first unknown option, with the closest real one."""
        options = [extra.split("=", 1)[0] for extra in extras if extra.startswith("-") and extra != "-"]
        if not options:
            self.error(f"unrecognized arguments: {' '.join(extras)}")
        known = [name for name in self._option_string_actions if name.startswith("--")]
        close = difflib.get_close_matches(options[0], known, n=1, cutoff=0.6)
        self.error(f"unrecognized option {options[0]}" + (f" (did you mean {close[0]}?)" if close else ""))


def parse_arguments(argv):
    """The parsed command line; usage errors exit with code 2.

    Unknown options are reported first: argparse would otherwise read the value of a mistyped
    ``--hiden 64`` as the positional dataset and complain about that (issue 15).
    """
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    command = parser.subcommands[args.command]
    if extras:
        command.unrecognized(extras)
    if getattr(args, "dataset", None) not in (None, *DATASETS):
        choices = ", ".join(map(repr, DATASETS))
        command.error(f"argument dataset: invalid choice: {args.dataset!r} (choose from {choices})")
    if args.command == "predict" and not (args.indices or args.idx or args.csv or args.submission):
        command.error("give the images to predict: --indices, --idx, --csv, or --submission for a whole split")
    if args.command == "predict" and args.indices and args.submission:
        command.error("--submission writes a prediction for every image: use --csv, --idx or the whole split, "
                      "not --indices")
    return args


def build_parser():
    parser = _Parser(
        prog="nncore", description="Train and use MLPs on MNIST-class data (compiled core over BLAS).")
    from . import __version__
    parser.add_argument("--version", action="version", version=f"nncore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    parser.subcommands = commands.choices

    data_options = argparse.ArgumentParser(add_help=False)
    data_options.add_argument("--data-dir", metavar="DIR", help=(
        "read the dataset from DIR as it is (official IDX names, raw or .gz; or CSV files: mnist_train.csv, "
        "Kaggle's train.csv / test.csv) instead of the verified cache"))
    run_options = argparse.ArgumentParser(add_help=False)
    run_options.add_argument("--backend", choices=("cython", "numpy"), default="cython",
                             help="compute backend (default: cython, the compiled core)")
    run_options.add_argument("--threads", type=_positive_int, metavar="N",
                             help="nncore's threads for the work (default: the CPUs this process may use, or "
                                  "OMP_NUM_THREADS); BLAS runs on one thread inside nncore's either way")
    _add_train_parser(commands, [data_options, run_options])
    _add_evaluate_parser(commands, [data_options, run_options])
    _add_predict_parser(commands, [data_options, run_options])

    fetch = commands.add_parser("fetch", help="download and verify a dataset into the cache",
                                description="Fill the cache with a dataset, verified by SHA-256.")
    fetch.add_argument("dataset", metavar=_DATASET_CHOICES)  # checked by parse_arguments, as train's
    fetch.add_argument("--from", dest="source_dir", metavar="DIR", help=(
        "seed the cache from the official files (IDX or CSV) in DIR, which must pass the checksums"))
    fetch.add_argument("--data-dir", metavar="DIR", help=argparse.SUPPRESS)  # the former name of --from
    fetch.add_argument("--quiet", action="store_true", help="no progress output")

    commands.add_parser("info", help="versions, compiled core, BLAS library and threads",
                        description="Report versions, the compiled core, the BLAS library and thread counts.")
    commands.add_parser("bench", help="benchmark the backends (see `nncore bench --help`)", add_help=False)
    _add_export_parser(commands)
    from .demo.command import add_demo_parser
    add_demo_parser(commands)
    return parser


def _add_train_parser(commands, parents):
    from .activations import ACTIVATIONS
    from .network import INITIALIZERS
    from .optim import OPTIMIZERS

    train = commands.add_parser(
        "train", parents=parents, help="train a model, print per-epoch progress and test accuracy",
        description="Train an MLP; show its progress, then the test accuracy.")
    # No argparse choices: a value read here may belong to a mistyped option, which parse_arguments reports first.
    train.add_argument("dataset", nargs="?", default="mnist", metavar=_DATASET_CHOICES,
                       help="the dataset (default: %(default)s)")
    train.add_argument("--hidden", type=_positive_int, nargs="*", metavar="N", default=DEFAULTS["hidden"],
                       help="hidden layer widths, e.g. --hidden 256 128; none for a linear softmax model (default: 256 128)")
    train.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"], help="epochs (default: %(default)s)")
    train.add_argument("--batch-size", type=_batch_size, default=DEFAULTS["batch_size"],
                       help="samples per update; 'full' for full-batch gradient descent (default: %(default)s)")
    train.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu",
                       help="activation of the hidden layers (default: %(default)s)")
    train.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=DEFAULTS["optimizer"],
                       help="(default: %(default)s)")
    tuned = ", ".join(f"{lr:g} for {kind}" for kind, lr in DEFAULTS["lr"].items())
    train.add_argument("--lr", type=_non_negative_float, help=f"learning rate (default: {tuned})")
    train.add_argument("--momentum", type=_fraction, help=(
        f"momentum of SGD (default: {DEFAULTS['momentum']}) or RMSprop (default: 0)"))
    train.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    train.add_argument("--weight-decay", type=_non_negative_float, help=(
        "weight decay: L2 for sgd, adam and rmsprop, decoupled for adamw (default: the optimizer's: 0.01 for adamw, "
        "else 0)"))
    train.add_argument("--schedule", choices=("constant", "step", "cosine"), default=DEFAULTS["schedule"],
                       help="learning-rate schedule over the epochs (default: %(default)s)")
    train.add_argument("--dropout", type=_fraction, nargs="+", metavar="RATE", default=[0.0], help=(
        "dropout rate of the hidden layers in training: one for all, or one per hidden layer (default: 0)"))
    train.add_argument("--input-dropout", type=_fraction, metavar="RATE", default=0.0, help=(
        "dropout rate of the input features in training (default: 0)"))
    train.add_argument("--augment", type=_augment, metavar="shift:K", help=(
        "move each training image by a random (dy, dx) in -K..K pixels, zero-filled (default: none)"))
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


def _add_evaluate_parser(commands, parents):
    evaluate = commands.add_parser(
        "evaluate", parents=parents, help="test accuracy, loss and confusion matrix of a model",
        description="Evaluate a saved model: accuracy, loss and a text confusion matrix.")
    evaluate.add_argument("model", metavar="MODEL", help="a model file written by `nncore train --save`")
    evaluate.add_argument("--dataset", choices=DATASETS, help="the dataset (default: the one the model file names)")
    evaluate.add_argument("--split", choices=("test", "train"), default="test", help="which split (default: test)")
    evaluate.add_argument("--loss", type=_loss, default="cross_entropy", help="loss to report")
    evaluate.add_argument("--plots", metavar="DIR", help="write figures there (needs matplotlib)")


def _add_predict_parser(commands, parents):
    predict = commands.add_parser(
        "predict", parents=parents, help="predict the classes of images; write a Kaggle submission",
        description="Print the predicted class and its probability for each image, or write them as a Kaggle "
                    "submission (ImageId,Label).")
    predict.add_argument("model", metavar="MODEL", help="a model file written by `nncore train --save`")
    source = predict.add_mutually_exclusive_group()
    source.add_argument("--indices", type=_non_negative_int, nargs="+", metavar="I",
                        help="indices of images in the dataset split")
    source.add_argument("--idx", metavar="FILE", help="an IDX file of images (N x 28 x 28 or N x 784, uint8)")
    source.add_argument("--csv", metavar="FILE", help="a CSV file of images, e.g. Kaggle's test.csv")
    predict.add_argument("--submission", metavar="PATH", help=(
        "write every prediction to PATH as Kaggle's ImageId,Label file instead of printing them (for --csv, "
        "--idx, or else the whole dataset split)"))
    predict.add_argument("--dataset", choices=DATASETS, help="the dataset (default: the one the model file names)")
    predict.add_argument("--split", choices=("test", "train"), default="test", help="which split (default: test)")


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


def _check_plots(directory):
    """--plots DIR before the work: the directory, and each figure file it will hold (not a link, not a directory)."""
    from ._output_paths import check_output_file, prepare_output_directory
    from .plot import FIGURE_FILES

    prepare_output_directory(directory, "--plots")
    for name in FIGURE_FILES.values():
        check_output_file(Path(directory) / f"{name}.png", "--plots")


def _check_outputs_spare_inputs(args):
    """Refuse an output path that is one of the command's inputs or its checkpoint (``export m.npz --onnx
    m.npz``, ``predict --csv test.csv --submission test.csv``, ``--save`` onto a data file): writing it would
    destroy what the command reads."""
    from .callbacks import CHECKPOINT_NAME

    inputs = [getattr(args, name, None) for name in ("model", "csv", "idx")]
    if getattr(args, "checkpoint_dir", None):
        inputs.append(Path(args.checkpoint_dir) / CHECKPOINT_NAME)
    data_dir = getattr(args, "data_dir", None)
    if data_dir and os.path.isdir(data_dir):
        inputs += [path for path in Path(data_dir).iterdir() if path.is_file()]
    inputs = [path for path in inputs if path]
    for option in ("save", "onnx", "submission"):
        output = getattr(args, option, None)
        if not output:
            continue
        same = next((path for path in inputs if _same_file(output, path)), None)
        if same is not None:
            raise UserError(f"--{option} {output} is {same}, which this command reads: writing it would destroy "
                            "it; choose another path")


def _same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file: the same one if both exist, else the same resolved path
    (a checkpoint that the run has yet to write)."""
    if os.path.isfile(a) and os.path.isfile(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


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


# ---------------------------------------------------------------- what a model was trained on

def _backend(name):
    """The backend, imported now: a compiled core that does not import is reported before any data is read."""
    from .backends import get_backend
    return get_backend(name)


def _note(message):
    print(f"nncore: note: {printable(message, keep_line_breaks=True)}", file=sys.stderr, flush=True)


def _dataset_for(args, model):
    """The dataset to evaluate or predict on: ``--dataset``, else the one the model file names
    (MNIST for files that name none)."""
    trained_on = model.dataset_name
    if args.dataset is not None:
        if trained_on is not None and trained_on != args.dataset:
            verb = {"evaluate": "evaluating", "predict": "predicting"}[args.command]
            _note(f"{args.model} was trained on {trained_on}; {verb} on {args.dataset} as asked")
        return args.dataset
    if trained_on is None or trained_on in DATASETS:
        return trained_on or "mnist"
    if args.data_dir is None:
        raise UserError(f"{args.model} was trained on {trained_on}, which nncore cannot load by name: give its "
                        f"folder with --data-dir DIR (or --dataset {'|'.join(DATASETS)})")
    return "mnist"  # the folder is read as it is; the model's own class names name the classes


def _images_text(shape, n_pixels):
    if shape is not None and len(shape) > 1:
        return f"{'x'.join(map(str, shape))} images ({n_pixels} pixels)"
    return f"{n_pixels} pixels per image"


def _check_width(model, images, path):
    """Refuse images of another size than the model takes, naming both."""
    if model.n_inputs != images.n_features:
        raise UserError(f"{path} takes {_images_text(model.input_shape, model.n_inputs)}; {images.name} holds "
                        f"{_images_text(images.image_shape, images.n_features)}")


def _class_names(model, images):
    """Names of the model's classes: its own, else the data's when they count the same, else the indices."""
    if model.class_names is not None:
        return tuple(model.class_names)
    if len(images.class_names) == model.n_classes:
        return tuple(images.class_names)
    return tuple(str(k) for k in range(model.n_classes))


# ---------------------------------------------------------------- commands

def command_train(args):
    from ._output_paths import check_output_file
    from .callbacks import EarlyStopping
    from .model import MLP

    if args.resume and not args.checkpoint_dir:
        raise UserError("--resume needs --checkpoint-dir")
    # Checked before the data loads and the epochs run, so that a run never trains for nothing.
    if args.save:
        check_output_file(args.save, "--save")
    if args.plots:
        _check_plots(args.plots)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, flush=True))
    _backend(args.backend)
    train_set = load_split(args.dataset, "train", args.data_dir)
    test_set = load_split(args.dataset, "test", args.data_dir)
    if not train_set.labeled:
        raise UserError(f"{train_set.summary}: training needs labels")
    if args.plots and not test_set.labeled:
        raise UserError(f"--plots needs a labeled test split, and {test_set.name} has no labels")
    say(train_set.summary)
    say(test_set.summary)
    layer_sizes = [train_set.n_features, *args.hidden, train_set.n_classes]
    dropout = args.dropout[0] if len(args.dropout) == 1 else args.dropout
    model = MLP(layer_sizes, activation=args.activation, dtype=args.dtype, init=args.init, seed=args.seed,
                dropout=dropout, input_dropout=args.input_dropout)
    augment = args.augment.resolved(train_set.n_features, train_set) if args.augment is not None else None
    optimizer = _optimizer(args)
    batch = "full batch" if args.batch_size is None else f"batch {args.batch_size}"
    n_val = round(args.validation_split * len(train_set))
    hidden = f"{args.activation} hidden layers, " if args.hidden else ""
    hidden += f"dropout {dropout}, " if any(model.dropout) else ""
    hidden += f"input dropout {args.input_dropout}, " if args.input_dropout else ""
    hidden += f"augment {augment}, " if augment is not None else ""
    say(f"training {'-'.join(map(str, layer_sizes))} on {args.dataset} ({len(train_set) - n_val} train, "
        f"{n_val} validation), {hidden}{optimizer!r}, {args.schedule} schedule, {batch}, {args.epochs} epochs, "
        f"{args.loss} loss, backend {args.backend}")
    early = EarlyStopping(patience=args.early_stopping) if args.early_stopping else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # interruption is reported below
        # A resume that follows these options rather than the checkpoint's says so, in one line.
        warnings.showwarning = _warning_line
        history = model.fit(train_set, epochs=args.epochs, batch_size=args.batch_size,
                            optimizer=optimizer, loss=args.loss, validation_split=args.validation_split or None,
                            backend=args.backend, early_stopping=early, checkpoint_dir=args.checkpoint_dir,
                            resume=args.resume, verbose=0 if args.quiet else 1,
                            lr_schedule=None if args.schedule == "constant" else args.schedule,
                            seed=args.seed, n_threads=args.threads, augment=augment)
    if history.interrupted:
        kept = f"; the checkpoint in {args.checkpoint_dir} is intact (--resume continues)" \
            if args.checkpoint_dir else ""
        print(f"nncore: interrupted after {len(history)} complete epoch(s){kept}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    _report_result(args, model, history, test_set)
    if args.save:
        model.save(args.save)
        say(f"saved model to {args.save}")
        if not test_set.labeled:
            say(f"a Kaggle submission of its predictions: nncore predict {args.save} --data-dir {args.data_dir} "
                "--submission submission.csv")
    if args.plots:
        _plots(args.plots, model, test_set, history)
    return 0


def _optimizer(args):
    from .optim import make_optimizer

    momentum = args.momentum if args.momentum is not None or args.optimizer != "sgd" else DEFAULTS["momentum"]
    lr = args.lr if args.lr is not None else DEFAULTS["lr"].get(args.optimizer)
    given = {"momentum": momentum, "nesterov": args.nesterov, "weight_decay": args.weight_decay, "lr": lr}
    # What the command line leaves unset is the kind's own default (its class's).
    return make_optimizer(args.optimizer, **{name: value for name, value in given.items() if value is not None})


def _report_result(args, model, history, test_set):
    """The last line of ``train``: the test accuracy, or why there is none (Kaggle's unlabeled test.csv)."""
    seconds = sum(history.seconds)
    trained = f"after {model.epochs_trained} epochs, {seconds:.1f} s of training"
    if test_set.labeled:
        result = model.evaluate(test_set, loss=args.loss, backend=args.backend, n_threads=args.threads)
        print(f"test accuracy {result.accuracy:.2%} (loss {result.loss:.4f}) {trained}", flush=True)
        return
    validation = (f"validation accuracy {history.val_accuracy[-1]:.2%}" if len(history) and history.has_validation
                  else "no validation split")
    print(f"no test accuracy: the test split ({test_set.name}) has no labels; {validation} {trained}", flush=True)


def command_evaluate(args):
    from .metrics import confusion_matrix, format_confusion_matrix

    if args.plots:
        _check_plots(args.plots)
    model = _load_model(args.model)
    _backend(args.backend)
    dataset = load_split(_dataset_for(args, model), args.split, args.data_dir)
    if not dataset.labeled:
        raise UserError(f"{dataset.summary}: no labels to evaluate against (`nncore predict {args.model} "
                        "--submission PATH` writes its predictions)")
    _check_width(model, dataset, args.model)
    if dataset.n_classes != model.n_classes:
        raise UserError(f"{args.model} predicts {model.n_classes} classes, {dataset.name} has "
                        f"{dataset.n_classes} classes")
    started = time.perf_counter()
    result = model.evaluate(dataset, loss=args.loss, backend=args.backend, n_threads=args.threads)
    predictions = model.predict(dataset.images, backend=args.backend, n_threads=args.threads)
    seconds = time.perf_counter() - started
    print(f"{dataset.dataset_name} {args.split}: {len(dataset)} images, accuracy {result.accuracy:.2%}, "
          f"{args.loss} loss {result.loss:.4f} ({seconds:.2f} s)")
    print(format_confusion_matrix(confusion_matrix(dataset.labels, predictions, model.n_classes),
                                  _class_names(model, dataset)))
    if args.plots:
        _plots(args.plots, model, dataset)
    return 0


def command_predict(args):
    from ._output_paths import check_output_file
    from .data import write_submission

    if args.submission:  # checked before the model and the images are read
        check_output_file(args.submission, "--submission")
    model = _load_model(args.model)
    _backend(args.backend)
    images, rows, labels = _images_to_predict(args, model)
    _check_width(model, images, args.model)
    chosen = images.images if rows is None else images.images[rows]
    proba = model.predict_proba(chosen, backend=args.backend, n_threads=args.threads)
    predicted = proba.argmax(axis=1)
    if args.submission:
        path = write_submission(args.submission, predicted)
        print(f"wrote {len(predicted)} predictions to {path} (ImageId,Label)")
        return 0
    rows = np.arange(len(chosen)) if rows is None else rows
    print(format_predictions(rows, predicted, proba[np.arange(len(rows)), predicted], labels,
                             _class_names(model, images)))
    return 0


def _images_to_predict(args, model):
    """(ImageSet or Dataset, the rows to predict or None for all, their labels or None)."""
    from .data import read_images

    if args.idx or args.csv:
        # --idx reads a .csv file as CSV too (by its suffix), as it always has.
        return read_images(args.idx or args.csv, kind=None if args.idx else "csv"), None, None
    dataset = load_split(_dataset_for(args, model), args.split, args.data_dir)
    if not args.indices:
        return dataset, None, None
    bad = [i for i in args.indices if i >= len(dataset)]
    if bad:
        raise UserError(f"index {bad[0]} is out of range: {dataset.name} has {len(dataset)} images")
    rows = np.array(args.indices)
    return dataset, rows, dataset.labels[rows] if dataset.labeled else None


def format_predictions(rows, predicted, probabilities, labels, class_names):
    """The table ``predict`` prints: index, predicted class, its probability[, true label], columns aligned."""
    class_names = [printable(name) for name in class_names]  # names from a model file are anyone's
    index_width = max(len("index"), *(len(str(row)) for row in rows))
    name_width = max(len("predicted"), *(len(name) for name in class_names))
    header = f"{'index':>{index_width}}  {'predicted':<{name_width}}  probability"
    lines = [header + ("  label" if labels is not None else "")]
    for position, row in enumerate(rows):
        k = predicted[position]
        line = f"{row:>{index_width}}  {class_names[k]:<{name_width}}  {probabilities[position]:>11.4f}"
        if labels is not None:
            label = labels[position]
            line += f"  {class_names[label]:<{name_width}}" + ("" if label == k else "  (wrong)")
        lines.append(line.rstrip())
    return "\n".join(lines)


def command_export(args):
    from ._output_paths import check_output_file
    from .onnx_export import OPSET, hidden_activations, to_onnx

    check_output_file(args.onnx, "--onnx")
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

    source_dir = args.source_dir
    if args.data_dir is not None:
        if source_dir is not None:
            raise UserError("give --from DIR only (--data-dir is its former name)")
        _note("`nncore fetch --data-dir DIR` is now `--from DIR`")
        source_dir = args.data_dir
    directory = fetch_dataset(args.dataset, source_dir=source_dir, progress=not args.quiet)
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


def command_demo(args):
    from .demo.command import command_demo as run_demo
    return run_demo(args)


COMMANDS = {"train": command_train, "evaluate": command_evaluate, "predict": command_predict,
            "fetch": command_fetch, "info": command_info, "export": command_export, "demo": command_demo}


def _warning_line(message, category, filename, lineno, file=None, line=None):
    print(f"nncore: warning: {printable(message, keep_line_breaks=True)}", file=sys.stderr, flush=True)


def _error(message, code=EXIT_ERROR):
    print(f"nncore: error: {printable(message, keep_line_breaks=True)}", file=sys.stderr, flush=True)
    return code


def _writes_to_stdout(args):
    """Whether the file the command makes (--save, --onnx, --submission) is this process's standard output."""
    for path in (getattr(args, name, None) for name in ("save", "onnx", "submission")):
        try:
            if path and os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno())):
                return True
        except (OSError, ValueError, AttributeError):  # no such file yet, or stdout has no descriptor
            continue
    return False


def main(argv=None):
    """Run the command line; return the exit code (the console script exits with it).

    A reader of the output that goes away (``| head``) does not end the command: the rest of
    its output is discarded (``nncore._terminal``) and its work finishes.
    """
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = ReaderMayLeave(stdout), ReaderMayLeave(stderr)
    try:
        return _run(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _run(argv):
    from .errors import DataError, ModelFileError, TrainingDiverged

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "bench":
            return command_bench(argv[1:])
        args = parse_arguments(argv)
        _check_outputs_spare_inputs(args)
        if _writes_to_stdout(args):
            sys.stdout = sys.stderr  # what the command says must not mix with the file it writes there
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
    except MemoryError as error:  # a network under the parameter limit that this machine cannot hold
        return _error(str(error) or "out of memory")
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
