"""nncore: a fast, from-scratch MLP trainer for MNIST-class data.

A typed Cython core over BLAS does the training; a plain NumPy backend is its specification.
"""
from .errors import DataError, ModelFileError, NNCoreError, TrainingDiverged
from .optim import SGD, Adam
from .model import MLP, Evaluation
from .train import Callback, EarlyStopping, History
from .io import load
from .schedules import Constant, Cosine, StepDecay
from .estimator import MLPClassifier
from .data import Dataset, load_fashion_mnist, load_mnist

__version__ = "0.1.0"

__all__ = ["Adam", "Callback", "Constant", "Cosine", "DataError", "Dataset", "EarlyStopping", "Evaluation",
           "History", "MLP", "MLPClassifier", "ModelFileError", "NNCoreError", "SGD", "StepDecay",
           "TrainingDiverged", "__version__", "load", "load_fashion_mnist", "load_mnist"]
