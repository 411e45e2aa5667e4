"""Training: config limits, a real one-epoch run, progress events, stop, one job at a time."""

import threading

import numpy as np
import pytest

from digitrec import registry
from digitrec.config import TrainingConfig
from digitrec.errors import TrainingBusyError
from digitrec.jobs import TrainingManager
from digitrec.train import prepare_data, train

TINY = dict(architecture="fast", epochs=1, mnist_fraction=0.05, augment=False, pendigits=False,
            validation_size=300, batch_size=64)


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 31), ("epochs", 2.5), ("batch_size", 8), ("learning_rate", 1.0),
    ("mnist_fraction", 0.0), ("architecture", "huge"), ("sample_weight", 1000), ("epochs", True),
    ("epochs", "3"),
])
def test_out_of_range_settings_are_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**{field: value})


def test_from_dict_ignores_unknown_keys():
    config = TrainingConfig.from_dict({"epochs": 2, "evil": "x"})
    assert config.epochs == 2


def test_prepare_data_oversamples_user_samples(mnist):
    config = TrainingConfig(**{**TINY, "sample_weight": 3, "user_samples": True})
    x = np.random.default_rng(0).random((3, 28, 28)).astype(np.float32)
    y = np.array([1, 2, 3], np.uint8)
    prepared = prepare_data(config, mnist, samples=(x, y))
    assert prepared.counts["user_samples"] == 3
    assert len(prepared.y_train) == prepared.counts["mnist"] + 9
    assert (prepared.x_train[-9:][:3] == x[0]).all()
    assert len(prepared.y_val) == 300 and prepared.x_test.shape == (10000, 28, 28)


def test_mnist_share_is_a_share_of_the_training_images(mnist):
    config = TrainingConfig(architecture="fast", mnist_fraction=0.05, pendigits=False)  # the form's validation size
    prepared = prepare_data(config, mnist)
    assert len(prepared.y_val) == 5000
    assert prepared.counts["mnist"] == len(prepared.y_train) == 2750  # 5% of the other 55,000


def test_saved_samples_are_a_small_share_of_the_training_set(mnist):
    config = TrainingConfig(**{**TINY, "sample_weight": 3, "user_samples": True})
    x = np.zeros((50, 28, 28), np.float32)
    prepared = prepare_data(config, mnist, samples=(x, np.full(50, 4, np.uint8)))
    assert len(prepared.y_train) - prepared.counts["mnist"] <= 0.005 * prepared.counts["mnist"]


def test_one_epoch_learns_and_reports_progress(mnist):
    events = []
    result = train(TrainingConfig(**TINY), prepare_data(TrainingConfig(**TINY), mnist), events.append)
    assert result.epochs_done == 1 and not result.stopped_early
    kinds = {event["kind"] for event in events}
    assert kinds == {"batch", "epoch"}
    epoch_event = [e for e in events if e["kind"] == "epoch"][0]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(epoch_event["logs"])
    assert epoch_event["logs"]["val_accuracy"] > 0.5  # 2,700 digits, one epoch: it learned


def test_stop_ends_after_the_current_batch(mnist):
    stop = threading.Event()
    batches_seen = []

    def on_progress(event):
        if event["kind"] == "batch":
            batches_seen.append(event["batch"])
            stop.set()

    config = TrainingConfig(**{**TINY, "epochs": 3})
    result = train(config, prepare_data(config, mnist), on_progress, stop)
    assert result.stopped_early and result.epochs_done == 1
    assert batches_seen == [1]  # progress is reported every 20 batches: it stopped before batch 21


def test_manager_runs_one_job_and_stop_keeps_a_candidate(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    manager = TrainingManager()
    config = TrainingConfig(**{**TINY, "epochs": 30, "mnist_fraction": 0.2})
    job = manager.start(config, "alice", directory=tmp_path)
    with pytest.raises(TrainingBusyError, match="alice"):
        manager.start(config, "bob", directory=tmp_path)
    while job.snapshot()["progress"] is None and job.running:
        job.wait(0.5)
    job.stop()
    state = job.wait(300)
    assert state["state"] == "stopped", state
    assert state["version"] and (tmp_path / state["version"] / registry.TFLITE_FILE).is_file()
    card = registry.read_card(tmp_path / state["version"])
    assert card["training"]["stopped_early"] and card["training"]["epochs_done"] < 30
    manager.start(TrainingConfig(**TINY), "bob", directory=tmp_path).wait(300)  # free again


def test_two_simultaneous_starts_run_exactly_one(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    manager = TrainingManager()
    barrier = threading.Barrier(2)
    outcomes = []

    def start(owner):
        barrier.wait()
        try:
            outcomes.append(manager.start(TrainingConfig(**TINY), owner, directory=tmp_path))
        except TrainingBusyError:
            outcomes.append("busy")

    threads = [threading.Thread(target=start, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("busy") == 1
    job = next(outcome for outcome in outcomes if outcome != "busy")
    assert job.wait(300)["state"] == "finished"


def test_missing_mnist_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(tmp_path / "nowhere"))
    job = TrainingManager().start(TrainingConfig(**TINY), "carol", directory=tmp_path)
    state = job.wait(120)
    assert state["state"] == "failed" and "DIGITREC_MNIST_DIR" in state["error"]


@pytest.mark.parametrize("tf_config, chief", [
    (None, True),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}', True),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}', False),
    ('{"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}', False),
    ('{"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', True),
])
def test_only_the_chief_saves(monkeypatch, tf_config, chief):
    from digitrec.train import is_chief

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    assert is_chief() is chief
