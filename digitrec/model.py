"""The CNN (Keras 3 Functional API) and the training-time augmentation."""

from __future__ import annotations

import keras
from keras import layers, ops

from digitrec.config import ARCHITECTURES
from digitrec.preprocess import MODEL_SHAPE

INPUT_SHAPE = (*MODEL_SHAPE, 1)

def build_model(config) -> keras.Model:
    """Build the CNN described by `config.architecture` (a key of ARCHITECTURES)."""
    if config.architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {config.architecture!r}; choose one of {sorted(ARCHITECTURES)}"
        )
    spec = ARCHITECTURES[config.architecture]
    inputs = keras.Input(INPUT_SHAPE, name="digit")
    x = inputs
    for filters, convolutions in spec["blocks"]:
        for _ in range(convolutions):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    if "head_filters" in spec:
        # A 7x7 -> 5x5 convolution and pooling keeps the dense head small (file size).
        x = layers.Conv2D(spec["head_filters"], 3, use_bias=False)(x)
        x = layers.BatchNormalization(momentum=0.9)(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dense(spec["dense"], use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.ReLU()(x)
    x = layers.Dropout(spec["dropout"])(x)
    outputs = layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"digitrec_{config.architecture}")


class StrokeThickness(layers.Layer):
    """Randomly thicken or thin strokes, so pens of every width look familiar."""

    def __init__(self, strength=0.7, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.strength = strength
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, images, training=True):
        """Thicken (amount > 0) or thin (amount < 0) each image by a random amount."""
        if not training:
            return images
        dilated = ops.max_pool(images, 3, strides=1, padding="same")
        eroded = -ops.max_pool(-images, 3, strides=1, padding="same")
        batch = ops.shape(images)[0]
        amount = keras.random.uniform(
            (batch, 1, 1, 1), -self.strength, self.strength, seed=self.seed_generator
        )
        # amount > 0 moves towards the dilated image, < 0 towards the eroded one.
        return (images + ops.relu(amount) * (dilated - images)
                + ops.relu(-amount) * (eroded - images))

    def get_config(self):
        """The layer's settings, for saving."""
        return {**super().get_config(), "strength": self.strength}


def build_augmenter(seed: int) -> keras.Sequential:
    """Small rotations, shifts, zoom and stroke-thickness changes, applied to model inputs."""
    return keras.Sequential(
        [
            layers.RandomRotation(0.04, fill_mode="constant", seed=seed),  # about +-14 degrees
            layers.RandomZoom(0.1, fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(0.08, 0.08, fill_mode="constant", seed=seed + 2),
            StrokeThickness(0.7, seed=seed + 3),
        ],
        name="augment",
    )
