"""The training job: Keras training, progress and stop through plain callbacks.

On TensorFlow (the app's backend) it trains with tf.distribute and a tf.data pipeline. On Keras'
other backends (KERAS_BACKEND=torch or jax: a GPU machine without TensorFlow) the same network,
schedule and weight averaging train from a keras.utils.PyDataset, with the augmentation as the
first layers of the training model (the same random rotation, zoom, shift and stroke thickness,
the geometry applied to the whole batch at once: model.RandomAffine); the saved network is the
same either way.
The data it trains on comes from digitrec.dataset (uint8 model inputs); the pipelines convert
each batch to float32 as it goes, so no float copy of a whole dataset is ever made.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from digitrec.config import TrainingConfig
from digitrec.dataset import TrainingData
from digitrec.events import BatchProgress, EpochEnd
from digitrec.preprocess import MODEL_SHAPE

EMA_MOMENTUM = 0.999  # weight averaging (TrainingConfig.weight_average): about the last 1,000 steps,
EMA_SHARE = 0.1  # or the last tenth of a shorter training's steps (the average starts at the initial weights)
BN_BATCHES = 16  # training batches batch norm's statistics are re-estimated from (recompute_batch_norm)
# ... in trainings of fewer batches an epoch than this. Longer ones leave the running averages
# (momentum 0.9: about ten batches) far behind, and the extra passes cost the Retrain defaults
# (508 batches an epoch) 65 MB of peak memory; on the committed nets re-estimating gained nothing.
BN_REFRESH_BELOW = 200
PIPELINE_PARALLELISM = 2  # batches prepared at once, and ready ahead of the model
PROGRESS_INTERVAL_S = 0.5  # a BatchProgress event at most this often (and each epoch's last batch)


@dataclass
class TrainingResult:
    """What a training run produced."""

    model: object
    history: dict
    stopped_early: bool
    seconds: float
    epochs_done: int


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

    batch = (np.zeros((1, *MODEL_SHAPE, 1), np.float32), np.zeros((1, 10), np.float32))
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
        batch.set_shape([None, *MODEL_SHAPE])
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


def _batches(x, y, batch_size, shuffle_seed=None):
    """A keras.utils.PyDataset of float32 batches from uint8 arrays (any Keras backend),
    reshuffled each epoch when `shuffle_seed` is given."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.x, self.y = np.asarray(x, np.uint8), np.asarray(y, np.int64)
            self.rng = np.random.default_rng(shuffle_seed)
            self.order = np.arange(len(self.y))
            self.on_epoch_end()

        def __len__(self):
            return int(np.ceil(len(self.y) / batch_size))

        def __getitem__(self, index):
            chosen = self.order[index * batch_size : (index + 1) * batch_size]
            images = self.x[chosen].astype(np.float32)[..., None] / 255.0
            return images, np.eye(10, dtype=np.float32)[self.y[chosen]]

        def on_epoch_end(self):
            if shuffle_seed is not None:
                self.rng.shuffle(self.order)

    return Batches()


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


def recompute_batch_norm(model, batches, limit: int = BN_BATCHES) -> None:
    """Set every batch norm layer's moving mean and variance to the average of its batch
    statistics over the first `limit` of `batches` ((images, labels) pairs), the model in
    training mode with its current weights (PyTorch's torch.optim.swa_utils.update_bn does this).
    The weights themselves do not change."""
    import keras

    norms = [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms:
        return
    if isinstance(batches, keras.utils.PyDataset):  # off TensorFlow (_batches): indexed, not iterated
        dataset = batches
        batches = (dataset[index] for index in range(min(limit, len(dataset))))
    kept = [layer.momentum for layer in norms]
    try:
        for index, (images, _) in enumerate(batches):
            if index >= limit:
                break
            for layer in norms:  # moving = (index * moving + this batch's) / (index + 1)
                layer.momentum = index / (index + 1)
            model(images, training=True)
    finally:
        for layer, momentum in zip(norms, kept):
            layer.momentum = momentum


def _batch_norm_refresh_class():
    import keras

    class Refresh(keras.callbacks.Callback):
        """Before each validation, `recompute_batch_norm` with the weights as they are."""

        def __init__(self, batches):
            super().__init__()
            self.batches = batches

        def on_test_begin(self, logs=None):
            recompute_batch_norm(self.model, self.batches)

    return Refresh


def BatchNormRefresh(batches):  # noqa: N802 - a class, made when Keras is imported
    """A callback that re-estimates batch norm's statistics before each validation."""
    return _batch_norm_refresh_class()(batches)


def train(config: TrainingConfig, training_data: TrainingData,
          on_progress: Callable[[object], None] | None = None,
          stop_event: threading.Event | None = None, verbose: int = 0) -> TrainingResult:
    """Train a model; `on_progress(event)` gets BatchProgress/EpochEnd events, `stop_event` ends it early."""
    import keras

    from digitrec.model import build_augmenter, build_model

    keras.utils.set_random_seed(config.seed)
    on_tensorflow = keras.backend.backend() == "tensorflow"
    strategy = get_strategy() if on_tensorflow else None
    # Off TensorFlow the augmentation runs on the training model's device, the whole batch at once.
    augmenter = build_augmenter(config.seed, batched=not on_tensorflow) if config.augment else None
    train_arrays, val_arrays = [], []
    if on_tensorflow:
        train_set = _dataset(training_data.x_train, training_data.y_train, config.batch_size,
                             shuffle_seed=config.seed, augmenter=augmenter, arrays=train_arrays)
        # Validation in training-sized batches: 512 at a time quadrupled the activations' memory.
        val_set = _dataset(training_data.x_val, training_data.y_val, config.batch_size, arrays=val_arrays)
    else:
        train_set = _batches(training_data.x_train, training_data.y_train, config.batch_size, config.seed)
        val_set = _batches(training_data.x_val, training_data.y_val, config.batch_size)
    batches = int(np.ceil(len(training_data.y_train) / config.batch_size))
    with strategy.scope() if on_tensorflow else contextlib.nullcontext():
        model = build_model(config)
        # Off TensorFlow the augmentation runs as the training model's first layers, on its device.
        fitted = (keras.Sequential([keras.Input(model.inputs[0].shape[1:]), augmenter, model])
                  if augmenter is not None and not on_tensorflow else model)
        schedule = keras.optimizers.schedules.CosineDecay(
            config.learning_rate * 0.1, decay_steps=max(1, config.epochs * batches - batches // 2),
            warmup_target=config.learning_rate, warmup_steps=batches // 2, alpha=0.01)
        # With weight averaging, fit ends by putting the averaged weights in the model (Keras'
        # finalize_variable_values); validation during training sees the current weights.
        momentum = float(np.clip(1 - 1 / (EMA_SHARE * config.epochs * batches), 0.0, EMA_MOMENTUM))
        optimizer = keras.optimizers.Adam(schedule, use_ema=config.weight_average,
                                          ema_momentum=momentum)
        fitted.compile(optimizer=optimizer,
                       loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                       metrics=["accuracy"])
    multi_worker = on_tensorflow and bool(os.environ.get("TF_CONFIG"))
    if multi_worker:
        _prepare_multi_worker_fit(model, strategy)
    callback = make_progress_callback(on_progress, stop_event, config.epochs, batches)
    # Batch norm's running statistics trail the weights (momentum 0.9): by ten batches or so, which a
    # tiny run (5% of MNIST: 22 batches an epoch) never gets past, so its validation read far below
    # its training. Before each validation they are measured afresh with the current weights
    # (in trainings of fewer than BN_REFRESH_BELOW batches an epoch).
    refreshed = not multi_worker and batches < BN_REFRESH_BELOW
    refresh = [BatchNormRefresh(train_set)] if refreshed else []
    started = time.monotonic()
    try:
        history = fitted.fit(train_set, validation_data=val_set, epochs=config.epochs,
                             callbacks=[callback, *refresh], verbose=verbose)
        # ... and once more for the weights the model keeps: with weight averaging those are the
        # average, whose statistics no batch ever had (stochastic weight averaging's "update_bn").
        if refreshed:
            recompute_batch_norm(fitted, train_set)
    finally:
        train_arrays.clear()  # TensorFlow may hold the pipelines after fit; the data it need not
        val_arrays.clear()
    epochs_done = len(history.history.get("loss", []))
    stopped = stop_event is not None and stop_event.is_set()
    if multi_worker:
        model = _local_copy(model, config)
    return TrainingResult(model, {k: [float(v) for v in vs] for k, vs in history.history.items()},
                          stopped, time.monotonic() - started, epochs_done)


