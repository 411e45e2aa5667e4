"""Training data: MNIST, pen digits drawn on a canvas, small bitmaps and saved samples, through
`preprocess`, cached on disk; the training, validation and test arrays a training run takes.

Model inputs are kept as uint8 (value x 255) on disk and in memory, a quarter of float32: the
training pipeline (digitrec.train) converts each batch to float32 as it goes (`as_model_input`),
so no float copy of a whole dataset is ever made. Cache files are named by what they hold (data
checksums, counts, seeds, `preprocess.PREPROCESS_VERSION`): a change of preprocessing rebuilds them.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from digitrec import companions, data
from digitrec.config import TrainingConfig, sample_row_limits
from digitrec.preprocess import MODEL_SHAPE, PREPROCESS_VERSION, preprocess_many

PEN_RENDERINGS = TrainingConfig().pen_renderings  # each training writer's digit is drawn this many ways
CACHE_FORMAT = "u8"  # model inputs cached as uint8
PREPROCESS_CHUNK = 4096  # images preprocessed (as float32) at a time while building a cache


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


def cache_dir() -> Path:
    """Where preprocessed datasets are cached (DIGITREC_CACHE_DIR or ~/.cache/digitrec)."""
    return Path(os.environ.get("DIGITREC_CACHE_DIR", Path.home() / ".cache" / "digitrec"))


def cached(key: str, build: Callable[[], dict]) -> dict:
    """The arrays cached under `key` (in `cache_dir`), built by `build` and stored the first time.

    Processes that want the same arrays at once (a training beside a benchmark, the test suite's
    workers) build them once: the first holds the key's lock file while it builds, the others
    wait and then read what it stored (preprocessing MNIST takes minutes on a small machine).
    """
    path = cache_dir() / f"{key}-{CACHE_FORMAT}.npz"
    if path.is_file():
        return _load_cached(path)
    with _building(path):
        if path.is_file():  # another process built it while this one waited
            return _load_cached(path)
        arrays = build()
        try:
            temporary = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(temporary, **arrays)
            temporary.replace(path)
        except OSError:
            pass  # a read-only home only costs the preprocessing time again
        return arrays


def _load_cached(path: Path) -> dict:
    with np.load(path) as stored:
        return {name: stored[name] for name in stored.files}


@contextmanager
def _building(path: Path):
    """Hold the exclusive lock of `path`'s lock file (`locks/` beside it; an flock, released when
    the process ends however it ends); where no lock file can be made, build without one."""
    try:
        (path.parent / "locks").mkdir(parents=True, exist_ok=True)
        handle = open(path.parent / "locks" / f"{path.stem}.lock", "a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _preprocess_uint8(images) -> np.ndarray:
    """`preprocess_many` a chunk at a time, kept as uint8: no float copy of the whole set."""
    out = np.empty((len(images), *MODEL_SHAPE), np.uint8)
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
    return cached(key, _from_float_cache(key, lambda: {
        "x_train": _preprocess_uint8(mnist.x_train), "y_train": mnist.y_train,
        "x_test": _preprocess_uint8(mnist.x_test), "y_test": mnist.y_test}))


SLASH_STREAM = 2  # the slashes' generator: np.random.default_rng([seed, SLASH_STREAM])
STYLE_STREAM = 3  # the styled drawings' generator (`preprocessed_pendigits(..., styles=True)`)


def preprocessed_pendigits(digits, renderings: int, seed: int, tag: str, wide: bool = False,
                           slashed_zeros: float = 0.0, styles: bool = False) -> dict:
    """Pen digits drawn on a canvas `renderings` ways each, through `preprocess` (uint8), cached.

    `wide` draws them at every pen width and size visitors use (data.USER_PENS, USER_HEIGHTS)
    instead of the narrower classic ranges. `slashed_zeros`: this share of the 0s is drawn
    slashed (Ø), from a generator of its own, so every other drawing is as without. `styles`
    varies every second drawing of a digit as people write (`companions.augment`: slant, aspect,
    wobble, 1s with a long flag or a foot, crossed 7s, slashed 0s), from a generator of its own
    too: the other drawings, and where each drawing is placed and its pen, stay as without.
    """
    heights, pens = (data.USER_HEIGHTS, data.USER_PENS) if wide else (data.CLASSIC_HEIGHTS, data.CLASSIC_PENS)

    def build():
        rng = np.random.default_rng(seed)
        slashes = np.random.default_rng([seed, SLASH_STREAM])
        labels = np.array([d.label for d in digits for _ in range(renderings)], np.uint8)
        out = np.empty((len(labels), *MODEL_SHAPE), np.uint8)
        styled = np.random.default_rng([seed, STYLE_STREAM])
        drawings = (_styled(d, styled) if styles and copy % 2 else
                    _slashed(d, slashes, slashed_zeros) if slashed_zeros else d
                    for d in digits for copy in range(renderings))
        for start in range(0, len(labels), PREPROCESS_CHUNK):  # canvases a chunk at a time
            chunk = [data.draw_pen_digit(d, rng, heights=heights, pens=pens)
                     for d in itertools.islice(drawings, PREPROCESS_CHUNK)]
            out[start : start + len(chunk)] = _preprocess_uint8(chunk)
        return {"x": out, "y": labels}

    key = (f"pendigits-{tag}-{len(digits)}x{renderings}-s{seed}{'-wide' if wide else ''}"
           f"{f'-slashed{slashed_zeros:g}' if slashed_zeros else ''}{'-styles' if styles else ''}"
           f"-p{PREPROCESS_VERSION}")
    return cached(key, _from_float_cache(key, build))


def _slashed(digit: data.PenDigit, rng: np.random.Generator, share: float) -> data.PenDigit:
    """A 0 slashed (Ø) at `share`, any other digit as it is."""
    if digit.label != 0 or rng.random() >= share:
        return digit
    return replace(digit, strokes=tuple(companions.slashed(digit.strokes, rng)))


def _styled(digit: data.PenDigit, rng: np.random.Generator) -> data.PenDigit:
    """A pen digit written with the variations and styles the trajectory model learns from."""
    strokes = companions.augment(digit.strokes, rng, digit.label, slashed_zeros=True, long_flags=True)
    return replace(digit, strokes=tuple(tuple(stroke) for stroke in strokes))


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
    return cached(f"small-{digest}-s{seed}-p{PREPROCESS_VERSION}", build)


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


def validation_split(config: TrainingConfig | dict, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, rest): the MNIST training indices a config holds back for validation, and the
    others, in the order `prepare_data` draws them. A card's config dict works too (older cards
    have no validation_seed: their split followed `seed`)."""
    if isinstance(config, dict):
        seed = config.get("validation_seed")
        seed, size = (config.get("seed", 1) if seed is None else seed), config.get("validation_size", 5000)
    else:
        seed, size = config.split_seed, config.validation_size
    order = np.random.default_rng(seed).permutation(count)
    return order[:size], order[size:]


def held_out_indices(card: dict, count: int) -> np.ndarray:
    """The MNIST training indices (sorted) that no network of a model folder trained on, from its
    card (a dict): its own validation split, or for an average of networks (`averaged_from`) the
    digits every one of them held out."""
    parts = card.get("averaged_from") or [card]
    held = [set(validation_split((part.get("training") or {}).get("config") or {}, count)[0].tolist())
            for part in parts]
    return np.array(sorted(set.intersection(*held)), dtype=np.int64)


def prepare_data(config: TrainingConfig, mnist: data.Mnist | None = None,
                 samples: tuple | None = None) -> TrainingData:
    """Assemble preprocessed training, validation and test arrays for a config."""
    mnist = mnist or data.load_mnist()
    prepared = preprocessed_mnist(mnist)
    rng = np.random.default_rng(config.split_seed)
    # Validation comes first, so "share of MNIST" is the share of the training images left.
    val_index, rest = validation_split(config, len(prepared["y_train"]))
    rng.permutation(len(prepared["y_train"]))  # as validation_split drew: the small bitmaps follow it
    train_index = rest[: max(1, int(len(rest) * config.mnist_fraction))]
    x_parts, y_parts = [prepared["x_train"][train_index]], [prepared["y_train"][train_index]]
    counts = {"mnist": len(train_index)}
    if config.pendigits:
        try:
            training_writers, _ = data.split_writers(data.load_pendigits())
            pen = preprocessed_pendigits(training_writers, config.pen_renderings, seed=7, tag="train",
                                         wide=config.wide_pens, styles=config.pen_styles)
            x_parts.append(pen["x"]), y_parts.append(pen["y"])
            counts["pendigits"] = len(pen["y"])
        except data.DataUnavailableError:
            counts["pendigits"] = 0
    if config.small_images:
        # Digits a scanner or an icon gives: MNIST training digits (never the validation ones)
        # redrawn as 14-36 px bitmaps, grey or 1-bit, either polarity.
        chosen = rng.choice(rest, min(config.small_images, len(rest)), replace=False)
        small = preprocessed_small_bitmaps(mnist, np.sort(chosen), seed=config.split_seed)
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


def data_settings(config: TrainingConfig) -> dict:
    """The settings `prepare_data` reads (the rest only change how a network trains on the data)."""
    return {"mnist_fraction": config.mnist_fraction, "pendigits": config.pendigits,
            "pen_renderings": config.pen_renderings, "wide_pens": config.wide_pens,
            "pen_styles": config.pen_styles,
            "small_images": config.small_images, "user_samples": config.user_samples,
            "validation_size": config.validation_size, "split_seed": config.split_seed}


def save_training_arrays(training_data: TrainingData, config: TrainingConfig, path: Path) -> None:
    """Write the training and validation arrays (compressed) with the settings that made them,
    their counts and checksums, for `python -m digitrec fit` on another machine; the test set
    stays here (evaluation is here)."""
    np.savez_compressed(path, x_train=training_data.x_train, y_train=training_data.y_train,
                        x_val=training_data.x_val, y_val=training_data.y_val,
                        about=json.dumps({"counts": training_data.counts, "settings": data_settings(config),
                                          "checksums": training_data.checksums}))


def load_training_arrays(path: Path, config: TrainingConfig) -> TrainingData:
    """The arrays `save_training_arrays` wrote, as TrainingData with an empty test set; ValueError
    when `config` would prepare other data than these (fit's record would then claim it)."""
    with np.load(path) as stored:
        about = json.loads(str(stored["about"]))
        # Arrays prepared before pen_styles existed were prepared without them.
        settings = {"pen_styles": False, **(about.get("settings") or {})}
        if settings != data_settings(config):
            differ = sorted(name for name, value in data_settings(config).items()
                            if settings.get(name) != value)
            raise ValueError(f"{Path(path).name} was prepared with other data settings "
                             f"({', '.join(differ)}): give fit the options prepare had")
        empty = np.empty((0, *MODEL_SHAPE), np.uint8)
        return TrainingData(stored["x_train"], stored["y_train"], stored["x_val"], stored["y_val"],
                            empty, empty[:, 0, 0], about["checksums"], about["counts"])
