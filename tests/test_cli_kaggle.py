"""Kaggle's digit recognizer end to end on the command line (issue 15 item 1): ``train`` on the
folder holding Kaggle's pair (labeled train.csv, unlabeled test.csv) validates on a split of
train.csv and claims no test accuracy; ``predict --csv test.csv --submission out.csv`` writes
the file Kaggle takes; ``fetch --from DIR`` seeds the verified cache (``--data-dir`` is its old name)."""
import numpy as np
import pytest
from test_cli import run, tiny_images
from test_data_fetch import tiny_arrays, tiny_spec

import nncore
from nncore.cli import main
from nncore.data import fetch, read_images, write_idx

PIXELS = ",".join(f"pixel{index}" for index in range(784))


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    """Kaggle's layout: train.csv with a ``label`` column first, test.csv with the pixels only."""
    directory = tmp_path_factory.mktemp("kaggle")
    images, labels = tiny_images(360, 4)
    flat = images.reshape(360, -1)
    np.savetxt(directory / "train.csv", np.column_stack([labels[:300], flat[:300]]), fmt="%d", delimiter=",",
               header="label," + PIXELS, comments="")
    np.savetxt(directory / "test.csv", flat[300:], fmt="%d", delimiter=",", header=PIXELS, comments="")
    return directory, labels[300:]


@pytest.fixture(scope="module")
def kaggle_model(kaggle, tmp_path_factory):
    path = tmp_path_factory.mktemp("kaggle-model") / "digits.npz"
    code = main(["train", "--data-dir", str(kaggle[0]), "--backend", "numpy", "--hidden", "32", "--epochs", "4",
                 "--batch-size", "32", "--lr", "0.005", "--save", str(path), "--quiet"])
    assert code == 0
    return path


def test_train_on_kaggles_pair_validates_on_train_csv_and_claims_no_test_accuracy(kaggle, tmp_path, capsys):
    directory, _ = kaggle
    code, out, err = run(capsys, "train", "--data-dir", directory, "--backend", "numpy", "--hidden", 16,
                         "--epochs", 2, "--batch-size", 32, "--save", tmp_path / "m.npz")
    assert code == 0, err
    lines = out.splitlines()
    assert f"mnist/train: 300 labeled images from {directory / 'train.csv'}" in out
    assert f"mnist/test: 60 unlabeled images from {directory / 'test.csv'}" in out
    assert any(line.startswith("training 784-16-10 on mnist (270 train, 30 validation)") for line in lines)
    assert not any(line.startswith("test accuracy") for line in lines)
    no_test = [line for line in lines if line.startswith("no test accuracy")]
    assert no_test == [line for line in lines if "accuracy" in line and not line.startswith("epoch")]
    assert len(no_test) == 1 and "the test split (mnist/test) has no labels" in no_test[0]
    assert "validation accuracy" in no_test[0] and "after 2 epochs" in no_test[0]
    assert lines[-1] == (f"a Kaggle submission of its predictions: nncore predict {tmp_path / 'm.npz'} "
                         f"--data-dir {directory} --submission submission.csv")
    assert (tmp_path / "m.npz").exists()


def test_train_on_kaggles_pair_without_validation_still_claims_no_accuracy(kaggle, capsys):
    code, out, err = run(capsys, "train", "--data-dir", kaggle[0], "--backend", "numpy", "--hidden", 8,
                         "--epochs", 1, "--validation-split", 0, "--quiet")
    assert code == 0, err
    assert out.splitlines() == [line for line in out.splitlines() if line.startswith("no test accuracy")]
    assert len(out.splitlines()) == 1


def test_predict_writes_a_kaggle_submission_for_an_unlabeled_csv(kaggle, kaggle_model, tmp_path, capsys):
    directory, true_labels = kaggle
    code, out, err = run(capsys, "predict", kaggle_model, "--csv", directory / "test.csv",
                         "--submission", tmp_path / "submission.csv", "--backend", "numpy")
    assert code == 0, err
    assert out.strip() == f"wrote 60 predictions to {tmp_path / 'submission.csv'} (ImageId,Label)"
    lines = (tmp_path / "submission.csv").read_text().splitlines()
    assert lines[0] == "ImageId,Label" and len(lines) == 61
    ids, labels = np.array([list(map(int, line.split(","))) for line in lines[1:]]).T
    np.testing.assert_array_equal(ids, np.arange(1, 61))
    expected = nncore.load(kaggle_model).predict(read_images(directory / "test.csv"), backend="numpy")
    np.testing.assert_array_equal(labels, expected)
    assert np.mean(labels == true_labels) > 0.8


def test_predict_csv_without_submission_prints_the_table(kaggle, kaggle_model, capsys):
    code, out, err = run(capsys, "predict", kaggle_model, "--csv", kaggle[0] / "test.csv", "--backend", "numpy")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["index", "predicted", "probability"] and len(lines) == 61


def test_predict_writes_a_submission_for_a_whole_split_of_a_folder(kaggle, kaggle_model, tmp_path, capsys):
    code, out, err = run(capsys, "predict", kaggle_model, "--data-dir", kaggle[0], "--submission",
                         tmp_path / "s.csv", "--backend", "numpy")
    assert code == 0, err
    assert out.strip() == f"wrote 60 predictions to {tmp_path / 's.csv'} (ImageId,Label)"
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 61


def test_a_submission_is_for_every_image_not_chosen_indices(kaggle_model, capsys):
    with pytest.raises(SystemExit) as caught:
        main(["predict", str(kaggle_model), "--indices", "0", "--submission", "out.csv"])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and "--submission writes a prediction for every image" in err


@pytest.fixture
def tiny_mnist_registry(monkeypatch, tmp_path):
    """'mnist' is a tiny dataset with no built-in source; the cache is empty."""
    arrays = tiny_arrays()
    monkeypatch.setitem(fetch.DATASETS, "mnist", tiny_spec(arrays, [], "mnist"))
    monkeypatch.setenv("NNCORE_DATA", str(tmp_path / "cache"))
    source = tmp_path / "source"
    source.mkdir()
    for name, array in arrays.items():
        write_idx(source / name, array)
    return source, arrays


def test_fetch_from_a_folder_seeds_the_verified_cache(tiny_mnist_registry, tmp_path, capsys):
    source, arrays = tiny_mnist_registry
    code, out, err = run(capsys, "fetch", "mnist", "--from", source, "--quiet")
    assert code == 0, err
    assert out.strip() == f"mnist: ready in {tmp_path / 'cache' / 'mnist'}"
    test = nncore.load_mnist("test")
    assert "verified cache" in test.source and len(test) == len(arrays[fetch.TEST_LABELS])


def test_fetch_data_dir_still_works_with_a_deprecation_note(tiny_mnist_registry, capsys):
    source, _ = tiny_mnist_registry
    code, out, err = run(capsys, "fetch", "mnist", "--data-dir", source, "--quiet")
    assert code == 0, err
    assert "ready in" in out
    assert err.strip() == "nncore: note: `nncore fetch --data-dir DIR` is now `--from DIR`"
