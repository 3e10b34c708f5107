"""The model ``nncore demo`` uses when given none: trained on MNIST on first use, then cached.

It lives beside the dataset cache (``$NNCORE_DATA``, else the platform's cache directory;
see ``nncore.data.fetch``), in ``models/``, named by its recipe's version, so that a changed
recipe trains a new file instead of reusing an old one. Training happens under the
directory's lock (two ``nncore demo`` started at once train once) and the file is written
atomically by ``MLP.save``, so a run interrupted mid-training leaves no file behind and the
next one starts over. A cached file that no longer loads is trained again.
"""
import sys
import warnings

from .. import _locking
from ..data.fetch import default_cache_directory, load_dataset
from ..errors import ModelFileError
from ..model import MLP, load
from ..optim import Adam

#: The recipe: 784-256-128-10, Adam with cosine decay, images shifted by up to 2 pixels in
#: training (drawings are rarely placed as exactly as MNIST's digits).
RECIPE = {"hidden": (256, 128), "epochs": 10, "batch_size": 128, "lr": 2e-3, "augment": "shift:2", "seed": 0}
RECIPE_VERSION = 1
MODEL_DIRECTORY_NAME = "models"


def default_model_path(cache_dir=None):
    """Where the default model is cached: ``<cache>/models/demo-mnist-v<RECIPE_VERSION>.npz``."""
    root = default_cache_directory() if cache_dir is None else cache_dir
    return root / MODEL_DIRECTORY_NAME / f"demo-mnist-v{RECIPE_VERSION}.npz"


def load_default_model(cache_dir=None, say=None, train=None):
    """The default model: read from the cache, else trained (``train(say)``, default ``train_default_model``) and cached.

    ``say`` prints a status line (default: to stderr).
    """
    say = say or (lambda message: print(f"nncore demo: {message}", file=sys.stderr, flush=True))
    train = train or train_default_model
    path = default_model_path(cache_dir)
    model = _cached(path, say)
    if model is not None:
        return model
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locking.waiting_lock(path.parent / _locking.LOCK_NAME):
        model = _cached(path, say)  # another process may have trained it while this one waited
        if model is None:
            say(f"no default model yet: training one on MNIST, once (cached as {path})")
            model = train(say)
            model.save(path)
            say(f"saved the default model to {path}")
    return model


def train_default_model(say):
    """An MLP trained on MNIST's training set by ``RECIPE``, with the progress bar; MNIST is fetched if needed."""
    train_set = load_dataset("mnist", "train", progress=True)
    test_set = load_dataset("mnist", "test", progress=True)
    model = MLP([train_set.n_features, *RECIPE["hidden"], train_set.n_classes], seed=RECIPE["seed"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fit's warning on Ctrl-C: re-raised below instead
        history = model.fit(train_set, epochs=RECIPE["epochs"], batch_size=RECIPE["batch_size"],
                            optimizer=Adam(lr=RECIPE["lr"]), lr_schedule="cosine", augment=RECIPE["augment"],
                            seed=RECIPE["seed"], verbose=1)
    if history.interrupted:  # a half-trained model must not become the cached default
        raise KeyboardInterrupt
    say(f"default model: test accuracy {model.evaluate(test_set).accuracy:.2%}")
    return model


def _cached(path, say):
    if not path.is_file():
        return None
    try:
        return load(path)
    except ModelFileError as error:
        say(f"the cached default model does not load ({error}); training it again")
        return None
