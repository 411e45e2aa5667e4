"""Segmenting a drawn number into digits, on real pen trajectories laid out side by side."""

from __future__ import annotations

import numpy as np
import pytest

from digitrec.data import default_pendigits_path, load_pendigits, place_strokes, render_strokes
from digitrec.inference import prediction_from
from digitrec.preprocess import preprocess
from digitrec.segment import DigitBox, NumberReading, read_number, segment_digits

HEIGHT, WIDTH = 280, 700  # the app's number canvas
MIDDLE = HEIGHT / 2


@pytest.fixture(scope="module")
def pen_digits():
    """Real pendigits trajectories, or skip when the shared data is not there."""
    path = default_pendigits_path()
    if not path.is_file():
        pytest.skip(f"pendigits not found at {path}")
    return load_pendigits(path)


def render_wide(strokes, width=WIDTH, height=HEIGHT, brush=18.0) -> np.ndarray:
    """An RGBA canvas `width` wide and `height` high (render_strokes only draws squares)."""
    return render_strokes(strokes, max(width, height), brush)[:height, :width]


def lay_out(digits, height=170.0, gap=30.0, brush=18.0, start=30.0):
    """Place digits side by side with `gap` pixels of paper between their inks.

    Returns the strokes and each digit's centre (the middle of its ink) in canvas pixels.
    """
    strokes, centres, x = [], [], start
    for digit in digits:
        placed = place_strokes(digit.strokes, height, (0.0, MIDDLE))
        xs = [point[0] for stroke in placed for point in stroke]
        shift = x + brush / 2 - min(xs)
        strokes += [[(px + shift, py) for px, py in stroke] for stroke in placed]
        centres.append(((min(xs) + max(xs)) / 2 + shift, MIDDLE))
        x += max(xs) - min(xs) + brush + gap
    return strokes, centres, x


def assert_boxes_match(boxes, centres):
    assert len(boxes) == len(centres)
    assert [box.left for box in boxes] == sorted(box.left for box in boxes)
    for box, (x, y) in zip(boxes, centres):
        assert box.left <= x < box.right and box.top <= y < box.bottom, (box, x, y)


def pick(pen_digits, rng, count, labels=range(10), multi_stroke=False):
    pool = [digit for digit in pen_digits if digit.label in labels
            and (len(digit.strokes) > 1 or not multi_stroke)]
    return [pool[index] for index in rng.choice(len(pool), count, replace=False)]


# --- segmentation --------------------------------------------------------------------------


def test_numbers_split_into_their_digits_left_to_right(pen_digits):
    rng = np.random.default_rng(7)
    for _ in range(12):
        digits = pick(pen_digits, rng, int(rng.integers(3, 6)))
        height, brush = rng.uniform(110, 200), rng.uniform(10, 26)
        strokes, centres, end = lay_out(digits, height, gap=rng.uniform(20, 40), brush=brush)
        if end > WIDTH:
            continue
        boxes = segment_digits(render_wide(strokes, brush=brush))
        assert_boxes_match(boxes, centres)


def test_digits_drawn_with_several_strokes_stay_whole(pen_digits):
    # The bar of a 4, the cap of a 5, the crossed 7: each is a second stroke of one digit.
    rng = np.random.default_rng(3)
    for _ in range(6):
        digits = pick(pen_digits, rng, 4, labels=(4, 5, 7), multi_stroke=True)
        strokes, centres, _ = lay_out(digits, height=150, gap=30)
        boxes = segment_digits(render_wide(strokes))
        assert_boxes_match(boxes, centres)


def test_boxes_hold_a_padded_ink_crop_preprocess_reads(pen_digits):
    digits = pick(pen_digits, np.random.default_rng(1), 3)
    strokes, _, _ = lay_out(digits)
    boxes = segment_digits(render_wide(strokes))
    assert len(boxes) == 3
    for box in boxes:
        assert isinstance(box, DigitBox)
        assert box.image.dtype == np.float32 and box.image.ndim == 2
        assert box.image.max() == pytest.approx(1.0, abs=0.05)
        assert box.image[0].max() == 0 and box.image[:, 0].max() == 0  # a dark border
        assert not preprocess(box.image).empty


def test_touching_digits_are_cut_apart(pen_digits):
    rng = np.random.default_rng(11)
    split = 0
    pairs = [pick(pen_digits, rng, 2, labels=(0, 2, 3, 6, 8, 9)) for _ in range(8)]
    for first, second in pairs:
        canvas, centres = touching_pair(first, second)
        boxes = segment_digits(canvas)
        if len(boxes) == 2:
            assert_boxes_match(boxes, centres)
            split += 1
    print(f"touching pairs cut apart: {split}/{len(pairs)}")
    assert split >= 6


def touching_pair(first, second, height=170.0, brush=18.0):
    """Two digits slid together until their inks touch (overlap by a pixel or two)."""
    canvas_first = render_wide(place_strokes(first.strokes, height, (200.0, MIDDLE)), brush=brush)
    canvas_second = render_wide(place_strokes(second.strokes, height, (500.0, MIDDLE)), brush=brush)
    ink_first, ink_second = canvas_first[..., 3], canvas_second[..., 3]
    for shift in range(0, 400):
        moved = np.zeros_like(ink_second)
        moved[:, : WIDTH - shift] = ink_second[:, shift:]
        if ((moved >= 128) & (ink_first >= 128)).any():
            break
    canvas = canvas_first.copy()
    canvas[..., 3] = np.maximum(ink_first, moved)
    columns_first = np.flatnonzero((ink_first >= 77).any(axis=0))
    columns_second = np.flatnonzero((moved >= 77).any(axis=0))
    centres = [((columns_first[0] + columns_first[-1]) / 2, MIDDLE),
               ((columns_second[0] + columns_second[-1]) / 2, MIDDLE)]
    return canvas, centres


def test_a_pen_lifted_within_one_digit_keeps_it_one_digit(pen_digits):
    zero = next(digit for digit in pen_digits if digit.label == 0)
    canvas = render_wide(place_strokes(zero.strokes, 180, (350.0, MIDDLE)))
    columns = np.flatnonzero((canvas[..., 3] > 0).any(axis=0))
    middle = (columns[0] + columns[-1]) // 2
    canvas[:, middle - 2 : middle + 2, 3] = 0  # a 4-pixel gap straight through the 0
    boxes = segment_digits(canvas)
    assert len(boxes) == 1
    assert boxes[0].left <= columns[0] and boxes[0].right >= columns[-1]


def test_specks_and_dots_are_not_digits(pen_digits):
    digits = pick(pen_digits, np.random.default_rng(5), 3, labels=(1, 2, 3, 7))
    strokes, centres, end = lay_out(digits, gap=60)
    dot_x = centres[0][0] + (centres[1][0] - centres[0][0]) / 2
    strokes = strokes + [[(dot_x, MIDDLE + 60)], [(end + 20, 40.0)]]  # a full stop, a tap
    boxes = segment_digits(render_wide(strokes))
    assert_boxes_match(boxes, centres)


def test_dark_ink_on_white_paper(pen_digits):
    digits = pick(pen_digits, np.random.default_rng(9), 4)
    strokes, centres, _ = lay_out(digits, height=160, gap=30)
    ink = render_wide(strokes)[..., 3].astype(np.float32) / 255
    # Unevenly lit paper with a blue ballpoint, as a photo of a note would be.
    light = np.linspace(235, 175, WIDTH)[None, :, None]
    pen = np.array([30.0, 40.0, 120.0])
    photo = (light * (1 - ink[..., None]) + pen * ink[..., None])
    photo += np.random.default_rng(0).normal(0, 4, photo.shape)
    boxes = segment_digits(np.clip(photo, 0, 255).astype(np.uint8))
    assert_boxes_match(boxes, centres)


def test_huge_images_give_boxes_in_image_pixels(pen_digits):
    digits = pick(pen_digits, np.random.default_rng(2), 3)
    strokes, centres, _ = lay_out(digits)
    canvas = render_wide(strokes)
    huge = np.repeat(np.repeat(canvas, 5, axis=0), 5, axis=1)  # 1400 x 3500: ink_map shrinks it
    boxes = segment_digits(huge)
    assert_boxes_match(boxes, [(x * 5, y * 5) for x, y in centres])
    assert max(box.right for box in boxes) <= huge.shape[1]
    assert max(box.bottom for box in boxes) <= huge.shape[0]


def test_an_empty_canvas_has_no_digits():
    assert segment_digits(np.zeros((HEIGHT, WIDTH, 4), np.uint8)) == []
    assert segment_digits(np.full((HEIGHT, WIDTH, 3), 255, np.uint8)) == []


# --- reading the number --------------------------------------------------------------------


class CountingRecognizer:
    """Stands in for a model: calls each drawn digit 7 (or unsure) and counts model calls."""

    def __init__(self, unsure=False):
        self.calls = 0
        self.unsure = unsure

    def predict_many(self, images):
        self.calls += 1
        probabilities = np.full(10, 0.05 if self.unsure else 0.01)
        probabilities[7] = 0.5 if self.unsure else 0.91  # unsure: 0.5 / 0.95 is under 0.6
        predictions = []
        for image in images:
            prepared = preprocess(image)
            predictions.append(prediction_from(
                prepared.model_input, None if prepared.empty else probabilities))
        return predictions


def test_read_number_reads_every_digit_in_one_model_call(pen_digits):
    digits = pick(pen_digits, np.random.default_rng(4), 4)
    strokes, _, _ = lay_out(digits)
    recognizer = CountingRecognizer()
    reading = read_number(recognizer, render_wide(strokes))
    assert isinstance(reading, NumberReading)
    assert recognizer.calls == 1
    assert reading.text == "7777"
    assert len(reading.digits) == len(reading.boxes) == 4
    assert not reading.unsure
    assert read_number(CountingRecognizer(unsure=True), render_wide(strokes)).unsure


def test_read_number_on_an_empty_canvas():
    reading = read_number(CountingRecognizer(), np.zeros((HEIGHT, WIDTH, 4), np.uint8))
    assert reading.text == "" and reading.digits == [] and reading.boxes == []
    assert not reading.unsure


@pytest.fixture(scope="module")
def trained_recognizer():
    """The active trained model, or skip while none has been trained yet."""
    from digitrec import registry
    from digitrec.inference import Recognizer

    if not (registry.models_dir() / registry.POINTER).is_file():
        pytest.skip("no trained model")
    return Recognizer.load()


def test_a_trained_model_reads_real_handwritten_numbers(pen_digits, trained_recognizer):
    from digitrec.data import split_writers

    _, held_out = split_writers(pen_digits)  # writers the model never trained on
    rng = np.random.default_rng(2024)
    count, right, wrong = 40, 0, []
    while right + len(wrong) < count:
        digits = pick(held_out, rng, int(rng.integers(3, 6)))
        height, brush = rng.uniform(120, 200), rng.uniform(12, 24)
        strokes, _, end = lay_out(digits, height, gap=rng.uniform(25, 45), brush=brush)
        if end > WIDTH:
            continue
        truth = "".join(str(digit.label) for digit in digits)
        text = read_number(trained_recognizer, render_wide(strokes, brush=brush)).text
        if text == truth:
            right += 1
        else:
            wrong.append((truth, text))
    rate = right / count
    print(f"numbers read exactly: {right}/{count} = {rate:.0%}; misread: {wrong}")
    assert rate >= 0.8
