"""Data: MNIST (IDX files or the Keras loader) and pen strokes drawn onto a canvas."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from digitrec.errors import DataUnavailableError

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
MNIST_COUNTS = {"train": 60000, "test": 10000}
HOW_TO_PROVIDE_MNIST = (
    "MNIST is not available. Put the four MNIST IDX .gz files "
    f"({', '.join(MNIST_FILES.values())}) in a folder and set DIGITREC_MNIST_DIR to it, "
    "or run on a machine with internet access so Keras can download MNIST."
)
CANVAS_SIZE = 280  # the Draw page's Digit canvas (square), in CSS pixels, where it fits
NUMBER_CANVAS = (700, CANVAS_SIZE)  # the Number canvas (width, height): the largest a page draws on
# How visitors draw on the canvas: a digit's height as a share of the canvas, and the pen width
# in canvas pixels. Training drawings (with `TrainingConfig.wide_pens`) and the accuracy benchmark
# both draw within these ranges.
USER_HEIGHTS = (0.25, 0.85)
USER_PENS = (6.0, 40.0)
# The narrower ranges the first models were trained with (kept so their data is rebuilt alike).
CLASSIC_HEIGHTS = (0.3, 0.85)
CLASSIC_PENS = (8.0, 30.0)
# Small bitmaps (`small_bitmap`): the sizes a scanner or an icon gives.
SMALL_SIZES = (14, 36)


@dataclass(frozen=True)
class Mnist:
    """MNIST as uint8 arrays (N, 28, 28) and labels (N,), plus file checksums."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checksums: dict


def read_idx(path) -> np.ndarray:
    """Read one IDX file (gzip or plain) into a numpy array; ValueError if malformed."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as error:
        raise ValueError(f"{path.name}: cannot read IDX file ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path.name}: not an unsigned-byte IDX file")
    dimensions = data[3]
    header = 4 + 4 * dimensions
    if len(data) < header:
        raise ValueError(f"{path.name}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dimensions))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(
            f"{path.name}: IDX header promises {expected} bytes of data, file has {len(data) - header}"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def load_mnist(folder=None) -> Mnist:
    """Load MNIST from a folder of IDX .gz files (argument or DIGITREC_MNIST_DIR), else Keras."""
    folder = folder or os.environ.get("DIGITREC_MNIST_DIR")
    if folder:
        return _load_mnist_folder(Path(folder))
    return _load_mnist_keras()


# Where Keras downloads MNIST from (keras.datasets.mnist.load_data), about 11 MB.
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"


class MnistOrigin(StrEnum):
    """Where `load_mnist` gets MNIST from."""

    FOLDER = "folder"  # DIGITREC_MNIST_DIR (or a folder given)
    KERAS_CACHE = "keras cache"  # the file Keras downloaded before
    DOWNLOAD = "download"  # Keras will download it


@dataclass(frozen=True)
class MnistSource:
    """Where MNIST will come from, found by `find_mnist` without loading it."""

    origin: MnistOrigin
    location: str

    def describe(self) -> str:
        """One sentence for any visitor (no server paths in it)."""
        if self.origin == MnistOrigin.FOLDER:
            return "Training data: MNIST, from this server's copy."
        if self.origin == MnistOrigin.KERAS_CACHE:
            return "Training data: MNIST, from the copy this server downloaded before."
        return "MNIST (about 11 MB) will be downloaded when training starts."


def keras_mnist_path() -> Path:
    """Where Keras keeps the MNIST it downloaded (KERAS_HOME or ~/.keras)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets" / "mnist.npz"


def find_mnist(folder=None, timeout: float = 3.0) -> MnistSource:
    """Where `load_mnist(folder)` will get MNIST from, checked without loading it.

    Raises DataUnavailableError saying what is missing and how to provide MNIST when it can
    come from nowhere: the folder lacks files, or there is no Keras copy and the download
    address cannot be reached within `timeout` seconds.
    """
    folder = folder or os.environ.get("DIGITREC_MNIST_DIR")
    if folder:
        missing = [name for name in MNIST_FILES.values() if not (Path(folder) / name).is_file()]
        if missing:
            raise DataUnavailableError(f"{folder} (DIGITREC_MNIST_DIR) lacks {', '.join(missing)}. "
                                       f"{HOW_TO_PROVIDE_MNIST}")
        return MnistSource(MnistOrigin.FOLDER, str(folder))
    cached = keras_mnist_path()
    if cached.is_file():
        try:
            with np.load(cached) as stored:
                if {"x_train", "y_train", "x_test", "y_test"} <= set(stored.files):
                    return MnistSource(MnistOrigin.KERAS_CACHE, str(cached))
        except (OSError, ValueError):
            pass  # broken: Keras would download it again
    problem = _unreachable(MNIST_URL, timeout)
    if problem is None:
        return MnistSource(MnistOrigin.DOWNLOAD, MNIST_URL)
    raise DataUnavailableError(
        f"No MNIST for training: DIGITREC_MNIST_DIR is not set, Keras has no copy at {cached}, "
        f"and the download ({MNIST_URL}) cannot be reached: {problem}. {HOW_TO_PROVIDE_MNIST} "
        f"Or copy Keras' mnist.npz to {cached}.")


def _unreachable(url: str, timeout: float) -> str | None:
    """None if `url` answers a HEAD request within `timeout` seconds, else why not."""
    import threading
    import urllib.request

    outcome: list = []

    def probe():
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                outcome.append(None)
        except Exception as error:  # noqa: BLE001  (any failure means: no download)
            outcome.append(str(getattr(error, "reason", error)))

    thread = threading.Thread(target=probe, daemon=True)  # name lookups ignore the timeout
    thread.start()
    thread.join(timeout + 0.5)
    return outcome[0] if outcome else f"no answer within {timeout:.0f} s"


def _load_mnist_folder(folder: Path) -> Mnist:
    missing = [name for name in MNIST_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise DataUnavailableError(f"{folder}: missing {', '.join(missing)}. {HOW_TO_PROVIDE_MNIST}")
    arrays = {key: read_idx(folder / name) for key, name in MNIST_FILES.items()}
    for split, count in MNIST_COUNTS.items():
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape != (count, 28, 28) or labels.shape != (count,):
            raise ValueError(
                f"{folder}: MNIST {split} has shapes {images.shape} and {labels.shape}, "
                f"expected ({count}, 28, 28) and ({count},)"
            )
        if labels.max() > 9:
            raise ValueError(f"{folder}: MNIST {split} labels must be 0-9")
    checksums = {name: _md5(folder / name) for name in MNIST_FILES.values()}
    return Mnist(arrays["train_images"], arrays["train_labels"],
                 arrays["test_images"], arrays["test_labels"], checksums)


def _load_mnist_keras() -> Mnist:
    cached = keras_mnist_path()
    if cached.is_file():
        # What Keras downloaded before (e.g. in a training process): read it without
        # importing TensorFlow, so the app server stays light.
        try:
            with np.load(cached) as stored:
                arrays = [stored[key] for key in ("x_train", "y_train", "x_test", "y_test")]
            digest = hashlib.md5(arrays[0].tobytes() + arrays[2].tobytes()).hexdigest()
            checksums = {"keras-mnist.npz": digest}
            return Mnist(*arrays, checksums)
        except (OSError, ValueError, KeyError):
            pass  # a broken cache: let Keras fetch it again
    try:
        from keras.datasets import mnist  # imported late: it pulls in TensorFlow

        (x_train, y_train), (x_test, y_test) = mnist.load_data()
    except Exception as error:  # any download or cache failure means: no MNIST here
        raise DataUnavailableError(f"{HOW_TO_PROVIDE_MNIST} (Keras said: {error})") from None
    checksums = {"keras-mnist.npz": hashlib.md5(x_train.tobytes() + x_test.tobytes()).hexdigest()}
    return Mnist(x_train, y_train, x_test, y_test, checksums)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# --- pen strokes (pendigits UNIPEN trajectories) -----------------------------------------


@dataclass(frozen=True)
class PenDigit:
    """One handwritten digit as pen strokes: lists of (x, y) points, y pointing down."""

    label: int
    writer: int
    strokes: tuple


def default_pendigits_path() -> Path:
    """Where the pendigits trajectories live: DIGITREC_PENDIGITS or ../shared beside the repo."""
    configured = os.environ.get("DIGITREC_PENDIGITS")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "pendigits" / "pendigits-orig.tra"


def load_pendigits(path=None) -> list[PenDigit]:
    """Parse a UNIPEN pendigits file into PenDigits (y flipped so it points down)."""
    path = Path(path or default_pendigits_path())
    if not path.is_file():
        raise DataUnavailableError(f"pendigits trajectories not found at {path}")
    digits, label, writer, strokes, current = [], None, 0, [], None
    for line in path.read_text().splitlines():
        if line.startswith(".SEGMENT"):
            if label is not None:
                digits.append(PenDigit(label, writer, tuple(strokes)))
            label, strokes = int(re.search(r'"(\d)"', line).group(1)), []
        elif line.startswith(".COMMENT") and label is not None:
            writer = int(line.split()[2])
        elif line.startswith(".PEN_DOWN"):
            current = []
        elif line.startswith(".PEN_UP"):
            if current:
                strokes.append(tuple(current))
            current = None
        elif current is not None and line.strip():
            x, y = line.split()
            current.append((float(x), -float(y)))  # UNIPEN y points up; images point down
    if label is not None:
        digits.append(PenDigit(label, writer, tuple(strokes)))
    return digits


def place_strokes(strokes, height: float, centre: tuple[float, float]) -> list[list[tuple]]:
    """Scale strokes to a given height (aspect kept) centred at `centre` in canvas pixels."""
    points = np.array([point for stroke in strokes for point in stroke])
    low, high = points.min(axis=0), points.max(axis=0)
    scale = height / max(high[1] - low[1], (high[0] - low[0]) * 0.6, 1e-6)
    middle = (low + high) / 2
    return [
        [((x - middle[0]) * scale + centre[0], (y - middle[1]) * scale + centre[1]) for x, y in stroke]
        for stroke in strokes
    ]


def render_strokes(strokes, size: int = CANVAS_SIZE, brush: float = 18.0) -> np.ndarray:
    """Draw strokes (canvas pixel coordinates) with a round brush: an RGBA canvas like the app's."""
    supersample = 2  # draw large then shrink, for the anti-aliased edges a browser canvas has
    image = Image.new("L", (size * supersample, size * supersample), 0)
    draw = ImageDraw.Draw(image)
    radius = brush * supersample / 2
    for stroke in strokes:
        scaled = [(x * supersample, y * supersample) for x, y in stroke]
        if len(scaled) > 1:
            draw.line(scaled, fill=255, width=max(1, round(brush * supersample)), joint="curve")
        for x, y in scaled:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    alpha = np.asarray(image.resize((size, size), Image.BOX))
    canvas = np.zeros((size, size, 4), np.uint8)
    canvas[..., 3] = alpha  # black strokes on a transparent background, as st_canvas returns
    return canvas


def draw_pen_digit(digit: PenDigit, rng: np.random.Generator | None = None,
                   size: int = CANVAS_SIZE, heights=CLASSIC_HEIGHTS, pens=CLASSIC_PENS) -> np.ndarray:
    """Render a pen digit as a user might draw it: varied size, place and brush (seeded).

    With an `rng`, the digit's height is drawn from `heights` (shares of the canvas) and the pen
    width from `pens` (canvas pixels); without one it is a fixed, middle-sized drawing.
    """
    if rng is None:
        height, centre, brush = size * 0.7, (size / 2, size / 2), 18.0
    else:
        height = rng.uniform(*heights) * size
        margin = height / 2 + 10
        centre = (rng.uniform(margin * 0.8, size - margin * 0.8), rng.uniform(margin, size - margin))
        brush = rng.uniform(*pens)
    return render_strokes(place_strokes(digit.strokes, height, centre), size, brush)


def small_bitmap(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 MNIST digit redrawn as a small bitmap, as a scanner or an icon gives one (seeded).

    Its side is drawn from SMALL_SIZES, the resampling filter at random; half are 1-bit (a random
    threshold), and half are inverted (black ink on white).
    """
    side = int(rng.integers(SMALL_SIZES[0], SMALL_SIZES[1] + 1))
    method = (Image.BOX, Image.BILINEAR, Image.NEAREST)[int(rng.integers(3))]
    small = np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((side, side), method))
    if rng.random() < 0.5:
        small = np.where(small > rng.uniform(60, 160), 255, 0).astype(np.uint8)
    return 255 - small if rng.random() < 0.5 else small


def split_writers(digits, held_out_writers=range(21, 31)):
    """Split pen digits into (train, held_out) by writer so evaluation never sees a writer."""
    held = set(held_out_writers)
    return ([d for d in digits if d.writer not in held], [d for d in digits if d.writer in held])


def draw_pen_number(digits, rng: np.random.Generator, width: int = NUMBER_CANVAS[0],
                    height: int = NUMBER_CANVAS[1]):
    """Draw pen digits side by side on a width x height canvas (seeded size, gaps and pen).

    Returns the RGBA canvas, or None when the digits do not fit across the canvas.
    """
    digit_height, brush, gap = rng.uniform(120, 200), rng.uniform(12, 24), rng.uniform(25, 45)
    strokes, x = [], 30.0
    for digit in digits:
        placed = place_strokes(digit.strokes, digit_height, (0.0, height / 2))
        xs = [point[0] for stroke in placed for point in stroke]
        shift = x + brush / 2 - min(xs)
        strokes += [[(px + shift, py) for px, py in stroke] for stroke in placed]
        x += max(xs) - min(xs) + brush + gap
    if x > width:
        return None
    return render_strokes(strokes, max(width, height), brush)[:height, :width]
