"""A written number -> its single digits, left to right, and the number they read as.

Digits that people write quickly touch and overlap, so no rule on the ink alone says where
one digit ends. Both paths here propose more digit candidates than there are digits, read
every candidate with ONE batched recogniser call (each through the same `preprocess` as a
single digit), and pick the split whose readings are jointly most probable (a dynamic
programme over the candidates, summing log-probabilities plus small geometric terms):

- **Strokes** (the canvas): a digit is one or a few pen strokes, written one after another
  and overlapping horizontally. Candidates are runs of up to MAX_GROUP strokes, consecutive
  in drawing order or in left-to-right order, no wider than a digit or two. Whether a short
  stroke is the bar of a 4, a 1 of its own or the cap of a 5 is what the readings decide.
  Where two groups read as two sure digits could also be one (a 4 whose hook ends short of its
  stem reads "11"), the line model below reads the number's ink and decides (JOIN_ASK).
- **Pixels** (a photo, or a canvas without strokes): the ink falls into connected pieces;
  a piece wide enough to hold two digits gets candidate cuts at the columns crossing the
  least ink, each cut following the path that crosses the least ink from top to bottom
  (so a slanted or overlapping neighbour is cut around, not through); a piece no wider than
  a digit is cut only where it narrows to a neck. Candidates are runs of consecutive pieces
  no wider than a digit and a half and with no clear paper inside, so touching digits are
  cut and a long-tailed 2 is not. Cut-off fragments read confidently as some digit, so each
  candidate's score weighs its log-probability, how much shorter than the digits it is, and
  the gate's probability that it is no digit at all. The number's ink map
  (`preprocess.ink_map`) is made once; each candidate's cut-out of it goes straight to the
  second stage, `preprocess.normalise_ink`.

Where digits overlap, no cut separates their ink and the cut-out pieces read confidently as other
digits. So from pixels, a model folder with a line model (`digitrec.lines`: a number read as a
whole, as handwriting recognisers read words) checks the reading: when its own reading explains
the ink better by LINE_MARGIN, its digits win (flagged READ_WHOLE on the page). A digit whose
ink stands free of its neighbours' is read as a single digit is: from pixels, where the image
model is unsure of it, the line model's reading of its ink alone is weighed in.

Each digit of the reading carries flags (`DigitFlag`): read with low confidence, may be two
digits (the best split of it scores close), may be one digit with its right neighbour, read
from the whole number.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import threading
import weakref
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from digitrec import lines
from digitrec.data import render_strokes
from digitrec.errors import SplitError
from digitrec.inference import Status, prediction_from
from digitrec.preprocess import (
    DOT_LENGTH,
    INK_THRESHOLD,
    MAX_INPUT_SIDE,
    MODEL_SIZE,
    Preprocessed,
    dilate,
    ink_map,
    normalise_ink,
    stroke_width,
)
from digitrec.strokes import checked, render_for_model

# --- scoring (log-probability units; tuned on pen writers 1-20, never on 21-30) ------------
# Added per digit: calibrated probabilities below 1 otherwise favour fewer digits. Ink cut
# from pixels yields fragments that read confidently, so cutting earns less.
LOG_WEIGHT = 1.0  # weight of each candidate's log-probability against the terms below
STROKES_DIGIT_BONUS = 0.6
PIXELS_DIGIT_BONUS = 0.25
WIDE_FROM = 1.2  # a candidate wider than this times the digit height pays WIDE_COST per height
WIDE_COST = 2.0
SHORT_FROM = 0.7  # a candidate shorter than this times the digit height pays SHORT_COST per height
SHORT_COST = 4.0
OVERLAP_COST = 4.0  # strokes of two neighbouring digits overlapping horizontally (share of the narrower)
NOT_DIGIT_COST = 4.0  # a candidate the gate calls "not a digit" (left out of the number)
EMPTY_COST = 3.0  # a candidate preprocess finds empty (a dot, a tap): left out of the number
# A digit is flagged when another split of the same ink scores within this many nats (with the
# committed model on writers 1-20, seed 1, these flag half the misread numbers from strokes and
# 3% of the numbers read right; from pixels 50% and 9%: cuts from pixels are often close calls.
# The pixel margin is 0.1 in the log-probability's units, times PIXELS_LOG_WEIGHT).
STROKES_FLAG_MARGIN = 0.5
PIXELS_FLAG_MARGIN = 0.15

# --- strokes ---------------------------------------------------------------------------------
MAX_GROUP = 3  # strokes per digit candidate (pendigits digits have 1-3)
MAX_WIDTH = 2.0  # a candidate is at most this many digit heights wide
JOIN_GAP = 0.35  # a stroke this far (digit heights) right or left of the rest is another digit

# --- pixels ----------------------------------------------------------------------------------
SPECK_AREA = 0.04  # pieces with less ink than this share of the largest are specks
WORK_HEIGHT = 70  # the ink is searched for cuts at about this many pixels per digit height
# ... but never on more pixels than a line two digits tall across the largest ink map: what a
# visitor's picture can make the search cost stays what it was when only the ink's height counted.
MAX_WORK_PIXELS = 2 * WORK_HEIGHT * MAX_INPUT_SIDE
SPLIT_FROM = 0.5  # a piece wider than this many digit heights may hold two digits
CUT_SPACING = 0.18  # candidate cuts at least this many digit heights apart
CUT_BAND = 0.25  # a cut path strays at most this far (digit heights) from its column
MAX_PIECES = 6  # pieces per digit candidate
MIN_SIDE_HEIGHT = 0.5  # a cut leaves ink this many digit heights tall on either side
CUT_COST = 0.3  # per stroke a cut path crosses
MAX_CUTS = 400  # candidate cuts in one picture (the numbers benchmark's most: 24); beyond, no cutting
# Scoring candidates cut from pixels (tuned on pen writers 1-20, seed 1; never on 21-30). Fragments
# of digits read confidently as some digit, so the terms that tell a whole digit from a fragment
# weigh more than from strokes: the log-probability, a candidate much shorter than the digits
# (the top of a 7, half of a 0), and the gate's probability that the crop is not a digit at all.
PIXELS_LOG_WEIGHT = 1.5
PIXELS_SHORT_FROM = 0.8  # in digit heights
PIXELS_SHORT_COST = 16.0  # per digit height below PIXELS_SHORT_FROM
GATE_COST = 1.0  # per unit of the gate's not-a-digit probability (0 for a model without a gate)
# A candidate the gate calls no digit is still read as its likeliest digit (with GATE_COST), or left
# out at this cost, whichever scores better: the gate alone never drops ink a number needs.
PIXELS_NOT_DIGIT_COST = 2.0
# A shape prior: per digit the median width-to-height ratio of its ink (pen included) and the spread
# of its logarithm, measured on pendigits writers 1-20 laid out by benchmarks/numbers.py. A slice of
# a 0 read as a 1 of the right height, or two touching digits read as one wide 7, pay ASPECT_COST
# per squared spread beyond the first. A candidate no cut path bounds (whole pieces of ink) cannot be
# a slice, so only its being too wide counts: people write narrow 0s, and one read "1001" as "11".
DIGIT_ASPECTS = {0: (0.87, 0.19), 1: (0.50, 0.43), 2: (0.84, 0.19), 3: (0.66, 0.16), 4: (0.61, 0.25),
                 5: (0.80, 0.18), 6: (0.60, 0.18), 7: (0.69, 0.20), 8: (0.59, 0.17), 9: (0.66, 0.18)}
ASPECT_COST = 0.1
READ_FROM_HEIGHT = 0.5  # candidates shorter than this many digit heights are not read (left out)
PIXELS_MAX_WIDTH = 1.4  # a candidate of several pieces is at most this many digit heights wide
NECKS_ONLY_WIDTH = 0.6  # a piece no wider than this (digit heights) is only cut at necks:
NECK_CROSSING = 0.8  # paths crossing at most this many strokes
# The pieces of one digit overlap or nearly meet from left to right (a 5's cap, a 4's two strokes):
# a candidate whose pieces leave empty columns wider than this many digit heights is no digit.
MAX_GAP = 0.1
# From pixels, the line model's reading (a number read as a whole: `digitrec.lines`) replaces the
# cut-out digits' when it explains the ink better by this much (CTC log-likelihood of its digits
# minus that of the cut-out digits). Tuned on pen writers 18-20, which the line model never saw
# (500 numbers; margin 0-3 95.2%, 6 96.2%, 8 96.8%, 10 97.0%, 12 95.8%, 20 93.6%; the cut-out
# reading alone 89.0%, the line model's alone 95.2%): a cut-out reading is kept unless clearly worse.
LINE_MARGIN = 8.0
# From strokes: two neighbouring groups read as two digits whose join reads as one digit scoring
# within JOIN_ASK of them (a 4's hook and its stem, read "11") are put to the line model, and
# joined when its reading of the number's ink explains the join better by LINE_MARGIN (on
# writers 18-20, which it never saw, margins of 2 to 8 and JOIN_ASK 0.7 to 1.5 read the same).
JOIN_ASK = 1.0
PAD = 0.25  # border around each digit crop, as a share of its longer side (+2 px)
MAX_CANDIDATES = 400  # bound on the recogniser batch for one number
MAX_TYPED = 24  # digits a person may type as the right reading of a drawing (read_number_as)
TYPED_SPECK_HEIGHT = 0.5  # digit heights: a part shorter than this may be left out of a typed reading
# Readings of stroke groups kept for the next rerun: a new stroke on the canvas changes only the
# candidates that hold it, so the rest are not read again. Per server, all recognisers together
# (a reading holds its 28x28 input: about 4 KB each).
GROUP_CACHE_SIZE = 2048


class DigitFlag(StrEnum):
    """Why a digit of a reading deserves a second look."""

    UNSURE = "unsure"  # the recogniser is not sure which digit it is
    MAYBE_TWO = "maybe_two"  # splitting it into two digits scores close
    MAYBE_JOINED = "maybe_joined"  # it and the digit to its right may be one digit
    READ_WHOLE = "read_whole"  # from pixels: the line model's reading of the whole number, not the cut-out's


@dataclass(frozen=True)
class DigitBox:
    """One digit of a drawn number: where it lies in the image and its ink."""

    left: int  # image pixels; right and bottom are exclusive, as in slicing
    top: int
    right: int
    bottom: int
    # float32 ink (high) on black, this digit only
    image: np.ndarray | None = field(repr=False, compare=False)
    # its pen strokes, if read from strokes
    strokes: tuple | None = field(default=None, repr=False, compare=False)
    # bool (bottom - top, right - left): where this digit's ink lies in its box, with a margin
    # (None: all of it, or from `strokes` drawn `pen` wide). A neighbour that touches or
    # overlaps reaches into the box: `digit_only`.
    mask: np.ndarray | None = field(default=None, repr=False, compare=False)
    pen: float = 0.0  # the pen's width in image pixels, as estimated from the picture


@dataclass(frozen=True)
class NumberReading:
    """What the model read in a drawn number, digit by digit."""

    text: str  # e.g. "2024"; "" when nothing is drawn
    digits: list  # Prediction per digit, left to right
    boxes: list  # DigitBox per digit, left to right
    flags: list = field(default_factory=list)  # frozenset of DigitFlag per digit
    from_strokes: bool = False  # grouped from pen strokes (else cut from pixels)
    # Ink left out as no digit (pen strokes other than dots; from pixels, parts at least
    # TYPED_SPECK_HEIGHT digit heights tall, not specks): per such part, how many of the digits
    # lie left of it.
    left_out: tuple = ()
    stroke_count: int = 0  # pen strokes the reading grouped (0 from pixels)

    @property
    def unsure(self) -> bool:
        """Whether any digit is flagged (low confidence, or maybe two digits or half of one)."""
        return (any(self.flags) or bool(self.left_out)
                or any(prediction.status == "unsure" for prediction in self.digits))

    def without_crops(self) -> NumberReading:
        """The same reading with the boxes' ink crops dropped (image None), e.g. to keep in a session."""
        boxes = [dataclasses.replace(box, image=None, strokes=None, mask=None) for box in self.boxes]
        return dataclasses.replace(self, boxes=boxes)

    def notes(self) -> list[str]:
        """One sentence per doubt, for the page: 'The 2nd digit may be two digits.'"""
        notes = []
        # Digits read from the whole number: one sentence for them all (a photo read that way had
        # the same sentence four times over).
        whole = [index for index, flags in enumerate(self.flags) if DigitFlag.READ_WHOLE in flags]
        for index, (prediction, flags) in enumerate(zip(self.digits, self.flags)):
            name = f"The {ordinal(index + 1)} digit ({prediction.digit})"
            if DigitFlag.MAYBE_TWO in flags:
                notes.append(f"{name} may be two digits.")
            if DigitFlag.MAYBE_JOINED in flags and index + 1 < len(self.digits):
                notes.append(f"The {ordinal(index + 1)} and {ordinal(index + 2)} digits may be one digit.")
            if whole and index == whole[0]:
                notes.append(f"{self._named(whole)} read from the whole number: cutting the ink into "
                             "digits explained it less well.")
            if DigitFlag.UNSURE in flags:
                (first, _), (second, _) = prediction.top(2)
                notes.append(f"{name} is uncertain: {first} or {second}?")
        for position, count in sorted(Counter(self.left_out).items()):
            pieces = "ink" if count == 1 else f"{count} pieces of ink"
            if not self.digits:
                where = f"This {pieces}" if count > 1 else "This ink"
            elif position == 0:
                where = f"The {pieces} before the 1st digit"
            elif position >= len(self.digits):
                where = f"The {pieces} after the {'last' if len(self.digits) > 1 else '1st'} digit"
            else:
                where = f"The {pieces} between the {ordinal(position)} and {ordinal(position + 1)} digits"
            verb = "does not look like a digit and was" if count == 1 else "do not look like digits and were"
            notes.append(f"{where} {verb} left out.")
        return notes

    def _named(self, indices: list) -> str:
        """The subject of a sentence about these digits: 'The 2nd digit (4) was', 'All 3 digits
        were', 'The 1st and 3rd digits (2, 7) were'."""
        if len(indices) == 1:
            return f"The {ordinal(indices[0] + 1)} digit ({self.digits[indices[0]].digit}) was"
        if len(indices) == len(self.digits):
            return f"All {len(indices)} digits were"
        digits = ", ".join(str(self.digits[index].digit) for index in indices)
        return f"The {_listed([ordinal(index + 1) for index in indices])} digits ({digits}) were"


def _listed(items: list) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def counted(number: int, noun: str) -> str:
    """3, "digit" -> "3 digits"; 1 -> "1 digit"."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def ordinal(number: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th'."""
    suffix = "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    return f"{number}{suffix}"


MASK_MARGIN = 2  # image pixels a digit's mask reaches past its ink (anti-aliased edges)
PAPER_SAMPLE = 256  # pixels along a picture's longer side sampled for its paper's colour


def digit_only(picture, box: DigitBox, others=()) -> np.ndarray:
    """The box's part of `picture` (the image the number was read from, as an array) with only
    this digit's ink: what the other digits' ink (`others`: their DigitBoxes) reaches into the
    box is blanked with the picture's median colour (transparent on a canvas, the paper's colour
    in a photo, opaque or not; the box's own median is ink where a neighbour fills a narrow
    box). What a digit saved as a sample keeps: a rectangle cut from touching digits held part
    of the next."""
    picture = np.asarray(picture)
    crop = picture[box.top:box.bottom, box.left:box.right].copy()
    mask = box.mask
    if mask is None and box.strokes and box.pen > 0:
        mask = _stroke_mask(box, others)
    if mask is None or mask.shape[0] < crop.shape[0] or mask.shape[1] < crop.shape[1]:
        return crop
    outside = ~mask[: crop.shape[0], : crop.shape[1]]
    if outside.any():  # a picture is mostly paper
        step = max(1, max(picture.shape[:2]) // PAPER_SAMPLE)
        sample = picture[::step, ::step]
        crop[outside] = np.median(sample.reshape(-1, *picture.shape[2:]), axis=0).astype(crop.dtype)
    return crop


def _stroke_mask(box: DigitBox, others) -> np.ndarray:
    """Where a digit read from strokes has its ink in its box: its strokes drawn again a little
    wider than the pen (the soft edges), less where only another digit's strokes lie."""
    side = max(box.right - box.left, box.bottom - box.top)

    def drawn(strokes, pen):
        moved = [[(x - box.left, y - box.top) for x, y in stroke] for stroke in strokes]
        return render_strokes(moved, side, pen)[..., 3] > 0

    mask = drawn(box.strokes, box.pen + 2 * MASK_MARGIN)
    theirs = [stroke for other in others if other is not box for stroke in (other.strokes or ())]
    if theirs:
        mask &= ~(drawn(theirs, box.pen) & ~drawn(box.strokes, box.pen))
    return mask


def strokes_in_image(strokes, canvas_width: float, image_width: float) -> list:
    """Canvas strokes (CSS pixels) in the pixels of the canvas's image, which a high-density
    screen sends at 2-3 times the canvas's size: boxes are then in the image's pixels."""
    factor = image_width / canvas_width if canvas_width > 0 else 1.0
    if factor == 1.0:
        return [list(stroke) for stroke in strokes]
    return [[(x * factor, y * factor) for x, y in stroke] for stroke in strokes]


def read_number(recognizer, image, strokes=None) -> NumberReading:
    """Read every digit of a written number with one batched recogniser call.

    `strokes`: the pen strokes of the drawing (canvas pixels, drawing order, as
    `digitrec.strokes.strokes_from_canvas` returns them); without them the pixels are cut.
    """
    strokes = checked(strokes)
    if strokes:
        return _read_strokes(recognizer, image, strokes)
    return _read_pixels(recognizer, image)


def read_number_as(recognizer, image, text: str, strokes=None) -> NumberReading:
    """The drawing read as exactly the digits of `text`: a person's correction of a reading that
    cut the number wrongly ("11" for a 4, "880" for 4080). Of the ways to split its strokes (or
    its ink) into len(text) digits, left to right, the one whose parts read most probably as
    those digits (forced alignment; a part under TYPED_SPECK_HEIGHT digit heights may be left out
    as a speck). Each digit keeps what the model read in its part (its Prediction); the
    reading's text is `text`, unflagged.

    With strokes, one digit more typed than there are strokes is cut from the pixels instead (a pen
    not lifted between two digits). ValueError when `text` is not 1 to MAX_TYPED digits; SplitError
    when the drawing cannot be split into that many digits (fewer strokes and pieces of ink than
    digits).
    """
    if not isinstance(text, str) or not text.isdigit() or not text.isascii() or len(text) > MAX_TYPED:
        raise ValueError(f"type the number's digits, 0-9, at most {MAX_TYPED} of them")
    typed = [int(character) for character in text]
    strokes = checked(strokes)
    if not strokes:
        return _read_pixels(recognizer, image, typed)
    try:
        return _read_strokes(recognizer, image, strokes, typed)
    except SplitError as refused:
        # One stroke may hold two digits ("00" written without lifting the pen): then the ink is
        # cut instead. Not more: the pixels can be cut into any number of parts ("1234567890"
        # typed for 4080 was cut so), and only the strokes say how many digits are there.
        if image is None or len(typed) != len(strokes) + 1:
            raise
        try:
            return _read_pixels(recognizer, image, typed)
        except SplitError:
            raise refused from None


# --- choosing the best split -----------------------------------------------------------------


@dataclass
class _Candidate:
    """A digit candidate: which units (strokes or ink pieces) it holds and how it reads."""

    units: tuple
    width: float  # in digit heights
    height: float  # in digit heights
    x_range: tuple  # (left, right) in image pixels
    # What the recogniser reads: from strokes their rendering (ink in alpha); from pixels its ink
    # cut out of the number's ink map, already normalised (preprocess.normalise_ink).
    image: np.ndarray | Preprocessed | None = None
    strokes: list | None = None
    prediction: object = None
    score: float = 0.0
    not_digit: float = 0.0  # from pixels: the gate's probability that it is no digit
    whole: bool = True  # from pixels: no cut path separates it from other ink (it cannot be a slice)


def _wide_cost(candidate: _Candidate) -> float:
    return WIDE_COST * max(0.0, candidate.width - WIDE_FROM)


def _stroke_shape_cost(candidate: _Candidate) -> float:
    return _wide_cost(candidate) + SHORT_COST * max(0.0, SHORT_FROM - candidate.height)


def _forced_score(candidate: _Candidate, digit: int | None, from_strokes: bool) -> float:
    """A candidate's score read as `digit` (read_number_as), or left out (None) as a speck."""
    probabilities = candidate.prediction.probabilities
    if from_strokes:
        shape, bonus, log_weight, left_out = _stroke_shape_cost(candidate), STROKES_DIGIT_BONUS, \
            LOG_WEIGHT, NOT_DIGIT_COST
    else:
        shape, bonus, log_weight, left_out = _pixel_shape_cost(candidate), PIXELS_DIGIT_BONUS, \
            PIXELS_LOG_WEIGHT, PIXELS_NOT_DIGIT_COST
    if digit is None:  # only a speck: a digit-sized part left out would not be the number typed
        return -left_out - shape if candidate.height < TYPED_SPECK_HEIGHT else -math.inf
    if probabilities is None:  # empty (a dot): no digit
        return -math.inf
    read = log_weight * math.log(max(probabilities[digit], 1e-9)) + bonus - shape
    if not from_strokes:
        read -= GATE_COST * candidate.not_digit + _aspect_cost(digit, candidate)
    return read


def _score(candidate: _Candidate, bonus: float) -> float:
    """A stroke group's score: read as its digit, or left out (a dot, no digit) at a fixed cost.

    Left out, neither what it would read as nor being short says anything (short ink is a
    fragment of a digit only if read as one): with both counted, a scribble beside a 2 was
    cheaper to leave out together with the 2, and "2, scribble, 7" read "7"."""
    prediction = candidate.prediction
    if prediction.probabilities is None:
        return -EMPTY_COST - _wide_cost(candidate)
    if prediction.digit is None:
        return -NOT_DIGIT_COST - _wide_cost(candidate)
    return (LOG_WEIGHT * math.log(max(max(prediction.probabilities), 1e-9)) + bonus
            - _stroke_shape_cost(candidate))


def _overlap(first: _Candidate, second: _Candidate) -> float:
    """Horizontal overlap of two neighbouring digits, as a share of the narrower (a pixel added
    to both: a perfectly upright stroke standing in another digit's span has no width, and its
    overlap had counted as none, so a 4's stem and the rest of it read as two 1s)."""
    left = max(first.x_range[0], second.x_range[0])
    right = min(first.x_range[1], second.x_range[1])
    if right < left:
        return 0.0
    narrower = min(first.x_range[1] - first.x_range[0], second.x_range[1] - second.x_range[0])
    return min(1.0, (right - left + 1.0) / (narrower + 1.0))


def _best_split(order: list, candidates: dict, overlap_cost: float, cut_costs=None) -> tuple[float, list]:
    """The best split of the units in `order` into consecutive runs that are candidates.

    `overlap_cost` per share of horizontal overlap between neighbouring digits; `cut_costs`
    {frozenset of two neighbouring units: cost} for separating them (ink cut through).

    Returns (score, runs as (start, stop) positions); score -inf when no split covers them.
    """
    count = len(order)
    best = [-math.inf] * (count + 1)
    back: list = [None] * (count + 1)
    best[0] = 0.0
    for stop in range(1, count + 1):
        for start in range(max(0, stop - MAX_PIECES_OR_GROUP), stop):
            if best[start] == -math.inf:
                continue
            candidate = candidates.get(frozenset(order[start:stop]))
            if candidate is None:
                continue
            total = best[start] + candidate.score
            if cut_costs and start:
                total -= cut_costs.get(frozenset(order[start - 1:start + 1]), 0.0)
            if overlap_cost and back[start] is not None:
                previous = candidates[frozenset(order[back[start][0]:start])]
                total -= overlap_cost * _overlap(previous, candidate)
            if total > best[stop]:
                best[stop], back[stop] = total, (start, stop)
    runs, stop = [], count
    if best[count] == -math.inf:
        return -math.inf, []
    while stop > 0:
        runs.append(back[stop])
        stop = back[stop][0]
    return best[count], runs[::-1]


MAX_PIECES_OR_GROUP = max(MAX_GROUP, MAX_PIECES)


def _forced_split(order: list, candidates: dict, labels: list, from_strokes: bool, overlap_cost: float,
                  cut_costs=None) -> tuple[float, list]:
    """The best split of the units in `order` into runs read, left to right, as `labels` (runs
    in between may be left out as specks): (score, [(start, stop, label or None)]); score -inf
    when no such split covers them. `_best_split` with each run's digit given."""
    count, wanted = len(order), len(labels)
    best = [[-math.inf] * (count + 1) for _ in range(wanted + 1)]
    back: list = [[None] * (count + 1) for _ in range(wanted + 1)]
    best[0][0] = 0.0
    for stop in range(1, count + 1):
        for start in range(max(0, stop - MAX_PIECES_OR_GROUP), stop):
            candidate = candidates.get(frozenset(order[start:stop]))
            if candidate is None:
                continue
            for placed in range(wanted + 1):
                # this run read as the next digit (placed - 1 -> placed) or left out (placed -> placed)
                for before, label in ((placed - 1, labels[placed - 1] if placed else None), (placed, None)):
                    if before < 0 or best[before][start] == -math.inf:
                        continue
                    if label is None and before != placed:
                        continue
                    total = best[before][start] + _forced_score(candidate, label, from_strokes)
                    if cut_costs and start:
                        total -= cut_costs.get(frozenset(order[start - 1:start + 1]), 0.0)
                    if overlap_cost and back[before][start] is not None:
                        previous = candidates[frozenset(order[back[before][start][0]:start])]
                        total -= overlap_cost * _overlap(previous, candidate)
                    if total > best[placed][stop]:
                        best[placed][stop], back[placed][stop] = total, (start, stop, label, before)
    if best[wanted][count] == -math.inf:
        return -math.inf, []
    runs, placed, stop = [], wanted, count
    while stop > 0:
        start, _, label, before = back[placed][stop]
        runs.append((start, stop, label))
        placed, stop = before, start
    return best[wanted][count], runs[::-1]


def _forced_reading(order: list, runs: list, candidates: dict, boxes: dict, text: str,
                    from_strokes: bool) -> NumberReading:
    chosen = [(candidates[frozenset(order[start:stop])], boxes[frozenset(order[start:stop])])
              for start, stop, label in runs if label is not None]
    return NumberReading(text=text, digits=[candidate.prediction for candidate, _ in chosen],
                         boxes=[box for _, box in chosen], flags=[frozenset() for _ in chosen],
                         from_strokes=from_strokes)


def _left_to_right(order: list, runs: list, candidates: dict) -> bool:
    """Whether the digits of these runs stand left to right (their centres)."""
    centres = [sum(candidates[frozenset(order[start:stop])].x_range) / 2
               for start, stop, label in runs if label is not None]
    return all(a <= b for a, b in zip(centres, centres[1:]))


def _flags(order: list, runs: list, candidates: dict, margin: float, overlap_cost: float = 0.0,
           cut_costs=None) -> list[frozenset]:
    """Per chosen run: unsure, may be two (a split of it scores close), may join the next.

    The alternatives are scored as the split itself scores them (`overlap_cost`, `cut_costs`): a
    4's crossbar and stem read as two 1s scored free of their overlap, and flagged nine 4s in ten.
    """
    flags = []
    cut_costs = cut_costs or {}
    for index, (start, stop) in enumerate(runs):
        chosen = candidates[frozenset(order[start:stop])]
        found = set()
        if chosen.prediction.status == "unsure":
            found.add(DigitFlag.UNSURE)
        if stop - start > 1:
            split, parts = _split_apart(order[start:stop], candidates, overlap_cost, cut_costs)
            if split > chosen.score - margin and sum(part.prediction.digit is not None for part in parts) > 1:
                found.add(DigitFlag.MAYBE_TWO)
        if index + 1 < len(runs):
            after = runs[index + 1]
            joined = candidates.get(frozenset(order[start:after[1]]))
            following = candidates[frozenset(order[after[0]:after[1]])]
            apart = (chosen.score + following.score - overlap_cost * _overlap(chosen, following)
                     - cut_costs.get(frozenset(order[stop - 1:stop + 1]), 0.0))
            if joined is not None and joined.prediction.digit is not None and joined.score > apart - margin:
                found.add(DigitFlag.MAYBE_JOINED)
        flags.append(frozenset(found))
    return flags


def _split_apart(units: list, candidates: dict, overlap_cost: float, cut_costs: dict) -> tuple[float, list]:
    """The best split of `units` into two or more runs: (score, the candidates it reads)."""
    whole = frozenset(units)
    others = {key: candidate for key, candidate in candidates.items() if key != whole}
    score, runs = _best_split(units, others, overlap_cost, cut_costs)
    return score, [others[frozenset(units[a:b])] for a, b in runs]


def _reading(order: list, runs: list, candidates: dict, boxes: dict, from_strokes: bool,
             settled: int | None = None) -> NumberReading:
    """The runs' digits, boxes and flags; `settled`: a run a second reader (the line model) read
    as one digit, so the doubt that it may be two is gone."""
    chosen = [candidates[frozenset(order[start:stop])] for start, stop in runs]
    # From pixels the cuts' costs are left out of the comparison: counted, they flagged fewer of
    # the misread numbers of writers 1-20 (2 of 6, not 3) and no fewer of those read right.
    flags = (_flags(order, runs, candidates, STROKES_FLAG_MARGIN, OVERLAP_COST) if from_strokes
             else _flags(order, runs, candidates, PIXELS_FLAG_MARGIN))
    if settled is not None:
        flags[settled] -= {DigitFlag.MAYBE_TWO}
    kept = [(chosen[index], flags[index]) for index in _digit_order(chosen)]
    middles = [(candidate.x_range[0] + candidate.x_range[1]) / 2 for candidate, _ in kept]
    left_out = tuple(sorted(
        int(sum(middle < (candidate.x_range[0] + candidate.x_range[1]) / 2 for middle in middles))
        for candidate in chosen
        if candidate.prediction.digit is None and candidate.prediction.probabilities is not None
        and (from_strokes or candidate.height >= TYPED_SPECK_HEIGHT)))
    return NumberReading(
        text="".join(str(candidate.prediction.digit) for candidate, _ in kept),
        digits=[candidate.prediction for candidate, _ in kept],
        boxes=[boxes[frozenset(candidate.units)] for candidate, _ in kept],
        flags=[flag for _, flag in kept],
        from_strokes=from_strokes,
        left_out=left_out,
    )


class _GroupCache:
    """The last GROUP_CACHE_SIZE stroke-group readings (thread-safe, LRU), of every recogniser at
    once: a session adapted to its writer reads with a recogniser of its own, and sessions take
    turns (one recogniser's cache, emptied whenever another read, re-read every group)."""

    def __init__(self):
        self._lock = threading.Lock()
        # A token per recogniser, never reused (an id() may be, once its recogniser is gone).
        self._tokens: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._next_token = itertools.count()
        self._items: OrderedDict = OrderedDict()

    @staticmethod
    def key(strokes) -> bytes:
        """A digest of the strokes (a visitor's 20,000-point stroke made a 320 KB key)."""
        lengths = np.array([len(stroke) for stroke in strokes], np.int64)
        points = np.concatenate([np.asarray(s, np.float64) for s in strokes])
        return hashlib.blake2b(lengths.tobytes() + points.tobytes(), digest_size=16).digest()

    def _token(self, recognizer) -> int:
        token = self._tokens.get(recognizer)
        if token is None:
            token = self._tokens[recognizer] = next(self._next_token)
        return token

    def get(self, recognizer, keys: list) -> list:
        with self._lock:
            token = self._token(recognizer)
            found = []
            for key in keys:
                value = self._items.get((token, key))
                if value is not None:
                    self._items.move_to_end((token, key))
                found.append(value)
            return found

    def put(self, recognizer, keys: list, predictions: list) -> None:
        with self._lock:
            token = self._token(recognizer)
            for key, prediction in zip(keys, predictions):
                self._items[(token, key)] = prediction
            while len(self._items) > GROUP_CACHE_SIZE:
                self._items.popitem(last=False)


_GROUPS = _GroupCache()


def _predict(recognizer, candidates: list, with_strokes: bool) -> None:
    if with_strokes:
        keys = [_GroupCache.key(candidate.strokes) for candidate in candidates]
        predictions = _GROUPS.get(recognizer, keys)
        missing = [index for index, prediction in enumerate(predictions) if prediction is None]
        if missing:
            # With a trajectory model the recogniser re-renders the strokes itself.
            reads_strokes = getattr(recognizer, "reads_strokes", False)
            for index in missing:
                candidates[index].image = (None if reads_strokes
                                           else render_for_model(candidates[index].strokes))
            read = recognizer.predict_many([candidates[i].image for i in missing],
                                           [candidates[i].strokes for i in missing])
            for index, prediction in zip(missing, read):
                predictions[index] = prediction
            _GROUPS.put(recognizer, [keys[i] for i in missing], read)
    else:
        predictions = recognizer.predict_many([candidate.image for candidate in candidates])
    bonus = STROKES_DIGIT_BONUS if with_strokes else PIXELS_DIGIT_BONUS
    for candidate, prediction in zip(candidates, predictions):
        candidate.prediction = prediction
        candidate.score = _score(candidate, bonus)


# --- strokes ---------------------------------------------------------------------------------


def _read_strokes(recognizer, image, strokes: list, typed: list | None = None) -> NumberReading:
    boxes_xy = np.array([[min(x for x, _ in s), max(x for x, _ in s),
                          min(y for _, y in s), max(y for _, y in s)] for s in strokes], np.float64)
    heights = boxes_xy[:, 3] - boxes_xy[:, 2]
    widths = boxes_xy[:, 1] - boxes_xy[:, 0]
    digit_height = max(float(heights.max()), 0.5 * float(widths.max()), 1.0)
    drawing_order = list(range(len(strokes)))
    left_to_right = sorted(drawing_order, key=lambda i: (boxes_xy[i, 0] + boxes_xy[i, 1]) / 2)
    candidates: dict = {}
    for order in (drawing_order, left_to_right):
        for start in range(len(order)):
            low, high = boxes_xy[order[start], 0], boxes_xy[order[start], 1]
            top, bottom = boxes_xy[order[start], 2], boxes_xy[order[start], 3]
            for stop in range(start + 1, min(len(order), start + MAX_GROUP) + 1):
                unit = order[stop - 1]
                gap = max(boxes_xy[unit, 0] - high, low - boxes_xy[unit, 1])
                low, high = min(low, boxes_xy[unit, 0]), max(high, boxes_xy[unit, 1])
                top, bottom = min(top, boxes_xy[unit, 2]), max(bottom, boxes_xy[unit, 3])
                if gap > JOIN_GAP * digit_height or high - low > MAX_WIDTH * digit_height:
                    break
                key = frozenset(order[start:stop])
                if key not in candidates and len(candidates) < MAX_CANDIDATES:
                    units = tuple(sorted(key))
                    candidates[key] = _Candidate(units, (high - low) / digit_height,
                                                 (bottom - top) / digit_height, (low, high),
                                                 strokes=[strokes[i] for i in units])
    reads_strokes = getattr(recognizer, "reads_strokes", False)
    _predict(recognizer, list(candidates.values()), with_strokes=True)
    best, best_order, best_runs = -math.inf, drawing_order, []
    for order in (drawing_order, left_to_right):
        if typed is None:
            score, runs = _best_split(order, candidates, OVERLAP_COST)
        else:
            score, runs = _forced_split(order, candidates, typed, True, OVERLAP_COST)
            if runs and not _left_to_right(order, runs, candidates):
                continue  # the digits typed are read left to right
        if score > best:
            best, best_order, best_runs = score, order, runs
    settled = None  # the run the line model joined: its doubt about being two digits is settled
    if typed is None and best_runs and getattr(recognizer, "reads_lines", False):
        best_runs, settled = _joined_by_line(recognizer, image, best_order, best_runs, candidates)
    if typed is not None and not best_runs:
        strokes_are = counted(len(strokes), 'pen stroke')
        if len(typed) > len(strokes):
            raise SplitError(f"{strokes_are} cannot hold {counted(len(typed), 'digit')} "
                             "(each stroke belongs to one digit)")
        if len(strokes) > MAX_GROUP * len(typed):
            raise SplitError(f"its {strokes_are} cannot be grouped into {counted(len(typed), 'digit')} "
                             f"(at most {MAX_GROUP} strokes make one digit)")
        raise SplitError(f"its {strokes_are} cannot be grouped into {counted(len(typed), 'digit')} "
                         "(strokes far apart are never one digit)")
    pen = _pen_width(image)
    shape = np.shape(image)[:2] if image is not None else None
    boxes = {}
    for start, stop, *_ in best_runs:
        key = frozenset(best_order[start:stop])
        candidate = candidates[key]
        boxes[key] = _stroke_box(candidate, pen, shape, reads_strokes)
    if typed is not None:
        return _forced_reading(best_order, best_runs, candidates, boxes,
                               "".join(map(str, typed)), from_strokes=True)
    return dataclasses.replace(_reading(best_order, best_runs, candidates, boxes, from_strokes=True,
                                        settled=settled),
                               stroke_count=len(strokes))


def _joined_by_line(recognizer, image, order: list, runs: list, candidates: dict) -> tuple[list, int | None]:
    """The stroke split's runs, with neighbours that may be one digit joined where the line model
    says so: a join reading as a digit within JOIN_ASK of the two digits apart, taken when the line
    model's reading of the whole number's ink explains the joined digits better by LINE_MARGIN
    (a 4 whose hook ends short of its stem read "11" from strokes, each stroke a sure 1).
    Returns (runs, the joined run's position or None)."""
    def apart_by(index):
        (start, stop), (_, after) = runs[index], runs[index + 1]
        first, second = candidates[frozenset(order[start:stop])], candidates[frozenset(order[stop:after])]
        joined = candidates.get(frozenset(order[start:after]))
        # Nor is a digit a person's examples changed (personal adaptation) overruled: the line
        # model knows none of them.
        read = (joined, first, second)
        if joined is None or any(candidate.prediction.digit is None or _adapted(candidate.prediction)
                                 for candidate in read):
            return math.inf
        return first.score + second.score - OVERLAP_COST * _overlap(first, second) - joined.score

    doubtful = [index for index in range(len(runs) - 1) if apart_by(index) < JOIN_ASK]
    if not doubtful or image is None:
        return runs, None
    # Ink left out as "not a digit" may stay: the line model only weighs these readings against
    # each other, it cannot read that ink as digits (from pixels it may: a star alone read "88").
    digits = _digits(order, runs, candidates)
    line = lines.line_input(ink_map(image)) if len(digits) <= lines.MAX_DIGITS else None
    if line is None:
        return runs, None
    probabilities = recognizer.line_probabilities(line.pixels[None])[0]
    best, chosen, settled = lines.log_likelihood(probabilities, digits) + LINE_MARGIN, runs, None
    for index in doubtful:
        joined = runs[:index] + [(runs[index][0], runs[index + 1][1])] + runs[index + 2:]
        likelihood = lines.log_likelihood(probabilities, _digits(order, joined, candidates))
        if likelihood > best:
            best, chosen, settled = likelihood, joined, index
    return chosen, settled


def _digits(order: list, runs: list, candidates: dict) -> list[int]:
    """The digits a split reads, as `_reading` puts them."""
    chosen = [candidates[frozenset(order[start:stop])] for start, stop in runs]
    return [chosen[index].prediction.digit for index in _digit_order(chosen)]


def _digit_order(chosen: list) -> list[int]:
    """The positions of the chosen candidates that read a digit (ink read as none is left out),
    left to right by their centres: the number's digits."""
    read = [index for index, candidate in enumerate(chosen) if candidate.prediction.digit is not None]
    return sorted(read, key=lambda index: (chosen[index].x_range[0] + chosen[index].x_range[1]) / 2)


def _pen_width(image) -> float:
    if image is None:
        return 0.0
    try:
        ink = ink_map(image)
    except ValueError:
        return 0.0
    # ink_map shrinks huge images
    return stroke_width(ink >= INK_THRESHOLD) * _shrink_factor(image, ink.shape)


def _stroke_box(candidate: _Candidate, pen: float, shape, rendered: bool) -> DigitBox:
    points = np.concatenate([np.asarray(s, np.float64) for s in candidate.strokes])
    margin = pen / 2 + 1
    left, top = np.floor(points.min(axis=0) - margin).astype(int)
    right, bottom = np.ceil(points.max(axis=0) + margin).astype(int) + 1
    if shape is not None:
        left, top = max(0, left), max(0, top)
        right, bottom = min(shape[1], right), min(shape[0], bottom)
    image = candidate.image if candidate.image is not None else render_for_model(candidate.strokes)
    return DigitBox(int(left), int(top), int(max(right, left + 1)), int(max(bottom, top + 1)),
                    image[..., 3].astype(np.float32) / 255.0, tuple(tuple(s) for s in candidate.strokes),
                    pen=float(pen) if shape is not None else 0.0)


# --- pixels ----------------------------------------------------------------------------------


def _read_pixels(recognizer, image, typed: list | None = None) -> NumberReading:
    ink = ink_map(image)
    factor = _shrink_factor(image, ink.shape)
    mask = ink >= INK_THRESHOLD
    if not mask.any():
        if typed is not None:
            raise SplitError("nothing is drawn here")
        return NumberReading("", [], [], [], False)
    scale = _work_scale(mask)
    pooled = _pooled(mask, scale)
    labels, digit_height, spans = _pieces(pooled)
    if labels is None:
        if typed is not None:
            raise SplitError("no digit-sized ink is here")
        return NumberReading("", [], [], [], False)

    def candidate(members: tuple, boxes: dict) -> _Candidate:
        top, bottom = min(boxes[m][0] for m in members), max(boxes[m][1] for m in members)
        left, right = min(boxes[m][2] for m in members), max(boxes[m][3] for m in members)
        found = _Candidate(tuple(members), (right - left) / digit_height, (bottom - top) / digit_height,
                           (left * scale * factor, right * scale * factor),
                           whole=not any(len(pair & set(members)) == 1 for pair in crossings))
        if found.height >= READ_FROM_HEIGHT:  # shorter ones could not win: not read
            ink, _ = inks.cut(boxes, found.units)
            found.image = normalise_ink(ink.astype(np.float32) / 255.0)
        return found

    # A piece wide enough to hold two digits is cut along candidate paths; one no wider than a
    # digit only where it narrows to a neck (two 1s or a 1 and a 7 touching): slicing a written 0
    # into pieces that all have to be read in every combination is where most of the time went.
    pen = stroke_width(pooled)
    wide = [label for label, span in spans.items() if span[3] - span[2] > SPLIT_FROM * digit_height]
    pieces = [labels[top:bottom, left:right] == label
              for label, (top, bottom, left, right, _) in ((label, spans[label]) for label in wide)]
    crossings = {}
    next_label = int(labels.max()) + 1
    for label, seams in zip(wide, _cut_paths(pieces, digit_height, pen)):
        _, _, left, right, _ = spans[label]
        necks = NECK_CROSSING if right - left <= NECKS_ONLY_WIDTH * digit_height else None
        added, cut = _cut(labels, label, spans[label], seams, pen, next_label, necks)
        crossings.update(cut)
        next_label += len(added)
    boxes = _piece_boxes(labels)
    inks = _Inks(ink, labels, scale)

    # Every run of consecutive pieces that could be a digit, read in one batched call.
    order = sorted(boxes, key=lambda label: boxes[label][4])
    candidates: dict = {}
    for start in range(len(order)):
        for stop in range(start + 1, min(len(order), start + MAX_PIECES) + 1):
            members = order[start:stop]
            left = min(boxes[m][2] for m in members)
            right = max(boxes[m][3] for m in members)
            if (right - left) > PIXELS_MAX_WIDTH * digit_height and stop - start > 1:
                break
            if len(candidates) >= MAX_CANDIDATES:
                break
            if stop - start > 1 and _gap(boxes, members) > MAX_GAP * digit_height:
                continue  # a later, wider piece may still fill the gap
            key = frozenset(members)
            candidates[key] = candidate(tuple(members), boxes)
    _predict_pixels(recognizer, list(candidates.values()))
    cut_costs = {pair: CUT_COST * strokes for pair, strokes in crossings.items()}
    if typed is None:
        score, runs = _best_split(order, candidates, 0.0, cut_costs)
    else:
        score, runs = _forced_split(order, candidates, typed, False, 0.0, cut_costs)
        if not runs:
            raise SplitError(f"the ink cannot be cut into {counted(len(typed), 'digit')}")
    digit_boxes = {}
    for start, stop, *_ in runs:
        key = frozenset(order[start:stop])
        canvas, (left, top, right, bottom) = inks.canvas(boxes, candidates[key].units)
        mask = inks.mask(boxes, candidates[key].units, factor)
        digit_boxes[key] = DigitBox(left * factor, top * factor, right * factor, bottom * factor,
                                    canvas[..., 3].astype(np.float32) / 255.0, mask=mask)
    if typed is not None:  # a person's reading: the line model is not asked
        return _forced_reading(order, runs, candidates, digit_boxes, "".join(map(str, typed)),
                               from_strokes=False)
    reading = _reading(order, runs, candidates, digit_boxes, from_strokes=False)
    if getattr(recognizer, "reads_lines", False):
        reading = _free_standing_read_alone(recognizer, reading)
    # The line model reads all the ink: only when every chosen piece of it is a digit.
    all_digits = all(candidates[frozenset(order[start:stop])].prediction.digit is not None
                     for start, stop in runs)
    # Nor past the longest number it learned (its 48 frames: a long number's ink it explained
    # better with a short reading of its own, and replaced 24 right digits with "468").
    if (reading.digits and len(reading.digits) <= lines.MAX_DIGITS and all_digits
            and getattr(recognizer, "reads_lines", False)):
        reading = _checked_by_line(recognizer, reading, ink, factor)
    return reading


def _checked_by_line(recognizer, reading: NumberReading, ink: np.ndarray, factor: int) -> NumberReading:
    """The cut-out digits checked against the line model's reading of the whole number: where it
    explains the ink better by LINE_MARGIN its digits win. With as many digits, the cut-out boxes
    stay and the digits that differ take the line model's probabilities, except digits standing
    free of their neighbours (read on their own) and digits a person's examples changed, which
    keep theirs (with such a digit, another count of digits is not taken either); otherwise each digit's
    box is the ink of the frames between the blank gaps that separate it from its neighbours'
    frames, and if any of those boxes holds no ink the cut-out reading stays. The line model's
    digit probabilities are its frames' (not calibrated). Only asked when the cut-out reading
    found digits and left no ink out as "not a digit" (the line model reads every bit of ink)."""
    line = lines.line_input(ink)
    if line is None:
        return reading
    probabilities = recognizer.line_probabilities(line.pixels[None])[0]
    digits, spans = lines.best_path(probabilities)
    cut = [prediction.digit for prediction in reading.digits]
    if digits == cut:  # a second reader finds the same digits: the doubts about where to cut go
        split_doubts = {DigitFlag.MAYBE_TWO, DigitFlag.MAYBE_JOINED}
        return dataclasses.replace(reading, flags=[flags - split_doubts for flags in reading.flags])
    adapted = [_adapted(prediction) for prediction in reading.digits]
    if len(digits) == len(cut):
        # A digit whose ink stands free of its neighbours' was read on its own, as every single
        # digit is: the line model only gets the digits cut out of ink that touches. Nor does it
        # overrule a digit this person's examples changed (personal adaptation): it knows none.
        keep = [alone or changed for alone, changed in zip(_free_standing(reading.boxes), adapted)]
        digits = [mine if kept else theirs for theirs, mine, kept in zip(digits, cut, keep)]
    elif any(adapted):  # another count of digits would re-read those too
        return reading
    if not digits or digits == cut or (lines.log_likelihood(probabilities, digits)
                                       - lines.log_likelihood(probabilities, cut) <= LINE_MARGIN):
        return reading
    if len(digits) == len(cut):
        predictions, flags = list(reading.digits), list(reading.flags)
        for index, (digit, span) in enumerate(zip(digits, spans)):
            if digit != cut[index]:
                predictions[index] = _line_prediction(predictions[index].model_input, probabilities, span)
                flags[index] = _line_flags(predictions[index])
        return dataclasses.replace(reading, text="".join(map(str, digits)), digits=predictions, flags=flags)
    # Each boundary lies in the blank frames between two digits' spans (last < bound <= first).
    bounds = [0] + [last + 1 + (first - last - 1) // 2
                    for (_, last), (first, _) in zip(spans, spans[1:])] + [lines.FRAMES]
    inked = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=0))
    crops, places = [], []
    for index in range(len(spans)):
        left, right = line.columns(bounds[index], bounds[index + 1] - 1)
        left = int(inked[0]) if index == 0 else left
        right = int(inked[-1]) + 1 if index == len(spans) - 1 else min(right, int(inked[-1]) + 1)
        piece = np.where(ink[:, left:right] >= INK_THRESHOLD, ink[:, left:right], 0.0)
        rows, columns = np.flatnonzero(piece.any(axis=1)), np.flatnonzero(piece.any(axis=0))
        if not len(rows):  # a digit read over blank paper: the line model is not to be trusted
            return reading
        top, bottom = int(rows[0]), int(rows[-1]) + 1
        left, right = left + int(columns[0]), left + int(columns[-1]) + 1  # trimmed to the ink
        region = ink[top:bottom, left:right]
        crops.append(np.round(np.clip(np.where(region >= INK_THRESHOLD, region, 0.0), 0.0, 1.0) * 255))
        places.append((left, top, right, bottom))
    inputs = [normalise_ink(crop.astype(np.float32) / 255.0) for crop in crops]
    predictions = [_line_prediction(found.model_input, probabilities, span)
                   for found, span in zip(inputs, spans)]
    boxes = [DigitBox(left * factor, top * factor, right * factor, bottom * factor,
                      _on_canvas(crop.astype(np.uint8))[..., 3].astype(np.float32) / 255.0)
             for crop, (left, top, right, bottom) in zip(crops, places)]
    return NumberReading("".join(map(str, digits)), predictions, boxes,
                         [_line_flags(prediction) for prediction in predictions], from_strokes=False)


def _free_standing_read_alone(recognizer, reading: NumberReading) -> NumberReading:
    """From pixels, a digit whose ink stands free of its neighbours' is read as a single digit is
    (`Recognizer.read` from pixels): where the image model is unsure, the line model's reading of
    its ink alone weighed in. Not a digit a person's examples changed: the line model knows none
    of them."""
    free = _free_standing(reading.boxes)
    asked = [(index, lines.line_input(reading.boxes[index].image))
             for index, (alone, prediction) in enumerate(zip(free, reading.digits))
             if alone and prediction.probabilities is not None and not _adapted(prediction)
             and reading.boxes[index].image is not None
             and recognizer.asks_line(np.array([prediction.probabilities]))[0]]
    asked = [(index, line.pixels) for index, line in asked if line is not None]
    if not asked:
        return reading
    rows = [index for index, _ in asked]
    fused = recognizer.with_line_opinion(
        np.array([reading.digits[index].probabilities for index in rows]), [pixels for _, pixels in asked])
    # With a person's examples, what the shared model alone says gets the same opinion: left
    # without it, a digit the opinion changed looked changed by the examples (`_adapted`).
    bases = [index for index in rows if reading.digits[index].base_probabilities is not None]
    fused_bases = dict(zip(bases, recognizer.with_line_opinion(
        np.array([reading.digits[index].base_probabilities for index in bases]),
        [pixels for index, pixels in asked if index in bases]))) if bases else {}
    digits, flags = list(reading.digits), list(reading.flags)
    for index, probabilities in zip(rows, fused):
        old = digits[index]
        base = fused_bases.get(index)
        digits[index] = dataclasses.replace(
            prediction_from(old.model_input, probabilities, gate_score=old.gate_score),
            base_probabilities=None if base is None else tuple(float(value) for value in base))
        if digits[index].status != old.status:  # the UNSURE flag follows the digit's status
            unsure = {DigitFlag.UNSURE} if digits[index].status == Status.UNSURE else set()
            flags[index] = (flags[index] - {DigitFlag.UNSURE}) | unsure
    return dataclasses.replace(reading, text="".join(str(prediction.digit) for prediction in digits),
                               digits=digits, flags=flags)


def _free_standing(boxes: list) -> list[bool]:
    """Per digit (left to right): at least one empty column between its box and each neighbour's."""
    return [(index == 0 or boxes[index - 1].right < box.left)
            and (index == len(boxes) - 1 or box.right < boxes[index + 1].left)
            for index, box in enumerate(boxes)]


def _adapted(prediction) -> bool:
    """Whether a person's examples changed this digit (the shared model alone read another)."""
    base = prediction.base_probabilities
    return base is not None and prediction.digit is not None and int(np.argmax(base)) != prediction.digit


def _line_prediction(model_input: np.ndarray, probabilities: np.ndarray, span: tuple):
    return prediction_from(model_input, lines.digit_probabilities(probabilities, span))


def _line_flags(prediction) -> frozenset:
    unsure = {DigitFlag.UNSURE} if prediction.status == Status.UNSURE else set()
    return frozenset({DigitFlag.READ_WHOLE} | unsure)


def _gap(boxes: dict, members: list) -> int:
    """The widest run of empty columns between these pieces (mask pixels)."""
    spans = sorted((boxes[m][2], boxes[m][3]) for m in members)
    widest, reach = 0, spans[0][1]
    for left, right in spans[1:]:
        widest, reach = max(widest, left - reach), max(reach, right)
    return widest


def _predict_pixels(recognizer, candidates: list) -> None:
    """Read the candidates that have a crop (one batched call), then score every candidate."""
    read = [candidate for candidate in candidates if candidate.image is not None]
    predictions = recognizer.predict_many([candidate.image for candidate in read]) if read else []
    for candidate, prediction in zip(read, predictions):
        candidate.prediction = prediction
        candidate.not_digit = getattr(prediction, "gate_score", None) or 0.0
        candidate.score = _pixel_score(candidate)
    for candidate in candidates:
        if candidate.image is None:
            candidate.prediction = prediction_from(np.zeros((MODEL_SIZE, MODEL_SIZE), np.float32), None)
            candidate.score = _pixel_score(candidate)


def _pixel_score(candidate: _Candidate) -> float:
    """A pixel candidate's score; one the gate calls no digit is read as its likeliest digit when
    that scores better than leaving it out (its prediction is then replaced accordingly)."""
    prediction = candidate.prediction
    shape = _pixel_shape_cost(candidate)
    if prediction.probabilities is None:
        return -EMPTY_COST - shape
    digit = int(np.argmax(prediction.probabilities))
    read = PIXELS_LOG_WEIGHT * math.log(max(max(prediction.probabilities), 1e-9)) + PIXELS_DIGIT_BONUS \
        - GATE_COST * candidate.not_digit - shape - _aspect_cost(digit, candidate)
    left_out = -PIXELS_NOT_DIGIT_COST - shape
    if read >= left_out:
        if prediction.digit is None:
            read_as = prediction_from(prediction.model_input, prediction.probabilities)
            candidate.prediction = dataclasses.replace(prediction, digit=read_as.digit, status=read_as.status)
        return read
    if prediction.digit is not None:
        candidate.prediction = dataclasses.replace(prediction, digit=None, status=Status.NOT_DIGIT)
    return left_out


def _pixel_shape_cost(candidate: _Candidate) -> float:
    return PIXELS_SHORT_COST * max(0.0, PIXELS_SHORT_FROM - candidate.height)


def _aspect_cost(digit: int, candidate: _Candidate) -> float:
    """How implausible the candidate's width-to-height ratio is for `digit` (0 within one spread of
    its median; a whole piece of ink only pays for being too wide)."""
    median, spread = DIGIT_ASPECTS[digit]
    deviation = math.log(max(candidate.width, 1e-3) / max(candidate.height, 1e-3) / median) / spread
    if candidate.whole:
        deviation = max(deviation, 0.0)
    return ASPECT_COST * max(0.0, abs(deviation) - 1.0) ** 2


def _work_scale(mask: np.ndarray) -> int:
    """How many ink-map pixels are pooled into one while the ink is cut: about WORK_HEIGHT per
    height of the number's band (the run of inked rows holding the most ink: a mark far above or
    below it does not make the number taller; from the height of all the ink, a mark at the top
    of a page pooled the number at its bottom into dots), leaving at most MAX_WORK_PIXELS of the
    ink's bounding box."""
    inked = mask.sum(axis=1)
    rows = np.flatnonzero(inked)
    breaks = np.flatnonzero(np.diff(rows) > 1)
    starts, stops = np.r_[0, breaks + 1], np.r_[breaks, len(rows) - 1]
    ink_per_band = np.add.reduceat(inked[rows], starts)
    band = int(np.argmax(ink_per_band))
    height = int(rows[stops[band]] - rows[starts[band]] + 1)
    columns = np.flatnonzero(mask.any(axis=0))
    box = (rows[-1] - rows[0] + 1) * (columns[-1] - columns[0] + 1)  # the ink's bounding box
    return max(1, height // WORK_HEIGHT, math.ceil(math.sqrt(box / MAX_WORK_PIXELS)))


def _pooled(mask: np.ndarray, scale: int) -> np.ndarray:
    """The ink mask shrunk by `scale` (a block is ink if any pixel in it is)."""
    if scale == 1:
        return mask
    height, width = -(-mask.shape[0] // scale) * scale, -(-mask.shape[1] // scale) * scale
    padded = np.zeros((height, width), bool)
    padded[: mask.shape[0], : mask.shape[1]] = mask
    return padded.reshape(height // scale, scale, width // scale, scale).any(axis=(1, 3))


def _components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components of a boolean mask: (labels 1..count, 0 background), by runs."""
    height, width = mask.shape
    padded = np.zeros((height, width + 2), np.int8)
    padded[:, 1:-1] = mask
    edges = np.diff(padded, axis=1)
    run_rows, run_starts = np.nonzero(edges == 1)
    _, run_stops = np.nonzero(edges == -1)  # row-major order matches the starts
    count = len(run_rows)
    parent = list(range(count))

    def find(item):
        while parent[item] != item:
            parent[item] = parent[parent[item]]
            item = parent[item]
        return item

    row_first = np.searchsorted(run_rows, np.arange(height + 1))
    for row in range(1, height):
        above = range(row_first[row - 1], row_first[row])
        here = range(row_first[row], row_first[row + 1])
        if not len(above) or not len(here):
            continue
        # Runs [start, stop) touch (8-connected) when start_a <= stop_b and start_b <= stop_a.
        first = np.searchsorted(run_stops[above.start:above.stop], run_starts[here.start:here.stop],
                                side="left")
        for offset, index in enumerate(here):
            other = above.start + int(first[offset])
            while other < above.stop and run_starts[other] <= run_stops[index]:
                a, b = find(index), find(other)
                if a != b:
                    parent[a] = b
                other += 1
    roots = np.array([find(i) for i in range(count)])
    _, compact = np.unique(roots, return_inverse=True)
    labels = np.zeros((height, width), np.int32)
    for index in range(count):
        labels[run_rows[index], run_starts[index]:run_stops[index]] = compact[index] + 1
    return labels, int(compact.max()) + 1 if count else 0


def _pieces(mask: np.ndarray) -> tuple[np.ndarray | None, float, dict]:
    """Label the ink's connected components, specks left out.

    Returns (labels, typical digit height in mask pixels, {label: (top, bottom, left, right,
    area)}); labels None when no ink is left.
    """
    labels, count = _components(mask)
    if count == 0:
        return None, 0.0, {}
    areas = np.bincount(labels.ravel(), minlength=count + 1)
    largest = areas[1:].max()
    pen = stroke_width(mask)
    spans, specks = {}, []
    for label, (top, bottom, left, right, _) in _piece_boxes(labels).items():
        if areas[label] < SPECK_AREA * largest or max(bottom - top, right - left) <= DOT_LENGTH * pen:
            specks.append(label)
        else:
            spans[label] = (top, bottom, left, right, areas[label])
    if specks:
        labels[np.isin(labels, specks)] = 0
    if not spans:
        return None, 0.0, {}
    big = [s[1] - s[0] for s in spans.values() if s[4] >= 0.1 * largest]
    return labels, float(np.percentile(big, 75)), spans


def _cut(labels: np.ndarray, label: int, span: tuple, seams: np.ndarray | None, pen: float,
         next_label: int, max_crossing: float | None = None) -> tuple[list, dict]:
    """Cut one wide piece along its cut paths (`_cut_paths`), in place: the part left of the first
    path keeps `label`, the others get next_label, next_label + 1, ... With `max_crossing`
    only the paths crossing at most that many strokes are cut.

    Returns (the new labels, {frozenset of the two parts a cut path separates: how many
    strokes it crosses}).
    """
    top, bottom, left, right, _ = span
    piece = labels[top:bottom, left:right] == label
    if seams is None:
        return [], {}
    crossed = piece[np.arange(piece.shape[0])[None, :], seams].sum(axis=1) / max(pen, 1.0)
    if max_crossing is not None:
        seams, crossed = seams[crossed <= max_crossing], crossed[crossed <= max_crossing]
        if not len(seams):
            return [], {}
    # A pixel goes to the part right of every cut path at or left of it.
    part = (seams[:, :, None] <= np.arange(right - left)[None, None, :]).sum(axis=0)
    region = labels[top:bottom, left:right]
    added, crossings, previous = [], {}, label
    for index in range(1, seams.shape[0] + 1):
        region[piece & (part == index)] = next_label
        crossings[frozenset((previous, next_label))] = float(crossed[index - 1])
        added.append(next_label)
        previous = next_label
        next_label += 1
    return added, crossings


def _cut_paths(pieces: list, digit_height: float, pen: float) -> list:
    """Candidate cut paths through each wide piece: per piece (cuts, rows) column per row, sorted
    per row, or None. All pieces' paths are found together, one row at a time."""
    spacing = CUT_SPACING * digit_height
    band = max(2, int(CUT_BAND * digit_height))
    offsets = np.arange(-band, band + 1)
    starts = []
    for piece in pieces:
        height, width = piece.shape
        profile = piece.sum(axis=0).astype(np.float64)
        window = max(1, int(round(pen)))
        smooth = np.convolve(profile, np.ones(window) / window, mode="same")
        left_height, right_height = _side_heights(piece)
        # A cut leaves ink of digit height on both sides: the tail of a 2 or the bar of a 7 is no
        # digit of its own, a touching neighbour stands as tall.
        possible = np.minimum(left_height, right_height) >= MIN_SIDE_HEIGHT * digit_height
        picks = np.flatnonzero(possible)
        # The columns crossing the least ink first, CUT_SPACING apart (not only the minima: where
        # digits overlap, the column profile has no minimum between them).
        chosen = []
        for column in picks[np.argsort(smooth[picks], kind="stable")]:
            if all(abs(column - other) >= spacing for other in chosen):
                chosen.append(int(column))
        starts.append(sorted(chosen))
    owners = [index for index, chosen in enumerate(starts) for _ in chosen]
    if not owners or len(owners) > MAX_CUTS:  # no number people write: its pieces stay whole
        return [None] * len(pieces)
    owner = np.array(owners)
    heights = np.array([piece.shape[0] for piece in pieces])
    rows = int(heights.max())
    # The ink under each cut's band of columns, row by row (none below its piece's bottom), taken
    # piece by piece: one array of every piece padded to the largest took a visitor's 800-byte
    # PNG of dashes to 200 MB more.
    along = np.zeros((rows, len(owner), len(offsets)))  # (rows, cuts, band)
    columns = np.zeros((len(owner), len(offsets)), np.int64)  # (cuts, band)
    first = 0
    for piece, chosen in zip(pieces, starts):
        if chosen:
            mine = np.clip(np.array(chosen)[:, None] + offsets[None, :], 0, piece.shape[1] - 1)
            columns[first: first + len(chosen)] = mine
            along[: piece.shape[0], first: first + len(chosen)] = piece[:, mine]
            first += len(chosen)
    active = np.arange(rows)[:, None] < heights[owner][None, :]  # (rows, cuts): within the cut's piece
    count = len(owner)
    drift = 0.02 * np.abs(offsets)[None, :]  # straighter paths win ties
    total = along[0] + drift
    moves = np.zeros((rows, count, len(offsets)), np.int8)
    step = 0.1  # each column moved sideways
    beside = np.full((count, len(offsets) + 2), np.inf)  # the totals with a column of inf either side
    for row in range(1, rows):
        beside[:, 1:-1] = total
        from_left, from_right = beside[:, :-2] + step, beside[:, 2:] + step
        # As argmin over (from the left, straight down, from the right): ties go to the first.
        move = (from_right < total).astype(np.int8)
        best = np.minimum(total, from_right)
        left = from_left <= best
        move[left] = -1
        best = np.where(left, from_left, best) + along[row] + drift
        if active[row].all():
            moves[row], total = move, best
        else:  # rows below a shorter piece's bottom leave its paths as they are
            here = active[row][:, None]
            moves[row] = np.where(here, move, 0)
            total = np.where(here, best, total)
    position = total.argmin(axis=1)
    path = np.zeros((count, rows), np.int64)
    everyone = np.arange(count)
    for row in range(rows - 1, -1, -1):
        path[:, row] = columns[everyone, position]
        position = position + moves[row][everyone, position]
    found = []
    for index, piece in enumerate(pieces):
        mine = path[owner == index, : piece.shape[0]]
        found.append(np.sort(mine, axis=0) if len(mine) else None)
    return found


def _side_heights(piece: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a cut before each column: the ink height of the part left of it and of the rest."""
    height, width = piece.shape
    inked = piece.any(axis=0)
    first = np.where(inked, piece.argmax(axis=0), height)
    last = np.where(inked, height - 1 - piece[::-1].argmax(axis=0), -1)
    left_top = np.concatenate([[height], np.minimum.accumulate(first)[:-1]])
    left_bottom = np.concatenate([[-1], np.maximum.accumulate(last)[:-1]])
    right_top = np.minimum.accumulate(first[::-1])[::-1]
    right_bottom = np.maximum.accumulate(last[::-1])[::-1]
    return left_bottom - left_top + 1, right_bottom - right_top + 1


def _piece_boxes(labels: np.ndarray) -> dict:
    """label -> (top, bottom, left, right, x centre of its ink) in mask pixels."""
    boxes = {}
    rows, columns = np.nonzero(labels)
    values = labels[rows, columns]
    order = np.argsort(values, kind="stable")
    rows, columns, values = rows[order], columns[order], values[order]
    starts = np.flatnonzero(np.diff(np.concatenate([[-1], values])))
    for begin, end in zip(starts, list(starts[1:]) + [len(values)]):
        r, c = rows[begin:end], columns[begin:end]
        boxes[int(values[begin])] = (int(r.min()), int(r.max()) + 1, int(c.min()), int(c.max()) + 1,
                                     float(c.mean()))
    return boxes


class _Inks:
    """The ink of one number, cut out piece by piece as a canvas would give it."""

    def __init__(self, ink: np.ndarray, labels: np.ndarray, scale: int):
        self.alpha = np.round(np.clip(ink, 0.0, 1.0) * 255).astype(np.uint8)
        if scale > 1:  # the pieces were found on the ink shrunk by `scale`
            labels = np.repeat(np.repeat(labels, scale, axis=0), scale, axis=1)
        self.labels = labels[: ink.shape[0], : ink.shape[1]]
        self.scale = scale
        self.member = np.zeros(int(labels.max()) + 1, bool)

    def cut(self, pieces: dict, members: tuple) -> tuple[np.ndarray, tuple]:
        """These pieces' ink only (uint8, the ink map's box around them), and that box (left, top,
        right, bottom) in ink-map pixels."""
        top = min(pieces[m][0] for m in members) * self.scale
        bottom = min(max(pieces[m][1] for m in members) * self.scale, self.alpha.shape[0])
        left = min(pieces[m][2] for m in members) * self.scale
        right = min(max(pieces[m][3] for m in members) * self.scale, self.alpha.shape[1])
        self.member[:] = False
        self.member[list(members)] = True
        keep = self.member[self.labels[top:bottom, left:right]]
        return self.alpha[top:bottom, left:right] * keep, (left, top, right, bottom)

    def mask(self, pieces: dict, members: tuple, factor: int) -> np.ndarray:
        """Where these pieces' ink lies in their box (`cut`), in image pixels (`factor` per
        ink-map pixel): their pixels, and the soft edges around them (MASK_MARGIN, and the blocks
        the pieces were found in, `scale`) that belong to no other piece."""
        _, (left, top, right, bottom) = self.cut(pieces, members)
        region = self.labels[top:bottom, left:right]
        mine = self.member[region]  # `cut` marked the members
        grown = mine | (dilate(mine, self.scale + max(1, math.ceil(MASK_MARGIN / factor))) & (region == 0))
        if factor > 1:
            grown = np.repeat(np.repeat(grown, factor, axis=0), factor, axis=1)
        return grown

    def canvas(self, pieces: dict, members: tuple) -> tuple[np.ndarray, tuple]:
        """These pieces' ink in the alpha of a padded RGBA canvas, as a drawn digit would come (a
        DigitBox's picture, saved with a correction), and its box (see `cut`)."""
        ink, box = self.cut(pieces, members)
        return _on_canvas(ink), box


def _on_canvas(ink: np.ndarray) -> np.ndarray:
    """A digit's uint8 ink in the alpha of a padded RGBA canvas, as a drawn digit would come."""
    height, width = ink.shape
    pad = round(PAD * max(height, width)) + 2
    canvas = np.zeros((height + 2 * pad, width + 2 * pad, 4), np.uint8)
    canvas[pad: pad + height, pad: pad + width, 3] = ink
    return canvas


def _shrink_factor(image, ink_shape: tuple[int, int]) -> int:
    """How many image pixels one ink-map pixel spans: ink_map shrinks huge images."""
    size = getattr(image, "size", None)
    original = max(size) if isinstance(size, tuple) else max(np.shape(image)[:2])
    return max(1, round(original / max(ink_shape)))
