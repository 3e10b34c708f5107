"""nncore: a fast, from-scratch MLP trainer for MNIST-class data.

A typed Cython core over BLAS does the training; a plain NumPy backend is its specification.
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
