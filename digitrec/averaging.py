"""Several trained image models served as one: their logits averaged, in one Keras model and one .tflite.

Two networks trained apart make different mistakes; averaging their logits (equal weights, no
fitting) is the ensemble small MNIST models use to gain the last tenths of a percent. The averaged
model is an ordinary model folder: its last layer, "probabilities", is one Dense layer over the
networks' penultimate features side by side, with their output weights stacked and halved, so
the features personal adaptation compares examples by are both networks' features.

    python -m digitrec average models/A models/B --version NAME
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from digitrec import card as model_card
from digitrec import data, registry
from digitrec.errors import ModelError

MIN_MODELS, MAX_MODELS = 2, 4
# The served image model's file stays within this (issue #13's bound): an average whose float32
# weights would not fit is exported with float16 weights (half the bytes; probabilities within
# about 1e-3 of the float32 file's).
TFLITE_BUDGET_BYTES = 2_000_000
# Preprocessing versions whose model inputs a net reads alike, so nets made with either may be
# averaged: version 3 only leaves out a lone stray dot that version 2 kept (`preprocess.
# without_stray_dot`; 10 of MNIST's 10,000 test digits change, all specks), and the version-2 pair
# committed on 26 Nov was served version-3 inputs from then on. Any other mix is refused.
READ_ALIKE = (frozenset({"2", "3"}),)


def average_models(models, name: str = "digitrec_average"):
    """One Keras model whose logits are the mean of `models`' logits (each ends in a softmax
    Dense layer named "probabilities")."""
    import keras

    if not MIN_MODELS <= len(models) <= MAX_MODELS:
        raise ValueError(f"average {MIN_MODELS} to {MAX_MODELS} models, not {len(models)}")
    inputs = keras.Input(models[0].inputs[0].shape[1:], name="digit")
    features, kernels, biases = [], [], []
    for index, model in enumerate(models):
        last = model.layers[-1]
        if last.name != "probabilities":
            raise ValueError(f"{model.name} does not end in a 'probabilities' layer")
        body = keras.Model(model.inputs, last.input, name=f"features_{index}")
        features.append(body(inputs))
        kernel, bias = last.get_weights()
        kernels.append(kernel / len(models))
        biases.append(bias / len(models))
    joined = keras.layers.Concatenate(name="features")(features)
    head = keras.layers.Dense(kernels[0].shape[1], activation="softmax", name="probabilities")
    outputs = head(joined)
    averaged = keras.Model(inputs, outputs, name=name)
    head.set_weights([np.concatenate(kernels), np.sum(biases, axis=0)])
    return averaged


def average_folders(folders, version: str | None = None, directory: Path | None = None,
                    log=print, companions_from: Path | None = None) -> Path:
    """Average the image models of `folders` into a new model folder with its card, calibrated
    on MNIST digits none of them trained on, with the companions (and their cross-validation
    folds) of `companions_from`, by default the first folder."""
    import keras

    from digitrec import companion_training
    from digitrec.dataset import held_out_indices, held_out_pendigits, preprocessed_mnist
    from digitrec.evaluate import accuracy_report, keras_probabilities, library_versions, store_evaluation
    from digitrec.preprocess import PREPROCESS_VERSION

    log = log or (lambda message: None)
    folders = [Path(folder) for folder in folders]
    cards = [model_card.read(folder) for folder in folders]
    versions = {card.preprocess_version for card in cards}
    if len(versions) > 1 and not any(versions <= alike for alike in READ_ALIKE):
        raise ModelError("these models read differently preprocessed inputs; they cannot be averaged")
    models = [keras.models.load_model(folder / registry.KERAS_FILE, safe_mode=True, compile=False)
              for folder in folders]
    model = average_models(models)
    mnist = data.load_mnist()
    prepared = preprocessed_mnist(mnist)
    test = accuracy_report(prepared["y_test"], keras_probabilities(model, prepared["x_test"]))
    pen = held_out_pendigits()
    canvas = accuracy_report(pen["y"], keras_probabilities(model, pen["x"]))
    log(f"MNIST test {test['accuracy']:.2%}; held-out pen writers on a canvas {canvas['accuracy']:.2%}")
    # Calibrated on MNIST training digits that every averaged model held out.
    held_out = held_out_indices({"averaged_from": [card.raw for card in cards]}, data.MNIST_COUNTS["train"])
    pendigits_path = data.default_pendigits_path()
    card = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "architecture": "average of " + " + ".join(c.architecture for c in cards),
        "parameters": int(model.count_params()),
        "metrics": {
            "mnist_test_accuracy": test["accuracy"], "mnist_test_per_class": test["per_class"],
            "pendigits_canvas_accuracy": canvas["accuracy"],
            "pendigits_canvas_per_class": canvas["per_class"],
            "pendigits_canvas_note": (f"writers 21-30, never trained on, drawn on a "
                                      f"{data.CANVAS_SIZE}x{data.CANVAS_SIZE} canvas"),
        },
        "confusion_mnist_test": test["confusion"],
        "averaged_from": [{"version": folder.name, "architecture": c.architecture,
                           "mnist_test_accuracy": c.metrics.mnist_test_accuracy,
                           "preprocess_version": c.preprocess_version,
                           "training": c.raw.get("training")} for folder, c in zip(folders, cards)],
        "data_checksums": {"mnist": mnist.checksums, **({"pendigits": {
            pendigits_path.name: hashlib.md5(pendigits_path.read_bytes()).hexdigest()}}
            if pendigits_path.is_file() else {})},
        "preprocess_version": PREPROCESS_VERSION,
        "versions": library_versions(),
    }
    half = len(registry.export_tflite(model)) > TFLITE_BUDGET_BYTES  # the file as it would be served
    folder = registry.save_model(model, card, version, directory, half=half)
    companion_training.calibrate_image_with(folder, prepared["x_train"][held_out],
                                            prepared["y_train"][held_out])
    source = Path(companions_from) if companions_from is not None else folders[0]
    if companion_training.inherit_companions(folder, source):
        folds = companion_training.fold_models_dir(source.name)
        if not folds.is_dir() and (source / "cross-validation").is_dir():
            folds = source / "cross-validation"
        if folds.is_dir():  # the trajectory model's held-out fold, for honest benchmarks
            (folder / "cross-validation").mkdir(exist_ok=True)
            for fold in folds.glob("*.tflite"):
                (folder / "cross-validation" / fold.name).write_bytes(fold.read_bytes())
    store_evaluation(folder)  # as served, for the Retrain and Models pages to show at once
    log(f"saved {folder} ({len(held_out)} MNIST digits none of them trained on fitted its temperature)")
    return folder


def split_folder(folder, index: int, version: str | None = None, directory: Path | None = None) -> Path:
    """Net `index` (0-based) of an averaged folder as a model folder of its own, to average again
    with other nets. Its features and its rows of the head are exact; an average keeps only the
    mean of its nets' biases, and that mean is this net's bias (the nets of the committed pair
    read MNIST test alone at 99.67% / 99.72% this way, their own cards 99.66% / 99.72%). The card
    is the net's entry in the average's card."""
    import keras

    folder = Path(folder)
    card = registry.read_card(folder)
    parts = card.get("averaged_from") or []
    if not 0 <= index < len(parts):
        raise ModelError(f"{folder.name} averages {len(parts)} nets; there is no net {index}")
    model = keras.models.load_model(folder / registry.KERAS_FILE, safe_mode=True, compile=False)
    kernel, bias = model.get_layer("probabilities").get_weights()
    width = kernel.shape[0] // len(parts)
    inputs = keras.Input(model.inputs[0].shape[1:], name="digit")
    head = keras.layers.Dense(kernel.shape[1], activation="softmax", name="probabilities")
    net = keras.Model(inputs, head(model.get_layer(f"features_{index}")(inputs)), name="digitrec_net")
    head.set_weights([kernel[index * width : (index + 1) * width] * len(parts), bias])
    part = parts[index]
    net_card = {"created": card.get("created", ""), "architecture": part.get("architecture", "?"),
                "metrics": {"mnist_test_accuracy": part.get("mnist_test_accuracy")},
                "training": part.get("training"),
                "preprocess_version": part.get("preprocess_version") or card.get("preprocess_version"),
                "split_from": {"version": folder.name, "net": index,
                               "bias": "the average's: the mean of its nets' biases"}}
    return registry.save_model(net, net_card, version or f"{part.get('version', folder.name)}-net{index}",
                               directory)
