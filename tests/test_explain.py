"""Occlusion evidence: one batched model call, and the evidence lies where the model looked."""

import numpy as np
import pytest

from digitrec.explain import BATCH, PATCH, explain, occluded_copies
from digitrec.views import explanation_image


class HalvesModel:
    """A stand-in model: digit 0's score is the ink in the left half, digit 1's the right half.

    Counts its calls and remembers the batch sizes, like a spy on Recognizer.probabilities.
    """

    def __init__(self):
        self.batches = []

    def probabilities(self, inputs):
        inputs = np.asarray(inputs, np.float32)
        self.batches.append(len(inputs))
        scores = np.full((len(inputs), 10), -50.0)
        scores[:, 0] = inputs[:, :, :14].sum(axis=(1, 2)) / 4
        scores[:, 1] = inputs[:, :, 14:].sum(axis=(1, 2)) / 4
        exp = np.exp(scores - scores.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)


def two_bars(left_length=16, right_length=8):
    """A vertical bar left of the middle and a shorter one right of it."""
    image = np.zeros((28, 28), np.float32)
    image[6 : 6 + left_length, 6:8] = 1.0
    image[6 : 6 + right_length, 20:22] = 1.0
    return image


def test_left_ink_drives_the_answer_and_right_ink_pulls_to_the_runner_up():
    model = HalvesModel()
    result = explain(model, two_bars())
    assert (result.answer, result.runner_up) == (0, 1)
    assert model.batches == [BATCH], "not exactly one batched model call"
    left_ink = result.evidence[6:22, 6:8]
    right_ink = result.evidence[6:14, 20:22]
    assert (left_ink > 0).all(), "ink that made it a 0 is not marked for the answer"
    assert (right_ink < 0).all(), "ink that argued for the 1 is not marked for the runner-up"
    far = np.ones((28, 28), bool)
    far[6 - PATCH : 22 + PATCH, 6 - PATCH : 8 + PATCH] = False
    far[6 - PATCH : 14 + PATCH, 20 - PATCH : 22 + PATCH] = False
    assert np.abs(result.evidence[far]).max() == 0.0, "empty paper far from any ink got evidence"


def test_swapping_the_halves_swaps_the_answer_and_the_signs():
    result = explain(HalvesModel(), two_bars()[:, ::-1].copy())
    assert (result.answer, result.runner_up) == (1, 0)
    assert (result.evidence[6:22, 20:22] > 0).all() and (result.evidence[6:14, 6:8] < 0).all()


def test_the_pages_answer_and_runner_up_are_weighed_when_given():
    # Bug (a new user's check): with strokes the page's Top 3 said 7, 1, 3 while the explanation
    # named the picture's own runner-up, a 9. Given the page's two, it weighs those.
    result = explain(HalvesModel(), two_bars(), pair=(1, 0))  # the page read a 1 over a 0
    assert (result.answer, result.runner_up) == (1, 0)
    assert (result.evidence[6:14, 20:22] > 0).all() and (result.evidence[6:22, 6:8] < 0).all()
    with pytest.raises(ValueError):
        explain(HalvesModel(), two_bars(), pair=(3, 3))


def test_nothing_to_explain_on_an_empty_or_broken_input():
    model = HalvesModel()
    assert explain(model, np.zeros((28, 28), np.float32)) is None
    assert explain(model, np.full((28, 28), np.nan, np.float32)) is None
    assert model.batches == [], "the model was called for an input without ink"


def test_a_model_that_returns_the_wrong_shape_is_refused():
    class Broken:
        def probabilities(self, inputs):
            return np.ones((3, 10)) / 10

    with pytest.raises(ValueError, match="probabilities"):
        explain(Broken(), two_bars())


def test_every_patch_is_blanked_once():
    copies = occluded_copies(np.ones((28, 28), np.float32))
    assert len(copies) == BATCH - 1
    blanked = (copies == 0).sum(axis=0)
    assert blanked.min() >= 1, "some pixel is never blanked"
    assert all((copy == 0).sum() == PATCH * PATCH for copy in copies)


def test_the_served_model_explains_a_drawn_digit(committed_model, pen_digits):
    from digitrec import Recognizer
    from digitrec.data import draw_pen_digit

    recognizer_for_tests = Recognizer(committed_model)  # LiteRT: what the app serves
    digit = next(d for d in pen_digits if d.writer > 20 and d.label == 4)
    prediction = recognizer_for_tests.predict(draw_pen_digit(digit))
    result = explain(recognizer_for_tests, prediction.model_input)
    # Without a pair it explains the picture's own first two (from pixels the page's answer also
    # weighs the line model's reading in; the page passes its own pair).
    first, second = np.argsort(recognizer_for_tests.probabilities(prediction.model_input[None])[0])[::-1][:2]
    assert (result.answer, result.runner_up) == (first, second)
    assert result.answer == prediction.digit
    ink = prediction.model_input > 0.3
    assert result.strongest > 0
    # What the model looked at is the ink: evidence is largest on inked pixels.
    assert np.abs(result.evidence[ink]).mean() > 3 * np.abs(result.evidence[~ink]).mean()
    picture = explanation_image(prediction.model_input, result.evidence, scale=2)
    assert picture.size == (56, 56) and picture.mode == "RGB"
