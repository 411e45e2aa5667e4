"""Non-digits: letters from Hershey stroke fonts and procedural doodles, split by font."""

import numpy as np
import pytest

from digitrec import nondigits
from digitrec.strokes import trajectory_features


def test_font_splits_never_share_a_font():
    fonts = [set(names) for names in nondigits.FONTS.values()]
    assert all(not (a & b) for i, a in enumerate(fonts) for b in fonts[i + 1:])


def test_letters_that_pass_for_digits_are_left_out():
    for letter in "OoIlSsZzBbGgqD":
        assert letter not in nondigits.LETTERS


def test_every_letter_of_every_font_has_strokes():
    for split in nondigits.FONTS:
        items = nondigits.letters(split)
        assert len(items) == len(nondigits.LETTERS) * len(nondigits.FONTS[split])
        for name, strokes in items:
            assert trajectory_features(strokes) is not None, name


def test_an_h_has_three_strokes_and_y_points_down():
    strokes = nondigits.letter_strokes("H", "futural")
    assert len(strokes) == 3
    letter_a = nondigits.letter_strokes("A", "futural")
    apex = min(y for stroke in letter_a for _, y in stroke)
    assert apex == pytest.approx(min(letter_a[0][0][1], letter_a[0][-1][1]))  # the apex is on top


def test_doodles_are_seeded_and_every_kind_is_drawable():
    first, again = nondigits.doodles(36, seed=3), nondigits.doodles(36, seed=3)
    assert [name for name, _ in first] == [name for name, _ in again]
    for (_, a), (_, b) in zip(first, again):
        np.testing.assert_array_equal(np.concatenate(a), np.concatenate(b))
    assert {name for name, _ in first} == set(nondigits.DOODLES)
    for name, strokes in first:
        assert trajectory_features(strokes) is not None, name
    with pytest.raises(ValueError):
        nondigits.doodle("circle", np.random.default_rng(0))
