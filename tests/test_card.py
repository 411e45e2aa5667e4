"""Model cards read into ModelCard: today's cards, older ones, broken ones, the CLI's listing."""

import json
from pathlib import Path

import pytest

from digitrec import registry
from digitrec.card import Calibration, ModelCard, list_cards, read
from digitrec.config import TrainingConfig
from digitrec.errors import ModelError

OLD_CARD = Path(__file__).parent / "fixtures" / "card-2026-11-26-strokes.json"


def test_an_older_card_reads_with_its_old_names(tmp_path):
    """The previous round's committed card predates the renames: architecture "standard",
    sample_weight 10 (tests/fixtures holds it as it was written)."""
    folder = tmp_path / "mnist-cnn-strokes-20261126"
    folder.mkdir()
    (folder / registry.CARD).write_text(OLD_CARD.read_text())
    raw = json.loads(OLD_CARD.read_text())
    assert raw["architecture"] == "standard" and raw["training"]["config"]["sample_weight"] == 10
    card = read(folder)
    assert card.version == folder.name
    assert card.architecture == "deep"
    assert card.metrics.mnist_test_accuracy == raw["metrics"]["mnist_test_accuracy"]
    assert card.metrics.mnist_test_per_class == tuple(raw["metrics"]["mnist_test_per_class"])
    assert card.metrics.canvas_accuracy == raw["metrics"]["pendigits_canvas_accuracy"]
    assert card.parameters == raw["parameters"]
    assert card.size_bytes == sum(raw["files"].values())
    assert card.created_text == raw["created"][:16].replace("T", " ")
    assert card.training.config["sample_weight"] == 10  # kept as stored, for display
    assert card.training.training_config() is None  # today's limits refuse weight 10
    assert card.training.examples == raw["training"]["examples"]
    assert card.calibration.image_temperature == raw["calibration"]["image_temperature"]
    assert len(card.calibration.feature_mean) == len(raw["calibration"]["feature_mean"])
    assert "strokes" in card.companions
    assert card.raw == raw


def test_the_committed_averaged_card_reads(committed_model):
    """The committed model averages two nets: no training config of its own, its parts listed."""
    raw = json.loads((committed_model / registry.CARD).read_text())
    card = read(committed_model)
    assert card.architecture == raw["architecture"] == "average of deep + deep"
    assert card.training.training_config() is None
    assert card.metrics.mnist_test_accuracy == raw["metrics"]["mnist_test_accuracy"]
    assert [part["version"] for part in raw["averaged_from"]] == [
        "mnist-cnn-more-20261126", "mnist-cnn-third-20261126"]
    assert {"strokes", "gate", "gate_head", "line"} <= set(card.companions)
    assert card.calibration.gate_head_threshold == raw["calibration"]["gate_head_threshold"] < 1.0
    assert raw["benchmark"]["command"] == "python -m benchmarks.accuracy"  # its measured report
    assert card.size_bytes == sum(raw["files"].values())
    # the sizes the Models page shows are the files' as committed
    assert raw["files"] == {name: (committed_model / name).stat().st_size for name in raw["files"]}
    assert {path.name for path in committed_model.glob("*.*") if path.suffix in (".keras", ".tflite")} \
        == set(raw["files"])


def test_a_current_card_gives_its_training_config():
    config = TrainingConfig(architecture="shallow", epochs=2, wide_pens=True)
    card = ModelCard.from_dict({"architecture": "shallow", "training": {"config": {
        **config.__dict__, "not a field": 1}}}, version="v")
    assert card.training.training_config() == config


def test_training_examples_are_named_in_words_not_keys():
    card = ModelCard.from_dict({"training": {"examples": {"mnist": 16500, "pendigits": 7200,
                                                          "user_samples": 3, "new_source": 4}}}, version="v")
    assert card.training.describe_examples() == ("16,500 MNIST digits, 7,200 pen digits drawn on a canvas, "
                                                 "3 saved samples, 4 new source")


def test_an_empty_or_broken_card_reads_as_empty_fields():
    empty = ModelCard.from_dict({}, version="v")
    assert (empty.architecture, empty.parameters, empty.created_text, empty.size_bytes) == ("?", None, "", 0)
    assert empty.metrics.mnist_test_accuracy is None and empty.confusion_mnist_test is None
    assert empty.calibration == Calibration()  # identity temperatures, nothing flagged
    broken = ModelCard.from_dict({"metrics": {"mnist_test_accuracy": "high", "mnist_test_per_class": [1, 2]},
                                  "files": {"model.tflite": "big", "card.json": 10},
                                  "training": {"examples": {"mnist": 5, "note": "x"}, "epochs_done": True},
                                  "calibration": [], "parameters": 1.5}, version="v")
    assert broken.metrics.mnist_test_accuracy is None and broken.metrics.mnist_test_per_class is None
    assert broken.size_bytes == 10 and broken.training.examples == {"mnist": 5}
    assert broken.training.epochs_done is None and broken.parameters is None
    assert broken.calibration == Calibration()


def test_list_cards_marks_the_active_model(tmp_path):
    for name, accuracy in (("model-a", 0.9), ("model-b", 0.95)):
        (tmp_path / name).mkdir()
        card = {"metrics": {"mnist_test_accuracy": accuracy}}
        (tmp_path / name / registry.CARD).write_text(json.dumps(card))
    (tmp_path / registry.POINTER).write_text("model-a\n")
    cards = list_cards(tmp_path)
    assert [(c.version, c.active, c.metrics.mnist_test_accuracy) for c in cards] == [
        ("model-b", False, 0.95), ("model-a", True, 0.9)]


def test_a_missing_card_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="card unreadable"):
        read(tmp_path)


def test_an_averaged_network_is_named_shortly():
    from digitrec.card import ModelCard

    assert ModelCard("a", architecture="average of deep + deep").network == "deep ×2"
    assert ModelCard("b", architecture="average of deep + shallow").network == "deep + shallow"
    assert ModelCard("c", architecture="deep").network == "deep"


def test_the_card_says_who_judges_not_a_digit(committed_model):
    def judge(companions):
        return ModelCard.from_dict({"companions": companions}).not_digit_judge

    assert judge({}) == "nothing: every drawing is read as a digit"
    assert judge({"gate": {"inherited_from": "v1"}}).startswith("the gate (inherited from v1) alone")
    # a head inherited with the gate would read another model's features: not its own
    assert "alone" in judge({"gate": {"inherited_from": "v1"}, "gate_head": {"inherited_from": "v1"}})
    assert judge({"gate": {"inherited_from": "v1"}, "gate_head": {"epochs": 20}}) == (
        "the gate (inherited from v1) and this model's own head")
    assert read(committed_model).not_digit_judge.endswith("and this model's own head")
