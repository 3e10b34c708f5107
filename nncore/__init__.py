"""nncore: a fast, from-scratch MLP trainer for MNIST-class data.

A typed Cython core over BLAS does the training; a plain NumPy backend is its specification.
"""
from .errors import DataError, ModelFileError, NNCoreError, TrainingDiverged
from .optim import SGD, Adam

__version__ = "0.1.0"

__all__ = ["Adam", "DataError", "ModelFileError", "NNCoreError", "SGD", "TrainingDiverged", "__version__"]
