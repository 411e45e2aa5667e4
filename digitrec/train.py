"""The training job: data preparation, tf.distribute, progress and stop through plain callbacks."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from digitrec import data
from digitrec.config import LIMITS, TrainingConfig, config_dict, sample_row_limits  # noqa: F401  (re-exported)
from digitrec.preprocess import preprocess_many

PREPROCESS_VERSION = "2"  # bump when preprocess changes, so cached model inputs are rebuilt
PEN_RENDERINGS = 2  # each training writer's digit is drawn this many ways
@dataclass
class TrainingData:
    """Model inputs (N, 28, 28) float32 and labels for training, validation and test."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checksums: dict
    counts: dict = field(default_factory=dict)


@dataclass
class TrainingResult:
    """What a training run produced."""

    model: object
    history: dict
    stopped_early: bool
    seconds: float
    epochs_done: int


# --- data ---------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where preprocessed datasets are cached (DIGITREC_CACHE_DIR or ~/.cache/digitrec)."""
    return Path(os.environ.get("DIGITREC_CACHE_DIR", Path.home() / ".cache" / "digitrec"))


def _cached(key: str, build: Callable[[], dict]) -> dict:
    path = cache_dir() / f"{key}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return {name: stored[name] for name in stored.files}
    arrays = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(temporary, **arrays)
        temporary.replace(path)
    except OSError:
        pass  # a read-only home only costs the preprocessing time again
    return arrays


def preprocessed_mnist(mnist: data.Mnist) -> dict:
    """MNIST train and test through `preprocess`, cached on disk by file checksums."""
    digest = hashlib.md5(json.dumps(mnist.checksums, sort_keys=True).encode()).hexdigest()[:12]
    return _cached(
        f"mnist-{digest}-p{PREPROCESS_VERSION}",
        lambda: {"x_train": preprocess_many(mnist.x_train), "y_train": mnist.y_train,
                 "x_test": preprocess_many(mnist.x_test), "y_test": mnist.y_test},
    )


def preprocessed_pendigits(digits, renderings: int, seed: int, tag: str) -> dict:
    """Pen digits drawn on a canvas `renderings` ways each, through `preprocess`, cached."""
    def build():
        rng = np.random.default_rng(seed)
        canvases = [data.draw_pen_digit(d, rng) for d in digits for _ in range(renderings)]
        labels = np.array([d.label for d in digits for _ in range(renderings)], np.uint8)
        return {"x": preprocess_many(canvases), "y": labels}

    return _cached(f"pendigits-{tag}-{len(digits)}x{renderings}-s{seed}-p{PREPROCESS_VERSION}", build)


def held_out_pendigits() -> dict:
    """Held-out writers (21-30) drawn on a 280x280 canvas the way people draw: evaluation set."""
    _, held_out = data.split_writers(data.load_pendigits())
    return preprocessed_pendigits(held_out, 1, seed=2024, tag="heldout")


def choose_samples(labels, other_examples: int, weight: int) -> np.ndarray:
    """Indices of the saved samples to train on (newest first kept, returned in order) so that,
    each repeated `weight` times, they stay within `config.sample_row_limits(other_examples)`."""
    total_limit, label_limit = sample_row_limits(other_examples)
    labels = np.asarray(labels, int)
    per_label = np.zeros(10, int)
    chosen, rows = [], 0
    for index in range(len(labels) - 1, -1, -1):
        label = labels[index]
        if rows + weight > total_limit:
            break
        if 0 <= label <= 9 and per_label[label] + weight <= label_limit:
            per_label[label] += weight
            rows += weight
            chosen.append(index)
    return np.array(sorted(chosen), dtype=np.int64)


def prepare_data(config: TrainingConfig, mnist: data.Mnist | None = None,
                 samples: tuple | None = None) -> TrainingData:
    """Assemble preprocessed training, validation and test arrays for a config."""
    mnist = mnist or data.load_mnist()
    prepared = preprocessed_mnist(mnist)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(prepared["y_train"]))
    # Validation comes first, so "share of MNIST" is the share of the training images left.
    val_index, rest = order[: config.validation_size], order[config.validation_size :]
    train_index = rest[: max(1, int(len(rest) * config.mnist_fraction))]
    x_parts, y_parts = [prepared["x_train"][train_index]], [prepared["y_train"][train_index]]
    counts = {"mnist": len(train_index)}
    if config.pendigits:
        try:
            training_writers, _ = data.split_writers(data.load_pendigits())
            pen = preprocessed_pendigits(training_writers, PEN_RENDERINGS, seed=7, tag="train")
            x_parts.append(pen["x"]), y_parts.append(pen["y"])
            counts["pendigits"] = len(pen["y"])
        except data.DataUnavailableError:
            counts["pendigits"] = 0
    if config.user_samples and samples is not None and len(samples[1]):
        # Opt-in, and bounded: saved samples (repeats included) are at most a few % of the
        # other examples, and those of any one label a fraction of that, so one visitor's
        # flood of mislabelled drawings cannot teach the model a wrong digit.
        chosen = choose_samples(samples[1], sum(len(part) for part in y_parts), config.sample_weight)
        x_parts.append(np.repeat(samples[0][chosen].astype(np.float32), config.sample_weight, axis=0))
        y_parts.append(np.repeat(np.asarray(samples[1])[chosen].astype(np.uint8), config.sample_weight, axis=0))
        counts["user_samples"] = len(chosen)
        if len(chosen) < len(samples[1]):
            counts["user_samples_left_out"] = len(samples[1]) - len(chosen)
    return TrainingData(
        np.concatenate(x_parts), np.concatenate(y_parts),
        prepared["x_train"][val_index], prepared["y_train"][val_index],
        prepared["x_test"], prepared["y_test"], mnist.checksums, counts,
    )


# --- training -----------------------------------------------------------------------------


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a worker other than the chief (worker 0)."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except ValueError:
        raise ValueError("TF_CONFIG is not valid JSON") from None
    task = config.get("task") or {}
    if task.get("type") == "chief":
        return True
    if "chief" in (config.get("cluster") or {}):
        return False
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def get_strategy():
    """MultiWorkerMirrored from TF_CONFIG, Mirrored on several GPUs, else the default strategy."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def _dataset(x, y, batch_size, shuffle_seed=None, augmenter=None):
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x[..., None], tf.one_hot(y, 10)))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(y), seed=shuffle_seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    if augmenter is not None:
        dataset = dataset.map(lambda images, labels: (augmenter(images, training=True), labels),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_progress_callback(on_progress, stop_event, epochs, batches):
    """A Keras callback that reports through a plain function and stops on an Event."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.monotonic()

        def on_train_batch_end(self, batch, logs=None):
            if stop_event is not None and stop_event.is_set():
                self.model.stop_training = True  # Keras checks this after every batch
            if on_progress is not None and (batch % 20 == 0 or batch + 1 == batches):
                on_progress(self._event("batch", batch + 1, logs))

        def on_epoch_end(self, epoch, logs=None):
            self.epoch = epoch + 1
            if on_progress is not None:
                on_progress(self._event("epoch", batches, logs))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def _event(self, kind, batch, logs):
            elapsed = time.monotonic() - self.started
            done = self.epoch * batches + (batch if kind == "batch" else 0)
            total = epochs * batches
            return {
                "kind": kind, "epoch": self.epoch + (1 if kind == "batch" else 0), "epochs": epochs,
                "batch": batch, "batches": batches, "elapsed": elapsed,
                "remaining": elapsed / max(done, 1) * (total - done),
                "logs": {key: float(value) for key, value in (logs or {}).items()},
            }

    return Progress()


def train(config: TrainingConfig, training_data: TrainingData,
          on_progress: Callable[[dict], None] | None = None,
          stop_event: threading.Event | None = None, verbose: int = 0) -> TrainingResult:
    """Train a model; `on_progress(event)` gets batch/epoch events, `stop_event` ends it early."""
    import keras

    from digitrec.model import build_augmenter, build_model

    keras.utils.set_random_seed(config.seed)
    strategy = get_strategy()
    augmenter = build_augmenter(config.seed) if config.augment else None
    train_set = _dataset(training_data.x_train, training_data.y_train, config.batch_size,
                         shuffle_seed=config.seed, augmenter=augmenter)
    val_set = _dataset(training_data.x_val, training_data.y_val, 512)
    batches = int(np.ceil(len(training_data.y_train) / config.batch_size))
    with strategy.scope():
        model = build_model(config)
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate * 0.1, decay_steps=max(1, config.epochs * batches - batches // 2),
            warmup_target=config.learning_rate, warmup_steps=batches // 2, alpha=0.01)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                      metrics=["accuracy"])
    callback = make_progress_callback(on_progress, stop_event, config.epochs, batches)
    started = time.monotonic()
    history = model.fit(train_set, validation_data=val_set, epochs=config.epochs,
                        callbacks=[callback], verbose=verbose)
    epochs_done = len(history.history.get("loss", []))
    stopped = stop_event is not None and stop_event.is_set()
    return TrainingResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()},
                          stopped, time.monotonic() - started, epochs_done)


