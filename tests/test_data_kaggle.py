"""Kaggle's digit recognizer end to end on the data side (issue 15 item 1): a labeled train.csv,
an unlabeled test.csv, and a submission written by examples/kaggle_csv.py."""
import runpy
import sys
from pathlib import Path

import numpy as np
from test_cli import tiny_images

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "kaggle_csv.py"
PIXELS = ",".join(f"pixel{index}" for index in range(784))


def test_the_kaggle_example_trains_on_train_csv_and_writes_a_submission_for_test_csv(
        tmp_path, monkeypatch, capsys):
    images, labels = tiny_images(260, 3)
    flat = images.reshape(260, -1)
    np.savetxt(tmp_path / "train.csv", np.column_stack([labels[:200], flat[:200]]), fmt="%d", delimiter=",",
               header="label," + PIXELS, comments="")
    np.savetxt(tmp_path / "test.csv", flat[200:], fmt="%d", delimiter=",", header=PIXELS, comments="")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["kaggle_csv.py", "train.csv", "test.csv", "--epochs", "3",
                                      "--backend", "numpy"])
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "train.csv: 200 rows, header; label in column 1 ('label'); 784 pixel columns"
    assert lines[-1].startswith("CSV (200 training rows), 3 epochs: 60 predictions written to submission.csv")
    submission = (tmp_path / "submission.csv").read_text().splitlines()
    assert submission[0] == "ImageId,Label" and len(submission) == 61
    ids, predicted = zip(*(map(int, line.split(",")) for line in submission[1:]))
    assert list(ids) == list(range(1, 61))
    assert np.mean(np.array(predicted) == labels[200:]) > 0.8  # the bands are easy to tell apart
