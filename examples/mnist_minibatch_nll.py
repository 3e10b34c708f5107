"""784-n-10 with the negative log-likelihood (cross-entropy) loss and mini-batch SGD.

The seed projects' second classic: one hidden layer (n=128 here), softmax + NLL, plain
mini-batch SGD with momentum. Measured: 10 epochs, batch 64, lr 0.05, momentum 0.9 reach
97.92% test accuracy
(58 s on 1 thread of a busy 2-core machine).

    python examples/mnist_minibatch_nll.py [--hidden 128] [--epochs 10] [--batch-size 64]
"""
import argparse
import sys

import nncore
from nncore.data import FetchError

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--hidden", type=int, default=128)
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--lr", type=float, default=0.05)
parser.add_argument("--backend", default="cython")
args = parser.parse_args()

try:
    train, test = nncore.load_mnist("train"), nncore.load_mnist("test")
except FetchError as error:  # no source of the dataset here: the fix in one line, not a traceback
    sys.exit(f"{parser.prog}: {error.headline}")
model = nncore.MLP([784, args.hidden, 10], seed=0)
history = model.fit(train, epochs=args.epochs, batch_size=args.batch_size, loss="cross_entropy",
                    optimizer=nncore.SGD(lr=args.lr, momentum=0.9), validation_data=test,
                    backend=args.backend, verbose=1)
print(f"784-{args.hidden}-10 NLL, batch {args.batch_size}, {args.epochs} epochs: "
      f"test {model.evaluate(test, backend=args.backend).accuracy:.2%}, {sum(history.seconds):.1f} s")
