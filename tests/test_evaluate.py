"""Evaluation: per-class comparison with the active model, so a poisoned candidate is visible."""

import json
import shutil

import numpy as np
import pytest

from digitrec import data, registry
from digitrec.config import TrainingConfig, sample_row_limits
from digitrec.dataset import PEN_RENDERINGS, prepare_data, preprocessed_pendigits
from digitrec.evaluate import (
    CANVAS,
    MNIST_TEST,
    SAVED_SAMPLES,
    ClassLoss,
    class_losses,
    evaluate_version,
    reports_from_card,
)
from digitrec.train import train


def report(per_class):
    return {"per_class": per_class}


def test_class_losses_name_the_digits_beyond_the_tolerance():
    active = {MNIST_TEST: report([0.99] * 10), CANVAS: report([0.98] * 10)}
    candidate = {MNIST_TEST: report([0.99] * 9 + [0.975]),  # 1.5 points: within the tolerance
                 CANVAS: report([0.98, 0.98, 0.98, 0.10, 0.98, 0.98, 0.98, 0.98, 0.90, 0.98])}
    losses = class_losses(candidate, active)
    assert [(loss.dataset, loss.digit) for loss in losses] == [(CANVAS, 3), (CANVAS, 8)]
    assert losses[0].points == pytest.approx(88.0)
    assert "3 on canvas-drawn pendigits: 10.0% vs 98.0%" in losses[0].describe()


def test_saved_samples_do_not_judge_a_promotion():
    active = {SAVED_SAMPLES: report([1.0] * 10)}
    assert class_losses({SAVED_SAMPLES: report([0.0] * 10)}, active) == []


def test_reports_from_card_read_both_sets():
    card = {"metrics": {"mnist_test_per_class": [0.9] * 10, "pendigits_canvas_per_class": [0.8] * 10}}
    assert reports_from_card(card) == {MNIST_TEST: report([0.9] * 10), CANVAS: report([0.8] * 10)}
    assert reports_from_card({}) == {}


def test_a_poisoned_candidate_is_flagged_on_the_poisoned_digit(tmp_path, tiny_model, mnist, pen_digits):
    """Canvas 3s saved as "8" in bulk (what the old default let one visitor do) are caught
    by the held-out canvas drawings before promotion, and the loss names digit 3."""
    config = TrainingConfig.from_dict(registry.read_card(tiny_model)["training"]["config"])
    training_writers, _ = data.split_writers(pen_digits)
    pen = preprocessed_pendigits(training_writers, PEN_RENDERINGS, seed=7, tag="train")
    threes = pen["x"][pen["y"] == 3]
    prepared = prepare_data(config, mnist)
    prepared.x_train = np.concatenate([prepared.x_train, threes, threes])
    prepared.y_train = np.concatenate([prepared.y_train, np.full(2 * len(threes), 8, np.uint8)])
    poisoned = registry.save_model(train(config, prepared).model, {"metrics": {}}, "poisoned", tmp_path)

    candidate, active = evaluate_version(poisoned), evaluate_version(tiny_model)
    assert CANVAS in candidate["reports"] and len(candidate["reports"][CANVAS]["per_class"]) == 10
    losses = class_losses(candidate["reports"], active["reports"])
    worst = losses[0]
    assert isinstance(worst, ClassLoss) and (worst.dataset, worst.digit) == (CANVAS, 3), losses
    assert worst.points > 30
    confusion = np.array(candidate["reports"][CANVAS]["confusion"])
    assert confusion[3, 8] > confusion[3].sum() / 2  # most held-out canvas 3s now read as 8


def test_saved_samples_are_opt_in_and_bounded_in_share(mnist):
    base = dict(architecture="fast", epochs=1, mnist_fraction=0.5, augment=False, pendigits=False,
                validation_size=500)
    flood = (np.zeros((5000, 28, 28), np.float32), np.full(5000, 8, np.uint8))
    assert TrainingConfig().user_samples is False  # off unless asked for
    left_out = prepare_data(TrainingConfig(**base), mnist, samples=flood)
    assert "user_samples" not in left_out.counts and len(left_out.y_train) == left_out.counts["mnist"]

    config = TrainingConfig(**base, user_samples=True, sample_weight=3)
    prepared = prepare_data(config, mnist, samples=flood)
    other = prepared.counts["mnist"]
    rows = len(prepared.y_train) - other
    total_limit, label_limit = sample_row_limits(other)
    assert 0 < rows <= label_limit <= 0.005 * other  # one label: at most 0.5% of the rest
    assert prepared.counts["user_samples"] == rows // 3
    assert prepared.counts["user_samples_left_out"] == 5000 - rows // 3

    mixed = (np.zeros((5000, 28, 28), np.float32), np.arange(5000, dtype=np.uint8) % 10)
    prepared = prepare_data(config, mnist, samples=mixed)
    rows = len(prepared.y_train) - other
    assert rows <= total_limit <= 0.03 * other  # all labels: at most 3% of the rest
    assert rows / len(prepared.y_train) < 0.03


def test_sample_weight_is_bounded():
    with pytest.raises(ValueError, match="sample_weight"):
        TrainingConfig(sample_weight=10)


def test_evaluation_reports_calibration_per_test_set(companion_model):
    from digitrec.evaluate import CANVAS, MNIST_TEST, evaluate_version

    result = evaluate_version(companion_model)
    for name, count in ((MNIST_TEST, 10_000), (CANVAS, None)):
        rows = result["reliability"][name]
        assert len(rows) == 10
        assert sum(row["count"] for row in rows) == (count or result["reports"][name]["count"])
        assert 0.0 <= result["ece"][name] <= 1.0
    top = result["reliability"][MNIST_TEST][-1]
    assert top["count"] > 0 and top["accuracy"] >= 0.9  # "over 90% sure" is right most of the time


def test_a_stored_evaluation_is_shown_without_evaluating_again(companion_model, tmp_path, monkeypatch):
    from digitrec import evaluate, registry

    folder = tmp_path / "stored"
    shutil.copytree(companion_model, folder)
    fresh = evaluate.store_evaluation(folder)
    assert (folder / registry.EVALUATION_FILE).is_file()

    def no_second_evaluation(*args, **kwargs):
        raise AssertionError("evaluated MNIST test and the pen writers again")

    monkeypatch.setattr(evaluate, "_evaluate_fixed_sets", no_second_evaluation)
    samples = (np.zeros((3, 28, 28), np.uint8), np.array([1, 2, 3]))
    shown = evaluate.evaluate_version(folder, samples)
    for name in (evaluate.MNIST_TEST, evaluate.CANVAS):
        assert shown["reports"][name] == fresh["reports"][name]
        assert shown["reliability"][name] == fresh["reliability"][name]
        assert shown["ece"][name] == pytest.approx(fresh["ece"][name])
    assert shown["reports"][evaluate.SAVED_SAMPLES]["count"] == 3  # saved samples change: read afresh
    assert [(item["true"], item["predicted"]) for item in shown["misclassified"]] == \
        [(item["true"], item["predicted"]) for item in fresh["misclassified"]]
    for mine, theirs in zip(shown["misclassified"], fresh["misclassified"]):
        assert mine["model_input"].dtype == np.float32
        assert np.allclose(mine["model_input"], theirs["model_input"], atol=1 / 255)


def test_a_stored_evaluation_of_other_files_is_not_shown(companion_model, tmp_path):
    from digitrec import evaluate, registry

    folder = tmp_path / "changed"
    shutil.copytree(companion_model, folder)
    evaluate.store_evaluation(folder)
    assert evaluate.read_evaluation(folder) is not None
    card = registry.read_card(folder)
    card["calibration"]["image_temperature"] *= 2  # recalibrated: its confidence reads otherwise
    registry.write_card(folder, card)
    assert evaluate.read_evaluation(folder) is None
    evaluate.store_evaluation(folder)
    assert evaluate.read_evaluation(folder) is not None
    (folder / registry.TFLITE_FILE).write_bytes((folder / registry.TFLITE_FILE).read_bytes() + b"\0")
    assert evaluate.read_evaluation(folder) is None  # another served file
    (folder / registry.EVALUATION_FILE).write_text("{not json")
    assert evaluate.read_evaluation(folder) is None
    stored = evaluate.store_evaluation(folder)
    text = (folder / registry.EVALUATION_FILE).read_text()
    assert evaluate.read_evaluation(folder) is not None and stored["misclassified"]
    edited = json.loads(text)
    edited["evaluation"]["misclassified"][0]["model_input"][0][0] = 1000  # no uint8 pixel
    (folder / registry.EVALUATION_FILE).write_text(json.dumps(edited))
    assert evaluate.read_evaluation(folder) is None


def test_a_training_is_not_lost_when_its_evaluation_cannot_be_written(companion_model, tmp_path,
                                                                      monkeypatch):
    from digitrec import evaluate, registry

    folder = tmp_path / "full-disk"
    shutil.copytree(companion_model, folder)
    (folder / registry.EVALUATION_FILE).unlink()

    def disk_full(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(registry, "write_atomically", disk_full)
    result = evaluate.store_evaluation(folder)
    assert evaluate.MNIST_TEST in result["reports"] and not (folder / registry.EVALUATION_FILE).exists()


def test_an_evaluation_missing_a_set_is_not_stored(companion_model, tmp_path):
    from digitrec import evaluate, registry

    folder = tmp_path / "partial"
    shutil.copytree(companion_model, folder)
    (folder / registry.EVALUATION_FILE).unlink()  # its training's, complete
    result = evaluate.store_evaluation(folder, mnist_folder=tmp_path / "no-mnist-here")
    assert result["missing"] and evaluate.CANVAS in result["reports"]
    assert not (folder / registry.EVALUATION_FILE).exists()


def test_accuracy_report_counts_per_digit_and_confuses_rows_with_columns():
    from digitrec.evaluate import accuracy_report, describe_losses

    labels = [0, 0, 1, 1, 2, 9]
    probabilities = np.eye(10)[[0, 1, 1, 1, 2, 4]]  # one 0 read as 1, the 9 read as 4
    report = accuracy_report(labels, probabilities)
    assert report["accuracy"] == pytest.approx(4 / 6) and report["count"] == 6
    assert report["per_class"][:3] == [0.5, 1.0, 1.0] and report["per_class"][9] == 0.0
    assert report["per_class"][5] == 0.0  # no 5s: nothing right, no division by zero
    confusion = np.array(report["confusion"])
    assert confusion[0, 1] == 1 and confusion[9, 4] == 1 and confusion.sum() == 6
    assert accuracy_report([], np.zeros((0, 10)))["accuracy"] == 0.0
    losses = [ClassLoss(MNIST_TEST, 3, 0.9, 0.99), ClassLoss(CANVAS, 8, 0.5, 0.95)]
    assert describe_losses(losses) == ("3 on MNIST test: 90.0% vs 99.0% (-9.0 pts); "
                                       "8 on canvas-drawn pendigits: 50.0% vs 95.0% (-45.0 pts)")


def test_a_built_card_reads_back_as_the_model_card_the_pages_show():
    from types import SimpleNamespace

    from digitrec.card import ModelCard
    from digitrec.evaluate import accuracy_report, build_card
    from digitrec.preprocess import PREPROCESS_VERSION

    config = TrainingConfig(architecture="shallow", epochs=2, wide_pens=True)
    labels = np.arange(10).repeat(3)
    metrics = {"mnist_test": accuracy_report(labels, np.eye(10)[labels]),
               "pendigits_canvas": accuracy_report(labels, np.eye(10)[(labels + (labels == 7)) % 10])}
    training_data = SimpleNamespace(checksums={"a.gz": "00"}, counts={"mnist": 100, "pendigits": 20})
    result = SimpleNamespace(model=SimpleNamespace(count_params=lambda: 1234), seconds=12.34,
                             epochs_done=2, stopped_early=False,
                             history={"val_accuracy": [0.5, 0.75], "loss": [1.0, 0.5]})
    card = ModelCard.from_dict(build_card(config, training_data, result, metrics), version="v1")
    assert (card.version, card.architecture, card.parameters) == ("v1", "shallow", 1234)
    assert card.metrics.mnist_test_accuracy == 1.0 and card.metrics.canvas_accuracy == pytest.approx(0.9)
    assert card.metrics.canvas_per_class[7] == 0.0 and card.metrics.validation_accuracy == 0.75
    assert card.metrics.canvas_note == "writers 21-30, never trained on, drawn on a 280x280 canvas"
    assert card.training.training_config() == config
    assert (card.training.seconds, card.training.epochs_done) == (12.3, 2)
    assert card.training.examples == {"mnist": 100, "pendigits": 20}
    assert card.preprocess_version == PREPROCESS_VERSION and card.confusion_mnist_test[3][3] == 3
    assert reports_from_card(card)[CANVAS]["per_class"][7] == 0.0
