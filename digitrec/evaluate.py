"""Accuracy figures for model cards, the CLI and the retrain page."""

from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from digitrec import data
from digitrec.card import ModelCard
from digitrec.config import CLASS_TOLERANCE, config_dict
from digitrec.data import CANVAS_SIZE
from digitrec.dataset import as_model_input, held_out_pendigits, preprocessed_mnist
from digitrec.preprocess import PREPROCESS_VERSION

# Names of the evaluation sets, as reports are keyed and shown.
MNIST_TEST = "MNIST test"
CANVAS = "canvas-drawn pendigits"  # writers 21-30, never trained on, drawn on a 280x280 canvas
SAVED_SAMPLES = "your saved samples"
# Sets a promotion is judged on: saved samples are left out, since anyone can save anything.
TRUSTED_SETS = (MNIST_TEST, CANVAS)


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


def evaluate_version(folder, samples: tuple | None = None, gallery_size: int = 24) -> dict:
    """Evaluate a model folder as it is served (LiteRT): MNIST test, pendigits, saved samples.

    Returns reports (accuracy, per_class, confusion) per dataset that is available, and
    `misclassified`: up to `gallery_size` MNIST test digits the model got wrong.
    """
    from digitrec.calibrate import expected_calibration_error, reliability
    from digitrec.inference import Recognizer

    recognizer = Recognizer.load(folder)
    result = {"version": recognizer.version, "reports": {}, "misclassified": [], "missing": [],
              "reliability": {}, "ece": {}}

    def calibration(name, labels, probabilities):  # how far "90% sure" is from right 90% of the time
        result["reliability"][name] = reliability(probabilities, labels)
        result["ece"][name] = expected_calibration_error(probabilities, labels)

    try:
        mnist = preprocessed_mnist(data.load_mnist())
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
    if samples is not None and len(samples[1]):
        result["reports"][SAVED_SAMPLES] = accuracy_report(
            samples[1], recognizer.probabilities(as_model_input(np.asarray(samples[0]))))
    return result


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
