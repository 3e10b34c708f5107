"""nncore: a fast, from-scratch MLP trainer for MNIST-class data.

A typed Cython core over BLAS does the training; a plain NumPy backend is its specification.
"""
from .errors import DataError, ModelFileError, NNCoreError, TrainingDiverged
from .optim import SGD, Adam
from .model import MLP, Evaluation
from .train import Callback, EarlyStopping, History
from .io import load
from .schedules import Constant, Cosine, StepDecay

__version__ = "0.1.0"

__all__ = ["Adam", "Callback", "Constant", "Cosine", "DataError", "EarlyStopping", "Evaluation",
           "History", "MLP", "ModelFileError", "NNCoreError", "SGD", "StepDecay", "TrainingDiverged",
           "__version__", "load"]
