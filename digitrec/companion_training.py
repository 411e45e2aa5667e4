"""Train the companion models (trajectory model, not-a-digit gate), calibrate, and add them to a folder.

    python -m digitrec companions MODEL_FOLDER [--epochs 30] [--only strokes|gate|calibration]

1. Writer-wise cross-validation of the trajectory model (3 folds of 10 pendigits writers):
   every figure it reports is on writers that fold's model never saw. The out-of-fold
   probabilities fit the trajectory model's temperature.
2. The trajectory model is trained again on all 30 writers and exported to `strokes.tflite`.
3. The gate (digit or not, from the 28x28 model input) is trained on MNIST training digits,
   canvas-drawn pen digits and drawn non-digits of the training fonts; its threshold is chosen
   on MNIST validation digits and the validation fonts; written to `gate.tflite`.
4. The image model is exported again with its penultimate features (personal adaptation) and
   its temperature is fitted on MNIST validation digits (never trained on).
All of it goes into the folder's card (`companions`, `calibration`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitrec import calibrate, companions, data, line_training, nondigits, registry
from digitrec import card as model_card
from digitrec.dataset import (
    as_model_input,
    cache_dir,
    cached,
    held_out_indices,
    preprocessed_mnist,
    preprocessed_pendigits,
    preprocessed_small_bitmaps,
    validation_split,
)
from digitrec.lines import LINE_FILE
from digitrec.preprocess import MODEL_SHAPE, PREPROCESS_VERSION
from digitrec.strokes import FEATURES, TRAJECTORY_POINTS

STROKES_FILE = "strokes.tflite"
GATE_FILE = "gate.tflite"
FOLDS = ((1, 11), (11, 21), (21, 31))  # writer ranges held out by each fold
DIGIT_FLAG_BUDGET = 0.003  # the gate threshold flags at most this share of validation digits
# The gate head's threshold: at most this share of validation digits. Chosen on validation fonts
# and digits (writers 11-20, MNIST validation): 0.3% flagged 87% of validation non-digits, 0.4%
# 94% (the bound on test digits is 0.5%).
HEAD_FLAG_BUDGET = 0.004
HEAD_EPOCHS, HEAD_UNITS = 20, 128
# Model inputs turned to float32 and read by the image model at a time while the head's inputs are
# made (a multiple of inference.CHUNK: the same batches, so the same features, as all at once).
HEAD_INPUT_CHUNK = 8192
# Small ink (inference.SMALL_INK_SIDE) is judged at its own head threshold: at most this share of
# the validation digits redrawn as small bitmaps (1 in 5,000). At HEAD_FLAG_BUDGET's threshold 0.6%
# of 16x16 1-bit validation digits were flagged, a quarter of that set's misreads; at a budget of
# 0.1%, 0.3%. Their jagged edges look like a doodle's to the head: at this size it only flags
# what it is all but certain of.
SMALL_FLAG_BUDGET = 0.0002
DOODLE_COUNTS = (600, 120, 240)  # procedural doodles among the training, validation and test non-digits
GATE_REPEATS = 12  # each training non-digit is drawn this many ways for the gate and its head
GATE_SMALL_DIGITS = 10_000  # MNIST training digits redrawn as small bitmaps among the gate's digits


def build_trajectory_model():
    """A small 1-D CNN over the resampled pen path: 10 digits + 'not a digit'."""
    import keras
    from keras import layers

    inputs = keras.Input((TRAJECTORY_POINTS, FEATURES), name="trajectory")
    x = inputs
    for filters, pool in ((64, True), (128, True), (192, False)):
        for _ in range(2):
            x = layers.Conv1D(filters, 5 if filters == 64 else 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPooling1D()(x)
    x = layers.Concatenate()([layers.GlobalAveragePooling1D()(x), layers.GlobalMaxPooling1D()(x)])
    x = layers.Dense(128, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(companions.CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digitrec_trajectory")


def build_gate_model():
    """A small CNN on the 28x28 model input: the probability that it is NOT a digit."""
    import keras
    from keras import layers

    inputs = keras.Input((*MODEL_SHAPE, 1), name="digit")
    x = inputs
    for filters in (16, 32, 64):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(64, activation="relu")(x)
    x = layers.Dropout(0.3)(x)
    outputs = layers.Dense(1, activation="sigmoid", name="not_digit")(x)
    return keras.Model(inputs, outputs, name="digitrec_gate")


def train_trajectory(digits, others, epochs: int, seed: int, log=print):
    """Train a trajectory model; fresh augmentations every epoch."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_trajectory_model()
    rng = np.random.default_rng(seed)
    steps = epochs
    schedule = keras.optimizers.schedules.CosineDecay(3e-3, decay_steps=steps * (len(digits) // 64 + 8),
                                                      alpha=0.02)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    repeats = max(1, len(digits) // (8 * max(len(others), 1)))
    for epoch in range(epochs):
        x, y = companions.stroke_set(digits, others, rng, other_repeats=repeats)
        history = model.fit(x, y, batch_size=64, epochs=1, verbose=0, shuffle=True)
        if log and (epoch % 5 == 4 or epoch == epochs - 1):
            log(f"  epoch {epoch + 1}/{epochs}: loss {history.history['loss'][-1]:.4f} "
                f"accuracy {history.history['accuracy'][-1]:.4f}")
    return model


def predict(model, x, batch_size=512) -> np.ndarray:
    return np.asarray(model.predict(x, batch_size=batch_size, verbose=0))


def fold_models_dir(version: str) -> Path:
    """Where a model's cross-validation fold models are: the committed model folder's
    `cross-validation/` (the fold that held writers 21-30 out, for benchmarks), else the cache
    training wrote them to. They are never served."""
    committed = registry.REPO_MODELS / version / "cross-validation"
    return committed if committed.is_dir() else cache_dir() / "cross-validation" / version


def cross_validate(pen, others_train, others_test, epochs, seed, log=print, keep: Path | None = None) -> dict:
    """Per fold: trajectory accuracy on held-out writers and out-of-fold probabilities.

    With `keep`, each fold's model is written there as `fold-<first writer>-<last writer>.tflite`
    so benchmarks can read held-out writers through the served code path.
    """
    folds, oof_probabilities, oof_labels = [], [], []
    for low, high in FOLDS:
        held = [d for d in pen if low <= d.writer < high]
        train_digits = [d for d in pen if not low <= d.writer < high]
        started = time.monotonic()
        log(f"fold writers {low}-{high - 1}: training on {len(train_digits)} digits")
        model = train_trajectory(train_digits, others_train, epochs, seed, log)
        x, y = companions.stroke_set(held, [], None, augmented=False)
        probabilities = predict(model, x)
        x_other, _ = companions.stroke_set([], others_test, None, augmented=False)
        other_probabilities = predict(model, x_other)
        accuracy = float((probabilities[:, :10].argmax(1) == y).mean())
        folds.append({"writers": [low, high - 1], "accuracy": accuracy,
                      "digits_flagged": float((probabilities.argmax(1) == companions.NOT_DIGIT).mean()),
                      "non_digits_flagged": float(
                          (other_probabilities.argmax(1) == companions.NOT_DIGIT).mean()),
                      "seconds": round(time.monotonic() - started, 1)})
        log(f"  held-out writers {low}-{high - 1}: {accuracy:.2%}")
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            (keep / f"fold-{low}-{high - 1}.tflite").write_bytes(registry.export_tflite(model))
        oof_probabilities.append(probabilities)
        oof_labels.append(y)
    return {"folds": folds, "probabilities": np.concatenate(oof_probabilities),
            "labels": np.concatenate(oof_labels),
            "fold_of": np.concatenate([np.full(len(y), i) for i, y in enumerate(oof_labels)])}


def digit_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """The ten digit probabilities of the 11-class output, renormalised."""
    digits = probabilities[:, :10]
    return digits / np.clip(digits.sum(axis=1, keepdims=True), 1e-12, None)


def train_gate(x_digits, x_others, epochs: int, seed: int, log=print):
    """Train the not-a-digit gate on preprocessed digits (label 0) and non-digits (label 1)."""
    import keras

    keras.utils.set_random_seed(seed)
    x = np.concatenate([as_model_input(x_digits), as_model_input(x_others)])[..., None]
    y = np.concatenate([np.zeros(len(x_digits)), np.ones(len(x_others))]).astype(np.float32)
    weight = np.where(y == 1, len(x_digits) / max(len(x_others), 1) / 2, 1.0).astype(np.float32)
    model = build_gate_model()
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, sample_weight=weight, batch_size=256, epochs=epochs, shuffle=True, verbose=0)
    log(f"  gate trained on {len(x_digits)} digits and {len(x_others)} non-digits")
    return model


def add_companions(folder: Path, epochs: int = 30, gate_epochs: int = 6, seed: int = 1, log=print,
                   pen_step: int = 1, doodle_counts=DOODLE_COUNTS, mnist_limit: int | None = None,
                   gate_repeats: int = GATE_REPEATS, only: str | None = None,
                   line_examples: int = line_training.EXAMPLES,
                   line_epochs: int = line_training.EPOCHS) -> dict:
    """Train, calibrate and write the companion models into a model folder; return the new card.

    `pen_step`, `mnist_limit` and small `doodle_counts` make a quick run for tests.
    """
    log = log or (lambda message: None)
    started = time.monotonic()
    pen = data.load_pendigits()[::pen_step]
    others = {split: nondigits.non_digits(split, doodle_count, seed=index)
              for index, (split, doodle_count)
              in enumerate(zip(("train", "validation", "test"), doodle_counts))}
    if only in (None, "strokes"):
        add_strokes_model(folder, pen, others, epochs, seed, log)
    if only in (None, "gate"):
        add_gate(folder, pen, others, gate_epochs, seed, log, mnist_limit, gate_repeats)
    if only == "head":  # the folder's gate as it is (e.g. inherited), a head for its image model
        add_gate_head(folder, gate_data(folder, pen, others, seed, mnist_limit, gate_repeats,
                                        slashed_zeros=HEAD_SLASH_SHARE), seed, log)
    if only in (None, "line"):
        line_training.add_line_model(folder, line_examples, line_epochs, seed, log, pen_step)
    if only is None:
        export_image_features(folder)
        calibrate_image(folder, log)
    return _update_card(folder, {}, {}, companions_seconds=round(time.monotonic() - started, 1))


def _update_card(folder: Path, calibration: dict, parts: dict, **extra) -> dict:
    """Merge calibration, companion records and `extra` keys into the folder's card; the size of
    each part's file (the Models page shows a folder's size from the card) is taken afresh."""
    card = registry.read_card(folder)
    card["calibration"] = {**card.get("calibration", {}), **calibration}
    card["companions"] = {**card.get("companions", {}), **parts}
    files = card.setdefault("files", {})
    for name in (part["file"] for part in parts.values() if "file" in part):
        if (folder / name).is_file():
            files[name] = (folder / name).stat().st_size
        else:  # a part listed without its file: no size to show for it
            files.pop(name, None)
    card.update(extra)
    registry.write_card(folder, card)
    return card


def _mnist_split(folder: Path):
    """Preprocessed MNIST as stored (uint8 model inputs: `as_model_input` reads them), the indices
    no network of the folder trained on (for an average, those all its networks held out) and the
    others."""
    mnist = preprocessed_mnist(data.load_mnist())
    count, card = len(mnist["y_train"]), model_card.read(folder).raw
    validation = held_out_indices(card, count)
    # The (first) network's training digits, in its split's order (what the gate learns from).
    first = (card.get("averaged_from") or [card])[0]
    rest = validation_split((first.get("training") or {}).get("config") or {}, count)[1]
    return mnist, validation, rest


def add_strokes_model(folder: Path, pen, others, epochs: int, seed: int, log) -> None:
    """Cross-validate, then train on every writer and write the trajectory model and its calibration."""
    folder = Path(folder)
    cv = cross_validate(pen, others["train"], others["test"], epochs, seed, log,
                        keep=fold_models_dir(folder.name))
    strokes_temperature = calibrate.fit_temperature(digit_probabilities(cv["probabilities"]), cv["labels"])
    log(f"trajectory temperature {strokes_temperature:.3f}")
    # "Not a digit" from strokes: a threshold on the eleventh class that flags at most the budget
    # of out-of-fold digits of the first two folds (the third fold's writers stay a test set).
    first_folds = cv["fold_of"] < 2
    strokes_threshold = float(np.quantile(cv["probabilities"][first_folds, companions.NOT_DIGIT],
                                          1 - DIGIT_FLAG_BUDGET))
    final = train_trajectory(pen, others["train"] + others["validation"], epochs, seed, log)
    (folder / STROKES_FILE).write_bytes(registry.export_tflite(final))
    accuracies = [f["accuracy"] for f in cv["folds"]]
    calibration = {"strokes_temperature": strokes_temperature, "strokes_threshold": strokes_threshold}
    _update_card(folder, calibration, {
        "strokes": {"file": STROKES_FILE, "epochs": epochs, "seed": seed,
                    "trained_on": ("pendigits writers 1-30 and non-digits of the training and "
                                   "validation fonts"),
                    "cross_validation": cv["folds"],
                    "cross_validated_accuracy_mean": float(np.mean(accuracies)),
                    "cross_validated_accuracy_spread": float(np.ptp(accuracies))}})
    log(json.dumps(cv["folds"]))


# Of the pen 0s the gate head learns from and chooses thresholds on, this share is slashed (Ø).
# The small gate learns from none: retrained with them it flagged 6 other held-out digits.
HEAD_SLASH_SHARE = companions.SLASH_SHARE
GATE_PEN_WRITERS = range(1, 11)  # pen digits the gate learns from
THRESHOLD_PEN_WRITERS = range(11, 21)  # pen digits (unseen by the gate) its threshold is chosen on


def add_gate(folder: Path, pen, others, epochs: int, seed: int, log, mnist_limit=None,
             repeats: int = GATE_REPEATS, wide: bool = True) -> None:
    """Train the not-a-digit gate and choose its threshold on digits and fonts it never saw.

    Trained on MNIST training digits (the image model's validation part left out), canvas-drawn
    pen digits of writers 1-10, and non-digits of the training fonts drawn the same way. The
    threshold flags at most DIGIT_FLAG_BUDGET of MNIST validation digits and of writers 11-20's
    canvas-drawn digits; writers 21-30 stay a test set.
    """
    folder = Path(folder)
    data_for_gate = gate_data(folder, pen, others, seed, mnist_limit, repeats, wide, slashed_zeros=0.0)
    gate = train_gate(data_for_gate.x_digits, data_for_gate.x_others, epochs, seed, log)
    (folder / GATE_FILE).write_bytes(registry.export_tflite(gate))
    digit_scores = [predict(gate, as_model_input(inputs)[..., None])[:, 0]
                    for inputs in data_for_gate.digit_inputs]
    val_other_scores = predict(gate, data_for_gate.x_val_others[..., None])[:, 0]
    threshold = max(float(np.quantile(scores, 1 - DIGIT_FLAG_BUDGET)) for scores in digit_scores)
    log(f"gate threshold {threshold:.3g}: validation non-digits flagged "
        f"{(val_other_scores > threshold).mean():.2%}")
    _update_card(folder, {"gate_threshold": threshold}, {
        "gate": {"file": GATE_FILE, "epochs": epochs, "seed": seed,
                 "trained_on": "MNIST training digits, pendigits writers 1-10 drawn on a canvas, "
                               "non-digits of the training fonts and doodles",
                 "threshold_chosen_on": ("MNIST validation digits and pendigits writers 11-20 drawn "
                                         "on a canvas"),
                 "pen_digits_drawn": ("at every pen width and size visitors use (6-40 px, 25-85% of "
                                      "the canvas)" if wide else "at pen widths 8-30 px, 30-85%"),
                 "validation_non_digits_flagged": float((val_other_scores > threshold).mean()),
                 "validation_digits_flagged": float(np.mean(np.concatenate(digit_scores) > threshold))}})
    del data_for_gate  # the head's own data (slashed zeros) next, not both at once
    add_gate_head(folder, gate_data(folder, pen, others, seed, mnist_limit, repeats, wide,
                                    slashed_zeros=HEAD_SLASH_SHARE), seed, log)


@dataclass
class GateData:
    """What the gate and its head learn from and are checked on: model inputs, the digits as
    stored (uint8: 75,000 of them as float32 were 224 MB), the non-digits float32; `as_model_input`
    reads either."""

    x_digits: np.ndarray  # MNIST training digits (the image model's validation part left out), also
    #                      redrawn as small bitmaps, and writers 1-10
    x_others: np.ndarray  # non-digits of the training fonts and doodles
    digit_inputs: list  # validation digits, one array per set: MNIST validation (as they are and as
    #                     small bitmaps), writers 11-20
    x_val_small: np.ndarray  # the MNIST validation digits as small bitmaps (one of digit_inputs)
    x_val_small_others: np.ndarray  # the validation non-digits as small bitmaps
    x_val_others: np.ndarray  # non-digits of the validation fonts and doodles


def gate_data(folder: Path, pen, others, seed: int, mnist_limit=None, repeats: int = GATE_REPEATS,
              wide: bool = True, slashed_zeros: float = 0.0) -> GateData:
    """The gate's data for a model folder (its MNIST validation split stays out of training);
    `slashed_zeros`: this share of the pen 0s drawn slashed (the head's: HEAD_SLASH_SHARE)."""
    mnist, val_index, train_index = _mnist_split(Path(folder))
    learn = [d for d in pen if d.writer in GATE_PEN_WRITERS]
    choose = [d for d in pen if d.writer in THRESHOLD_PEN_WRITERS]
    # `wide`: digits and non-digits drawn at every pen width and size visitors use
    # (data.USER_PENS), so thick pens are not taken for scribbles nor pen width for a sign.
    # Slashed zeros (Ø) are digits: without them the head flagged them (5 of the 7 held-out pen
    # digits flagged from pixels were writer 28's slashed 0s).
    pen_drawn = preprocessed_pendigits(learn, 4 if wide else 2, seed=11, tag="gate-1-10", wide=wide,
                                       slashed_zeros=slashed_zeros)["x"]
    x_others = _drawn_non_digits(others["train"], seed, repeats, wide)
    # Small bitmaps (a scan, an icon) are digits too: without them the head took 1-bit 16x16
    # digits for non-digits (about 1% of them flagged).
    raw = data.load_mnist()
    small_count = GATE_SMALL_DIGITS if mnist_limit is None else mnist_limit // 4
    small_train, small_val = (preprocessed_small_bitmaps(raw, np.sort(indices), seed=seed + 20)["x"]
                              for indices in (train_index[:small_count], val_index))
    x_digits = np.concatenate([mnist["x_train"][train_index[:mnist_limit]], small_train, pen_drawn])
    x_val_others = _drawn_non_digits(others["validation"], seed + 1, 3, wide)
    # The validation non-digits as small bitmaps: what the small-ink threshold still flags. (Training
    # the head on non-digits as small bitmaps too was tried: its small-ink threshold rose with
    # the small digits' scores, and test non-digits as small bitmaps were flagged less, 49-76%
    # instead of 55-83% (the benchmark's earlier renders), and pen digits from pixels more,
    # 0.36% instead of 0.28%.)
    x_val_small_others = as_model_input(companions.as_small_bitmaps(
        x_val_others, np.random.default_rng(seed + 31)))
    digit_inputs = [mnist["x_train"][val_index], small_val]
    if choose:
        digit_inputs.append(preprocessed_pendigits(choose, 2 if wide else 1, seed=13, tag="gate-11-20",
                                                   wide=wide, slashed_zeros=slashed_zeros)["x"])
    return GateData(x_digits=x_digits, x_others=x_others, digit_inputs=digit_inputs,
                    x_val_others=x_val_others, x_val_small=small_val, x_val_small_others=x_val_small_others)


def _drawn_non_digits(others, seed: int, repeats: int, wide: bool) -> np.ndarray:
    """`companions.drawn_non_digits` with a fresh generator of `seed`, cached by the strokes and
    settings: they do not depend on any model, and drawing 10,000 of them took over a minute."""
    digest = hashlib.md5(json.dumps([[name, [np.round(np.asarray(s, float), 3).tolist() for s in strokes]]
                                     for name, strokes in others]).encode()).hexdigest()[:12]
    key = f"nondigits-{digest}-{len(others)}x{repeats}-s{seed}{'-wide' if wide else ''}-p{PREPROCESS_VERSION}"
    return cached(key, lambda: {"x": companions.drawn_non_digits(
        others, np.random.default_rng(seed), repeats=repeats, wide=wide)})["x"]


def add_gate_head(folder: Path, data_for_gate: GateData, seed: int, log) -> None:
    """Train the gate's head on what the folder's image model makes of the gate's training data
    (its penultimate features) and the gate's score; its threshold flags at most HEAD_FLAG_BUDGET
    of each set of validation digits. The image model's features know digits far better than
    the small gate: letters flagged went from about 74% to 86% (validation fonts)."""
    inputs = gate_head_inputs(folder, data_for_gate, log)
    if inputs is not None:
        fit_gate_head(folder, inputs, seed, log)


@dataclass
class HeadInputs:
    """What the gate head learns from and chooses its thresholds on, as the head reads it
    (`inference.gate_head_input` of each model input): made with LiteRT alone, so the training
    process makes them without TensorFlow and fits the head in a fresh image of itself."""

    x: np.ndarray  # the training rows: digits, then non-digits
    y: np.ndarray  # 1 for a non-digit
    digit_sets: list  # the validation digits, one array per set (GateData.digit_inputs)
    others: np.ndarray  # the validation non-digits
    small: np.ndarray  # the MNIST validation digits as small bitmaps
    small_others: np.ndarray  # the validation non-digits as small bitmaps

    def save(self, path: Path) -> None:
        np.savez(path, x=self.x, y=self.y, others=self.others, small=self.small,
                 small_others=self.small_others,
                 **{f"digits_{index}": digits for index, digits in enumerate(self.digit_sets)})

    @classmethod
    def load(cls, path: Path) -> HeadInputs:
        with np.load(path) as stored:
            arrays = {name: stored[name] for name in stored.files}
        sets = sorted((name for name in arrays if name.startswith("digits_")), key=lambda n: int(n[7:]))
        return cls(arrays["x"], arrays["y"], [arrays[name] for name in sets], arrays["others"],
                   arrays["small"], arrays["small_others"])


def gate_head_inputs(folder: Path, data_for_gate: GateData, log=print) -> HeadInputs | None:
    """The head's inputs for the folder's image model and gate (LiteRT only); None (and the
    folder left without a head) when its image model does not export its features."""
    from digitrec.inference import GATE_HEAD_FILE, Recognizer, gate_head_input

    folder = Path(folder)
    (folder / GATE_HEAD_FILE).unlink(missing_ok=True)  # the gate's own scores below, not an old head's
    reader = Recognizer(folder, backend="litert")
    if not reader.exports_features:
        log("  no gate head: the image model's file does not export its features")
        return None

    def head_input(inputs):  # a chunk at a time: only the chunk is ever float32
        parts = []
        for start in range(0, len(inputs), HEAD_INPUT_CHUNK):
            chunk = as_model_input(inputs[start : start + HEAD_INPUT_CHUNK])
            parts.append(gate_head_input(reader.features(chunk), reader.not_digit_scores(chunk)))
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    x_digits, x_others = data_for_gate.x_digits, data_for_gate.x_others
    return HeadInputs(
        x=np.concatenate([head_input(x_digits), head_input(x_others)]),
        y=np.concatenate([np.zeros(len(x_digits)), np.ones(len(x_others))]).astype(np.float32),
        digit_sets=[head_input(inputs) for inputs in data_for_gate.digit_inputs],
        others=head_input(data_for_gate.x_val_others), small=head_input(data_for_gate.x_val_small),
        small_others=head_input(data_for_gate.x_val_small_others))


def fit_gate_head(folder: Path, inputs: HeadInputs, seed: int, log=print) -> None:
    """Fit the gate head on `inputs` (TensorFlow), choose its two thresholds, write
    `gate_head.tflite` and its part of the card."""
    import keras

    from digitrec.inference import GATE_HEAD_FILE

    folder = Path(folder)
    keras.utils.set_random_seed(seed)
    x, y = inputs.x, inputs.y
    others_count = int(y.sum())
    weight = np.where(y == 1, (len(y) - others_count) / max(others_count, 1), 1.0).astype(np.float32)
    head = keras.Sequential([keras.Input((x.shape[1],), name="features"),
                             keras.layers.Dense(HEAD_UNITS, activation="relu"), keras.layers.Dropout(0.2),
                             keras.layers.Dense(1, activation="sigmoid", name="not_digit")], name="gate_head")
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    head.fit(x, y, sample_weight=weight, batch_size=256, epochs=HEAD_EPOCHS, shuffle=True, verbose=0)
    digit_scores = [predict(head, rows)[:, 0] for rows in inputs.digit_sets if len(rows)]
    other_scores = predict(head, inputs.others)[:, 0]
    threshold = max(float(np.quantile(scores, 1 - HEAD_FLAG_BUDGET)) for scores in digit_scores)
    small_scores = predict(head, inputs.small)[:, 0]
    small_threshold = max(threshold, float(np.quantile(small_scores, 1 - SMALL_FLAG_BUDGET)))
    small_other_scores = predict(head, inputs.small_others)[:, 0]
    (folder / GATE_HEAD_FILE).write_bytes(registry.export_tflite(head, features=False))
    flagged = float((other_scores > threshold).mean())
    small_flagged = float((small_other_scores > small_threshold).mean())
    log(f"gate head threshold {threshold:.3g}: validation non-digits flagged {flagged:.2%}; "
        f"small ink {small_threshold:.6g}: validation non-digits as small bitmaps flagged "
        f"{small_flagged:.2%}")
    calibration = {"gate_head_threshold": threshold, "gate_head_small_threshold": small_threshold}
    _update_card(folder, calibration, {
        "gate_head": {"file": GATE_HEAD_FILE, "epochs": HEAD_EPOCHS, "seed": seed, "units": HEAD_UNITS,
                      "reads": "the image model's penultimate features and the gate's logit",
                      "trained_on": ("MNIST training digits (also as small bitmaps), pendigits writers "
                                     f"1-10 drawn on a canvas ({HEAD_SLASH_SHARE:.0%} of their 0s slashed), "
                                     "non-digits of the training fonts and doodles"),
                      "threshold_chosen_on": "the gate's validation digits",
                      "validation_non_digits_flagged": flagged,
                      "validation_digits_flagged": float(np.mean(np.concatenate(digit_scores) > threshold)),
                      "small_threshold_chosen_on": "the MNIST validation digits redrawn as small bitmaps",
                      "validation_small_non_digits_flagged": small_flagged}})


def export_image_features(folder: Path) -> None:
    """Re-export the folder's image model so its .tflite also answers the penultimate features."""
    import keras

    folder = Path(folder)
    model = keras.models.load_model(folder / registry.KERAS_FILE, safe_mode=True, compile=False)
    card = registry.read_card(folder)
    half = card.get("tflite_weights") == "float16"
    (folder / registry.TFLITE_FILE).write_bytes(registry.export_tflite(model, features=True, half=half))
    card.setdefault("files", {})[registry.TFLITE_FILE] = (folder / registry.TFLITE_FILE).stat().st_size
    registry.write_card(folder, card)


def calibrate_image(folder: Path, log=print) -> float:
    """Fit the image model's temperature on its MNIST validation digits; store it (and the mean
    penultimate feature vector personal adaptation centres by) in the card."""
    folder = Path(folder)
    mnist, val_index, _ = _mnist_split(folder)
    temperature = calibrate_image_with(folder, mnist["x_train"][val_index], mnist["y_train"][val_index])
    log(f"image temperature {temperature:.3f}")
    return temperature


def calibrate_image_with(folder: Path, model_inputs, labels) -> float:
    """Fit the folder's image-model temperature on held-out model inputs; store it in the card."""
    from digitrec.inference import Recognizer

    folder = Path(folder)
    image = Recognizer(folder, backend="litert")
    model_inputs = as_model_input(model_inputs)
    temperature = calibrate.fit_temperature(image.probabilities(model_inputs, calibrated=False), labels)
    features = image.features(model_inputs)
    centre = {} if features is None else {"feature_mean": [round(float(v), 5) for v in features.mean(axis=0)]}
    _update_card(folder, {"image_temperature": temperature, **centre,
                          "fitted_on": "image: MNIST validation digits; strokes: out-of-fold pen writers; "
                                       "gate: MNIST validation digits and validation-font non-digits"}, {})
    return temperature


def inherit_companions(folder: Path, source: Path) -> bool:
    """Give a newly trained image model the companions of another folder (the active model's).

    The trajectory model, the gate and the line model do not depend on the image model (they read
    the strokes, the 28x28 input and a number's ink), so a candidate trained in the browser keeps
    reading strokes and numbers and saying "not a digit". The gate head reads the source's image
    features, so it stays behind (`jobs.equip_candidate` has a head fitted on the candidate's own
    features). Returns False when the source has none.
    """
    folder, source = Path(folder), Path(source)
    files = [name for name in (STROKES_FILE, GATE_FILE, LINE_FILE) if (source / name).is_file()]
    if not files:
        return False
    for name in files:
        shutil.copyfile(source / name, folder / name)
    card = registry.read_card(source)
    kept = {key: value for key, value in (card.get("calibration") or {}).items()
            if key in ("strokes_temperature", "strokes_threshold", "gate_threshold")}
    # Not the gate head: it reads the source's image features.
    parts = {key: {**value, "inherited_from": source.name}
             for key, value in (card.get("companions") or {}).items() if key != "gate_head"}
    _update_card(folder, kept, parts)
    card = registry.read_card(folder)  # every copied file, listed as a part or not
    card.setdefault("files", {}).update({name: (folder / name).stat().st_size for name in files})
    registry.write_card(folder, card)
    return True
