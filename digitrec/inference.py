"""Recognizer: preprocess -> model -> Prediction. LiteRT without TensorFlow, Keras as fallback.

One Recognizer is shared by every Streamlit session, so `predict` is called from many threads
at once. A LiteRT interpreter must only be used by one thread at a time, so the Recognizer
keeps a small pool of interpreters and lends each call one of them.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec import registry
from digitrec.errors import ModelError
from digitrec.preprocess import preprocess

UNSURE_BELOW = 0.6  # a top probability under this is "unsure"
UNSURE_MARGIN = 0.25  # ... and so is a second guess this close to the first
MAX_INTERPRETERS = 8
CHUNK = 256  # largest batch sent to the model in one call


@dataclass(frozen=True)
class Prediction:
    """What the model read in one image."""

    digit: int | None
    probabilities: tuple | None
    status: str  # "ok" | "unsure" | "empty"
    model_input: np.ndarray = field(repr=False)

    @property
    def confidence(self) -> float | None:
        """The top probability, or None when nothing is drawn."""
        return None if self.probabilities is None else max(self.probabilities)

    def top(self, count: int = 3) -> list[tuple[int, float]]:
        """The `count` most likely digits with their probabilities, most likely first."""
        if self.probabilities is None:
            return []
        order = np.argsort(self.probabilities)[::-1][:count]
        return [(int(digit), float(self.probabilities[digit])) for digit in order]


def prediction_from(model_input: np.ndarray, probabilities: np.ndarray | None) -> Prediction:
    """Turn model probabilities into a Prediction with its status."""
    if probabilities is None:
        return Prediction(None, None, "empty", model_input)
    probabilities = np.asarray(probabilities, np.float64)
    probabilities = probabilities / probabilities.sum()
    first, second = np.sort(probabilities)[::-1][:2]
    status = "unsure" if first < UNSURE_BELOW or first - second < UNSURE_MARGIN else "ok"
    return Prediction(int(probabilities.argmax()), tuple(float(p) for p in probabilities),
                      status, model_input)


class _LiteRTBackend:
    name = "litert"

    def __init__(self, model_bytes: bytes):
        from ai_edge_litert.interpreter import Interpreter

        self._make = lambda: Interpreter(model_content=model_bytes, num_threads=1)
        self._pool: queue.LifoQueue = queue.LifoQueue()
        self._created = 0
        self._lock = threading.Lock()
        self._pool.put(self._new())  # fail now, not at the first drawing, if the file is bad

    def _new(self):
        interpreter = self._make()
        interpreter.allocate_tensors()
        self._created += 1
        # get_*_details() build fresh dicts on every call: look the indices up once.
        interpreter.digitrec_input = interpreter.get_input_details()[0]["index"]
        interpreter.digitrec_output = interpreter.get_output_details()[0]["index"]
        interpreter.digitrec_shape = tuple(interpreter.get_input_details()[0]["shape"])
        return interpreter

    def _borrow(self):
        try:
            return self._pool.get_nowait()
        except queue.Empty:
            with self._lock:
                if self._created < MAX_INTERPRETERS:
                    return self._new()
            return self._pool.get()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        interpreter = self._borrow()
        try:
            if interpreter.digitrec_shape != batch.shape:
                interpreter.resize_tensor_input(interpreter.digitrec_input, batch.shape)
                interpreter.allocate_tensors()
                interpreter.digitrec_shape = batch.shape
            interpreter.set_tensor(interpreter.digitrec_input, batch)
            interpreter.invoke()
            return interpreter.get_tensor(interpreter.digitrec_output).copy()
        finally:
            self._pool.put(interpreter)


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
    candidates = []
    try:
        candidates.append(directory / registry.active_version(directory))
    except ModelError as error:
        problems.append(str(error))
    candidates += [directory / version for version in reversed(registry.previous_versions(directory))]
    committed = registry.active_version(registry.REPO_MODELS, required=False)
    if committed:
        candidates.append(registry.REPO_MODELS / committed)
    candidates += [directory / card["version"] for card in registry.list_models(directory)]
    unique = []
    for folder in candidates:
        if folder.is_dir() and folder not in unique:
            unique.append(folder)
    return unique


class Recognizer:
    """A loaded model that reads digits from images."""

    def __init__(self, folder, backend: str = "auto"):
        self.folder = Path(folder)
        self.version = self.folder.name
        self.card = registry.read_card(self.folder)
        tflite, keras_file = self.folder / registry.TFLITE_FILE, self.folder / registry.KERAS_FILE
        try:
            if backend in ("auto", "litert") and tflite.is_file():
                self._run = _LiteRTBackend(tflite.read_bytes())
            elif backend in ("auto", "keras") and keras_file.is_file():
                self._run = _KerasBackend(keras_file)
            else:
                raise ModelError(f"{self.version}: no usable model file for backend {backend!r}")
        except ModelError:
            raise
        except Exception as error:  # a truncated or garbage file fails deep inside the runtime
            raise ModelError(f"{self.version}: model file cannot be loaded ({error})") from None
        self.backend = self._run.name

    @classmethod
    def load(cls, path=None, backend: str = "auto") -> "Recognizer":
        """Load a model folder, or the active model of the model directory."""
        if path is not None:
            return cls(path, backend)
        return cls(registry.models_dir() / registry.active_version(), backend)

    @classmethod
    def load_serving(cls, directory: Path | None = None) -> tuple["Recognizer", str | None]:
        """The active model, or if it cannot be loaded the last good one, with a warning.

        Tries the active model, then previously active ones (newest first), then the
        committed model in the repository, then any other folder. Raises ModelError only
        when nothing at all can be served.
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
        raise ModelError("no model can be loaded: " + "; ".join(problems or ["no model folders"]))

    def probabilities(self, model_inputs: np.ndarray) -> np.ndarray:
        """Model probabilities for preprocessed (N, 28, 28) inputs, in chunks."""
        inputs = np.asarray(model_inputs, np.float32).reshape(-1, 28, 28, 1)
        if len(inputs) == 0:
            return np.zeros((0, 10), np.float32)
        return np.concatenate([self._run(inputs[start : start + CHUNK])
                               for start in range(0, len(inputs), CHUNK)])

    def predict(self, image) -> Prediction:
        """Read one digit from an array or PIL image of any size and look."""
        prepared = preprocess(image)
        if prepared.empty:
            return prediction_from(prepared.model_input, None)
        return prediction_from(prepared.model_input, self._run(prepared.model_input[None, :, :, None])[0])

    def predict_many(self, images) -> list[Prediction]:
        """Read many images with one batched model call."""
        prepared = [preprocess(image) for image in images]
        drawn = [index for index, item in enumerate(prepared) if not item.empty]
        probabilities = self.probabilities(np.stack([prepared[i].model_input for i in drawn])) \
            if drawn else np.zeros((0, 10))
        by_index = dict(zip(drawn, probabilities))
        return [prediction_from(item.model_input, by_index.get(index))
                for index, item in enumerate(prepared)]
