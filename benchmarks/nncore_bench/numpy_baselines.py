"""Two NumPy trainers a user might already have, timed beside nncore's own NumPy backend.

nncore's NumPy backend is the specification: it carries validation, a flat parameter
buffer and one function per op, so it is slower than the loop a good user writes, and
ratios against it overstate nncore's gain. These two are written plainly, as users write
them, and train the same network (ReLU hidden layers, softmax + cross-entropy, SGD at the
shared learning rate, He init from the same seed):

* ``CarefulNumpyTrainer``: the minimal loop. The float copy of X is made once, each batch is
  ``X[rows]``, products are ``@``, ReLU, softmax and the update work in place.
  ``CarefulNumpyInference`` is its forward pass alone, batch by batch.
* ``SeedStyleTrainer``: the seed projects' own formulation. X stored once as (784, N),
  scaled; one-hot labels Y (10, N); ``Z = W @ X + b`` with W (fan_out, fan_in); full batch,
  one gradient step per epoch; out-of-place arithmetic as the seeds write it.

Both report the epoch's summed loss and correct predictions, as every candidate does.
"""
import numpy as np

from .candidates import LEARNING_RATE, he_init, layer_arrays


class CarefulNumpyTrainer:
    """Mini-batch SGD in the minimal NumPy loop: one float copy of X, ``X[rows] @ W``, in-place ops."""

    def __init__(self, layer_sizes, dtype, X, y, batch_size, seed=0):
        self.dtype = np.dtype(dtype)
        self.X = X.astype(self.dtype)
        self.X *= self.dtype.type(1.0 / 255.0)
        self.y = y.astype(np.intp)
        self.layers = layer_arrays(he_init(layer_sizes, self.dtype), layer_sizes)
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.lr = self.dtype.type(LEARNING_RATE)

    def run(self, n_rows=None):
        n = len(self.X) if n_rows is None else n_rows
        batch_size = n if self.batch_size is None else min(self.batch_size, n)
        # A full batch needs no shuffle: its gradient does not depend on the order.
        order = self.rng.permutation(n) if batch_size < n else None
        loss_sum, n_correct = 0.0, 0
        for start in range(0, n, batch_size):
            if order is None:
                batch, labels = self.X[:n], self.y[:n]
            else:
                rows = order[start:start + batch_size]
                batch, labels = self.X[rows], self.y[rows]
            batch_loss, batch_correct = self.step(batch, labels)
            loss_sum += batch_loss
            n_correct += batch_correct
        return loss_sum, n_correct

    def step(self, batch, labels):
        """One SGD step on a batch; returns (summed loss, correct predictions)."""
        activations = [batch]
        for W, b in self.layers[:-1]:
            Z = activations[-1] @ W
            Z += b
            np.maximum(Z, 0, out=Z)
            activations.append(Z)
        W_out, b_out = self.layers[-1]
        logits = activations[-1] @ W_out
        logits += b_out
        m = len(labels)
        picked = np.arange(m)
        n_correct = int(np.count_nonzero(logits.argmax(axis=1) == labels))
        logits -= logits.max(axis=1, keepdims=True)
        shifted_label = logits[picked, labels]
        np.exp(logits, out=logits)
        sum_exp = logits.sum(axis=1, keepdims=True)
        loss = float(np.log(sum_exp[:, 0]).sum() - shifted_label.sum())
        logits /= sum_exp
        logits[picked, labels] -= 1
        logits /= m
        delta = logits  # dL/dlogits of the mean loss
        for layer in range(len(self.layers) - 1, -1, -1):
            W, b = self.layers[layer]
            A_prev = activations[layer]
            dW = A_prev.T @ delta
            db = delta.sum(axis=0)
            if layer > 0:
                delta_prev = delta @ W.T
                delta_prev *= A_prev > 0
            dW *= self.lr
            W -= dW
            db *= self.lr
            b -= db
            if layer > 0:
                delta = delta_prev
        return loss, n_correct

    def warm_up(self, n_rows):
        self.run(n_rows)


class CarefulNumpyInference:
    """Class probabilities over X, batch by batch, in the careful loop's style."""

    def __init__(self, layer_sizes, dtype, X, batch_size):
        self.dtype = np.dtype(dtype)
        self.X = X.astype(self.dtype)
        self.X *= self.dtype.type(1.0 / 255.0)
        self.layers = layer_arrays(he_init(layer_sizes, self.dtype), layer_sizes)
        self.batch_size = batch_size

    def run(self, n_rows=None):
        X = self.X if n_rows is None else self.X[:n_rows]
        for start in range(0, len(X), self.batch_size):
            A = X[start:start + self.batch_size]
            for W, b in self.layers[:-1]:
                A = A @ W
                A += b
                np.maximum(A, 0, out=A)
            W_out, b_out = self.layers[-1]
            logits = A @ W_out
            logits += b_out
            logits -= logits.max(axis=1, keepdims=True)
            np.exp(logits, out=logits)
            logits /= logits.sum(axis=1, keepdims=True)

    def warm_up(self, n_rows):
        self.run(n_rows)


class SeedStyleTrainer:
    """Full-batch gradient descent as the seed projects write it: X (784, N), one-hot Y, ``W @ X + b``."""

    def __init__(self, layer_sizes, dtype, X, y, lr=LEARNING_RATE, params=None):
        self.dtype = np.dtype(dtype)
        self.X = np.ascontiguousarray(X.T, dtype=self.dtype) / self.dtype.type(255.0)
        self.labels = y.astype(np.intp)
        self.Y = np.zeros((layer_sizes[-1], len(y)), dtype=self.dtype)
        self.Y[self.labels, np.arange(len(y))] = 1
        params = he_init(layer_sizes, self.dtype) if params is None else params
        # The seeds keep W as (fan_out, fan_in) and b as a column.
        self.weights = [np.ascontiguousarray(W.T) for W, _ in layer_arrays(params, layer_sizes)]
        self.biases = [b.reshape(-1, 1) for _, b in layer_arrays(params, layer_sizes)]
        self.lr = lr

    def run(self, n_rows=None):
        """One gradient step on the whole (or the first n_rows columns of the) training set."""
        X = self.X if n_rows is None else self.X[:, :n_rows]
        Y = self.Y if n_rows is None else self.Y[:, :n_rows]
        labels = self.labels if n_rows is None else self.labels[:n_rows]
        m = X.shape[1]
        Zs, As, P = self.forward(X)
        loss = float(-np.log(P[labels, np.arange(m)]).sum())
        n_correct = int(np.count_nonzero(P.argmax(axis=0) == labels))
        dZ = P - Y
        for layer in range(len(self.weights) - 1, -1, -1):
            dW = dZ @ As[layer].T / m
            db = dZ.sum(axis=1, keepdims=True) / m
            if layer > 0:
                dZ = (self.weights[layer].T @ dZ) * (Zs[layer - 1] > 0)
            self.weights[layer] = self.weights[layer] - self.lr * dW
            self.biases[layer] = self.biases[layer] - self.lr * db
        return loss, n_correct

    def forward(self, X):
        """(pre-activations, activations (X first), probabilities (n_out, N)) of the columns of X."""
        Zs, As = [], [X]
        for W, b in zip(self.weights[:-1], self.biases[:-1]):
            Z = W @ As[-1] + b
            Zs.append(Z)
            As.append(np.maximum(Z, 0))
        Z_out = self.weights[-1] @ As[-1] + self.biases[-1]
        expZ = np.exp(Z_out - Z_out.max(axis=0))
        return Zs, As, expZ / expZ.sum(axis=0)

    def warm_up(self, n_rows):
        self.run(n_rows)

    def flat_params(self):
        """The parameters in nncore's flat layout (per layer W (fan_in, fan_out), then b)."""
        return np.concatenate([part for W, b in zip(self.weights, self.biases) for part in (W.T.ravel(), b.ravel())])
