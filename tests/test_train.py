"""Training: config limits, a real one-epoch run, progress events, stop, one job at a time."""

import threading

import numpy as np
import pytest

from digitrec import registry
from digitrec.config import TrainingConfig
from digitrec.dataset import prepare_data
from digitrec.errors import LimitError, PermissionDeniedError, TrainingBusyError
from digitrec.events import BatchProgress, EpochEnd, JobState
from digitrec.jobs import TrainingManager
from digitrec.train import train

TINY = dict(architecture="shallow", epochs=1, mnist_fraction=0.05, augment=False, pendigits=False,
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


def test_one_epoch_learns_and_reports_progress(mnist):
    events = []
    result = train(TrainingConfig(**TINY), prepare_data(TrainingConfig(**TINY), mnist), events.append)
    assert result.epochs_done == 1 and not result.stopped_early
    assert {type(event) for event in events} == {BatchProgress, EpochEnd}
    (epoch_event,) = [e for e in events if isinstance(e, EpochEnd)]
    assert epoch_event.epoch == 1 and epoch_event.loss > 0
    assert epoch_event.val_accuracy > 0.5  # 2,700 digits, one epoch: it learned
    batches = [e for e in events if isinstance(e, BatchProgress)]
    assert batches[0].batch == 1 and batches[-1].batch == batches[-1].batches  # first and last batch
    assert all(0 <= e.accuracy <= 1 and e.loss > 0 for e in batches)


def test_progress_is_reported_within_an_epoch(mnist):
    """Live curves move within an epoch: several batch reports before the first epoch ends."""
    import digitrec.train as training

    events = []
    config = TrainingConfig(**TINY)
    training_data = prepare_data(config, mnist)
    original = training.make_progress_callback
    # Report on every batch (the page gets one every PROGRESS_INTERVAL_S), to see all of them.
    callback = original(events.append, None, 1, int(np.ceil(len(training_data.y_train) / 64)), interval=0)
    training.make_progress_callback = lambda *args, **kwargs: callback
    try:
        train(config, training_data)
    finally:
        training.make_progress_callback = original
    batches = [e for e in events if isinstance(e, BatchProgress)]
    positions = [e.position for e in batches]
    assert len(batches) == batches[-1].batches and positions == sorted(positions) and positions[-1] == 1.0
    assert [e for e in events if isinstance(e, EpochEnd)] == [events[-1]]  # after every batch report
    assert batches[-1].remaining == 0 and all(e.remaining is not None for e in batches[3:])
    # The loss of the batches since the last report, not the running mean: later batches are better.
    assert np.mean([e.loss for e in batches[-5:]]) < np.mean([e.loss for e in batches[:5]])


def test_stop_ends_after_the_current_batch(mnist):
    stop = threading.Event()
    batches_seen = []

    def on_progress(event):
        if isinstance(event, BatchProgress):
            batches_seen.append(event.batch)
            stop.set()

    config = TrainingConfig(**{**TINY, "epochs": 3})
    result = train(config, prepare_data(config, mnist), on_progress, stop)
    assert result.stopped_early and result.epochs_done == 1
    assert batches_seen == [1]  # it stopped after the batch that saw the stop


def test_manager_runs_one_job_and_stop_keeps_a_candidate(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    manager = TrainingManager(cooldown_s=0)
    config = TrainingConfig(**{**TINY, "epochs": 20, "mnist_fraction": 0.2})
    job = manager.start(config, "alice", directory=tmp_path)
    with pytest.raises(TrainingBusyError, match="alice"):
        manager.start(config, "bob", directory=tmp_path)
    while job.snapshot().progress is None and job.running:
        job.wait(0.5)
    job.stop()
    state = job.wait(300)
    assert state.state == JobState.STOPPED, state
    assert state.version and (tmp_path / state.version / registry.TFLITE_FILE).is_file()
    assert state.curve and state.peak_rss_mb > 100  # the training process reported its memory
    card = registry.read_card(tmp_path / state.version)
    assert card["training"]["stopped_early"] and card["training"]["epochs_done"] < 20
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
    assert job.wait(300).state == JobState.FINISHED


def test_missing_mnist_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(tmp_path / "nowhere"))
    job = TrainingManager().start(TrainingConfig(**TINY), "carol", directory=tmp_path)
    state = job.wait(120)
    assert state.state == JobState.FAILED and "DIGITREC_MNIST_DIR" in state.error


def test_old_preset_names_still_load():
    """Cards written when the presets were called "fast" and "standard" still make configs
    (tests/fixtures holds the previous round's committed card as it was written)."""
    import json
    from pathlib import Path

    from digitrec.config import architecture_name

    card = json.loads((Path(__file__).parent / "fixtures" / "card-2026-11-26-strokes.json").read_text())
    assert card["architecture"] == card["training"]["config"]["architecture"] == "standard"
    assert TrainingConfig.from_dict({"architecture": card["architecture"]}).architecture == "deep"
    assert architecture_name(card["architecture"]) == "deep"  # as the Models page and CLI show it
    assert TrainingConfig(architecture="fast").architecture == "shallow"


def test_preset_names_say_which_is_bigger():
    import keras  # noqa: F401  (TensorFlow: a few seconds)

    from digitrec.model import build_model

    shallow = build_model(TrainingConfig(architecture="shallow"))
    deep = build_model(TrainingConfig(architecture="deep"))
    convolutions = {name: sum(layer.__class__.__name__ == "Conv2D" for layer in model.layers)
                    for name, model in (("shallow", shallow), ("deep", deep))}
    assert convolutions == {"shallow": 2, "deep": 5}
    assert deep.count_params() == 207_146  # the committed model's network


def test_a_visitor_cannot_start_more_than_the_quick_preset(tmp_path):
    from digitrec.config import RETRAIN_DEFAULTS, VISITOR_WORK_LIMIT, training_work

    assert training_work(RETRAIN_DEFAULTS) <= VISITOR_WORK_LIMIT
    manager = TrainingManager(lock_path=tmp_path / "lock")
    for heavy in (TrainingConfig(architecture="deep", epochs=30, augment=True),  # ~35 min here
                  TrainingConfig(architecture="shallow", epochs=6, augment=False)):
        with pytest.raises(LimitError, match="python -m digitrec train"):
            manager.start(heavy, "mallory", directory=tmp_path)
        with pytest.raises(LimitError, match="admin password"):
            manager.start(heavy, "mallory", directory=tmp_path, configured_password="s3cret")
        with pytest.raises(PermissionDeniedError):
            manager.start(heavy, "mallory", directory=tmp_path, password="guess",
                          configured_password="s3cret")
    assert manager.current() is None and not list(tmp_path.glob("*/card.json"))


def test_the_cool_down_starts_when_the_result_is_shown_not_when_its_process_exits():
    # The page shows a finished job (Saved) while its process still exits: drawn then, it had
    # offered Start with no cool-down notice, and nothing redrew it (a flaky browser test).
    import time
    import types

    manager = TrainingManager(cooldown_s=60)
    manager._job = types.SimpleNamespace(running=False, ended_at=time.monotonic())  # its process not yet gone
    assert 55 < manager.cooldown_left() <= 60
    manager._job = None
    assert manager.cooldown_left() == 0.0


def test_cool_down_between_trainings_and_the_admin_skips_it(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    manager = TrainingManager(cooldown_s=600)
    first = manager.start(TrainingConfig(**TINY), "alice", directory=tmp_path)
    assert first.wait(300).state == JobState.FINISHED
    with pytest.raises(LimitError, match="next one can start in"):
        manager.start(TrainingConfig(**TINY), "bob", directory=tmp_path)
    assert 0 < manager.cooldown_left() <= 600
    from digitrec.config import VISITOR_WORK_LIMIT, training_work

    big = TrainingConfig(**{**TINY, "mnist_fraction": 1.0, "epochs": 10})
    assert training_work(big) > VISITOR_WORK_LIMIT
    admin = manager.start(big, "admin", directory=tmp_path, password="s3cret", configured_password="s3cret")
    admin.stop()  # the admin may start at once, and beyond the visitor limit (stopped: quick)
    assert admin.wait(300).state in (JobState.STOPPED, JobState.FINISHED)


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


@pytest.mark.parametrize("field, value", [("pen_renderings", 0), ("pen_renderings", 7),
                                          ("small_images", -1), ("small_images", 10**6),
                                          ("weight_average", 1), ("wide_pens", "yes"),
                                          ("pen_styles", 1)])
def test_new_data_settings_are_bounded(field, value):
    with pytest.raises(ValueError, match=field):
        TrainingConfig(**{field: value})


def test_batches_off_tensorflow_are_float_inputs_reshuffled_each_epoch():
    """The pipeline used on Keras' other backends (a GPU machine without TensorFlow): float32 inputs
    in [0, 1] with one-hot labels, every example once per epoch, a new order each epoch."""
    from digitrec.train import _batches

    x = np.arange(10, dtype=np.uint8)[:, None, None] * np.ones((10, 28, 28), np.uint8) * 25
    y = np.arange(10) % 10
    batches = _batches(x, y, 4, shuffle_seed=0)
    assert len(batches) == 3

    def epoch():
        parts = [batches[index] for index in range(len(batches))]
        images = np.concatenate([images for images, _ in parts])
        labels = np.concatenate([labels for _, labels in parts])
        return images, labels

    images, labels = epoch()
    assert images.dtype == np.float32 and images.shape == (10, 28, 28, 1) and images.max() <= 1.0
    assert np.allclose(labels.argmax(1) * 25 / 255, images[:, 0, 0, 0])  # each image keeps its label
    first = labels.argmax(1).tolist()
    assert sorted(first) == list(range(10))
    batches.on_epoch_end()
    assert sorted(epoch()[1].argmax(1).tolist()) == list(range(10)) and epoch()[1].argmax(1).tolist() != first
    unshuffled = _batches(x, y, 4)
    assert unshuffled[0][1].argmax(1).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("average", [True, False])
def test_weight_average_saves_the_averaged_weights(mnist, monkeypatch, average):
    """With weight_average the saved model holds the moving average of the weights, not the last
    step's (and without it, the last step's)."""
    import digitrec.train as training

    config = TrainingConfig(**{**TINY, "weight_average": average})
    last_step = {}
    make = training.make_progress_callback

    def recording(*args, **kwargs):
        callback = make(*args, **kwargs)
        original = callback.on_train_batch_end

        def on_train_batch_end(batch, logs=None):
            original(batch, logs)
            last_step["weights"] = [np.array(w) for w in callback.model.get_weights()]

        callback.on_train_batch_end = on_train_batch_end
        return callback

    monkeypatch.setattr(training, "make_progress_callback", recording)
    result = train(config, prepare_data(config, mnist))
    saved = result.model.get_weights()
    kernel = next(i for i, w in enumerate(saved) if w.ndim == 4)  # the first convolution's kernel
    if average:
        assert not np.allclose(saved[kernel], last_step["weights"][kernel])
    else:
        assert np.allclose(saved[kernel], last_step["weights"][kernel])


def test_the_training_process_fits_the_candidate_its_own_gate_head(monkeypatch, mnist_dir, companion_model,
                                                                   active_models):
    """Through the real training process: --equip (no TensorFlow) makes the head's inputs and
    --head, a fresh image of the process, fits it; the page hears each step, then Saved."""
    from digitrec.events import FinishingStep
    from digitrec.inference import GATE_HEAD_FILE

    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    directory = active_models(companion_model)
    job = TrainingManager(cooldown_s=0).start(TrainingConfig(**TINY), "alice", directory=directory)
    steps = []
    while job.running:
        step = job.snapshot().finishing
        if step is not None and step not in steps:
            steps.append(step)
        job.wait(0.05)
    state = job.snapshot()
    assert state.state == JobState.FINISHED, state.error
    assert state.finishing is None
    assert FinishingStep.GATE_HEAD in steps  # shown on the page while the head was fitted
    folder = directory / state.version
    assert (folder / GATE_HEAD_FILE).is_file()
    assert "gate_head_threshold" in registry.read_card(folder)["calibration"]


def test_the_reported_memory_is_the_training_process_own(tmp_path, monkeypatch, mnist_dir):
    """The server starts the training process by vfork and exec, and exec folds the server's own
    peak into ru_maxrss: a server that had once held 3 GB made every training report 3 GB."""
    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    ballast = np.ones(3 * 1024**3 // 8)  # 3 GiB resident in this process, the "server"
    job = TrainingManager(cooldown_s=0).start(TrainingConfig(**TINY), "alice", directory=tmp_path)
    state = job.wait(300)
    del ballast
    assert state.state == JobState.FINISHED, state.error
    assert 100 < state.peak_rss_mb < 2048, state.peak_rss_mb  # a tiny training: TensorFlow and little else


def test_a_candidate_killed_while_fitting_its_head_is_still_announced_saved(monkeypatch, mnist_dir,
                                                                            companion_model, active_models):
    """The candidate folder is complete before its head is fitted: if the process is killed while
    it fits the head (as the kernel does when memory runs out), the page says the candidate was
    saved, without a head of its own, instead of "Training failed"."""
    import os
    import signal

    from digitrec.events import FinishingStep
    from digitrec.inference import GATE_HEAD_FILE

    monkeypatch.setenv("DIGITREC_MNIST_DIR", str(mnist_dir))
    directory = active_models(companion_model)
    job = TrainingManager(cooldown_s=0).start(TrainingConfig(**TINY), "alice", directory=directory)
    killed = False
    while job.running:
        if not killed and job.snapshot().finishing == FinishingStep.GATE_HEAD:
            os.kill(job.pid, signal.SIGKILL)  # the same pid in every phase (exec)
            killed = True
        job.wait(0.05)
    state = job.snapshot()
    assert killed
    assert state.state == JobState.FINISHED, state.error
    assert "not-a-digit head" in state.warning and "exit code -9" in state.warning
    folder = directory / state.version
    assert not (folder / GATE_HEAD_FILE).is_file()
    assert "gate_head_threshold" not in registry.read_card(folder)["calibration"]
    assert state.metrics == registry.read_card(folder)["metrics"]


def test_a_head_that_fails_to_fit_leaves_the_candidate_saved_with_a_warning(monkeypatch, companion_model):
    """The training process's --head step: an error while fitting (here: no memory) still
    announces the saved candidate, with the reason, instead of failing the whole training."""
    import digitrec.companion_training as companion_training
    from digitrec.events import Finishing, FinishingStep, Saved
    from digitrec.jobs import fit_head_or_warn

    def no_room(*args, **kwargs):
        raise MemoryError("no room for the head")

    monkeypatch.setattr(companion_training, "fit_gate_head", no_room)
    events = []
    fit_head_or_warn(companion_model, None, TrainingConfig(**TINY), events.append)
    assert events[0] == Finishing(FinishingStep.GATE_HEAD)
    saved = events[-1]
    assert isinstance(saved, Saved) and saved.version == companion_model.name
    assert "MemoryError: no room for the head" in saved.warning


def test_a_tiny_training_reads_its_validation_digits_about_as_well_as_its_training_batches(mnist):
    """Batch norm's running statistics trail the weights by ten batches or so: a trial run of 1%
    of MNIST (9 batches) read its validation digits at chance (11.8%) while its training batches
    read 40%, and its candidate answered "1" to every digit. They are now measured afresh."""
    config = TrainingConfig(**{**TINY, "mnist_fraction": 0.01})
    training_data = prepare_data(config, mnist)
    result = train(config, training_data)
    assert result.history["val_accuracy"][-1] > max(0.5, result.history["accuracy"][-1])
    read = result.model.predict(training_data.x_test[:1000, ..., None] / 255.0, verbose=0).argmax(1)
    assert (read == training_data.y_test[:1000]).mean() > 0.5
    assert len(set(read.tolist())) == 10  # not one answer for every digit


def test_recomputed_batch_norm_statistics_are_the_batches_mean(mnist):
    """recompute_batch_norm sets the moving mean to the plain average of the batches' means
    (momentum i/(i+1) at batch i), whatever it was before, and leaves the weights and momentum."""
    import keras

    from digitrec.train import recompute_batch_norm

    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.9)])
    norm = model.layers[0]
    norm.moving_mean.assign([5.0, 5.0, 5.0])
    rng = np.random.default_rng(0)
    batches = [(rng.normal(loc, 1.0, (8, 3)).astype(np.float32), None) for loc in (1.0, 2.0, 3.0, 100.0)]
    recompute_batch_norm(model, batches, limit=3)
    expected = np.mean([images.mean(axis=0) for images, _ in batches[:3]], axis=0)
    assert np.allclose(np.asarray(norm.moving_mean), expected, atol=1e-5)
    assert norm.momentum == 0.9
    assert np.allclose(np.asarray(norm.gamma), 1.0)


def test_recomputed_batch_norm_reads_the_batches_off_tensorflow(mnist):
    """Off TensorFlow the training batches are a PyDataset (`_batches`), indexed rather than
    iterated: recompute_batch_norm reads its first `limit` batches (it once indexed its own
    generator: "'generator' object is not subscriptable", every small training under torch)."""
    import keras

    from digitrec.train import _batches, recompute_batch_norm

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.BatchNormalization(momentum=0.9)])
    norm = model.layers[0]
    x = np.stack([np.full((28, 28), value, np.uint8) for value in (51, 102, 153, 255)])
    batches = _batches(x, np.arange(4), 2)  # two batches of two: means 76.5 and 204 (of 255)
    recompute_batch_norm(model, batches, limit=16)
    assert np.allclose(np.asarray(norm.moving_mean), (76.5 + 204) / 2 / 255, atol=1e-5)
