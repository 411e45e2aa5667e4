"""The training job: data preparation, tf.distribute, progress and stop through plain callbacks.

Model inputs are kept as uint8 (value x 255) on disk and in memory, a quarter of float32: the
training pipeline converts each batch to float32 as it goes (`as_model_input`), so no float
copy of a whole dataset is ever made.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from digitrec import data
from digitrec.config import LIMITS, TrainingConfig, config_dict, sample_row_limits  # noqa: F401  (re-exported)
from digitrec.events import BatchProgress, EpochEnd
from digitrec.preprocess import preprocess_many

PREPROCESS_VERSION = "2"  # bump when preprocess changes, so cached model inputs are rebuilt
PEN_RENDERINGS = TrainingConfig().pen_renderings  # each training writer's digit is drawn this many ways
EMA_MOMENTUM = 0.999  # weight averaging (TrainingConfig.weight_average): about the last 1,000 steps,
EMA_SHARE = 0.1  # or the last tenth of a shorter training's steps (the average starts at the initial weights)
CACHE_FORMAT = "u8"  # model inputs cached as uint8
PREPROCESS_CHUNK = 4096  # images preprocessed (as float32) at a time while building a cache
PIPELINE_PARALLELISM = 2  # batches prepared at once, and ready ahead of the model
PROGRESS_INTERVAL_S = 0.5  # a BatchProgress event at most this often (and each epoch's last batch)


def to_uint8(model_inputs) -> np.ndarray:
    """Float model inputs in [0, 1] as uint8 (x 255, rounded): how training data is kept."""
    return np.rint(np.clip(np.asarray(model_inputs, np.float32), 0.0, 1.0) * 255).astype(np.uint8)


def as_model_input(stored) -> np.ndarray:
    """uint8 model inputs (as cached) back to the float32 in [0, 1] the model takes."""
    stored = np.asarray(stored)
    return stored.astype(np.float32) / 255 if stored.dtype == np.uint8 else stored.astype(np.float32)


@dataclass
class TrainingData:
    """Model inputs (N, 28, 28) uint8 (see `as_model_input`) and labels for training, validation, test."""

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
    path = cache_dir() / f"{key}-{CACHE_FORMAT}.npz"
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


def _preprocess_uint8(images) -> np.ndarray:
    """`preprocess_many` a chunk at a time, kept as uint8: no float copy of the whole set."""
    out = np.empty((len(images), 28, 28), np.uint8)
    for start in range(0, len(images), PREPROCESS_CHUNK):
        out[start : start + PREPROCESS_CHUNK] = to_uint8(
            preprocess_many(images[start : start + PREPROCESS_CHUNK]))
    return out


def _from_float_cache(key: str, build: Callable[[], dict]) -> Callable[[], dict]:
    """Build a uint8 cache from the float32 one earlier versions wrote, if it is there."""
    def convert():
        old = cache_dir() / f"{key}.npz"
        if old.is_file():
            try:
                with np.load(old) as stored:
                    return {name: to_uint8(stored[name]) if stored[name].dtype == np.float32
                            else stored[name] for name in stored.files}
            except (OSError, ValueError):
                pass
        return build()

    return convert


def preprocessed_mnist(mnist: data.Mnist) -> dict:
    """MNIST train and test through `preprocess` as uint8 model inputs, cached by file checksums."""
    digest = hashlib.md5(json.dumps(mnist.checksums, sort_keys=True).encode()).hexdigest()[:12]
    key = f"mnist-{digest}-p{PREPROCESS_VERSION}"
    return _cached(key, _from_float_cache(key, lambda: {
        "x_train": _preprocess_uint8(mnist.x_train), "y_train": mnist.y_train,
        "x_test": _preprocess_uint8(mnist.x_test), "y_test": mnist.y_test}))


def preprocessed_pendigits(digits, renderings: int, seed: int, tag: str, wide: bool = False) -> dict:
    """Pen digits drawn on a canvas `renderings` ways each, through `preprocess` (uint8), cached.

    `wide` draws them at every pen width and size visitors use (data.USER_PENS, USER_HEIGHTS)
    instead of the narrower classic ranges.
    """
    heights, pens = (data.USER_HEIGHTS, data.USER_PENS) if wide else (data.CLASSIC_HEIGHTS, data.CLASSIC_PENS)

    def build():
        rng = np.random.default_rng(seed)
        labels = np.array([d.label for d in digits for _ in range(renderings)], np.uint8)
        out = np.empty((len(labels), 28, 28), np.uint8)
        drawings = ((d, index) for d in digits for index in range(renderings))
        for start in range(0, len(labels), PREPROCESS_CHUNK):  # canvases a chunk at a time
            chunk = [data.draw_pen_digit(d, rng, heights=heights, pens=pens)
                     for d, _ in itertools.islice(drawings, PREPROCESS_CHUNK)]
            out[start : start + len(chunk)] = _preprocess_uint8(chunk)
        return {"x": out, "y": labels}

    key = f"pendigits-{tag}-{len(digits)}x{renderings}-s{seed}{'-wide' if wide else ''}-p{PREPROCESS_VERSION}"
    return _cached(key, _from_float_cache(key, build))


def preprocessed_small_bitmaps(mnist: data.Mnist, indices, seed: int) -> dict:
    """MNIST training digits (`indices`) redrawn as small bitmaps (`data.small_bitmap`), through
    `preprocess` (uint8), cached by file checksums, the indices and the seed."""
    indices = np.asarray(indices, np.int64)

    def build():
        rng = np.random.default_rng(seed)
        smalls = [data.small_bitmap(mnist.x_train[i], rng) for i in indices]
        return {"x": _preprocess_uint8(smalls), "y": mnist.y_train[indices].astype(np.uint8)}

    digest = hashlib.md5(json.dumps(mnist.checksums, sort_keys=True).encode()
                         + indices.tobytes()).hexdigest()[:12]
    return _cached(f"small-{digest}-s{seed}-p{PREPROCESS_VERSION}", build)


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
            pen = preprocessed_pendigits(training_writers, config.pen_renderings, seed=7, tag="train",
                                         wide=config.wide_pens)
            x_parts.append(pen["x"]), y_parts.append(pen["y"])
            counts["pendigits"] = len(pen["y"])
        except data.DataUnavailableError:
            counts["pendigits"] = 0
    if config.small_images:
        # Digits a scanner or an icon gives: MNIST training digits (never the validation ones)
        # redrawn as 14-36 px bitmaps, grey or 1-bit, either polarity.
        chosen = rng.choice(rest, min(config.small_images, len(rest)), replace=False)
        small = preprocessed_small_bitmaps(mnist, np.sort(chosen), seed=config.seed)
        x_parts.append(small["x"]), y_parts.append(small["y"])
        counts["small_bitmaps"] = len(small["y"])
    if config.user_samples and samples is not None and len(samples[1]):
        # Opt-in, and bounded: saved samples (repeats included) are at most a few % of the
        # other examples, and those of any one label a fraction of that, so one visitor's
        # flood of mislabelled drawings cannot teach the model a wrong digit.
        chosen = choose_samples(samples[1], sum(len(part) for part in y_parts), config.sample_weight)
        x_parts.append(np.repeat(to_uint8(samples[0][chosen]), config.sample_weight, axis=0))
        y_parts.append(np.repeat(np.asarray(samples[1])[chosen].astype(np.uint8), config.sample_weight,
                                 axis=0))
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


def _prepare_multi_worker_fit(model, strategy) -> None:
    """Work around two faults of Keras 3's fit under MultiWorkerMirroredStrategy (Keras 3.15).

    1. fit builds the model's, loss's, metrics' and optimizer's state from `strategy.reduce` of
       the first batch, an (x, y) pair of per-replica values, which this strategy cannot reduce:
       "Attempt to convert a value (PerReplica...) to a Tensor". Built here from a symbolic batch.
    2. Each step's logs (scalar loss and metrics) are averaged across workers with axis=0:
       "Invalid reduction dimension 0 for input with 0 dimensions". Averaged with axis=None.
    Gradients are summed across workers by the optimizer as before: training stays synchronous.
    """
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as keras_trainer

    batch = (np.zeros((1, 28, 28, 1), np.float32), np.zeros((1, 10), np.float32))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None  # built above
    original = keras_trainer.reduce_per_replica
    if getattr(original, "scalar_mean", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and keras_trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda value: strategy.reduce("MEAN", value, axis=0 if value.shape.rank else None), values)
        return original(values, strategy, reduction)

    reduce_per_replica.scalar_mean = True
    keras_trainer.reduce_per_replica = reduce_per_replica


def _local_copy(model, config: TrainingConfig):
    """The trained model rebuilt outside the multi-worker strategy, with its weights: evaluating,
    exporting and saving it needs no other worker (no collective operations)."""
    from digitrec.model import build_model

    local = build_model(config)
    local.set_weights(model.get_weights())
    return local


def _dataset(x, y, batch_size, shuffle_seed=None, augmenter=None, arrays: list | None = None):
    """A streaming pipeline over uint8 images: shuffled indices, each batch gathered and converted.

    The images stay in the one numpy array (TensorFlow makes no copy of it: converting a
    whole array to a tensor costs about twice its size); the shuffle buffer holds only
    indices, and float32 exists one batch at a time. The arrays are kept in `arrays` (a list):
    clearing it after training lets them go even while TensorFlow still holds the pipeline.
    """
    import tensorflow as tf

    arrays = arrays if arrays is not None else []
    arrays[:] = [np.asarray(x, np.uint8), np.asarray(y, np.int32)]
    count = len(arrays[1])

    def gather(index):
        return arrays[0][index], arrays[1][index]

    def to_batch(index):
        batch, batch_labels = tf.numpy_function(gather, [index], (tf.uint8, tf.int32), stateful=False)
        batch.set_shape([None, 28, 28])
        batch_labels.set_shape([None])
        return tf.cast(batch, tf.float32)[..., None] / 255.0, tf.one_hot(batch_labels, 10)

    indices = tf.data.Dataset.range(count)
    if shuffle_seed is not None:
        indices = indices.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)
    # Fixed parallelism and buffers: tf.data's autotuning grew its buffers with the load on
    # the machine (the training process's peak varied by 90 MB between runs).
    dataset = indices.batch(batch_size).map(to_batch, num_parallel_calls=PIPELINE_PARALLELISM)
    if augmenter is not None:
        dataset = dataset.map(lambda images, labels: (augmenter(images, training=True), labels),
                              num_parallel_calls=PIPELINE_PARALLELISM)
    options = tf.data.Options()
    options.autotune.enabled = False
    # Several machines (TF_CONFIG): each reads its own share of the batches.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options).prefetch(PIPELINE_PARALLELISM)


def make_progress_callback(on_progress, stop_event, epochs, batches,
                           interval: float = PROGRESS_INTERVAL_S):
    """A Keras callback that reports BatchProgress/EpochEnd through a function and stops on an Event.

    Batch progress goes out on the first batch, then at most every `interval` seconds and on
    each epoch's last batch, with the loss and accuracy of the batches since the last report.
    """
    import keras

    class Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.started = time.monotonic()
            self.timed_from = None  # (time, batches done) after the first batch: tracing excluded
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.last_report = (0, 0.0, 0.0)  # batches, running loss and accuracy at the last report
            self.last_time = 0.0

        def on_train_batch_end(self, batch, logs=None):
            if stop_event is not None and stop_event.is_set():
                self.model.stop_training = True  # Keras checks this after every batch
            done = self.epoch * batches + batch + 1
            now = time.monotonic()
            if self.timed_from is None:
                self.timed_from = (now, done)
            if on_progress is None:
                return
            if batch == 0 or batch + 1 == batches or now - self.last_time >= interval:
                on_progress(self._progress(batch + 1, done, now, logs or {}))
                self.last_time = now

        def on_epoch_end(self, epoch, logs=None):
            if on_progress is not None:
                logs = logs or {}
                on_progress(EpochEnd(epoch + 1, epochs, float(logs.get("loss", np.nan)),
                                     float(logs.get("accuracy", np.nan)),
                                     _number(logs.get("val_loss")), _number(logs.get("val_accuracy"))))

        def _progress(self, batch, done, now, logs):
            # Keras reports running means over the epoch; the mean of the batches since the
            # last report follows from two of them.
            seen, loss_mean, accuracy_mean = self.last_report
            loss, accuracy = float(logs.get("loss", np.nan)), float(logs.get("accuracy", np.nan))
            count = batch - seen
            recent_loss = (loss * batch - loss_mean * seen) / count
            recent_accuracy = (accuracy * batch - accuracy_mean * seen) / count
            self.last_report = (batch, loss, accuracy)
            remaining = None
            started, first_done = self.timed_from
            if done - first_done >= 3:
                remaining = (now - started) / (done - first_done) * (epochs * batches - done)
            return BatchProgress(self.epoch + 1, epochs, batch, batches, now - self.started,
                                 remaining, recent_loss, recent_accuracy)

    return Progress()


def _number(value) -> float | None:
    return None if value is None else float(value)


def train(config: TrainingConfig, training_data: TrainingData,
          on_progress: Callable[[object], None] | None = None,
          stop_event: threading.Event | None = None, verbose: int = 0) -> TrainingResult:
    """Train a model; `on_progress(event)` gets BatchProgress/EpochEnd events, `stop_event` ends it early."""
    import keras

    from digitrec.model import build_augmenter, build_model

    keras.utils.set_random_seed(config.seed)
    strategy = get_strategy()
    augmenter = build_augmenter(config.seed) if config.augment else None
    train_arrays, val_arrays = [], []
    train_set = _dataset(training_data.x_train, training_data.y_train, config.batch_size,
                         shuffle_seed=config.seed, augmenter=augmenter, arrays=train_arrays)
    # Validation in training-sized batches: 512 at a time quadrupled the activations' memory.
    val_set = _dataset(training_data.x_val, training_data.y_val, config.batch_size, arrays=val_arrays)
    batches = int(np.ceil(len(training_data.y_train) / config.batch_size))
    with strategy.scope():
        model = build_model(config)
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate * 0.1, decay_steps=max(1, config.epochs * batches - batches // 2),
            warmup_target=config.learning_rate, warmup_steps=batches // 2, alpha=0.01)
        # With weight averaging, fit ends by putting the averaged weights in the model (Keras'
        # finalize_variable_values); validation during training sees the current weights.
        momentum = float(np.clip(1 - 1 / (EMA_SHARE * config.epochs * batches), 0.0, EMA_MOMENTUM))
        optimizer = keras.optimizers.Adam(schedule, use_ema=config.weight_average,
                                          ema_momentum=momentum)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                      metrics=["accuracy"])
    multi_worker = bool(os.environ.get("TF_CONFIG"))
    if multi_worker:
        _prepare_multi_worker_fit(model, strategy)
    callback = make_progress_callback(on_progress, stop_event, config.epochs, batches)
    started = time.monotonic()
    try:
        history = model.fit(train_set, validation_data=val_set, epochs=config.epochs,
                            callbacks=[callback], verbose=verbose)
    finally:
        train_arrays.clear()  # TensorFlow may hold the pipelines after fit; the data it need not
        val_arrays.clear()
    epochs_done = len(history.history.get("loss", []))
    stopped = stop_event is not None and stop_event.is_set()
    if multi_worker:
        model = _local_copy(model, config)
    return TrainingResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()},
                          stopped, time.monotonic() - started, epochs_done)


