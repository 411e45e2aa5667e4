"""Personal adaptation: a person's examples change their readings only, instantly, bounded."""

import numpy as np
import pytest

from digitrec import Recognizer, personal
from digitrec.data import place_strokes, render_strokes


@pytest.fixture(scope="module")
def recognizer(companion_model):
    return Recognizer.load(companion_model)


@pytest.fixture(scope="module")
def drawings(pen_digits):
    rng = np.random.default_rng(8)
    chosen = [d for d in pen_digits if d.writer >= 21]
    chosen = [chosen[i] for i in rng.choice(len(chosen), 30, replace=False)]
    items = []
    for digit in chosen:
        strokes = place_strokes(digit.strokes, 170, (140, 140))
        items.append((render_strokes(strokes, 280, 18), strokes, digit.label))
    return items


def test_the_served_model_exports_features_for_adaptation(recognizer, drawings):
    image, _, _ = drawings[0]
    reading = recognizer.read([image])
    assert reading.features is not None and reading.features.shape[0] == 1 and reading.features.shape[1] >= 32
    assert recognizer.personalize([]).adapts


def test_an_empty_profile_reads_exactly_like_the_shared_model(recognizer, mnist):
    images = list(mnist.x_test[:300])
    shared = recognizer.predict_many(images)
    empty = recognizer.personalize([]).predict_many(images)
    assert [p.probabilities for p in shared] == [p.probabilities for p in empty]


def test_a_correction_teaches_the_next_drawing_alike_and_leaves_others(recognizer, drawings):
    image, strokes, _ = drawings[0]
    before = recognizer.predict(image, strokes=strokes)
    wrong = (before.digit + 5) % 10  # a label the shared model does not read
    person = recognizer.personalize([(image, wrong, strokes)])
    after = person.predict(image, strokes=strokes)
    assert after.digit == wrong
    assert after.base_probabilities == pytest.approx(before.probabilities)
    unlike = [item for item in drawings[1:] if item[2] not in (before.digit, wrong)]
    for other_image, other_strokes, _ in unlike[:6]:
        assert person.predict(other_image, strokes=other_strokes).digit == \
            recognizer.predict(other_image, strokes=other_strokes).digit


def test_one_persons_examples_never_change_another_or_the_shared_model(recognizer, drawings):
    image, strokes, _ = drawings[1]
    shared_before = recognizer.predict(image, strokes=strokes).probabilities
    first = recognizer.personalize([(image, (recognizer.predict(image).digit + 1) % 10, strokes)])
    second = recognizer.personalize([])
    assert first.predict(image, strokes=strokes).probabilities != shared_before
    assert second.predict(image, strokes=strokes).probabilities == shared_before
    assert recognizer.predict(image, strokes=strokes).probabilities == shared_before
    grown = first.adding([(drawings[2][0], drawings[2][2])])
    assert (len(first), len(grown)) == (1, 2)  # adding returns a new recogniser


def test_examples_are_bounded_and_checked(recognizer, drawings, monkeypatch):
    monkeypatch.setattr(personal, "MAX_EXAMPLES", 5)
    image, strokes, label = drawings[3]
    person = recognizer.personalize([(image, label, strokes)] * 4).adding([(image, label)] * 4)
    assert len(person) == 5
    empty_canvas = np.zeros((280, 280, 4), np.uint8)
    assert len(person.adding([(empty_canvas, 3)])) == 5  # an empty drawing teaches nothing
    for bad in ([(image, 10)], [(image, -1)], [(image, "7")], [(image, True)], [(image,)]):
        with pytest.raises(ValueError):
            recognizer.personalize(bad)
