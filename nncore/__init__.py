"""nncore: a fast, from-scratch MLP trainer for MNIST-class data.

A typed Cython core over BLAS does the training; a plain NumPy backend is its specification.

    import nncore
    train, test = nncore.load_mnist("train"), nncore.load_mnist("test")
    model = nncore.MLP([784, 256, 128, 10], seed=0)
    model.fit(train, epochs=5, optimizer=nncore.Adam(lr=2e-3), lr_schedule="cosine")
    print(model.evaluate(test))

The public API (everything else is an implementation detail):

- Models: MLP (summary, fit, predict, predict_proba, evaluate, save, to_onnx), load,
  Evaluation, History; MLPClassifier, the scikit-learn estimator.
- Data: load_mnist, load_fashion_mnist, Dataset; nncore.data for CSV, IDX and folders.
- Optimizers and schedules: SGD, Adam, AdamW, RMSprop, Constant, Cosine, StepDecay, Shift
  (image shifts).
- Callbacks: Callback, EarlyStopping, LearningRateScheduler, ModelCheckpoint, EpochLogger,
  ProgressBar.
- Errors: NNCoreError, DataError, ModelFileError, TrainingDiverged (nncore.errors has them all).
- Optional modules: nncore.plot (pictures, needs nncore[plot]), nncore.metrics.

help(nncore.MLP) and help(nncore.MLP.fit) say more; the guide is in docs/ (mkdocs serve).
"""
from .augment import Shift
from .callbacks import Callback, EarlyStopping, EpochLogger, LearningRateScheduler, ModelCheckpoint
from .data import Dataset, load_fashion_mnist, load_mnist
from .errors import DataError, ModelFileError, NNCoreError, TrainingDiverged
from .estimator import MLPClassifier
from .history import History
from .model import MLP, Evaluation, load
from .optim import SGD, Adam, AdamW, RMSprop
from .progress import ProgressBar
from .schedules import Constant, Cosine, StepDecay

__version__ = "0.1.0"

__all__ = [
    "MLP", "SGD", "Adam", "AdamW", "Callback", "Constant", "Cosine", "DataError", "Dataset", "EarlyStopping",
    "EpochLogger", "Evaluation", "History", "LearningRateScheduler", "MLPClassifier", "ModelCheckpoint",
    "ModelFileError", "NNCoreError", "ProgressBar", "RMSprop", "Shift", "StepDecay", "TrainingDiverged", "__version__",
    "load",
    "load_fashion_mnist", "load_mnist",
]
