"""Accuracy figures for model cards, the CLI and the retrain page."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone

import numpy as np


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
    """Probabilities from a Keras model for preprocessed (N, 28, 28) inputs."""
    return model.predict(inputs[..., None], batch_size=512, verbose=0)


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
    from digitrec.train import PREPROCESS_VERSION, config_dict

    data_checksums = {"mnist": training_data.checksums}
    if pendigits_path is not None and pendigits_path.is_file():
        data_checksums["pendigits"] = {
            pendigits_path.name: hashlib.md5(pendigits_path.read_bytes()).hexdigest()}
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "architecture": config.architecture,
        "parameters": int(result.model.count_params()),
        "metrics": {
            "mnist_test_accuracy": metrics["mnist_test"]["accuracy"],
            "mnist_test_per_class": metrics["mnist_test"]["per_class"],
            "pendigits_canvas_accuracy": metrics.get("pendigits_canvas", {}).get("accuracy"),
            "pendigits_canvas_note": "writers 21-30, never trained on, drawn on a 280x280 canvas",
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
    from digitrec import data
    from digitrec.inference import Recognizer
    from digitrec.train import held_out_pendigits, preprocessed_mnist

    recognizer = Recognizer.load(folder)
    result = {"version": recognizer.version, "reports": {}, "misclassified": [], "missing": []}
    try:
        mnist = preprocessed_mnist(data.load_mnist())
    except data.DataUnavailableError as error:
        result["missing"].append(str(error))
    else:
        probabilities = recognizer.probabilities(mnist["x_test"])
        result["reports"]["MNIST test"] = accuracy_report(mnist["y_test"], probabilities)
        wrong = np.flatnonzero(probabilities.argmax(axis=1) != mnist["y_test"])[:gallery_size]
        result["misclassified"] = [
            {"model_input": mnist["x_test"][i], "true": int(mnist["y_test"][i]),
             "predicted": int(probabilities[i].argmax())} for i in wrong]
    try:
        pen = held_out_pendigits()
        result["reports"]["canvas-drawn pendigits"] = accuracy_report(
            pen["y"], recognizer.probabilities(pen["x"]))
    except data.DataUnavailableError as error:
        result["missing"].append(str(error))
    if samples is not None and len(samples[1]):
        result["reports"]["your saved samples"] = accuracy_report(
            samples[1], recognizer.probabilities(samples[0]))
    return result
