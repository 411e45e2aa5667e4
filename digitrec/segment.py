"""A drawn number -> its single digits, left to right, and the number they read as.

Digits of a number are written side by side, so the columns that hold ink fall into runs,
one run per digit. Strokes of one digit overlap horizontally (the bar of a 4, the cap of a
5), so they land in the same run however many times the pen was lifted. Three repairs
follow: specks are dropped, runs split by a hair-thin gap are joined again, and a run far
wider than a digit (digits that touch) is cut where the fewest ink pixels cross.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from digitrec.preprocess import DOT_LENGTH, INK_THRESHOLD, ink_map, stroke_width

# Share of the digit height under which a gap between two runs is a pen lifted within one
# digit rather than the space between two digits.
JOIN_GAP = 0.05
# A piece with less ink than this share of the largest piece is a speck, not a digit; so is
# one no longer than DOT_LENGTH stroke widths (a dot, a tap of the pen; shared with preprocess).
SPECK_AREA = 0.04
# A piece wider than this times its height may be touching digits (a few % of single
# pendigits digits are this wide, so the cut must then be clean), if it is also more than
# one digit's worth of ink: wider than MIN_SPLIT_WIDTH times the number's digit height.
SPLIT_ASPECT = 1.1
MIN_SPLIT_WIDTH = 0.9
# Beyond this aspect a piece holds two digits (under 0.5% of single pendigits digits are
# this wide); below it, a piece is only cut where the cut is clean.
SURE_SPLIT_ASPECT = 1.6
MAX_CUT_STROKES = 1.5  # a clean cut crosses about one stroke, a cut through one digit two
# A cut leaves at least this share of the ink on either side: cutting off the end of a
# 7's bar or a 5's cap leaves far less.
MIN_SIDE_SHARE = 0.3
# ... and ink at least this share of the piece's height on either side: the loop at the foot
# of a long-tailed 2 is no digit of its own, a touching neighbour stands as tall.
MIN_SIDE_HEIGHT = 0.5
# Border around each digit crop, as a share of its longer side. ink_map treats a 2D crop
# as a photo and subtracts a local background estimated over a share of the crop's size;
# a wide border keeps that estimate at zero even inside the blobs of a very bold pen.
PAD = 0.75


@dataclass(frozen=True)
class DigitBox:
    """One digit of a drawn number: where it lies in the image and its ink crop."""

    left: int  # image pixels; right and bottom are exclusive, as in slicing
    top: int
    right: int
    bottom: int
    image: np.ndarray = field(repr=False, compare=False)  # float32 ink (high) on black


@dataclass(frozen=True)
class NumberReading:
    """What the model read in a drawn number, digit by digit."""

    text: str  # e.g. "2024"; "" when nothing is drawn
    digits: list  # Prediction per digit, left to right
    boxes: list  # DigitBox per digit, left to right

    @property
    def unsure(self) -> bool:
        """Whether the model is unsure about any of the digits."""
        return any(prediction.status == "unsure" for prediction in self.digits)


def segment_digits(image) -> list[DigitBox]:
    """Cut a drawn number (array or PIL image) into single digits, ordered left to right."""
    ink = ink_map(image)
    mask = ink >= INK_THRESHOLD
    if not mask.any():
        return []
    pieces = _drop_specks(mask, _column_runs(mask))
    if not pieces:
        return []
    pieces = _join_close(mask, pieces)
    typical_height = float(np.median([_height(mask, piece) for piece in pieces]))
    pieces = [part for piece in pieces for part in _split_wide(mask, piece, typical_height)]
    factor = _shrink_factor(image, ink.shape)
    return [_digit_box(ink, mask, piece, factor) for piece in pieces]


def read_number(recognizer, image) -> NumberReading:
    """Read every digit of a drawn number with one batched model call."""
    boxes = segment_digits(image)
    predictions = recognizer.predict_many([box.image for box in boxes])
    # A piece preprocess finds empty (a faint smudge) is no digit: leave it out of the number.
    kept = [(box, prediction) for box, prediction in zip(boxes, predictions)
            if prediction.digit is not None]
    return NumberReading(
        text="".join(str(prediction.digit) for _, prediction in kept),
        digits=[prediction for _, prediction in kept],
        boxes=[box for box, _ in kept],
    )


# --- pieces are column spans (left, right), right exclusive --------------------------------


def _column_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    inked = np.concatenate([[False], mask.any(axis=0), [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(inked))
    return [(int(start), int(stop)) for start, stop in zip(edges[::2], edges[1::2])]


def _rows(mask: np.ndarray, piece: tuple[int, int]) -> tuple[int, int]:
    rows = np.flatnonzero(mask[:, piece[0] : piece[1]].any(axis=1))
    return int(rows[0]), int(rows[-1]) + 1


def _height(mask: np.ndarray, piece: tuple[int, int]) -> int:
    top, bottom = _rows(mask, piece)
    return bottom - top


def _crop(mask: np.ndarray, piece: tuple[int, int]) -> np.ndarray:
    top, bottom = _rows(mask, piece)
    return mask[top:bottom, piece[0] : piece[1]]


def _drop_specks(mask: np.ndarray, pieces: list) -> list:
    areas = [int(mask[:, left:right].sum()) for left, right in pieces]
    largest = max(areas)
    return [piece for piece, area in zip(pieces, areas)
            if area >= SPECK_AREA * largest and not _is_dot(_crop(mask, piece))]


def _is_dot(crop: np.ndarray) -> bool:
    return max(crop.shape) <= DOT_LENGTH * stroke_width(crop)


def _join_close(mask: np.ndarray, pieces: list) -> list:
    joined = [pieces[0]]
    for piece in pieces[1:]:
        previous = joined[-1]
        gap = piece[0] - previous[1]
        if gap < JOIN_GAP * max(_height(mask, previous), _height(mask, piece)):
            joined[-1] = (previous[0], piece[1])
        else:
            joined.append(piece)
    return joined


def _split_wide(mask: np.ndarray, piece: tuple[int, int], typical_height: float) -> list:
    left, right = _trim(mask, piece)
    crop = _crop(mask, (left, right))
    height, width = crop.shape
    if width <= SPLIT_ASPECT * height or width <= MIN_SPLIT_WIDTH * typical_height:
        return [(left, right)]
    cut = _best_cut(crop)
    if cut is None:
        return [(left, right)]
    return (_split_wide(mask, (left, left + cut), typical_height)
            + _split_wide(mask, (left + cut, right), typical_height))


def _trim(mask: np.ndarray, piece: tuple[int, int]) -> tuple[int, int]:
    columns = np.flatnonzero(mask[:, piece[0] : piece[1]].any(axis=0))
    return piece[0] + int(columns[0]), piece[0] + int(columns[-1]) + 1


def _best_cut(crop: np.ndarray) -> int | None:
    """The column to cut a too-wide piece at, or None when no cut is clean enough."""
    height, width = crop.shape
    ink_per_column = crop.sum(axis=0).astype(np.float64)
    # The share of the ink left of each column: the cut column itself goes to the right part.
    share_left = (np.cumsum(ink_per_column) - ink_per_column) / ink_per_column.sum()
    left_height, right_height = _side_heights(crop)
    possible = ((share_left >= MIN_SIDE_SHARE) & (share_left <= 1 - MIN_SIDE_SHARE)
                & (np.minimum(left_height, right_height) >= MIN_SIDE_HEIGHT * height))
    candidates = np.flatnonzero(possible)
    if candidates.size == 0:
        return None
    # Among equally thin columns, cut nearest the middle: touching digits meet there.
    distance = np.abs(candidates - width / 2) / width
    best = int(candidates[np.argmin(ink_per_column[candidates] + distance)])
    if width <= SURE_SPLIT_ASPECT * height:
        if ink_per_column[best] > MAX_CUT_STROKES * stroke_width(crop):
            return None  # a wide single digit (a broad 0 or 2): every cut crosses two strokes
    return best


def _side_heights(crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a cut before each column: the ink height of the part left of it and of the rest."""
    height, width = crop.shape
    inked = crop.any(axis=0)
    first = np.where(inked, crop.argmax(axis=0), height)
    last = np.where(inked, height - 1 - crop[::-1].argmax(axis=0), -1)
    # Left of column c are columns 0..c-1; column 0 has nothing left of it.
    left_top = np.concatenate([[height], np.minimum.accumulate(first)[:-1]])
    left_bottom = np.concatenate([[-1], np.maximum.accumulate(last)[:-1]])
    right_top = np.minimum.accumulate(first[::-1])[::-1]
    right_bottom = np.maximum.accumulate(last[::-1])[::-1]
    return left_bottom - left_top + 1, right_bottom - right_top + 1


def _shrink_factor(image, ink_shape: tuple[int, int]) -> int:
    """How many image pixels one ink-map pixel spans: ink_map shrinks huge images."""
    if isinstance(image, Image.Image):
        original = max(image.size)
    else:
        original = max(np.shape(image)[:2])
    return max(1, round(original / max(ink_shape)))


def _digit_box(ink: np.ndarray, mask: np.ndarray, piece: tuple[int, int], factor: int) -> DigitBox:
    left, right = piece
    top, bottom = _rows(mask, piece)
    crop = ink[top:bottom, left:right]
    pad = round(PAD * max(crop.shape)) + 2
    padded = np.pad(crop, pad).astype(np.float32)
    return DigitBox(left * factor, top * factor, right * factor, bottom * factor, padded)
