"""Recognizer: preprocess -> model -> Prediction. LiteRT without TensorFlow, Keras as fallback.

One Recognizer is shared by every Streamlit session, so `predict` is called from many threads
at once. A LiteRT interpreter must only be used by one thread at a time, so the Recognizer
keeps a small pool of interpreters and lends each call one of them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import queue
import threading
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from digitrec import calibrate, registry
from digitrec import card as model_card
from digitrec.data import USER_PENS
from digitrec.errors import ModelError
from digitrec.lines import CLASSES as LINE_CLASSES
from digitrec.lines import FRAMES, LINE_FILE, LINE_HEIGHT, LINE_WIDTH, line_input, one_digit_probabilities
from digitrec.preprocess import (
    INK_THRESHOLD,
    MODEL_SHAPE,
    MODEL_SIZE,
    SMALL_INK_SIDE,
    TAP_SPAN,
    Preprocessed,
    ink_map,
    preprocess,
    without_stray_dot,
)
from digitrec.strokes import checked, render_for_model, trajectory_features, without_strays

if TYPE_CHECKING:
    from digitrec.personal import PersonalRecognizer

# From pixels alone (no strokes: an upload), the line model (`digitrec.lines`, another network
# on another input, trained on other data) reads the ink as a one-digit number, and its opinion is
# weighed in: image probabilities x line probabilities ** LINE_WEIGHT, renormalised. The weight
# minimised the log loss on the MNIST validation digits no network of the committed folder trained
# on (5,000: weight 0 / 0.1 / 0.2 / 0.3 gave 0.0197 / 0.0188 / 0.0196 / 0.0213); its effect on pen
# writers 21-30 and MNIST test is in README.
LINE_WEIGHT = 0.1
# ... asked only where the image model's answer is under this sure: on those validation digits
# asking always / below 0.999 / below 0.99 gave log loss 0.0188 / 0.0187 / 0.0185 and the same
# answers, and below 0.99 asks for 2-4% of digits, so the line model's call (as long as the
# image model's) is seldom paid.
LINE_ASK_BELOW = 0.99
# Thresholds on *calibrated* probabilities (the card's temperatures are applied first).
UNSURE_BELOW = 0.6  # a top probability under this is "unsure"
UNSURE_MARGIN = 0.25  # ... and so is a second guess this close to the first
STROKES_FILE = "strokes.tflite"  # the trajectory model (10 digits + "not a digit")
GATE_FILE = "gate.tflite"  # the not-a-digit gate on the 28x28 model input
# The gate's head: not-a-digit from the image model's penultimate features and the gate's score.
# It belongs to one image model (its features), so a folder never inherits it.
GATE_HEAD_FILE = "gate_head.tflite"
# Ink no longer than preprocess.SMALL_INK_SIDE pixels is judged "not a digit" at the card's
# gate_head_small_threshold: a 16x16 1-bit digit has jagged edges the head otherwise takes for a
# doodle (0.6% of validation digits flagged at the drawings' threshold).
NOT_DIGIT_CLASS = 10
# No digit is written four times as wide as it is tall (MNIST's widest training digits, a few 2s
# and 5s, are 2.5 times; pendigits' pen paths at most 1.96): a dash, an underline is "not a digit"
# (a dash had read "1, 65%"). Measured on the model input, where every pen is brought to MNIST's:
# there a straight dash of any pen is 20 pixels wide and at most 5 tall, so exactly 4 counts too.
MAX_INK_ASPECT = 4.0
# A click or tap on the canvas: `preprocess` takes ink no longer than DOT_LENGTH pen widths for a
# dot, so pen strokes spanning up to TAP_SPAN pen widths (image pixels) leave a dot. Strokes
# within that for the thinnest pen are a tap whatever the pen; up to that for the widest pen the
# pixels decide (with strokes a dot was drawn again at full size: a click read "1, 69%").
TAP_EXTENT = TAP_SPAN * USER_PENS[0]
DOT_EXTENT = TAP_SPAN * USER_PENS[1]


class Status(StrEnum):
    """What a Prediction says about the drawing (a str: `status == "ok"` works)."""

    OK = "ok"
    UNSURE = "unsure"
    EMPTY = "empty"
    NOT_DIGIT = "not_digit"


MAX_INTERPRETERS = 8  # per model and thread count
CHUNK = 256  # largest batch sent to the model in one call
# A batch of at least this many rows (the candidate digits of a number of five or six digits)
# is split over WIDE_THREADS cores where this process may use that many (`_cores`): a 6-digit
# number's ~47 crops took 8.7 ms instead of 16.5 ms on 2 cores. One digit is one row on one
# thread, so concurrent sessions drawing single digits still get a core each.
WIDE_FROM_ROWS = 32
WIDE_THREADS = 2


@dataclass(frozen=True)
class Readers:
    """With strokes, what each reader said on its own before the product: the picture (image
    model) and the pen path (trajectory model), each its first digit and calibrated probability."""

    picture: int
    picture_probability: float
    strokes: int
    strokes_probability: float

    @property
    def disagree(self) -> bool:
        return self.picture != self.strokes

    @classmethod
    def of(cls, picture: np.ndarray, strokes: np.ndarray) -> Readers:
        first, second = int(np.argmax(picture)), int(np.argmax(strokes))
        return cls(first, float(picture[first]), second, float(strokes[second]))


@dataclass(frozen=True)
class Prediction:
    """What the model read in one image."""

    digit: int | None
    probabilities: tuple | None  # calibrated; for "not_digit" what the digits would have been
    status: Status
    model_input: np.ndarray = field(repr=False)
    used_strokes: bool = False  # read from the pen strokes and the pixels together
    base_probabilities: tuple | None = None  # what the shared model said, when personal examples adapted it
    gate_score: float | None = None  # the gate's probability that the picture is no digit (None: no gate)
    dot: bool = False  # "empty" because the ink is one dot or blob (a tap, a click), not blank paper
    readers: Readers | None = None  # with strokes: what each reader said alone (the page names both)

    @property
    def confidence(self) -> float | None:
        """The top probability, or None when nothing is drawn or it is not a digit."""
        if self.probabilities is None or self.digit is None:
            return None
        return max(self.probabilities)

    def top(self, count: int = 3) -> list[tuple[int, float]]:
        """The `count` most likely digits with their probabilities, most likely first."""
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:count]
        return [(int(digit), float(self.probabilities[digit])) for digit in order]


def prediction_from(model_input: np.ndarray, probabilities: np.ndarray | None,
                    not_digit: bool = False, used_strokes: bool = False,
                    gate_score: float | None = None) -> Prediction:
    """Turn (calibrated) probabilities into a Prediction with its status."""
    if probabilities is None:
        return Prediction(None, None, Status.EMPTY, model_input, used_strokes)
    probabilities = np.asarray(probabilities, np.float64)
    probabilities = probabilities / probabilities.sum()
    values = tuple(float(p) for p in probabilities)
    if not_digit:
        return Prediction(None, values, Status.NOT_DIGIT, model_input, used_strokes, gate_score=gate_score)
    first, second = np.sort(probabilities)[::-1][:2]
    status = Status.UNSURE if first < UNSURE_BELOW or first - second < UNSURE_MARGIN else Status.OK
    return Prediction(int(probabilities.argmax()), values, status, model_input, used_strokes,
                      gate_score=gate_score)


class _InterpreterPool:
    """Interpreters of one model at one thread count, lent to one call at a time (a LiteRT
    interpreter is not thread-safe), at most MAX_INTERPRETERS of them."""

    def __init__(self, model_bytes: bytes, threads: int):
        from ai_edge_litert.interpreter import Interpreter

        self._make = lambda: Interpreter(model_content=model_bytes, num_threads=threads)
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()

    def _new(self):
        interpreter = self._make()
        interpreter.allocate_tensors()
        self._created += 1
        # get_*_details() build fresh dicts on every call: look the indices up once.
        interpreter.digitrec_input = interpreter.get_input_details()[0]["index"]
        interpreter.digitrec_output = interpreter.get_output_details()[0]["index"]
        interpreter.digitrec_shape = tuple(interpreter.get_input_details()[0]["shape"])
        return interpreter

    def borrow(self):
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            with self._lock:
                if self._created < MAX_INTERPRETERS:
                    return self._new()
            return self._pool.get()

    def give_back(self, interpreter) -> None:
        self._pool.put(interpreter)


# Where a container's CPU quota is (cgroup v2, then v1): Community Cloud gives an app 0.078 to 2
# cores, and a machine with many CPUs may still allow this process only a share of one.
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _cores() -> int:
    """The cores this process may use: CPUs it may run on, capped by the container's CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota = _cpu_quota()
    return cores if quota is None else max(1, min(cores, math.floor(quota)))


def _cpu_quota() -> float | None:
    """The container's CPU quota in cores, or None when there is none (or it cannot be read)."""
    try:
        if CGROUP_CPU_MAX.is_file():
            quota, period = CGROUP_CPU_MAX.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        if CGROUP_V1_QUOTA.is_file():
            quota = int(CGROUP_V1_QUOTA.read_text())
            return None if quota <= 0 else quota / int(CGROUP_V1_PERIOD.read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return None
    return None


class _LiteRTBackend:
    name = "litert"

    def __init__(self, model_bytes: bytes):
        self._narrow = _InterpreterPool(model_bytes, 1)
        threads = min(WIDE_THREADS, _cores())
        self._wide = _InterpreterPool(model_bytes, threads) if threads > 1 else self._narrow
        # Fail now, not at the first drawing, if the file is bad.
        self._narrow.give_back(self._narrow.borrow())

    def input_shape(self) -> tuple:
        """The shape of the model's input (batch first)."""
        interpreter = self._narrow.borrow()
        try:
            return tuple(int(n) for n in interpreter.get_input_details()[0]["shape"])
        finally:
            self._narrow.give_back(interpreter)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        pool = self._wide if len(batch) >= WIDE_FROM_ROWS else self._narrow
        interpreter = pool.borrow()
        try:
            if interpreter.digitrec_shape != batch.shape:
                interpreter.resize_tensor_input(interpreter.digitrec_input, batch.shape)
                interpreter.allocate_tensors()
                interpreter.digitrec_shape = batch.shape
            interpreter.set_tensor(interpreter.digitrec_input, batch)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.digitrec_output).copy()
        finally:
            pool.give_back(interpreter)


class _KerasBackend:
    name = "keras"

    def __init__(self, path: Path):
        import keras  # only when a model folder has no .tflite: this pulls in TensorFlow

        self._model = keras.models.load_model(path, safe_mode=True, compile=False)
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._model(batch, training=False))


def _serving_candidates(directory: Path, problems: list) -> list[Path]:
    # Only promoted models: the active one, the last promoted ones, the earlier active ones,
    # the committed one (here, then in the repository). A candidate nobody promoted is never
    # served, even if it is the newest folder.
    candidates = []
    try:
        candidates.append(directory / registry.active_version(directory))
    except ModelError as error:
        problems.append(str(error))
    candidates += [directory / version for version in registry.serving_versions(directory)]
    committed = registry.committed_version(registry.REPO_MODELS)
    if committed:
        candidates.append(registry.REPO_MODELS / committed)
    unique = []
    for folder in candidates:
        if folder.is_dir() and folder not in unique:
            unique.append(folder)
    return unique


def gate_head_input(features: np.ndarray, gate_scores: np.ndarray) -> np.ndarray:
    """What the gate head reads: the image model's penultimate features and the gate's logit
    (scaled to the features' range), one row per input; training builds it here too."""
    scores = np.clip(np.asarray(gate_scores, np.float64), 1e-6, 1 - 1e-6)
    logit = (np.log(scores) - np.log1p(-scores)) / 5
    return np.concatenate([np.asarray(features, np.float32), logit[:, None]], axis=1).astype(np.float32)


class Recognizer:
    """A loaded model that reads digits from images."""

    def __init__(self, folder, backend: str = "auto"):
        self.folder = Path(folder)
        self.version = self.folder.name
        self.card = model_card.read(self.folder)
        tflite, keras_file = self.folder / registry.TFLITE_FILE, self.folder / registry.KERAS_FILE
        try:
            if backend in ("auto", "litert") and tflite.is_file():
                self._run = _LiteRTBackend(tflite.read_bytes())
            elif backend in ("auto", "keras") and keras_file.is_file():
                self._run = _KerasBackend(keras_file)
            else:
                raise ModelError(f"{self.version}: no usable model file for backend {backend!r}")
            # Companions (a model folder may lack them: then pixels alone are read, no gate).
            self._strokes = _optional_litert(self.folder / STROKES_FILE)
            self._gate = _optional_litert(self.folder / GATE_FILE)
            self._gate_head = _optional_litert(self.folder / GATE_HEAD_FILE) if self._gate else None
            self._line = _optional_litert(self.folder / LINE_FILE)
            if self._line is not None and self._line.input_shape()[1:] != (LINE_HEIGHT, LINE_WIDTH, 1):
                raise ModelError(f"{self.version}: {LINE_FILE} reads inputs of shape "
                                 f"{self._line.input_shape()[1:]}, not ({LINE_HEIGHT}, {LINE_WIDTH}, 1)")
        except ModelError:
            raise
        except Exception as error:  # a truncated or garbage file fails deep inside the runtime
            raise ModelError(f"{self.version}: model file cannot be loaded ({error})") from None
        self.backend = self._run.name
        calibration = self.card.calibration
        self.image_temperature = calibration.image_temperature
        self.strokes_temperature = calibration.strokes_temperature
        self.gate_threshold = calibration.gate_threshold
        if self._gate_head is not None and not self.exports_features:
            self._gate_head = None  # it reads features this model file does not give (the Keras fallback)
        if self._gate_head is not None:  # the head decides, at its own threshold
            self.gate_threshold = calibration.gate_head_threshold
        self.gate_small_threshold = self.gate_threshold  # for ink of at most SMALL_INK_SIDE pixels
        if self._gate_head is not None and calibration.gate_head_small_threshold is not None:
            self.gate_small_threshold = calibration.gate_head_small_threshold
        self.strokes_threshold = calibration.strokes_threshold

    def with_trajectory_model(self, model_bytes: bytes) -> Recognizer:
        """A copy that reads strokes with another trajectory model (e.g. a cross-validation fold's)."""
        clone = copy.copy(self)
        clone._strokes = _LiteRTBackend(model_bytes)
        return clone

    @property
    def reads_lines(self) -> bool:
        """Whether this model folder has a line model (a number read as a whole, `digitrec.lines`)."""
        return self._line is not None

    def line_probabilities(self, lines: np.ndarray) -> np.ndarray:
        """The line model's (N, FRAMES, 11) probabilities (digits, blank) for (N, LINE_HEIGHT,
        LINE_WIDTH) inputs from `lines.line_input`."""
        if self._line is None:
            raise ModelError(f"{self.version} has no line model")
        inputs = np.asarray(lines, np.float32).reshape(-1, LINE_HEIGHT, LINE_WIDTH, 1)
        return _batched(self._line, inputs, FRAMES * LINE_CLASSES).reshape(-1, FRAMES, LINE_CLASSES)

    @staticmethod
    def asks_line(probabilities: np.ndarray) -> np.ndarray:
        """Per row of calibrated image probabilities: whether the line model's opinion is asked
        (the image model's answer is under LINE_ASK_BELOW sure)."""
        return np.asarray(probabilities).max(axis=1) < LINE_ASK_BELOW

    def with_line_opinion(self, probabilities: np.ndarray, line_pixels) -> np.ndarray:
        """(N, 10) calibrated image probabilities of single digits read from pixels, with the line
        model's reading of the same ink (`line_pixels`: N `lines.line_input(...).pixels`) as a
        one-digit number weighed in (LINE_WEIGHT); unchanged without a line model."""
        if self._line is None or not len(probabilities):
            return probabilities
        opinions = one_digit_probabilities(self.line_probabilities(np.stack(line_pixels)))
        fused = np.asarray(probabilities, np.float64) * opinions ** LINE_WEIGHT
        return fused / fused.sum(axis=1, keepdims=True)

    @property
    def reads_strokes(self) -> bool:
        """Whether this model folder has a trajectory model (strokes are used when given)."""
        return self._strokes is not None

    @classmethod
    def load(cls, path=None, backend: str = "auto") -> Recognizer:
        """Load a model folder, or the active model of the model directory."""
        if path is not None:
            return cls(path, backend)
        return cls(registry.models_dir() / registry.active_version(), backend)

    @classmethod
    def load_serving(cls, directory: Path | None = None) -> tuple[Recognizer, str | None]:
        """The active model, or if it cannot be loaded the last good one, with a warning.

        Tries the active model, then the last promoted ones (newest first), then the
        committed model, never a candidate that was not promoted. Raises ModelError only
        when no promoted model can be served.
        """
        directory = Path(directory or registry.models_dir())
        problems = []
        for folder in _serving_candidates(directory, problems):
            try:
                recognizer = cls(folder)
            except ModelError as error:
                problems.append(str(error))
                continue
            warning = None
            if problems:
                warning = f"{'; '.join(problems)}. Serving {recognizer.version} instead."
            return recognizer, warning
        raise ModelError("no promoted model can be loaded: "
                         + "; ".join(problems or ["no promoted model folders"]))

    def probabilities(self, model_inputs: np.ndarray, calibrated: bool = True) -> np.ndarray:
        """Image-model probabilities for preprocessed (N, 28, 28) inputs, in chunks.

        Calibrated (the card's temperature applied) unless `calibrated=False`.
        """
        return self._image(model_inputs, calibrated)[0]

    @functools.cached_property
    def exports_features(self) -> bool:
        """Whether the image model's file answers its penultimate features (asked once)."""
        return self.features(np.zeros((1, MODEL_SIZE, MODEL_SIZE), np.float32)) is not None

    def features(self, model_inputs: np.ndarray) -> np.ndarray | None:
        """The image model's penultimate features (N, F), or None if its file does not export them."""
        return self._image(model_inputs)[1]

    def _image(self, model_inputs, calibrated: bool = True):
        inputs = np.asarray(model_inputs, np.float32).reshape(-1, MODEL_SIZE, MODEL_SIZE, 1)
        if len(inputs) == 0:
            return np.zeros((0, 10), np.float32), None
        output = np.concatenate([self._run(inputs[start : start + CHUNK])
                                 for start in range(0, len(inputs), CHUNK)])
        # A model exported with its features answers [10 probabilities | features] per row.
        raw, features = output[:, :10], (output[:, 10:] if output.shape[1] > 10 else None)
        if calibrated:
            raw = calibrate.temper(raw, self.image_temperature).astype(np.float32)
        return raw, features

    def stroke_probabilities(self, trajectories: np.ndarray) -> np.ndarray:
        """The trajectory model's 11 probabilities (10 digits, "not a digit") per trajectory."""
        if self._strokes is None:
            raise ModelError(f"{self.version} has no trajectory model")
        # The .tflite also answers its penultimate features after them (registry.export_tflite).
        everything = _batched(self._strokes, np.asarray(trajectories, np.float32), NOT_DIGIT_CLASS + 1)
        return everything[:, :NOT_DIGIT_CLASS + 1]

    def not_digit_scores(self, model_inputs: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
        """The probability that each 28x28 model input is not a digit (zeros without a gate), to
        compare with `gate_threshold`: the gate's, or with a gate head its (which also reads the
        image model's `features` of the inputs; computed here when not given)."""
        inputs = np.asarray(model_inputs, np.float32).reshape(-1, MODEL_SIZE, MODEL_SIZE, 1)
        if self._gate is None:
            return np.zeros(len(inputs), np.float32)
        scores = _batched(self._gate, inputs, 1)[:, 0]
        if self._gate_head is None or len(inputs) == 0:
            return scores
        features = self.features(inputs) if features is None else features
        return _batched(self._gate_head, gate_head_input(features, scores), 1)[:, 0]

    def gate_thresholds(self, prepared) -> np.ndarray:
        """The not-a-digit threshold for each Preprocessed: small ink has its own."""
        return np.array([self.gate_small_threshold if 0 < item.ink_side <= SMALL_INK_SIDE
                         else self.gate_threshold for item in prepared], np.float64)

    def predict(self, image, strokes=None) -> Prediction:
        """Read one digit from an image (array or PIL, any size and look) and, if given, its strokes.

        `strokes`: the drawing's pen strokes in drawing order, each a sequence of (x, y) points
        in the image's pixels, y down (`digitrec.strokes.strokes_from_canvas` makes them from the
        canvas). With strokes the digit is read from how it was written and from the strokes
        drawn again at one pen width, so a thick pen cannot close a loop. From pixels alone, a
        folder's line model reads the same ink as a one-digit number where the image model is
        unsure (LINE_ASK_BELOW), and its reading is weighed in (LINE_WEIGHT).
        """
        return self.predict_many([image], [strokes])[0]

    def predict_many(self, images, strokes=None) -> list[Prediction]:
        """Read many images with one batched call per model; `strokes` a list aligned with `images`."""
        return self.read(images, strokes).predictions()

    def read(self, images, strokes=None) -> Reading:
        """Everything one batched read produces (inputs, probabilities, features): see Reading."""
        strokes = [None] * len(images) if strokes is None else list(strokes)
        if len(strokes) != len(images):
            raise ValueError(f"strokes has {len(strokes)} entries for {len(images)} images")
        use = [without_strays(checked(item)) if self._strokes is not None else [] for item in strokes]
        # An image may come preprocessed already (digitrec.segment normalises the digits it cut
        # out of a number's ink map with preprocess.normalise_ink).
        taps = [bool(item) and _a_dot(image, item) for image, item in zip(images, use)]
        use = [[] if tap else item for tap, item in zip(taps, use)]
        prepared: list[Preprocessed] = [
            Preprocessed(np.zeros(MODEL_SHAPE, np.float32), empty=True, dot=True) if tap
            else preprocess(render_for_model(item)) if item
            else image if isinstance(image, Preprocessed) else preprocess(image)
            for image, item, tap in zip(images, use, taps)]
        trajectories = [trajectory_features(item) if item else None for item in use]
        drawn = [index for index, item in enumerate(prepared) if not item.empty]
        inputs = (np.stack([prepared[i].model_input for i in drawn]) if drawn
                  else np.zeros((0, *MODEL_SHAPE), np.float32))
        image_probabilities, features = self._image(inputs)
        image_probabilities = image_probabilities.astype(np.float64)
        gate = self.not_digit_scores(inputs, features)
        not_digit = gate > self.gate_thresholds([prepared[i] for i in drawn])
        with_strokes = [row for row, index in enumerate(drawn) if trajectories[index] is not None]
        readers: dict[int, Readers] = {}
        if with_strokes:
            eleven = self.stroke_probabilities(np.stack([trajectories[drawn[row]] for row in with_strokes]))
            digits = eleven[:, :NOT_DIGIT_CLASS]
            digits = digits / np.clip(digits.sum(1, keepdims=True), 1e-12, None)
            digits = calibrate.temper(digits, self.strokes_temperature)
            readers = {row: Readers.of(image_probabilities[row], own)
                       for row, own in zip(with_strokes, digits)}
            fused = image_probabilities[with_strokes] * digits  # a product of calibrated probabilities
            image_probabilities[with_strokes] = fused / fused.sum(axis=1, keepdims=True)
            # With strokes both must agree: the pen path and the picture (each alone flags about
            # 1% of canvas digits of writers 1-20; together well under 0.1%).
            not_digit[with_strokes] &= eleven[:, NOT_DIGIT_CLASS] > self.strokes_threshold
        if self._line is not None:  # from pixels alone, a second opinion where the image model is unsure
            unsure = self.asks_line(image_probabilities)
            from_pixels = [row for row, index in enumerate(drawn) if unsure[row]
                           and trajectories[index] is None and not isinstance(images[index], Preprocessed)]
            if from_pixels:  # their ink maps made again: keeping every row's (4 MB at most) costs more
                image_probabilities[from_pixels] = self.with_line_opinion(
                    image_probabilities[from_pixels],
                    [line_input(without_stray_dot(ink_map(images[drawn[row]]))).pixels  # the ink read
                     for row in from_pixels])
        not_digit |= too_wide(inputs)
        return Reading(prepared, trajectories, drawn, image_probabilities, not_digit, features,
                       gate if self._gate is not None else None, readers)

    def personalize(self, examples) -> PersonalRecognizer:
        """A recogniser that also knows a person's `examples`; this one is unchanged.

        `examples`: (image, label) or (image, label, strokes) tuples, e.g. that person's
        corrections and confirmations. See `digitrec.personal`.
        """
        from digitrec.personal import PersonalRecognizer

        return PersonalRecognizer(self).adding(examples)


def too_wide(inputs: np.ndarray) -> np.ndarray:
    """Per model input (N, 28, 28): whether its ink is MAX_INK_ASPECT or more times as wide as tall."""
    ink = np.asarray(inputs).reshape(len(inputs), MODEL_SIZE, MODEL_SIZE) >= INK_THRESHOLD
    rows, columns = ink.any(axis=2), ink.any(axis=1)
    height = MODEL_SIZE - rows.argmax(axis=1) - rows[:, ::-1].argmax(axis=1)
    width = MODEL_SIZE - columns.argmax(axis=1) - columns[:, ::-1].argmax(axis=1)
    return ink.any(axis=(1, 2)) & (width >= MAX_INK_ASPECT * height)


def _a_dot(image, strokes) -> bool:
    """Whether pen strokes are a click or tap rather than a drawing (TAP_EXTENT, DOT_EXTENT)."""
    points = np.concatenate([np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes])
    extent = float((points.max(axis=0) - points.min(axis=0)).max())
    if extent <= TAP_EXTENT:
        return True
    if extent > DOT_EXTENT or image is None or isinstance(image, Preprocessed):
        return False
    return preprocess(image).empty


@dataclass(frozen=True)
class Reading:
    """One batched read: per image its model input and trajectory; per drawn image (rows, in the
    order of `drawn`) the calibrated (fused) probabilities, the not-a-digit flag, the image
    model's penultimate features (None when the model file does not export them) and the gate's
    probability that the picture is no digit (None without a gate); per row read with strokes
    what each reader said alone (`readers`)."""

    prepared: list
    trajectories: list
    drawn: list
    probabilities: np.ndarray
    not_digit: np.ndarray
    features: np.ndarray | None
    gate_scores: np.ndarray | None = None
    readers: dict = field(default_factory=dict)  # row -> Readers

    def predictions(self, probabilities: np.ndarray | None = None,
                    base: np.ndarray | None = None) -> list[Prediction]:
        """Predictions per image; `probabilities` replaces the rows (e.g. adapted), `base` keeps the
        shared ones."""
        probabilities = self.probabilities if probabilities is None else probabilities
        by_index = {index: row for row, index in enumerate(self.drawn)}
        results = []
        for index, item in enumerate(self.prepared):
            row = by_index.get(index)
            if row is None:
                results.append(dataclasses.replace(prediction_from(item.model_input, None), dot=item.dot))
                continue
            prediction = prediction_from(item.model_input, probabilities[row], bool(self.not_digit[row]),
                                         self.trajectories[index] is not None,
                                         None if self.gate_scores is None else float(self.gate_scores[row]))
            if base is not None:
                prediction = dataclasses.replace(
                    prediction, base_probabilities=tuple(float(p) for p in base[row]))
            if row in self.readers:
                prediction = dataclasses.replace(prediction, readers=self.readers[row])
            results.append(prediction)
        return results


def _batched(run, inputs: np.ndarray, outputs: int) -> np.ndarray:
    if len(inputs) == 0:
        return np.zeros((0, outputs), np.float32)
    return np.concatenate([run(inputs[start : start + CHUNK]) for start in range(0, len(inputs), CHUNK)])


def _optional_litert(path: Path):
    return _LiteRTBackend(path.read_bytes()) if path.is_file() else None
