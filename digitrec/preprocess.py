"""Any image -> the 28x28 model input. The ONE preprocessing function.

Training, inference and the "what the model sees" view all call `preprocess`, so the model
never sees a digit prepared differently from the ones it learned on.

MNIST digits were made by fitting each digit into a 20x20 box (aspect ratio kept,
anti-aliased) and centring its centre of mass in a 28x28 field. A digit drawn on a
280x280 canvas, or photographed on paper, is brought into that same form here:

1. `ink_map`: any array or PIL image -> float ink in [0, 1] (ink high). Polarity, alpha
   and uneven lighting are detected, not assumed.
2. `normalise_ink`: crop to the ink and scale its longer side to WORK_SIZE pixels, where the
   stroke width is measured and brought into the range MNIST strokes have, so neither pen size
   nor drawing size changes what the model sees; then area-average down into a 20x20 box and
   centre by centre of mass in 28x28.

`preprocess(image)` is `normalise_ink(without_stray_dot(ink_map(image)))`: a lone dot apart from
the digit (a speck on a photo, a tap) is left out first. A caller that has an ink map already
(digitrec.segment cuts a number's ink map into digits, and leaves specks out itself) hands each
cut-out to `normalise_ink`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from digitrec.data import SMALL_SIZES

PREPROCESS_VERSION = "3"  # bump when preprocess changes: cached model inputs and saved samples are rebuilt
MODEL_SIZE = 28
MODEL_SHAPE = (MODEL_SIZE, MODEL_SIZE)  # the model input: MNIST's 28x28
# PIL's integer modes of more than 8 bits ("I" is 32-bit, but PNGs and TIFFs fill it with 16 bits),
# read as 16-bit; with "F" (float) the high-depth modes that uploads and stored drawings scale down.
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
HIGH_DEPTH_MODES = SIXTEEN_BIT_MODES | {"F"}
BOX_SIZE = 20
# Small ink: the small bitmaps the models train on (a scan, an icon: sides up to
# data.SMALL_SIZES[1], the digit framed as in MNIST, its ink BOX_SIZE / MODEL_SIZE of the side)
# have ink no longer than this, their largest + 1. There a speck is a pixel or two and cannot be
# told from a piece of a stroke (`without_stray_dot`), and the not-a-digit head has a threshold
# of its own (inference).
SMALL_INK_SIDE = math.ceil(SMALL_SIZES[1] * BOX_SIZE / MODEL_SIZE) + 1
WORK_SIZE = 80  # the digit's longer side while strokes are measured and normalised
# Stroke widths (in WORK_SIZE pixels) that MNIST digits span; strokes outside are brought in.
MIN_STROKE = 6.0
MAX_STROKE = 14.0
THIN_TARGET = 8.0  # hairlines are thickened to this
THICK_TARGET = 12.0  # marker strokes are thinned to this
MAX_INPUT_SIDE = 1024  # larger photos are area-averaged down first: same result, far faster
INK_THRESHOLD = 0.3
NOISE_SIGMAS = 6.0  # a photo's paper: ink below its median plus this many robust deviations is none
DOT_LENGTH = 2.5  # ink no longer than this many stroke widths is a dot, not a digit
TAP_SPAN = DOT_LENGTH - 1  # pen widths a tap may move and still leave a dot (its ink adds one)
MIN_CONTRAST = 0.15  # below this much ink contrast an image is blank paper


@dataclass(frozen=True)
class Preprocessed:
    """The model input and whether anything was drawn."""

    model_input: np.ndarray  # float32 (28, 28), ink in [0, 1]
    empty: bool
    # The ink's longer side in the pixels preprocessing works on (0 when empty; an image over
    # MAX_INPUT_SIDE is shrunk first): a digit of a few dozen pixels (a scan, an icon) carries
    # less detail than one drawn on the canvas (see SMALL_INK_SIDE).
    ink_side: int = 0
    # Empty because the ink is one dot or blob no longer than DOT_LENGTH of its stroke widths (a
    # tap, a click; a small digit drawn with a huge pen fills in like that), not blank paper.
    dot: bool = False


def preprocess(image) -> Preprocessed:
    """Bring any digit image (array or PIL image, any size, any look) into MNIST form."""
    return normalise_ink(without_stray_dot(ink_map(image)))


def without_stray_dot(ink: np.ndarray) -> np.ndarray:
    """The ink map without a lone stray dot: ink no longer than DOT_LENGTH of its stroke widths,
    apart from the rest by an empty band of rows or columns at least one stroke width wide, with
    less ink than half the rest, when it is the only such piece and the rest is no dot. A speck of
    dust on a photo, a tap beside the digit: with it the digit was cropped with the dot, drawn
    smaller and off-centre. A stroke broken in a scan leaves a narrower gap, and small ink (a
    scan, an icon: at most SMALL_INK_SIDE) is left as it is: there a speck and a piece of a
    stroke are both a pixel or two."""
    mask = ink >= INK_THRESHOLD
    if not mask.any():
        return ink
    top, bottom, left, right = _bounding_box(mask)
    if max(bottom - top, right - left) <= SMALL_INK_SIDE:
        return ink
    dots = {}  # box -> the widest empty band between it and the rest
    for axis in (0, 1):
        lines = mask.any(axis=1 - axis)
        edges = np.flatnonzero(np.diff(np.concatenate([[False], lines, [False]]).astype(np.int8)))
        starts, stops = edges[::2], edges[1::2]
        for index in range(len(starts) if len(starts) > 1 else 0):
            start, stop = int(starts[index]), int(stops[index])
            band = mask[start:stop] if axis == 0 else mask[:, start:stop].T
            across = np.flatnonzero(band.any(axis=0))
            piece = band[:, across[0] : across[-1] + 1]
            if max(piece.shape) > DOT_LENGTH * min(piece.shape):  # no stroke is wider than its box
                continue
            if max(piece.shape) > DOT_LENGTH * stroke_width(piece):
                continue
            box = ((start, stop, int(across[0]), int(across[-1]) + 1) if axis == 0
                   else (int(across[0]), int(across[-1]) + 1, start, stop))
            gaps = ([start - int(stops[index - 1])] if index else []) + \
                   ([int(starts[index + 1]) - stop] if index + 1 < len(starts) else [])
            dots[box] = max(dots.get(box, 0), min(gaps))
            if len(dots) > 1:
                return ink
    if len(dots) != 1:
        return ink
    (top, bottom, left, right), gap = dots.popitem()
    rest = mask.copy()
    rest[top:bottom, left:right] = False
    rest_top, rest_bottom, rest_left, rest_right = _bounding_box(rest)
    crop = rest[rest_top:rest_bottom, rest_left:rest_right]
    width = stroke_width(crop)
    if (max(crop.shape) <= DOT_LENGTH * width  # two dots: neither is the digit
            or gap < width  # a piece of a broken stroke
            or 2 * mask[top:bottom, left:right].sum() >= crop.sum()):  # a blob beside a scratch
        return ink
    ink = ink.copy()
    ink[top:bottom, left:right] = 0.0
    return ink


def normalise_ink(ink: np.ndarray) -> Preprocessed:
    """Stage 2: an ink map (float, ink high, as `ink_map` returns or a cut-out of one, margins
    or none) -> the model input. Its strongest ink counts as full ink (as `ink_map` stretches it)."""
    ink = _stretch(np.asarray(ink, np.float32))
    mask = ink >= INK_THRESHOLD
    if not mask.any():
        return _empty()
    if mask.sum() < 3:
        return _empty()
    top, bottom, left, right = _bounding_box(mask)
    ink_side = max(bottom - top, right - left)
    work = _to_work_scale(ink[top:bottom, left:right])
    width = stroke_width(work)
    # A dot (a tap, a stray click) is about as long as it is thick; a digit is not.
    if max(work.shape) <= DOT_LENGTH * width:
        return _empty(dot=True)
    work = _normalise_strokes(work, width)
    return Preprocessed(_centre_in_field(_fit_box(work)), empty=False, ink_side=ink_side)


def preprocess_many(images) -> np.ndarray:
    """Preprocess a batch (e.g. MNIST) into an (N, 28, 28) float32 array; empties stay zero."""
    return np.stack([preprocess(image).model_input for image in images]).astype(np.float32)


def _empty(dot: bool = False) -> Preprocessed:
    return Preprocessed(np.zeros((MODEL_SIZE, MODEL_SIZE), np.float32), empty=True, dot=dot)


# --- 1. any input -> ink map -------------------------------------------------------------


def ink_map(image) -> np.ndarray:
    """Return float32 ink in [0, 1] (ink high) for any supported image; ValueError otherwise."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 \
            and image.shape[2] == 4 and image.shape[0] and image.shape[1]:
        # The canvas fast path: same result as below, converting only the alpha channel.
        alpha = image[..., 3]
        if _mostly_transparent(alpha):
            return _stretch(_shrink_if_huge(alpha.astype(np.float32) / 255.0))
    array = _as_float_array(image)
    if array.ndim == 3:
        array = _shrink_if_huge(array)
        channels = array.shape[2]
        colour = array[..., : channels - 1] if channels in (2, 4) else array
        if channels in (2, 4):
            alpha = array[..., -1]
            # Strokes live in the alpha channel (canvas with a transparent background):
            # whatever colour they were drawn in, alpha is the ink.
            if _mostly_transparent(alpha):
                return _stretch(alpha)
            # An opaque picture with a transparent margin or rounded corners: lay it on white.
            colour = colour * alpha[..., None] + (1.0 - alpha[..., None])
        luminance = colour.mean(axis=2) if colour.shape[2] == 1 else _luminance(colour)
    else:
        luminance = _shrink_if_huge(array)
    return _ink_from_luminance(luminance)


def _mostly_transparent(alpha: np.ndarray) -> bool:
    # Works for uint8 and unit-float alpha alike: compare against half the full value.
    half = 127 if alpha.dtype == np.uint8 else 0.5
    return bool((alpha < half).mean() >= 0.5)


def _as_float_array(image) -> np.ndarray:
    if isinstance(image, Image.Image):
        image = _pil_to_array(image)
    try:
        array = np.asarray(image)
    except (TypeError, ValueError) as error:
        raise ValueError(f"cannot read this as an image: {error}") from None
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ) or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"image pixels must be numbers, got dtype {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise ValueError(
            f"expected an HxW grey, HxWx3 RGB or HxWx4 RGBA image, got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"image has zero size: shape {array.shape}")
    return _scale_to_unit(array)


def _pil_to_array(image: Image.Image) -> np.ndarray:
    factor = max(image.size) // MAX_INPUT_SIDE
    if (factor > 1 and min(image.size) >= factor
            and image.mode in ("L", "RGB", "RGBA", "LA", "1", "CMYK", "P")):
        # A 40-megapixel photo would take a gigabyte as floats: average it down in PIL first.
        image = image.convert("RGBA" if "A" in image.mode or "transparency" in image.info else "RGB")
        image = image.reduce(factor)
    mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        return np.asarray(image, dtype=np.float64) / 65535.0
    if mode == "F":
        return np.asarray(image, dtype=np.float64)
    if mode in ("1", "L", "RGB", "RGBA", "LA"):
        return np.asarray(image)
    if mode in ("P", "PA") and (mode == "PA" or "transparency" in image.info):
        return np.asarray(image.convert("RGBA"))
    return np.asarray(image.convert("RGB"))  # P, CMYK, YCbCr, LAB, HSV, ...


def _scale_to_unit(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0:
            raise ValueError("pixel values must not be negative")
        if array.dtype.itemsize == 1 or high <= 255:
            return array.astype(np.float32) / 255.0
        return array.astype(np.float32) / (65535.0 if high <= 65535 else float(high))
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, refused below
        array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError("image contains NaN, infinite or out-of-range values")
    low, high = float(array.min()), float(array.max())
    if low < 0:
        raise ValueError("pixel values must not be negative")
    if high <= 1.0:
        return array
    if high <= 255.0:
        return array / 255.0
    raise ValueError("float pixel values must lie in 0..1 or 0..255")


def _shrink_if_huge(array: np.ndarray) -> np.ndarray:
    height, width = array.shape[:2]
    # Never more than the short side: a 1x5000 strip stays one pixel high, not zero.
    factor = min(int(np.ceil(max(height, width) / MAX_INPUT_SIDE)), height, width)
    if factor <= 1:
        return array
    # Block-average (area) downsampling keeps thin strokes as grey instead of dropping them.
    height, width = height // factor * factor, width // factor * factor
    blocks = array[:height, :width].reshape(height // factor, factor, width // factor, factor, -1)
    return blocks.mean(axis=(1, 3)).squeeze(-1) if array.ndim == 2 else blocks.mean(axis=(1, 3))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _ink_from_luminance(luminance: np.ndarray) -> np.ndarray:
    border = np.concatenate(
        [luminance[0], luminance[-1], luminance[:, 0], luminance[:, -1]]
    )
    # The background is what the border mostly shows: dark ink on paper or light on dark.
    ink = 1.0 - luminance if np.median(border) > 0.5 else luminance
    if max(ink.shape) > 64:
        ink = _median3(ink)  # photo and scan noise
    ink = _above_noise(np.clip(ink - _local_background(ink), 0.0, 1.0))
    if ink.max() < MIN_CONTRAST:
        return np.zeros_like(ink)
    return _stretch(ink)


def _above_noise(ink: np.ndarray) -> np.ndarray:
    """Zero the paper that the background's subtraction leaves. The local minimum lies under the
    noise, so a photo's paper kept a faint, even layer of ink (about 0.04 of the strokes'), and
    where a thin pen's strokes are few pixels, the crop scaled down for measuring counted that
    layer as ink: a ballpoint digit read as a dot or "not a digit". Paper is what lies under
    INK_THRESHOLD of the strongest ink; its median plus NOISE_SIGMAS robust deviations is the
    floor. Clean paper (exactly 0: MNIST, a canvas) is left as it is."""
    paper = ink[ink < INK_THRESHOLD * float(ink.max())]
    if paper.size == 0:
        return ink
    level = float(np.median(paper))
    floor = level + NOISE_SIGMAS * 1.4826 * float(np.median(np.abs(paper - level)))
    return np.where(ink > floor, ink, 0.0).astype(np.float32) if floor > 0 else ink


def _median3(ink: np.ndarray) -> np.ndarray:
    image = Image.fromarray(ink.astype(np.float32), mode="F")
    return np.asarray(image.filter(ImageFilter.MedianFilter(3)), dtype=np.float32)


def _local_background(ink: np.ndarray) -> np.ndarray:
    """Estimate unevenly lit paper: the local minimum of ink at a scale wider than a stroke."""
    height, width = ink.shape
    image = Image.fromarray(ink.astype(np.float32), mode="F")
    small_size = (max(1, round(width * 32 / max(height, width))),
                  max(1, round(height * 32 / max(height, width))))
    if max(height, width) > 32:
        image = image.resize(small_size, Image.BOX)
    image = image.filter(ImageFilter.MinFilter(7))  # the bilinear upscale smooths it
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def _stretch(ink: np.ndarray) -> np.ndarray:
    peak = float(ink.max())
    if peak <= 0.0 or peak == 1.0:
        return ink.astype(np.float32, copy=False)
    return np.clip(ink / peak, 0.0, 1.0).astype(np.float32)


# --- 2. crop, scale, normalise strokes ---------------------------------------------------


def _bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def stroke_width(mask: np.ndarray) -> float:
    """Estimate the stroke width of a binary drawing: twice its area over its outline."""
    area = int(mask.sum())
    if area == 0:
        return 0.0
    # Pixels on the array's edge have a neighbour outside it, so only inner ones can be interior.
    interior = (
        mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    )
    outline = area - int(interior.sum())
    return 2.0 * area / max(outline, 1)


def _to_work_scale(crop: np.ndarray) -> np.ndarray:
    """Scale the crop so its longer side is WORK_SIZE and binarise it."""
    height, width = crop.shape
    scale = WORK_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    work = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(size, resample))
    # A pen much thinner than the downscaling step comes out faint, not absent: threshold
    # against the level the strokes actually reach so no thin stroke is lost.
    strokes = work[work > 0.05]
    level = _percentile(strokes, 90) if strokes.size else 1.0
    return work >= 0.5 * level


def _percentile(values: np.ndarray, percent: float) -> float:
    """np.percentile's default (linear) for a 1-D array, by partial sort: a number's ~50 candidate
    digits each pass through here, and np.percentile's general machinery took 7 times as long."""
    position = percent / 100 * (values.size - 1)
    low = int(position)
    high = min(low + 1, values.size - 1)
    ordered = np.partition(values, (low, high))
    below, above, fraction = ordered[low], ordered[high], position - low
    # NumPy's interpolation, to the last bit: from the nearer end
    if fraction >= 0.5:
        return float(above - (above - below) * (1 - fraction))
    return float(below + (above - below) * fraction)


def _normalise_strokes(work: np.ndarray, width: float) -> np.ndarray:
    """Thicken hairlines and thin marker strokes into the range MNIST strokes span."""
    if MIN_STROKE <= width <= MAX_STROKE:
        return work
    border = int(MAX_STROKE)
    padded = np.zeros((work.shape[0] + 2 * border, work.shape[1] + 2 * border), bool)
    padded[border:-border, border:-border] = work
    if width < MIN_STROKE:
        normalised = dilate(padded, round((THIN_TARGET - width) / 2))
    else:
        normalised = ~dilate(~padded, round((width - THICK_TARGET) / 2))
        if not normalised.any():  # eroding a blob drawn with a huge pen must not erase it
            normalised = padded
    top, bottom, left, right = _bounding_box(normalised)
    return normalised[top:bottom, left:right]


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """A boolean mask grown by `radius` pixels, nearly round."""
    # Alternating cross and square steps grow an octagon, close to a round pen; a square
    # kernel would make diagonal strokes 40% thicker than straight ones.
    # One border, reused: np.pad at each step cost more than the step itself.
    padded = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), bool)
    for step in range(radius):
        padded[1:-1, 1:-1] = mask
        grown = (padded[1:-1, 1:-1] | padded[:-2, 1:-1] | padded[2:, 1:-1]
                 | padded[1:-1, :-2] | padded[1:-1, 2:])
        if step % 2:
            grown |= padded[:-2, :-2] | padded[:-2, 2:] | padded[2:, :-2] | padded[2:, 2:]
        mask = grown
    return mask


# --- 3. fit into 20x20, centre by mass in 28x28 ------------------------------------------


def _fit_box(work: np.ndarray) -> np.ndarray:
    height, width = work.shape
    scale = BOX_SIZE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    image = Image.fromarray(work.astype(np.float32), mode="F")
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    return np.asarray(image.resize(size, resample), dtype=np.float32).clip(0.0, 1.0)


def _centre_in_field(digit: np.ndarray) -> np.ndarray:
    height, width = digit.shape
    total = float(digit.sum())
    rows, cols = np.arange(height), np.arange(width)
    centre_row = float((digit.sum(axis=1) * rows).sum() / total) + 0.5
    centre_col = float((digit.sum(axis=0) * cols).sum() / total) + 0.5
    top = int(round(MODEL_SIZE / 2 - centre_row))
    left = int(round(MODEL_SIZE / 2 - centre_col))
    # Clamp so a lopsided digit is shifted, never cut off.
    top = min(max(top, 0), MODEL_SIZE - height)
    left = min(max(left, 0), MODEL_SIZE - width)
    field = np.zeros((MODEL_SIZE, MODEL_SIZE), np.float32)
    field[top : top + height, left : left + width] = digit
    return field
