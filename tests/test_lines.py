"""The line model's input and the decoding of its frames (digitrec.lines)."""

import itertools

import numpy as np
import pytest

from digitrec.data import place_strokes, render_strokes
from digitrec.lines import (
    BLANK,
    CLASSES,
    FRAME_STRIDE,
    FRAMES,
    LINE_HEIGHT,
    LINE_WIDTH,
    PAD,
    best_path,
    digit_probabilities,
    line_input,
    log_likelihood,
    one_digit_probabilities,
)


def frames_voting(labels, sure=0.9):
    """(len(labels), CLASSES) probabilities whose argmax per frame is `labels`."""
    probabilities = np.full((len(labels), CLASSES), (1 - sure) / (CLASSES - 1))
    probabilities[np.arange(len(labels)), labels] = sure
    return probabilities


def test_no_ink_has_no_line_input():
    assert line_input(np.zeros((50, 80), np.float32)) is None


def test_the_ink_is_scaled_to_the_line_height_and_left_aligned():
    ink = np.zeros((200, 500), np.float32)
    ink[40:140, 100:180] = 1.0  # 100 rows, 80 columns of ink
    line = line_input(ink)
    assert line.pixels.shape == (LINE_HEIGHT, LINE_WIDTH) and line.pixels.dtype == np.float32
    rows = np.flatnonzero(line.pixels.max(axis=1) > 0.5)
    cols = np.flatnonzero(line.pixels.max(axis=0) > 0.5)
    assert rows[-1] - rows[0] + 1 == LINE_HEIGHT - 2 * PAD
    assert cols[0] == PAD and abs((cols[-1] - cols[0] + 1) - 80 * line.scale) <= 1
    assert (line.left, line.top) == (100, 40)


def test_a_number_too_long_for_the_line_is_scaled_to_its_width():
    ink = np.zeros((60, 2000), np.float32)
    ink[10:50, 20:1980] = 1.0
    line = line_input(ink)
    cols = np.flatnonzero(line.pixels.max(axis=0) > 0.5)
    assert cols[-1] < LINE_WIDTH - PAD + 1
    assert np.flatnonzero(line.pixels.max(axis=1) > 0.5).size < LINE_HEIGHT - 2 * PAD


def test_frames_map_back_to_the_ink_columns_they_look_at():
    ink = np.zeros((120, 600), np.float32)
    ink[10:110, 50:550] = 1.0
    line = line_input(ink)
    left, right = line.columns(0, FRAMES - 1)
    assert left <= 50 and right >= 550  # all frames together see all the ink
    first, _ = line.columns(5, 5)
    second, _ = line.columns(6, 6)
    assert second - first == pytest.approx(FRAME_STRIDE / line.scale, abs=1)


def test_the_same_drawing_gives_the_same_input_wherever_it_lies(pen_digits):
    strokes = pen_digits[0].strokes
    a = render_strokes(place_strokes(strokes, 150, (100, 140)), 400, 14)[..., 3] / 255.0
    b = render_strokes(place_strokes(strokes, 150, (260, 200)), 400, 14)[..., 3] / 255.0
    assert np.abs(line_input(a).pixels - line_input(b).pixels).max() < 0.02


def test_a_thin_pen_is_thickened_into_the_range_the_line_model_learned(pen_digits):
    """A ballpoint in a photo: strokes about 1% of the ink's height faded to a trace when scaled
    to the line's rows, and the line model read a photo of "00768" as "258"."""
    strokes = place_strokes(pen_digits[0].strokes, 150, (100, 140))
    thin = line_input(render_strokes(strokes, 400, 2)[..., 3] / 255.0)
    learned = line_input(render_strokes(strokes, 400, 12)[..., 3] / 255.0)  # 8% of its height
    assert thin.pixels.sum() > 0.5 * learned.pixels.sum()  # unthickened: 0.2
    left, right = thin.columns(0, FRAMES - 1)
    assert left <= learned.left and right >= learned.left + 150 * 0.5  # the frames still map to the ink


def test_pens_the_line_model_learned_are_left_as_they_were(pen_digits, monkeypatch):
    from digitrec import lines

    ink = render_strokes(place_strokes(pen_digits[0].strokes, 150, (100, 140)), 400, 8)[..., 3] / 255.0
    as_served = line_input(ink)  # pen 5% of the digit's height: the thinnest the model learned
    monkeypatch.setattr(lines, "THIN_PEN_SHARE", 0.0)
    unthickened = line_input(ink)
    assert np.array_equal(as_served.pixels, unthickened.pixels) and as_served.left == unthickened.left


def test_greedy_decoding_merges_repeats_and_drops_blanks():
    b = BLANK
    digits, spans = best_path(frames_voting([b, 2, 2, b, 0, b, b, 2, 4, 4, b]))
    assert digits == [2, 0, 2, 4]
    assert spans == [(1, 2), (4, 4), (7, 7), (8, 9)]
    assert best_path(frames_voting([1, b, 1]))[0] == [1, 1]  # a blank between: two ones
    assert best_path(frames_voting([1, 1]))[0] == [1]
    assert best_path(frames_voting([b, b]))[0] == []


def _collapse(path):
    out, previous = [], None
    for label in path:
        if label != BLANK and label != previous:
            out.append(label)
        previous = label
    return out


@pytest.mark.parametrize("target", [[], [3], [3, 3], [1, 2, 1], [7, 7, 7]])
def test_the_likelihood_sums_every_alignment(target):
    rng = np.random.default_rng(len(target))
    frames, classes = 5, CLASSES
    probabilities = rng.dirichlet(np.ones(classes), size=frames)
    brute = sum(np.prod(probabilities[np.arange(frames), path])
                for path in itertools.product(range(classes), repeat=frames) if _collapse(path) == target)
    if brute == 0:
        assert log_likelihood(probabilities, target) < -50
    else:
        assert log_likelihood(probabilities, target) == pytest.approx(np.log(brute), rel=1e-9)


def test_a_digits_probabilities_come_from_its_surest_frame():
    b = BLANK
    probabilities = frames_voting([b, 7, 7, b])
    probabilities[2] = frames_voting([7], sure=0.99)[0]
    found = digit_probabilities(probabilities, (1, 2))
    assert found.shape == (10,) and found.sum() == pytest.approx(1.0)
    assert int(np.argmax(found)) == 7 and found[7] > 0.99


def test_one_digit_readings_are_the_normalised_likelihoods_of_each_digit_alone():
    rng = np.random.default_rng(3)
    probabilities = rng.dirichlet(np.full(CLASSES, 0.3), size=(4, FRAMES))
    probabilities[0] = frames_voting([BLANK] * 10 + [4] * 5 + [BLANK] * (FRAMES - 15))
    found = one_digit_probabilities(probabilities)
    for row, frames in zip(found, probabilities):
        likelihoods = np.exp([log_likelihood(frames, [digit]) for digit in range(10)])
        assert row == pytest.approx(likelihoods / likelihoods.sum(), rel=1e-9, abs=1e-15)
    assert int(np.argmax(found[0])) == 4 and found[0][4] > 0.99
