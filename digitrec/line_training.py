"""Train the line model (a written number read as a whole, see `digitrec.lines`) and add it to a folder.

    python -m digitrec companions MODEL_FOLDER --only line

It learns from numbers made up here, as people write them: digits of pendigits writers 1-17
(drawn with a round pen, their strokes varied as the trajectory model's are) and MNIST
training digits (never its validation digits), 1-8 to a number, side by side with a gap or
touching and overlapping, sizes and baselines wandering. Writers 18-20 are left out so that
`digitrec.segment` can be tuned on numbers the line model never saw; 21-30 are every
benchmark's test writers. Every number goes through `lines.line_input`, as at serving (the
rendered alpha or MNIST ink directly, where serving first makes the ink map; kept as uint8).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec import companions, data, registry
from digitrec.config import VALIDATION_SIZE
from digitrec.dataset import validation_split
from digitrec.lines import BLANK, CLASSES, FRAMES, LINE_FILE, LINE_HEIGHT, LINE_WIDTH, MAX_DIGITS, line_input

TRAIN_WRITERS = range(1, 18)  # 18-20 tune the segmenter's use of the line model, 21-30 test it
LENGTHS = np.arange(1, MAX_DIGITS + 1)
LENGTH_WEIGHTS = np.array([0.6, 1, 1, 1, 1, 1, 0.6, 0.6])  # numbers of 2-6 digits most
TOUCH_SHARE = 0.45  # neighbouring digits touching or overlapping (a third or more, as people write)
OVERLAP = (0.0, 0.35)  # their ink columns overlapping by up to this share of the narrower digit
GAP = (0.02, 0.6)  # the others: the gap between the inks, in digit heights
SIZE_SPREAD = 0.15  # each digit's height within this share of the number's
WANDER = 0.04  # baseline random walk, in digit heights per digit
DIGIT_HEIGHT = (36.0, 56.0)  # pixels, when a number is drawn for training (line_input rescales it)
PEN_SHARE = (0.05, 0.3)  # pen width as a share of the digit height
PEN_SHARE_OF_NUMBERS = 0.5  # the rest are MNIST digits
EXAMPLES = 48_000
EPOCHS = 8
BATCH = 64
LEARNING_RATE = 2e-3


def build_line_model():
    """A small CNN over the line: per frame (FRAME_STRIDE columns) the logits of 10 digits + blank."""
    import keras
    from keras import layers

    inputs = keras.Input((LINE_HEIGHT, LINE_WIDTH, 1), name="line")
    x = inputs
    stages = ((16, (2, 2), False), (32, (2, 2), False), (48, (2, 1), True), (64, (3, 1), True))
    for filters, pool, twice in stages:
        for _ in range(2 if twice else 1):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
        x = layers.MaxPooling2D(pool)(x)
    # (rows, frames, channels) -> one feature vector per frame
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((FRAMES, -1))(x)
    x = layers.Dense(128, activation="relu")(x)
    for _ in range(2):  # context: what the frames either side hold
        y = layers.Conv1D(128, 5, padding="same", use_bias=False)(x)
        y = layers.BatchNormalization()(y)
        x = layers.Add()([x, layers.ReLU()(y)])
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(CLASSES, name="frames")(x)
    return keras.Model(inputs, outputs, name="digitrec_line")


def serving_model(model):
    """The trained model with its frames' logits turned into probabilities (what LiteRT serves)."""
    import keras

    return keras.Model(model.inputs, keras.layers.Softmax(name="probabilities")(model.outputs[0]),
                       name=model.name)


def _layout(widths, heights, rng: np.random.Generator) -> list[float]:
    """Left edges of digits of these ink widths, written side by side with gaps or overlaps."""
    lefts, x = [], 0.0
    for index, width in enumerate(widths):
        if index:
            if rng.random() < TOUCH_SHARE:
                x -= rng.uniform(*OVERLAP) * min(width, widths[index - 1])
            else:
                x += rng.uniform(*GAP) * heights[index]
        lefts.append(x)
        x += width
    return lefts


def pen_number(digits, rng: np.random.Generator) -> np.ndarray:
    """Pen digits written as one number (their strokes varied): the ink map (float, ink high)."""
    base = rng.uniform(*DIGIT_HEIGHT)
    pen = base * rng.uniform(*PEN_SHARE)
    heights = base * rng.uniform(1 - SIZE_SPREAD, 1 + SIZE_SPREAD, len(digits))
    walk = np.cumsum(rng.normal(0, WANDER, len(digits))) * base
    placed = []
    for digit, height, shift in zip(digits, heights, walk):
        strokes = companions.augment(digit.strokes, rng, digit.label)
        placed.append(data.place_strokes(strokes, height, (0.0, shift)))
    widths = [max(p[0] for s in d for p in s) - min(p[0] for s in d for p in s) + pen for d in placed]
    lefts = _layout(widths, heights, rng)
    margin = pen + 4
    strokes = []
    for digit_strokes, left in zip(placed, lefts):
        low = min(p[0] for s in digit_strokes for p in s)
        strokes += [[(x - low + left + pen / 2 + margin, y + 1.5 * base) for x, y in s]
                    for s in digit_strokes]
    size = int(max(lefts[-1] + widths[-1] + 2 * margin, 3 * base))
    return data.render_strokes(strokes, size, pen)[..., 3].astype(np.float32) / 255.0


def mnist_number(images, rng: np.random.Generator) -> np.ndarray:
    """MNIST digits (28x28, ink high) written as one number: the ink map (float, ink high)."""
    base = rng.uniform(*DIGIT_HEIGHT)
    heights = base * rng.uniform(1 - SIZE_SPREAD, 1 + SIZE_SPREAD, len(images))
    walk = np.cumsum(rng.normal(0, WANDER, len(images))) * base
    crops = []
    for image, height in zip(images, heights):
        rows, cols = np.flatnonzero(image.max(axis=1) > 0), np.flatnonzero(image.max(axis=0) > 0)
        crop = image[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1].astype(np.float32) / 255.0
        scale = height / crop.shape[0]
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(height)))
        crops.append(np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.BILINEAR)).clip(0, 1))
    widths = [crop.shape[1] for crop in crops]
    lefts = _layout(widths, heights, rng)
    margin = 4
    canvas = np.zeros((int(3 * base), int(lefts[-1] + widths[-1] + 2 * margin + 1)), np.float32)
    for crop, left, shift in zip(crops, lefts, walk):
        top = int(round(1.5 * base + shift - crop.shape[0] / 2))
        top = min(max(top, 0), canvas.shape[0] - crop.shape[0])
        x = int(round(left + margin))
        region = canvas[top: top + crop.shape[0], x: x + crop.shape[1]]
        np.maximum(region, crop[:, : region.shape[1]], out=region)
    return canvas


def synthetic_numbers(pen_digits, mnist_images, mnist_labels, count: int, seed: int):
    """`count` numbers: line-model inputs (uint8), digits (padded with 0) and lengths."""
    rng = np.random.default_rng(seed)
    x = np.zeros((count, LINE_HEIGHT, LINE_WIDTH), np.uint8)
    y = np.zeros((count, MAX_DIGITS), np.int32)
    lengths = np.zeros(count, np.int32)
    for index in range(count):
        length = int(rng.choice(LENGTHS, p=LENGTH_WEIGHTS / LENGTH_WEIGHTS.sum()))
        if rng.random() < PEN_SHARE_OF_NUMBERS:
            digits = [pen_digits[i] for i in rng.integers(len(pen_digits), size=length)]
            ink, labels = pen_number(digits, rng), [d.label for d in digits]
        else:
            chosen = rng.integers(len(mnist_images), size=length)
            ink, labels = mnist_number(mnist_images[chosen], rng), [int(v) for v in mnist_labels[chosen]]
        found = line_input(ink)
        x[index] = np.round(found.pixels * 255)
        y[index, :length] = labels
        lengths[index] = length
    return x, y, lengths


def _ctc_loss(targets, logits):
    """Keras loss: targets are (digits padded, length) per row."""
    from keras import ops

    labels = ops.cast(targets[:, :MAX_DIGITS], "int32")
    label_lengths = ops.cast(targets[:, MAX_DIGITS], "int32")
    frames = ops.full((ops.shape(logits)[0],), FRAMES, dtype="int32")
    return ops.ctc_loss(labels, logits, label_lengths, frames, mask_index=BLANK)


def train_line_model(x, y, lengths, epochs: int = EPOCHS, seed: int = 1, log=print,
                     validation=None):
    """Train a line model on synthetic_numbers' arrays; `validation` (x, y, lengths) is only reported."""
    import keras

    keras.utils.set_random_seed(seed)
    model = build_line_model()
    steps = epochs * (len(x) // BATCH + 1)
    schedule = keras.optimizers.schedules.CosineDecay(0.0, steps, alpha=0.02, warmup_target=LEARNING_RATE,
                                                      warmup_steps=max(1, steps // 20))
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=5.0), loss=_ctc_loss)
    targets = np.concatenate([y, lengths[:, None]], axis=1).astype(np.float32)
    inputs = x.astype(np.float32)[..., None] / 255.0
    for epoch in range(epochs):
        history = model.fit(inputs, targets, batch_size=BATCH, epochs=1, verbose=0, shuffle=True)
        line = f"  line model epoch {epoch + 1}/{epochs}: loss {history.history['loss'][-1]:.4f}"
        if validation is not None:
            line += f"; numbers read exactly {exact_share(model, *validation):.2%}"
        if log:
            log(line)
    return model


def exact_share(model, x, y, lengths) -> float:
    """Share of numbers the model's greedy reading gets exactly right."""
    from digitrec.lines import best_path

    probabilities = np.asarray(serving_model(model).predict(x.astype(np.float32)[..., None] / 255.0,
                                                             batch_size=256, verbose=0))
    right = [best_path(p)[0] == list(row[:length]) for p, row, length in zip(probabilities, y, lengths)]
    return float(np.mean(right))


def add_line_model(folder: Path, examples: int = EXAMPLES, epochs: int = EPOCHS, seed: int = 1, log=print,
                   pen_step: int = 1) -> dict:
    """Train the line model on synthetic numbers and write it into a model folder (and its card)."""
    log = log or (lambda message: None)
    started = time.monotonic()
    pen = [d for d in data.load_pendigits()[::pen_step] if d.writer in TRAIN_WRITERS]
    mnist = data.load_mnist()
    _, train_indices = validation_split({"seed": 1, "validation_size": VALIDATION_SIZE}, len(mnist.y_train))
    images, labels = mnist.x_train[train_indices], mnist.y_train[train_indices]
    log(f"line model: {examples} numbers from {len(pen)} pen digits (writers {TRAIN_WRITERS.start}-"
        f"{TRAIN_WRITERS.stop - 1}) and {len(images)} MNIST training digits")
    x, y, lengths = synthetic_numbers(pen, images, labels, examples, seed)
    held = synthetic_numbers(pen, images, labels, max(200, examples // 50), seed + 1000)
    model = train_line_model(x, y, lengths, epochs, seed, log, validation=held)
    (folder / LINE_FILE).write_bytes(registry.export_tflite(serving_model(model), features=False))
    card = registry.read_card(folder)
    card.setdefault("companions", {})["line"] = {
        "file": LINE_FILE, "examples": examples, "epochs": epochs, "seed": seed,
        "pen_writers": f"{TRAIN_WRITERS.start}-{TRAIN_WRITERS.stop - 1}",
        "mnist": "training digits outside the seed-1 validation split",
        "synthetic_numbers_read_exactly": exact_share(model, *held),
        "seconds": round(time.monotonic() - started, 1),
    }
    card.setdefault("files", {})[LINE_FILE] = (folder / LINE_FILE).stat().st_size
    registry.write_card(folder, card)
    return card
