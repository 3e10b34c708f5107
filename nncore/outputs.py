"""The network's outputs, checked: probabilities from NaN or infinite logits are never an answer.

Finite but huge parameters (or inputs) can overflow a layer's sums: the logits become
infinite, softmax turns them into NaN, and an argmax of NaN is class 0. ``predict``,
``predict_proba`` and ``evaluate`` therefore raise ``NonFiniteOutputError`` rather than
return an answer built on such rows; ``fit`` records the validation accuracy of such an epoch
as NaN and warns. The check costs one pass over the (n_samples, n_classes) probabilities, and
for ``evaluate`` nothing unless its loss is not finite.
"""
import numpy as np

from .errors import NonFiniteOutputError


def non_finite_rows(probabilities):
    """How many rows of ``probabilities`` hold NaN or infinity."""
    return int(np.count_nonzero(~np.isfinite(probabilities).all(axis=1)))


def count_non_finite(backend, network, params, X, batch_size):
    """How many rows of X get NaN or infinite outputs (a forward pass: only worth it when a loss was not finite)."""
    return non_finite_rows(backend.forward(network, params, X, batch_size))


def refusal(network, params, n_bad, n_rows, what, result):
    """The NonFiniteOutputError for ``n_bad`` of ``n_rows`` rows of ``what`` whose outputs are not finite."""
    largest = float(np.max(np.abs(params))) if len(params) else 0.0
    return NonFiniteOutputError(
        f"the network's outputs are NaN or infinite for {n_bad} of {n_rows} rows of {what}: its logits overflow "
        f"{network.dtype.name} (largest |parameter| {largest:.3g}), so {result} cannot be computed from them")


def check_probabilities(network, params, probabilities, what):
    """``probabilities``, or NonFiniteOutputError if any row is not finite."""
    bad = non_finite_rows(probabilities)
    if bad:
        raise refusal(network, params, bad, len(probabilities), what, "a prediction")
    return probabilities
