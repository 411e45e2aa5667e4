"""Data for the companion models that sit beside the image model in a model folder.

- The trajectory model reads *how* a digit was written (`strokes.trajectory_features`) and
  has an eleventh class, "not a digit".
- The gate reads the 28x28 model input (the same `preprocess` as the image model) and says
  whether it is a digit at all: uploads have no strokes, and must be checked too.

Pen digits (pendigits writers) and non-digits (`nondigits`) are augmented here the way
people's handwriting varies: slant, rotation, aspect, wobble, sampling density, and a few
styles MNIST's writers rarely use (crossed 7s, 1s with a foot, slashed 0s). No TensorFlow here.
"""

from __future__ import annotations

import math

import numpy as np

from digitrec import data
from digitrec.preprocess import MODEL_SIZE, preprocess_many
from digitrec.strokes import trajectory_features

NOT_DIGIT = 10  # the trajectory model's eleventh class
CLASSES = 11
# How a digit is written varies beyond its shape: writers draw a stroke the other way (writer 30 of
# pendigits draws every 9 from the tail up, which the trajectory model read as 0 or 8) and a digit's
# strokes in another order (a 4's bar first), and a letter too. The trajectory model's training
# strokes (digits and non-digits alike: rewriting digits alone taught it that a letter written
# backwards is a digit) get:
REVERSE_SHARE = 0.1  # of strokes, drawn the other way
REORDER_SHARE = 0.15  # of drawings of several strokes, their strokes in a random order
# A slashed zero (Ø), a common style the trajectory model flagged as no digit: this share of its
# training 0s get a slash across them (`augment(..., slashed_zeros=True)`). Off by default, so
# the line model's training numbers, drawn from the same seed, stay as they were.
SLASH_SHARE = 0.15
# A 1 with a long flag (a long up-stroke into the top of the stem, as many European writers draw
# it), which the image model read as 7 or 9 (writer 28's, with strokes and from pixels): this share
# of 1s get a longer flag, or one where there was none (`augment(..., long_flags=True)`: the image
# model's styled training drawings; off by default, so the trajectory and line models' stay as they were).
FLAG_SHARE = 0.4


def augment(strokes, rng: np.random.Generator, label: int | None = None, strength: float = 1.0,
            slashed_zeros: bool = False, long_flags: bool = False):
    """A handwriting-like variation of strokes (seeded): affine, wobble, density, styles."""
    arrays, centre, extent = _centred(strokes)
    arrays = [(a - centre) / extent for a in arrays]
    if label == 1 and long_flags and rng.random() < FLAG_SHARE:
        arrays = with_long_flag(arrays, rng)
    if label == 7 and rng.random() < 0.25:  # a crossbar through the stem, drawn last
        arrays.append(np.array([[-0.25, 0.05], [0.2, 0.0]]) + rng.normal(0, 0.04, (2, 2)))
    if label == 0 and slashed_zeros and rng.random() < SLASH_SHARE:  # a slash across it, drawn last
        arrays.append(_slash(rng))
    if label == 1 and rng.random() < 0.2:  # a flat foot, drawn last
        bottom = max(a[:, 1].max() for a in arrays)
        x = float(np.mean([a[:, 0].mean() for a in arrays]))
        arrays.append(np.array([[x - 0.22, bottom], [x + 0.22, bottom]]) + rng.normal(0, 0.02, (2, 2)))
    angle = math.radians(rng.uniform(-12, 12) * strength)
    shear = rng.uniform(-0.35, 0.35) * strength
    aspect = math.exp(rng.uniform(-0.25, 0.25) * strength)
    matrix = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) \
        @ np.array([[aspect, shear], [0.0, 1.0 / aspect]])
    result = []
    for stroke in arrays:
        stroke = stroke @ matrix.T
        stroke = _resample_density(stroke, rng)
        stroke = stroke + rng.normal(0, 0.008 * strength, stroke.shape)
        result.append([(float(x), float(y)) for x, y in stroke])
    return result


def with_long_flag(arrays: list, rng: np.random.Generator) -> list:
    """A 1's strokes (arrays, y down, extent about 1) with a long flag leading into the top of
    its first stroke from below left (seeded). Most pen writers' 1s start with a flag already:
    it is drawn 1.3-2 times as long; a 1 that starts at its top gets a new one."""
    first = arrays[0]
    if len(first) < 2:
        return arrays
    top = min(float(a[:, 1].min()) for a in arrays)
    height = max(float(a[:, 1].max()) for a in arrays) - top
    peak = int(first[:, 1].argmin())  # where the flag meets the stem
    if first[0, 1] - top > 0.15 * max(height, 1e-6) and peak > 0:
        flag = first[peak] + rng.uniform(1.3, 2.0) * (first[: peak + 1] - first[peak])
        return [np.concatenate([flag[:-1], first[peak:]]), *arrays[1:]]
    length = rng.uniform(0.25, 0.55) * height
    angle = math.radians(rng.uniform(30, 60))  # below the horizontal: flatter reads as a 7
    start = first[0] + length * np.array([-math.cos(angle), math.sin(angle)])
    flag = start + np.linspace(0, 1, 8, endpoint=False)[:, None] * (first[0] - start)
    return [np.concatenate([flag, first]), *arrays[1:]]


def _centred(strokes) -> tuple[list, np.ndarray, float]:
    """The non-empty strokes as arrays, the centre of their box and its longer side."""
    arrays = [np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes if len(stroke)]
    everything = np.concatenate(arrays)
    low, high = everything.min(axis=0), everything.max(axis=0)
    return arrays, (low + high) / 2, max(float((high - low).max()), 1e-6)


def _slash(rng: np.random.Generator) -> np.ndarray:
    """A slash across a 0 (Ø) in coordinates where the drawing is centred at 0 with extent 1,
    from top right down to bottom left or the other way."""
    slash = np.array([[-rng.uniform(0.15, 0.35), rng.uniform(0.3, 0.5)],
                      [rng.uniform(0.15, 0.35), -rng.uniform(0.3, 0.5)]])
    return slash if rng.random() < 0.5 else slash[::-1]


def slashed(strokes, rng: np.random.Generator) -> list:
    """The strokes of a 0 with a slash across them, drawn last (Ø), in the strokes' own coordinates
    (seeded): the style as `augment(..., slashed_zeros=True)` draws it, without the other variations."""
    _, centre, extent = _centred(strokes)
    slash = _slash(rng) * extent + centre
    return [list(stroke) for stroke in strokes] + [[(float(x), float(y)) for x, y in slash]]


def rewritten(strokes, rng: np.random.Generator) -> list:
    """The same strokes written another way (seeded): some in a random order, some reversed.
    Only the trajectory model sees the difference; the ink is the same."""
    strokes = [list(stroke) for stroke in strokes]
    if len(strokes) > 1 and rng.random() < REORDER_SHARE:
        strokes = [strokes[index] for index in rng.permutation(len(strokes))]
    return [stroke[::-1] if rng.random() < REVERSE_SHARE else stroke for stroke in strokes]


def _resample_density(stroke: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Tablets sample every 100 ms, browsers every few ms: vary the point spacing."""
    if len(stroke) < 2:
        return stroke
    steps = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    cumulative = np.concatenate([[0.0], np.cumsum(steps)])
    if cumulative[-1] <= 0:
        return stroke
    count = int(np.clip(cumulative[-1] / rng.uniform(0.01, 0.08), 2, 200))
    targets = np.sort(np.concatenate([[0.0, cumulative[-1]], rng.uniform(0, cumulative[-1], count - 2)]))
    return np.stack([np.interp(targets, cumulative, stroke[:, 0]),
                     np.interp(targets, cumulative, stroke[:, 1])], axis=1)


def stroke_set(digits, others, rng: np.random.Generator, augmented: bool = True,
               other_repeats: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Trajectory features and labels (0-9, NOT_DIGIT) for pen digits and non-digit strokes."""
    items = [(d.strokes, d.label) for d in digits] + [(s, NOT_DIGIT) for _, s in others] * other_repeats
    features, labels = [], []
    for strokes, label in items:
        if augmented:
            strokes = rewritten(augment(strokes, rng, label if label != NOT_DIGIT else None,
                                        slashed_zeros=True), rng)
        vector = trajectory_features(strokes)
        if vector is not None:
            features.append(vector)
            labels.append(label)
    return np.stack(features).astype(np.float32), np.array(labels, np.uint8)


def as_small_bitmaps(model_inputs, rng: np.random.Generator) -> np.ndarray:
    """Model inputs (MNIST form, ink in [0, 1]) redrawn as small bitmaps, as a scan or an icon
    gives them (`data.small_bitmap`: grey or 1-bit, either polarity), and preprocessed again."""
    return preprocess_many([data.small_bitmap(np.round(np.asarray(x) * 255).astype(np.uint8), rng)
                            for x in model_inputs])


DRAW_CHUNK = 512  # canvases drawn before they are preprocessed (each 280x280x4 bytes)


def drawn_non_digits(others, rng: np.random.Generator, repeats: int = 1, wide: bool = False) -> np.ndarray:
    """Non-digit strokes drawn on a canvas like users draw (size, place, pen), preprocessed;
    `wide`: at every pen width and size visitors use (data.USER_PENS, USER_HEIGHTS), as the
    gate's wide pen digits are, so pen width tells the gate nothing."""
    heights, pens = (data.USER_HEIGHTS, data.USER_PENS) if wide else (data.CLASSIC_HEIGHTS, data.CLASSIC_PENS)
    # Preprocessed a chunk of canvases at a time: 12 drawings of each training non-digit held
    # 16,000 canvases of 280x280x4 at once, and took the gate head's training to 3.7 GB.
    chunks, canvases = [], []
    for _ in range(repeats):
        for _, strokes in others:
            varied = augment(strokes, rng)
            canvases.append(data.draw_pen_digit(data.PenDigit(-1, 0, tuple(tuple(s) for s in varied)), rng,
                                                heights=heights, pens=pens))
            if len(canvases) == DRAW_CHUNK:
                chunks.append(preprocess_many(canvases))
                canvases = []
    if canvases:
        chunks.append(preprocess_many(canvases))
    return np.concatenate(chunks) if chunks else np.zeros((0, MODEL_SIZE, MODEL_SIZE), np.float32)
