"""The CNN (Keras 3 Functional API) and the training-time augmentation."""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from digitrec.config import ARCHITECTURES
from digitrec.preprocess import MODEL_SHAPE

INPUT_SHAPE = (*MODEL_SHAPE, 1)
# The geometric augmentation, one source for both ways of applying it (build_augmenter).
ROTATION = 0.04  # a fraction of a full turn: about +-14 degrees
ZOOM = 0.1  # scale 0.9-1.1
SHIFT = 0.08  # a fraction of the side, either way

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


def build_augmenter(seed: int, batched: bool = False) -> keras.Sequential:
    """Small rotations, shifts, zoom and stroke-thickness changes, applied to model inputs.

    On TensorFlow Keras' own layers (the committed models trained with them). `batched` draws
    the same rotation, zoom and shift as one affine transform per image and samples the whole
    batch at once (`RandomAffine`): Keras' torch backend transforms a batch one image at a time
    (a Python loop per layer: 540 ms a step on an H100, against 21 ms for the network itself).
    """
    geometric = ([RandomAffine(ROTATION, ZOOM, SHIFT, seed=seed)] if batched else [
        layers.RandomRotation(ROTATION, fill_mode="constant", seed=seed),
        layers.RandomZoom(ZOOM, fill_mode="constant", seed=seed + 1),
        layers.RandomTranslation(SHIFT, SHIFT, fill_mode="constant", seed=seed + 2),
    ])
    return keras.Sequential([*geometric, StrokeThickness(0.7, seed=seed + 3)], name="augment")


def affine_sample(images, transforms):
    """Resample a batch of images (batch, height, width, channels) through one affine transform
    each, bilinear, zero outside the image: every image in one gather, on any backend.

    `transforms` (batch, 8) follow Keras' `ops.image.affine_transform`: [a0, a1, a2, b0, b1, b2,
    0, 0] maps the output pixel (x, y) to the input point (a0 x + a1 y + a2, b0 x + b1 y + b2).
    """
    shape = ops.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    rows, cols = ops.meshgrid(ops.arange(height, dtype="float32"), ops.arange(width, dtype="float32"),
                              indexing="ij")
    t = [ops.reshape(transforms[:, index], (-1, 1, 1)) for index in range(6)]
    x_in = t[0] * cols + t[1] * rows + t[2]  # (batch, height, width)
    y_in = t[3] * cols + t[4] * rows + t[5]
    x0, y0 = ops.floor(x_in), ops.floor(y_in)
    wx, wy = x_in - x0, y_in - y0
    flat = ops.reshape(images, (-1, channels))
    first = ops.reshape(ops.arange(batch, dtype="int32") * height * width, (-1, 1, 1))

    def corner(y, x):
        inside = ops.cast((y >= 0) & (y <= ops.cast(height - 1, "float32"))
                          & (x >= 0) & (x <= ops.cast(width - 1, "float32")), images.dtype)
        index = (first + ops.cast(ops.clip(y, 0, height - 1), "int32") * width
                 + ops.cast(ops.clip(x, 0, width - 1), "int32"))
        values = ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0),
                             (batch, height, width, channels))
        return values * inside[..., None]

    wx, wy = wx[..., None], wy[..., None]
    return (corner(y0, x0) * (1 - wy) * (1 - wx) + corner(y0, x0 + 1) * (1 - wy) * wx
            + corner(y0 + 1, x0) * wy * (1 - wx) + corner(y0 + 1, x0 + 1) * wy * wx)


class RandomAffine(layers.Layer):
    """A random rotation (a fraction of a turn), zoom and shift (fractions of the side) about the
    image centre, drawn per image as Keras' RandomRotation, RandomZoom and RandomTranslation draw
    them, applied as one transform to the whole batch at once (`affine_sample`)."""

    def __init__(self, rotation=ROTATION, zoom=ZOOM, shift=SHIFT, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rotation, self.zoom, self.shift = rotation, zoom, shift
        self.seed_generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch, height, width):
        """(batch, 8) random transforms in `affine_sample`'s form."""
        def uniform(bound):
            return keras.random.uniform((batch,), -bound, bound, seed=self.seed_generator)

        angle = uniform(self.rotation * 2 * np.pi)
        scale = 1 + uniform(self.zoom)
        width, height = ops.cast(width, "float32"), ops.cast(height, "float32")
        dx, dy = uniform(self.shift) * width, uniform(self.shift) * height
        cx, cy = (width - 1) / 2, (height - 1) / 2
        cos, sin = ops.cos(angle) * scale, ops.sin(angle) * scale
        zero = ops.zeros_like(angle)
        # input = centre + scale * rotation @ (output - centre) + shift
        return ops.stack([cos, -sin, cx - cos * cx + sin * cy + dx,
                          sin, cos, cy - sin * cx - cos * cy + dy, zero, zero], axis=1)

    def call(self, images, training=True):
        """The batch, each image through its own random transform (unchanged when not training)."""
        if not training:
            return images
        shape = ops.shape(images)
        return affine_sample(images, self.transforms(shape[0], shape[1], shape[2]))

    def get_config(self):
        """The layer's settings, for saving."""
        return {**super().get_config(), "rotation": self.rotation, "zoom": self.zoom, "shift": self.shift}
