"""The training loop: history, validation, schedules, early stopping, callbacks, checkpoints,
resume after an interruption, divergence."""
import math

import numpy as np
import pytest
from test_model import BACKENDS, blobs, blobs_uint8

import nncore
from nncore.callbacks import CHECKPOINT_NAME
from nncore.train import epoch_seed


class InterruptAfter(nncore.Callback):
    """Acts like Ctrl-C once ``epochs`` epochs are complete."""

    def __init__(self, epochs):
        self.epochs = epochs

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epochs:
            raise KeyboardInterrupt


def test_history_records_every_epoch():
    X, y = blobs()
    history = nncore.MLP([16, 8, 4], seed=0).fit(X, y, epochs=3, backend="numpy")
    assert history.epoch == [1, 2, 3] and len(history) == 3
    assert all(len(values) == 3 for values in history.history.values())
    assert history.val_loss == [None] * 3 and not history.has_validation
    assert all(s > 0 for s in history.seconds) and history.lr == [1e-3] * 3
    assert 0 <= history.accuracy[-1] <= 1 and not history.interrupted


def test_verbose_prints_one_line_per_epoch(capsys):
    X, y = blobs()
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=2, backend="numpy", verbose=2, validation_split=0.25)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("epoch 1/2  loss ") and "val_accuracy" in lines[0] and lines[0].endswith(" s")


def test_validation_split_holds_out_a_reproducible_fraction():
    X, y = blobs(400)
    seen = []
    model = nncore.MLP([16, 4], seed=0)
    history = model.fit(X, y, epochs=2, validation_split=0.25, backend="numpy",
                        callbacks=[lambda epoch, logs: seen.append(logs)])
    assert history.has_validation and all(0 <= a <= 1 for a in history.val_accuracy)
    # 300 training samples of batch 128 -> 3 updates per epoch
    assert model.optimizer.step == 6
    again = nncore.MLP([16, 4], seed=0).fit(X, y, epochs=2, validation_split=0.25, backend="numpy")
    assert again.val_loss == history.val_loss
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, y, epochs=1, validation_split=1.5, backend="numpy")
    with pytest.raises(ValueError, match="not both"):
        model.fit(X, y, epochs=1, validation_split=0.2, validation_data=(X, y), backend="numpy")


def test_validation_data_is_evaluated_each_epoch():
    X, y = blobs(300)
    model = nncore.MLP([16, 8, 4], seed=0)
    history = model.fit(X[:200], y[:200], epochs=2, validation_data=(X[200:], y[200:]), backend="numpy")
    assert history.val_accuracy[-1] == pytest.approx(model.evaluate(X[200:], y[200:], backend="numpy").accuracy)


def test_early_stopping_stops_and_restores_the_best_parameters():
    X, y = blobs(300)
    rng = np.random.default_rng(1)
    noise_X, noise_y = rng.normal(size=(100, 16)).astype(np.float32) * 3, rng.integers(0, 4, 100)
    params_by_epoch = {}
    model = nncore.MLP([16, 64, 4], seed=0)

    def remember(epoch, logs):
        params_by_epoch[epoch] = model.params.copy()

    history = model.fit(X, y, epochs=60, batch_size=16, optimizer=nncore.Adam(lr=1e-2),
                        validation_data=(noise_X, noise_y), backend="numpy", callbacks=[remember],
                        early_stopping=nncore.EarlyStopping(patience=2))
    assert history.stopped_early and len(history) < 60
    best = history.epoch[int(np.argmin(history.val_loss))]
    assert history.best_epoch == best == len(history) - 2
    assert np.array_equal(model.params, params_by_epoch[best])


def test_early_stopping_without_validation_watches_training_loss():
    X, y = blobs(100)
    history = nncore.MLP([16, 4], seed=0).fit(X, y, epochs=3, backend="numpy", early_stopping=True)
    assert not history.stopped_early and history.best_epoch == 3


def test_a_callback_returning_true_stops_training():
    X, y = blobs(100)
    history = nncore.MLP([16, 4], seed=0).fit(X, y, epochs=10, backend="numpy",
                                              callbacks=[lambda epoch, logs: epoch == 2])
    assert len(history) == 2 and not history.stopped_early


@pytest.mark.parametrize("schedule, expected", [
    (nncore.StepDecay(step_size=2, gamma=0.5), [0.1, 0.1, 0.05, 0.05, 0.025]),
    (nncore.Cosine(), [0.1 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]),
    ("cosine", [0.1 * (1 + math.cos(math.pi * e / 5)) / 2 for e in range(5)]),
    (nncore.Cosine(min_lr=0.01, warmup_epochs=1), [0.05] + [0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2
                                                              for t in range(4)]),
    (lambda epoch, epochs, base_lr: base_lr / (epoch + 1), [0.1, 0.05, 0.1 / 3, 0.025, 0.02]),
])
def test_learning_rate_schedules_set_the_rate_of_each_epoch(schedule, expected):
    X, y = blobs(100)
    optimizer = nncore.SGD(lr=0.1)
    history = nncore.MLP([16, 4], seed=0).fit(X, y, epochs=5, optimizer=optimizer, backend="numpy",
                                              lr_schedule=schedule)
    np.testing.assert_allclose(history.lr, expected, rtol=1e-12)
    assert optimizer.lr == 0.1  # restored for the next fit


def test_a_schedule_changes_training():
    X, y = blobs(100)
    plain = nncore.MLP([16, 4], seed=0)
    plain.fit(X, y, epochs=3, optimizer=nncore.SGD(lr=0.1), backend="numpy")
    scheduled = nncore.MLP([16, 4], seed=0)
    scheduled.fit(X, y, epochs=3, optimizer=nncore.SGD(lr=0.1), backend="numpy",
                  lr_schedule=nncore.StepDecay(1, 0.1))
    assert not np.array_equal(plain.params, scheduled.params)


def test_bad_schedule_is_rejected():
    X, y = blobs(20)
    with pytest.raises(ValueError, match="lr_schedule"):
        nncore.MLP([16, 4]).fit(X, y, lr_schedule="exponential", backend="numpy")


def test_epoch_seeds_depend_on_seed_and_epoch_only():
    assert epoch_seed(1, 0) == epoch_seed(1, 0)
    assert len({epoch_seed(1, 0), epoch_seed(1, 1), epoch_seed(2, 0)}) == 3


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", [lambda: nncore.Adam(lr=3e-3),
                                       lambda: nncore.SGD(lr=0.05, momentum=0.9, nesterov=True)])
def test_an_interrupted_run_resumed_ends_bit_identical_to_an_uninterrupted_one(tmp_path, backend, optimizer):
    X, y = blobs_uint8(300)
    settings = {"epochs": 6, "batch_size": 32, "backend": backend, "validation_split": 0.2,
                "lr_schedule": "cosine", "early_stopping": nncore.EarlyStopping(patience=10)}
    straight = nncore.MLP([16, 12, 4], seed=7)
    expected = straight.fit(X, y, optimizer=optimizer(), **settings)

    first = nncore.MLP([16, 12, 4], seed=7)
    with pytest.warns(RuntimeWarning, match="interrupted after 3 complete epoch"):
        partial = first.fit(X, y, optimizer=optimizer(), checkpoint_dir=tmp_path,
                            callbacks=[InterruptAfter(3)], **settings)
    assert partial.interrupted and len(partial) == 3

    resumed = nncore.MLP([16, 12, 4], seed=99)  # a fresh process: different initial weights
    history = resumed.fit(X, y, checkpoint_dir=tmp_path, resume=True, **settings)
    assert history.epoch == [1, 2, 3, 4, 5, 6] and resumed.epochs_trained == 6
    assert np.array_equal(resumed.params, straight.params)
    assert resumed.optimizer.step == straight.optimizer.step
    assert history.loss == expected.loss and history.val_loss == expected.val_loss


def test_resume_continues_a_keras_style_second_fit(tmp_path):
    X, y = blobs(200)
    straight = nncore.MLP([16, 4], seed=1)
    straight.fit(X, y, epochs=2, backend="numpy")
    straight.fit(X, y, epochs=3, backend="numpy")

    model = nncore.MLP([16, 4], seed=1)
    model.fit(X, y, epochs=2, backend="numpy")
    with pytest.warns(RuntimeWarning):
        model.fit(X, y, epochs=3, backend="numpy", checkpoint_dir=tmp_path, callbacks=[InterruptAfter(3)])
    fresh = nncore.MLP([16, 4], seed=1)
    history = fresh.fit(X, y, epochs=3, backend="numpy", checkpoint_dir=tmp_path, resume=True)
    assert history.epoch == [3, 4, 5]
    assert np.array_equal(fresh.params, straight.params)


def test_resume_without_a_checkpoint_starts_from_scratch(tmp_path):
    X, y = blobs(100)
    history = nncore.MLP([16, 4], seed=0).fit(X, y, epochs=2, backend="numpy",
                                              checkpoint_dir=tmp_path / "new", resume=True)
    assert len(history) == 2 and (tmp_path / "new" / CHECKPOINT_NAME).exists()
    with pytest.raises(ValueError, match="checkpoint_dir"):
        nncore.MLP([16, 4]).fit(X, y, resume=True, backend="numpy")


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path):
    X, y = blobs(100)
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=1, backend="numpy", checkpoint_dir=tmp_path)
    with pytest.raises(nncore.ModelFileError, match="not this model"):
        nncore.MLP([16, 5, 4], seed=0).fit(X, y, epochs=2, backend="numpy", checkpoint_dir=tmp_path, resume=True)


def test_resume_with_a_different_optimizer_kind_is_refused(tmp_path):
    X, y = blobs(100)
    nncore.MLP([16, 4], seed=0).fit(X, y, epochs=1, backend="numpy", checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="trained with adam"):
        nncore.MLP([16, 4]).fit(X, y, epochs=2, optimizer=nncore.SGD(), backend="numpy",
                                checkpoint_dir=tmp_path, resume=True)


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    X, y = blobs(200)
    model = nncore.MLP([16, 32, 4], seed=0)
    model.fit(X, y, epochs=2, backend="numpy", checkpoint_dir=tmp_path)
    good = model.params.copy()
    with pytest.raises(nncore.TrainingDiverged) as caught:
        model.fit(X, y, epochs=3, optimizer=nncore.SGD(lr=1e4), backend="numpy", checkpoint_dir=tmp_path)
    assert caught.value.epoch >= 3
    on_disk = nncore.load(tmp_path / CHECKPOINT_NAME)
    if caught.value.epoch == 3:
        assert np.array_equal(on_disk.params, good)
    assert np.all(np.isfinite(on_disk.params))


def test_an_interrupt_with_the_numpy_backend_rolls_back_to_the_epoch_start(monkeypatch):
    from nncore.backends import numpy_backend

    X, y = blobs(100)
    model = nncore.MLP([16, 4], seed=0)
    model.fit(X, y, epochs=1, backend="numpy")
    before, step = model.params.copy(), model.optimizer.step
    original = numpy_backend.apply_update

    def interrupted_update(params, grad, optimizer):
        original(params, grad, optimizer)
        raise KeyboardInterrupt

    monkeypatch.setattr(numpy_backend, "apply_update", interrupted_update)
    with pytest.warns(RuntimeWarning, match="interrupted after 0 complete"):
        history = model.fit(X, y, epochs=1, backend="numpy")
    assert history.interrupted and len(history) == 0
    assert np.array_equal(model.params, before) and model.optimizer.step == step


@pytest.mark.parametrize("kwargs, error", [
    ({"epochs": -1}, ValueError), ({"epochs": 1.5}, ValueError), ({"batch_size": 0}, ValueError),
    ({"loss": "hinge"}, ValueError), ({"optimizer": "lbfgs"}, TypeError),
    ({"backend": "gpu"}, ValueError), ({"early_stopping": "yes"}, TypeError),
    ({"callbacks": [3]}, TypeError), ({"verbose": 3}, ValueError), ({"verbose": 1.0}, ValueError),
    ({"seed": -1}, ValueError)])
def test_bad_fit_arguments_raise(kwargs, error):
    X, y = blobs(20)
    with pytest.raises(error):
        nncore.MLP([16, 4]).fit(X, y, **{"backend": "numpy", **kwargs})


def test_resuming_a_run_that_stopped_early_does_not_train_further(tmp_path):
    X, y = blobs(300)
    rng = np.random.default_rng(1)
    noise = (rng.normal(size=(100, 16)).astype(np.float32) * 3, rng.integers(0, 4, 100))
    settings = {"epochs": 60, "batch_size": 16, "validation_data": noise, "backend": "numpy",
                "early_stopping": nncore.EarlyStopping(patience=2), "checkpoint_dir": tmp_path}
    model = nncore.MLP([16, 64, 4], seed=0)
    history = model.fit(X, y, optimizer=nncore.Adam(lr=1e-2), **settings)
    assert history.stopped_early
    again = nncore.MLP([16, 64, 4], seed=5)
    resumed = again.fit(X, y, resume=True, **settings)
    assert resumed.epoch == history.epoch and resumed.stopped_early
    assert np.array_equal(again.params, model.params)


def test_callbacks_passed_directly_do_what_fits_arguments_build(tmp_path):
    X, y = blobs(200)
    built = nncore.MLP([16, 8, 4], seed=3)
    built.fit(X, y, epochs=4, optimizer=nncore.SGD(lr=0.1), backend="numpy", lr_schedule="cosine",
              early_stopping=nncore.EarlyStopping(monitor="loss", patience=5), checkpoint_dir=tmp_path / "a")
    passed = nncore.MLP([16, 8, 4], seed=3)
    passed.fit(X, y, epochs=4, optimizer=nncore.SGD(lr=0.1), backend="numpy", callbacks=[
        nncore.LearningRateScheduler("cosine"), nncore.EarlyStopping(monitor="loss", patience=5),
        nncore.ModelCheckpoint(tmp_path / "b")])
    assert np.array_equal(built.params, passed.params) and built.history.lr == passed.history.lr
    assert np.array_equal(nncore.load(tmp_path / "a" / CHECKPOINT_NAME).params,
                          nncore.load(tmp_path / "b" / CHECKPOINT_NAME).params)


class Recorder(nncore.Callback):
    """Every hook call, in order, with the run as the callback sees it."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", self.run.start, self.run.epochs, self.model.epochs_trained))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end", len(self.run.history)))


def test_the_hooks_are_called_in_keras_order_with_epochs_counted_over_the_whole_training():
    X, y = blobs(100)
    model = nncore.MLP([16, 4], seed=0)
    model.fit(X, y, epochs=1, backend="numpy")
    recorder = Recorder()
    model.fit(X, y, epochs=2, backend="numpy", callbacks=[recorder])
    keys = ["accuracy", "epoch", "loss", "lr", "seconds"]
    assert recorder.calls == [("train_begin", 0, 2, 1), ("epoch_begin", 2), ("epoch_end", 2, keys),
                              ("epoch_begin", 3), ("epoch_end", 3, keys), ("train_end", 2)]


def test_on_train_end_runs_when_training_diverges_and_the_schedule_restores_the_rate():
    X, y = blobs(100)
    recorder, optimizer = Recorder(), nncore.SGD(lr=1e30)
    with pytest.raises(nncore.TrainingDiverged):
        nncore.MLP([16, 32, 4], seed=0).fit(X, y, epochs=5, batch_size=10, optimizer=optimizer, backend="numpy",
                                            lr_schedule=nncore.StepDecay(1, 2.0), callbacks=[recorder])
    assert recorder.calls[-1][0] == "train_end" and optimizer.lr == 1e30
