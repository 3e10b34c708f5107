"""nncore: a fast, from-scratch MLP trainer for MNIST-class data.

A typed Cython core over BLAS does the training; a plain NumPy backend is its specification.
"""
from .data import Dataset, load_fashion_mnist, load_mnist
from .errors import DataError, ModelFileError, NNCoreError, TrainingDiverged
from .estimator import MLPClassifier
from .io import load
from .model import MLP, Evaluation
from .optim import SGD, Adam
from .schedules import Constant, Cosine, StepDecay
from .train import Callback, EarlyStopping, History

__version__ = "0.1.0"

__all__ = [
    "MLP", "SGD", "Adam", "Callback", "Constant", "Cosine", "DataError", "Dataset",
    "EarlyStopping", "Evaluation", "History", "MLPClassifier", "ModelFileError", "NNCoreError",
    "StepDecay", "TrainingDiverged", "__version__", "load", "load_fashion_mnist", "load_mnist",
]
