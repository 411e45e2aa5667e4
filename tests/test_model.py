"""The CNN presets and the training-time augmentation (digitrec.model)."""

import numpy as np
import pytest

from digitrec.config import ARCHITECTURES, TrainingConfig


@pytest.fixture(scope="module")
def inputs():
    """Four real-looking model inputs: bars and a ring in a 28x28 field."""
    images = np.zeros((4, 28, 28, 1), np.float32)
    images[0, 4:24, 12:16] = 1.0
    images[1, 12:16, 4:24] = 1.0
    yy, xx = np.mgrid[:28, :28]
    images[2, ..., 0] = (np.abs(np.hypot(yy - 14, xx - 14) - 8) < 2).astype(np.float32)
    images[3, 6:22, 6:10] = images[3, 6:10, 6:22] = 1.0
    return images


@pytest.mark.parametrize(("architecture", "parameters"),
                         [("shallow", 422_000), ("deep", 207_000), ("wide", 463_500)])
def test_presets_are_the_networks_their_notes_describe(architecture, parameters, inputs):
    from digitrec.model import build_model

    model = build_model(TrainingConfig(architecture=architecture))
    assert abs(model.count_params() - parameters) < 1_000  # ARCHITECTURE_NOTES' figures
    convolutions = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert len(convolutions) == (2 if architecture == "shallow" else 5)
    probabilities = np.asarray(model(inputs, training=False))
    assert probabilities.shape == (4, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5) and (probabilities >= 0).all()


def test_old_preset_names_build_the_same_networks():
    from digitrec.model import build_model

    assert build_model(TrainingConfig(architecture="fast")).count_params() == \
        build_model(TrainingConfig(architecture="shallow")).count_params()


def test_an_unknown_architecture_is_refused():
    from types import SimpleNamespace

    from digitrec.model import build_model

    with pytest.raises(ValueError, match="unknown architecture 'huge'"):
        build_model(SimpleNamespace(architecture="huge"))
    assert set(ARCHITECTURES) == {"shallow", "deep", "wide"}


def test_stroke_thickness_thickens_and_thins_within_the_image(inputs):
    import keras

    from digitrec.model import StrokeThickness

    layer = StrokeThickness(0.7, seed=3)
    assert np.array_equal(np.asarray(layer(inputs, training=False)), inputs)  # only in training
    changed = np.asarray(layer(np.repeat(inputs[:1], 64, axis=0), training=True))
    ink = changed.reshape(64, -1).sum(axis=1)
    original = inputs[0].sum()
    assert ink.min() < original < ink.max()  # some thinner, some thicker
    assert changed.min() >= 0.0 and changed.max() <= 1.0
    restored = keras.layers.deserialize(keras.layers.serialize(layer), custom_objects={
        "StrokeThickness": StrokeThickness})
    assert restored.strength == 0.7


@pytest.mark.parametrize("batched", [False, True])
def test_the_augmenter_keeps_shape_range_and_the_digit_in_the_field(inputs, batched):
    from digitrec.model import build_augmenter

    augmenter = build_augmenter(seed=1, batched=batched)
    out = np.asarray(augmenter(inputs, training=True))
    assert out.shape == inputs.shape
    assert out.min() >= -1e-6 and out.max() <= 1.0 + 1e-6
    assert not np.array_equal(out, inputs)  # it changed something
    for before, after in zip(inputs, out):  # small changes: most of the ink is still there
        assert 0.5 * before.sum() < after.sum() < 2.0 * before.sum()
    assert np.array_equal(np.asarray(augmenter(inputs, training=False)), inputs)


def _transforms(rng, count):
    """Random rotations, zooms and shifts about a 28x28 field's centre, in affine_sample's form."""
    angle, scale = rng.uniform(-0.3, 0.3, count), rng.uniform(0.85, 1.15, count)
    dx, dy = rng.uniform(-3, 3, (2, count))
    cos, sin, centre = scale * np.cos(angle), scale * np.sin(angle), 13.5
    return np.stack([cos, -sin, centre - cos * centre + sin * centre + dx, sin, cos,
                     centre - sin * centre - cos * centre + dy, 0 * angle, 0 * angle], 1).astype(np.float32)


def test_affine_sample_transforms_a_batch_exactly_as_keras_does(inputs):
    # The batched augmentation (for Keras' torch backend, whose affine_transform loops over the
    # images) must resample exactly as Keras' own op: bilinear, zero outside the field.
    from keras import ops

    from digitrec.model import affine_sample

    rng = np.random.default_rng(0)
    images = np.concatenate([inputs, rng.random((4, 28, 28, 1)).astype(np.float32)])
    transforms = _transforms(rng, len(images))
    expected = np.asarray(ops.image.affine_transform(images, transforms, interpolation="bilinear",
                                                     fill_mode="constant"))
    assert np.abs(np.asarray(affine_sample(images, transforms)) - expected).max() < 1e-5
    identity = np.tile(np.array([1, 0, 0, 0, 1, 0, 0, 0], np.float32), (len(images), 1))
    assert np.allclose(np.asarray(affine_sample(images, identity)), images)


def test_random_affine_draws_the_ranges_of_keras_rotation_zoom_and_shift():
    from digitrec.model import ROTATION, SHIFT, ZOOM, RandomAffine

    transforms = np.asarray(RandomAffine(seed=5).transforms(2000, 28, 28))
    a0, a1, a2, b0, b1, b2 = transforms[:, :6].T
    scale, angle = np.hypot(a0, b0), np.arctan2(b0, a0)
    assert np.allclose(a1, -b0) and np.allclose(b1, a0)  # a rotation and one zoom, no shear
    assert 1 - ZOOM <= scale.min() < 1 - ZOOM * 0.9 and 1 + ZOOM * 0.9 < scale.max() <= 1 + ZOOM
    bound = ROTATION * 2 * np.pi
    assert -bound <= angle.min() < -0.9 * bound and 0.9 * bound < angle.max() <= bound
    centre = 13.5  # where the field's centre comes from: the shift
    shift = np.stack([a0 * centre + a1 * centre + a2, b0 * centre + b1 * centre + b2], 1) - centre
    assert np.abs(shift).max() <= SHIFT * 28 + 1e-4 and np.abs(shift).max() > 0.9 * SHIFT * 28
    assert len(np.unique(np.round(scale, 6))) > 1900  # drawn per image
