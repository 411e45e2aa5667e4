"""Reading a written number as one line of ink: the line model's input, its output decoded.

The segmenter (`digitrec.segment`) cuts a number into digits and reads each through the image
model; where digits overlap, no cut separates their ink. The line model reads the whole number
at once (a small CNN over the ink scaled to LINE_HEIGHT rows, one frame per FRAME_STRIDE
columns, each frame a probability over the ten digits and a blank, trained with CTC), as
handwriting recognisers read words. This module holds what training and serving share: the
input normalisation (`line_input`, the one function both use) and the decoding.

    probabilities = recognizer.line_probabilities([line_input(ink_map(image)).pixels])[0]
    digits, spans = best_path(probabilities)            # greedy CTC decoding
    log_likelihood(probabilities, [2, 0, 2, 4])          # how well "2024" explains the frames
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from digitrec.preprocess import INK_THRESHOLD, dilate, stroke_width

LINE_HEIGHT = 24  # rows of the line model's input
LINE_WIDTH = 192  # columns of the line model's input
FRAME_STRIDE = 4  # input columns per output frame
FRAMES = LINE_WIDTH // FRAME_STRIDE
PAD = 2  # empty pixels kept around the ink (rows and columns)
BLANK = 10  # CTC's "no digit here" class, after the digits 0-9
CLASSES = 11
MAX_DIGITS = 8  # the longest number the line model is trained on (the Number canvas holds fewer)
# The pen's width as a share of the ink's height: the line model trained on 0.047 and up (pens of
# 5-30% of a digit's height, MNIST's about 15%). Thinner ink (a ballpoint in a photo: about 1%)
# scaled to LINE_HEIGHT rows fades to a trace the model never saw, and it read "00768" as "258":
# such ink is thickened to THICKENED_PEN_SHARE first. Every training input is left as it was.
THIN_PEN_SHARE = 0.045
THICKENED_PEN_SHARE = 0.06
LINE_FILE = "line.tflite"


@dataclass(frozen=True)
class LineInput:
    """The line model's input, and where it came from in the ink map."""

    pixels: np.ndarray  # (LINE_HEIGHT, LINE_WIDTH) float32, ink high
    left: int  # the ink's bounding box in the ink map: left column and top row
    top: int
    scale: float  # input pixels per ink-map pixel

    def columns(self, first_frame: int, last_frame: int) -> tuple[int, int]:
        """The ink-map columns [left, right) that frames first..last (inclusive) look at."""
        left = self.left + (first_frame * FRAME_STRIDE - PAD) / self.scale
        right = self.left + ((last_frame + 1) * FRAME_STRIDE - PAD) / self.scale
        return max(0, math.floor(left)), max(0, math.ceil(right))


def line_input(ink: np.ndarray) -> LineInput | None:
    """A number's ink map (float, ink high, as `preprocess.ink_map` returns) -> the line model's
    input: the ink's bounding box scaled to LINE_HEIGHT - 2 * PAD rows (less if the number is too
    long to fit LINE_WIDTH), left-aligned. None when there is no ink."""
    ink = np.asarray(ink, np.float32)
    mask = ink >= INK_THRESHOLD
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    crop = np.clip(ink[top:bottom, left:right], 0.0, 1.0)
    pen = stroke_width(mask[top:bottom, left:right])
    if pen < THIN_PEN_SHARE * (bottom - top):
        radius = max(1, round((THICKENED_PEN_SHARE * (bottom - top) - pen) / 2))
        grown = dilate(np.pad(mask[top:bottom, left:right], radius), radius)
        crop = np.maximum(np.pad(crop, radius), grown.astype(np.float32))
        top, left = top - radius, left - radius  # may be negative: columns() clamps to the map
    height, width = crop.shape
    scale = min((LINE_HEIGHT - 2 * PAD) / height, (LINE_WIDTH - 2 * PAD) / width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    scaled = np.asarray(Image.fromarray(crop, mode="F").resize(size, resample), np.float32)
    pixels = np.zeros((LINE_HEIGHT, LINE_WIDTH), np.float32)
    row = (LINE_HEIGHT - size[1]) // 2
    pixels[row: row + size[1], PAD: PAD + size[0]] = scaled.clip(0.0, 1.0)
    return LineInput(pixels, left, top, scale)


def best_path(probabilities: np.ndarray) -> tuple[list[int], list[tuple[int, int]]]:
    """Greedy CTC decoding of (FRAMES, CLASSES) probabilities: the digits, and per digit the
    frames (first, last) that voted for it."""
    frames = np.argmax(probabilities, axis=1)
    digits, spans, previous = [], [], BLANK
    for index, label in enumerate(frames):
        label = int(label)
        if label != BLANK and label == previous:
            spans[-1] = (spans[-1][0], index)
        elif label != BLANK:
            digits.append(label)
            spans.append((index, index))
        previous = label
    return digits, spans


def log_likelihood(probabilities: np.ndarray, digits) -> float:
    """log P(digits | frames) under CTC: every alignment of the digits to the frames summed."""
    digits = list(digits)
    log_p = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-30, 1.0))
    states = [BLANK]
    for digit in digits:
        states += [int(digit), BLANK]
    states = np.array(states)
    count = len(states)
    # A state may also come from two back when it is a digit unlike the digit two back.
    skip = np.zeros(count, bool)
    skip[2:] = (states[2:] != BLANK) & (states[2:] != states[:-2])
    alpha = np.full(count, -np.inf)
    alpha[0] = log_p[0, BLANK]
    if count > 1:
        alpha[1] = log_p[0, states[1]]
    one_back, two_back = np.full(count, -np.inf), np.full(count, -np.inf)
    for frame in range(1, len(log_p)):
        one_back[1:] = alpha[:-1]
        two_back[2:] = np.where(skip[2:], alpha[:-2], -np.inf)
        alpha = np.logaddexp(np.logaddexp(alpha, one_back), two_back) + log_p[frame, states]
    return float(np.logaddexp(alpha[-1], alpha[-2]) if count > 1 else alpha[-1])


def digit_probabilities(probabilities: np.ndarray, span: tuple[int, int]) -> np.ndarray:
    """What the frames of one decoded digit say about it: their digit probabilities (blank left
    out) at the frame most sure of a digit, renormalised to sum to 1."""
    frames = np.asarray(probabilities)[span[0]: span[1] + 1, :BLANK]
    best = frames[int(np.argmax(frames.max(axis=1)))]
    return best / max(float(best.sum()), 1e-9)


def one_digit_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """(N, FRAMES, CLASSES) frames -> (N, 10): per line, how well each one-digit reading "0" ... "9"
    explains it (P(digit | frames) under CTC, as `log_likelihood` gives for [digit]), renormalised
    over the ten. The line model's reading of a single digit: an opinion independent of the image
    model's (another network, input and training), which `Recognizer` weighs in from pixels."""
    log_p = np.log(np.clip(np.asarray(probabilities, np.float64), 1e-30, 1.0))
    # One digit's alignments are blanks on frames [0, s), the digit on [s, e], blanks after e.
    # With running sums B (blank) and D (the digit), one alignment scores
    # B[s] + D[e+1] - D[s] + B[T] - B[e+1]: summed over s <= e by a running log-sum, no loop.
    blank = np.concatenate([np.zeros((len(log_p), 1)), np.cumsum(log_p[:, :, BLANK], axis=1)], axis=1)
    digit = np.concatenate([np.zeros((len(log_p), 1, BLANK)), np.cumsum(log_p[:, :, :BLANK], axis=1)],
                           axis=1)
    starts = np.logaddexp.accumulate(blank[:, :-1, None] - digit[:, :-1], axis=1)  # over s <= e
    ends = digit[:, 1:] - blank[:, 1:, None]
    total = starts + ends
    peak = total.max(axis=1)
    scores = peak + np.log(np.exp(total - peak[:, None]).sum(axis=1))  # blank[:, -1] is common to all ten
    scores -= scores.max(axis=1, keepdims=True)
    odds = np.exp(scores)
    return odds / odds.sum(axis=1, keepdims=True)
