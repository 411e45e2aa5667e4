"""Accuracy figures for model cards, the CLI and the retrain page."""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitrec import data, registry
from digitrec.card import ModelCard
from digitrec.config import CLASS_TOLERANCE, config_dict
from digitrec.data import CANVAS_SIZE
from digitrec.dataset import as_model_input, held_out_pendigits, preprocessed_mnist
from digitrec.errors import DigitrecError
from digitrec.preprocess import PREPROCESS_VERSION

# Names of the evaluation sets, as reports are keyed and shown.
MNIST_TEST = "MNIST test"
CANVAS = "canvas-drawn pendigits"  # writers 21-30, never trained on, drawn on a 280x280 canvas
SAVED_SAMPLES = "saved samples"  # everyone's: the Retrain page shows the evaluation to all
# Sets a promotion is judged on: saved samples are left out, since anyone can save anything.
TRUSTED_SETS = (MNIST_TEST, CANVAS)
GALLERY_SIZE = 24  # misclassified MNIST test digits an evaluation shows


def confusion_matrix(labels, predicted) -> np.ndarray:
    """10x10 counts: row = true digit, column = predicted digit."""
    matrix = np.zeros((10, 10), np.int64)
    np.add.at(matrix, (np.asarray(labels, int), np.asarray(predicted, int)), 1)
    return matrix


def accuracy_report(labels, probabilities) -> dict:
    """Overall and per-class accuracy plus the confusion matrix from predicted probabilities."""
    labels = np.asarray(labels, int)
    predicted = np.asarray(probabilities).argmax(axis=1)
    matrix = confusion_matrix(labels, predicted)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(axis=1), 1)
    return {
        "accuracy": float((predicted == labels).mean()) if len(labels) else 0.0,
        "count": int(len(labels)),
        "per_class": [round(float(value), 5) for value in per_class],
        "confusion": matrix.tolist(),
    }


def keras_probabilities(model, inputs: np.ndarray) -> np.ndarray:
    """Probabilities from a Keras model for preprocessed (N, 28, 28) inputs (float, or uint8 as stored)."""
    return np.concatenate([model.predict(as_model_input(inputs[start:start + 4096])[..., None],
                                         batch_size=512, verbose=0)
                           for start in range(0, len(inputs), 4096)])


def evaluate_model(model, training_data, pendigits: dict | None) -> dict:
    """MNIST test and (if given) held-out canvas-drawn pendigits accuracy of a Keras model."""
    metrics = {"mnist_test": accuracy_report(training_data.y_test,
                                             keras_probabilities(model, training_data.x_test))}
    if pendigits is not None:
        metrics["pendigits_canvas"] = accuracy_report(
            pendigits["y"], keras_probabilities(model, pendigits["x"]))
    return metrics


def library_versions() -> dict:
    """Versions of the libraries a model was built with."""
    import keras
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__}


def build_card(config, training_data, result, metrics: dict, pendigits_path=None) -> dict:
    """The JSON card that lets a model folder be understood and rebuilt alone."""
    canvas = metrics.get("pendigits_canvas", {})  # absent when pendigits is not available
    data_checksums = {"mnist": training_data.checksums}
    if pendigits_path is not None and pendigits_path.is_file():
        data_checksums["pendigits"] = {
            pendigits_path.name: hashlib.md5(pendigits_path.read_bytes()).hexdigest()}
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": config.architecture,
        "parameters": int(result.model.count_params()),
        "metrics": {
            "mnist_test_accuracy": metrics["mnist_test"]["accuracy"],
            "mnist_test_per_class": metrics["mnist_test"]["per_class"],
            "pendigits_canvas_accuracy": canvas.get("accuracy"),
            "pendigits_canvas_per_class": canvas.get("per_class"),
            "pendigits_canvas_note": (f"writers 21-30, never trained on, drawn on a "
                                      f"{CANVAS_SIZE}x{CANVAS_SIZE} canvas"),
            "validation_accuracy": (result.history.get("val_accuracy") or [None])[-1],
        },
        "confusion_mnist_test": metrics["mnist_test"]["confusion"],
        "training": {
            "config": config_dict(config), "seconds": round(result.seconds, 1),
            "epochs_done": result.epochs_done, "stopped_early": result.stopped_early,
            "examples": training_data.counts, "history": result.history,
        },
        "data_checksums": data_checksums,
        "preprocess_version": PREPROCESS_VERSION,
        "versions": library_versions(),
    }


def evaluate_version(folder, samples: tuple | None = None, gallery_size: int = GALLERY_SIZE) -> dict:
    """Evaluate a model folder as it is served (LiteRT): MNIST test, pendigits, saved samples.

    Returns reports (accuracy, per_class, confusion) per dataset that is available, and
    `misclassified`: up to `gallery_size` MNIST test digits the model got wrong. The fixed sets'
    part is read from the folder's stored evaluation (`store_evaluation`) when that was made for
    exactly the files served now; only saved samples, which change, are read afresh.
    """
    from digitrec.inference import Recognizer

    recognizer = Recognizer.load(folder)
    result = read_evaluation(folder, gallery_size)
    if result is None:
        result = _evaluate_fixed_sets(recognizer, gallery_size)
    if samples is not None and len(samples[1]):
        result["reports"][SAVED_SAMPLES] = accuracy_report(
            samples[1], recognizer.probabilities(as_model_input(np.asarray(samples[0]))))
    return result


def _evaluate_fixed_sets(recognizer, gallery_size: int, mnist_folder=None) -> dict:
    """MNIST test and the held-out pen writers through `recognizer` (what `evaluate_version` stores)."""
    from digitrec.calibrate import expected_calibration_error, reliability

    result = {"version": recognizer.version, "reports": {}, "misclassified": [], "missing": [],
              "reliability": {}, "ece": {}}

    def calibration(name, labels, probabilities):  # how far "90% sure" is from right 90% of the time
        result["reliability"][name] = reliability(probabilities, labels)
        result["ece"][name] = expected_calibration_error(probabilities, labels)

    try:
        mnist = preprocessed_mnist(data.load_mnist(mnist_folder))
    except data.DataUnavailableError as error:
        result["missing"].append(str(error))
    else:
        probabilities = recognizer.probabilities(as_model_input(mnist["x_test"]))
        result["reports"][MNIST_TEST] = accuracy_report(mnist["y_test"], probabilities)
        calibration(MNIST_TEST, mnist["y_test"], probabilities)
        wrong = np.flatnonzero(probabilities.argmax(axis=1) != mnist["y_test"])[:gallery_size]
        result["misclassified"] = [
            {"model_input": as_model_input(mnist["x_test"][i]), "true": int(mnist["y_test"][i]),
             "predicted": int(probabilities[i].argmax())} for i in wrong]
    try:
        pen = held_out_pendigits()
        pen_probabilities = recognizer.probabilities(as_model_input(pen["x"]))
        result["reports"][CANVAS] = accuracy_report(pen["y"], pen_probabilities)
        calibration(CANVAS, pen["y"], pen_probabilities)
    except data.DataUnavailableError as error:
        result["missing"].append(str(error))
    return result


# --- the evaluation stored in a model folder --------------------------------------------------
# A training evaluates its candidate as served once, in the training process, and stores it; the
# Retrain and Models pages then show it at once instead of making a visitor wait 10-30 s (minutes
# on a small cloud server's share of a core) while this process evaluates it again.


def _served_key(folder: Path, gallery_size: int) -> dict:
    """What the stored evaluation depends on: the served image model's bytes, its temperature,
    the preprocessing, and the gallery's size. A stored evaluation with another key is ignored."""
    temperature = (registry.read_card(folder).get("calibration") or {}).get("image_temperature")
    return {"model_md5": hashlib.md5((folder / registry.TFLITE_FILE).read_bytes()).hexdigest(),
            "image_temperature": temperature, "preprocess_version": PREPROCESS_VERSION,
            "gallery_size": gallery_size}


def store_evaluation(folder, gallery_size: int = GALLERY_SIZE, mnist_folder=None) -> dict:
    """Evaluate `folder` as served on MNIST test and the held-out pen writers and store the result
    in it (`registry.EVALUATION_FILE`), unless a set was missing: a partial evaluation is not kept."""
    from digitrec.inference import Recognizer

    folder = Path(folder)
    result = _evaluate_fixed_sets(Recognizer.load(folder), gallery_size, mnist_folder)
    if result["missing"]:
        return result
    stored = {**result, "misclassified": [
        {**item, "model_input": np.round(item["model_input"] * 255).astype(np.uint8).tolist()}
        for item in result["misclassified"]]}
    text = json.dumps({"key": _served_key(folder, gallery_size), "evaluation": stored})
    try:
        registry.write_atomically(folder / registry.EVALUATION_FILE, text)
    except OSError:  # a full or read-only disk: the pages evaluate it themselves, as before
        pass
    return result


def read_evaluation(folder, gallery_size: int = GALLERY_SIZE) -> dict | None:
    """The folder's stored evaluation when it was made for the files served now; else None."""
    folder = Path(folder)
    try:
        stored = json.loads((folder / registry.EVALUATION_FILE).read_text())
        if stored["key"] != _served_key(folder, gallery_size):
            return None
        result = stored["evaluation"]
        result["misclassified"] = [
            {**item, "model_input": as_model_input(np.asarray(item["model_input"], np.uint8))}
            for item in result["misclassified"]]
        result["version"] = folder.name
        return result
    except (OSError, ValueError, KeyError, TypeError, OverflowError, DigitrecError):
        return None

# --- is a candidate worse than the active model on some digit? ------------------------------


@dataclass(frozen=True)
class ClassLoss:
    """A digit on which a candidate is less accurate than the active model."""

    dataset: str
    digit: int
    candidate: float
    active: float

    @property
    def points(self) -> float:
        """The loss in percentage points."""
        return 100 * (self.active - self.candidate)

    def describe(self) -> str:
        return (f"{self.digit} on {self.dataset}: {100 * self.candidate:.1f}% "
                f"vs {100 * self.active:.1f}% (-{self.points:.1f} pts)")


def reports_from_card(card: ModelCard | dict) -> dict:
    """Per-class figures stored in a model card, as `evaluate_version` reports (no data needed)."""
    metrics = (card if isinstance(card, ModelCard) else ModelCard.from_dict(card)).metrics
    reports = {}
    for name, per_class in ((MNIST_TEST, metrics.mnist_test_per_class), (CANVAS, metrics.canvas_per_class)):
        if per_class is not None:
            reports[name] = {"per_class": list(per_class)}
    return reports


def class_losses(candidate: dict, active: dict, tolerance: float = CLASS_TOLERANCE) -> list[ClassLoss]:
    """Digits where `candidate` is more than `tolerance` below `active`, worst first.

    Both are report dicts keyed by set name (`evaluate_version(...)["reports"]` or
    `reports_from_card`); only the trusted sets (MNIST test, held-out canvas drawings) count.
    """
    losses = []
    for name in TRUSTED_SETS:
        if name not in candidate or name not in active:
            continue
        for digit, (mine, theirs) in enumerate(zip(candidate[name]["per_class"], active[name]["per_class"])):
            if mine < theirs - tolerance:
                losses.append(ClassLoss(name, digit, float(mine), float(theirs)))
    return sorted(losses, key=lambda loss: -loss.points)


def describe_losses(losses: list[ClassLoss]) -> str:
    """One line naming the digits a candidate is worse on, e.g. "3 (canvas-drawn ...), 8 (...)"."""
    return "; ".join(loss.describe() for loss in losses)
