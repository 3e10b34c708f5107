"""Several hidden layers with He initialisation: 784-512-256-128-10, Adam, cosine decay.

He init (normal, std sqrt(2/fan_in)) keeps ReLU activations at a steady scale through
depth. A 10% validation split is held out and early stopping watches its accuracy, keeping the best
epoch's parameters. Measured: 15 epochs reach 98.45% test accuracy (192 s on 1 thread of a busy
2-core machine).

    python examples/mnist_deep_he.py [--epochs 15]
"""
import argparse
import sys

import nncore
from nncore.data import FetchError

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=15)
parser.add_argument("--backend", default="cython")
args = parser.parse_args()

try:
    train, test = nncore.load_mnist("train"), nncore.load_mnist("test")
except FetchError as error:  # no source of the dataset here: the fix in one line, not a traceback
    sys.exit(f"{parser.prog}: {error.headline}")
model = nncore.MLP([784, 512, 256, 128, 10], init="he", seed=0)
history = model.fit(train, epochs=args.epochs, batch_size=128, optimizer=nncore.Adam(lr=1e-3),
                    lr_schedule=nncore.Cosine(), validation_split=0.1,
                    early_stopping=nncore.EarlyStopping(monitor="val_accuracy", patience=4),
                    backend=args.backend, verbose=1)
print(f"784-512-256-128-10 He/Adam, {len(history)} epochs: "
      f"test {model.evaluate(test, backend=args.backend).accuracy:.2%}, {sum(history.seconds):.1f} s")
