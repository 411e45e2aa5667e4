"""Strokes: the canvas's Fabric.js paths -> strokes, bounds on what a browser sends, the two views."""

import math

import numpy as np
import pytest

from digitrec.errors import StrokesError
from digitrec.strokes import (
    FEATURES,
    MAX_POINTS,
    MAX_STROKES,
    RENDER_SIZE,
    TRAJECTORY_POINTS,
    checked,
    render_for_model,
    strokes_from_canvas,
    trajectory_features,
    without_strays,
)

# A vertical stroke as streamlit-drawable-canvas 0.13 (Fabric 7.4) sent it from Chromium.
RECORDED_PATH = {
    "type": "Path", "version": "7.4.0", "originX": "center", "originY": "center", "left": 200, "top": 145,
    "width": 0, "height": 210.036, "strokeWidth": 18, "scaleX": 1, "scaleY": 1, "angle": 0,
    "path": [["M", 200, 39.982], ["Q", 200, 40, 200, 50.5], ["Q", 200, 61, 200, 71.5],
             ["Q", 200, 82, 200, 92.5], ["Q", 200, 103, 200, 113.5], ["Q", 200, 124, 200, 134.5],
             ["Q", 200, 145, 200, 155.5], ["Q", 200, 166, 200, 176.5], ["Q", 200, 187, 200, 197.5],
             ["Q", 200, 208, 200, 229], ["L", 200, 250.018]],
}


def path(points):
    """A Fabric path object through points, as the canvas sends a freshly drawn stroke."""
    first, *rest = points
    return {"type": "Path", "path": [["M", *first]] + [["L", *p] for p in rest]}


def test_recorded_canvas_path_becomes_one_stroke_in_canvas_pixels():
    strokes = strokes_from_canvas({"version": "7.4.0", "objects": [RECORDED_PATH]})
    assert len(strokes) == 1
    xs, ys = zip(*strokes[0])
    assert set(xs) == {200}
    assert min(ys) == pytest.approx(39.982) and max(ys) == pytest.approx(250.018)
    assert list(ys) == sorted(ys)  # drawing order kept


def test_other_objects_are_ignored_and_order_is_kept():
    data = {"objects": [path([(0, 0), (10, 0)]), {"type": "Rect", "left": 5}, path([(0, 5), (0, 50)])]}
    strokes = strokes_from_canvas(data)
    assert [s[0] for s in strokes] == [(0.0, 0.0), (0.0, 5.0)]
    assert strokes_from_canvas(None) == [] and strokes_from_canvas({"objects": []}) == []


def test_a_moved_path_is_read_where_the_canvas_shows_it():
    moved = {**path([(0, 0), (20, 0)]), "scaleX": 2, "scaleY": 2, "left": 100, "top": 50,
             "pathOffset": {"x": 10, "y": 0}}
    (stroke,) = strokes_from_canvas({"objects": [moved]})
    assert stroke[0] == pytest.approx((80.0, 50.0)) and stroke[-1] == pytest.approx((120.0, 50.0))


@pytest.mark.parametrize("bad", [
    {"objects": [path([(0, 0), (1, 1)])] * (MAX_STROKES + 1)},
    {"objects": [path([(i, i) for i in range(MAX_POINTS + 5)])]},
    {"objects": [{"type": "Path", "path": [["M", float("nan"), 0], ["L", 1, 1]]}]},
    {"objects": [{"type": "Path", "path": [["M", 1e12, 0], ["L", 1, 1]]}]},
    {"objects": [{"type": "Path", "path": [["M", "x", 0], ["L", 1, 1]]}]},
    {"objects": "not a list"},
])
def test_what_a_hostile_browser_sends_is_refused_with_a_message(bad):
    with pytest.raises(StrokesError) as error:
        strokes_from_canvas(bad)
    assert str(error.value)


def test_checked_validates_strokes_passed_to_the_recogniser():
    assert checked(None) == [] and checked([]) == []
    assert checked([[(1, 2), (3, 4)], []]) == [[(1.0, 2.0), (3.0, 4.0)]]
    for bad in ([[(1, 2, 3)]], [[(float("inf"), 0)]], "strokes", [[(0, 0)]] * (MAX_STROKES + 1)):
        with pytest.raises(StrokesError):
            checked(bad)


def test_trajectory_is_resampled_by_arc_length_and_invariant_to_place_and_size():
    stroke = [(10 + 3 * t, 20 + 40 * math.sin(t / 10)) for t in range(60)]
    features = trajectory_features([stroke])
    assert features.shape == (TRAJECTORY_POINTS, FEATURES) and features.dtype == np.float32
    moved = trajectory_features([[(5 * x + 300, 5 * y - 70) for x, y in stroke]])
    np.testing.assert_allclose(features, moved, atol=1e-5)
    # Denser sampling of the same curve changes nothing but rounding.
    dense = [(10 + 3 * t / 4, 20 + 40 * math.sin(t / 40)) for t in range(237)]
    np.testing.assert_allclose(features[:, :2], trajectory_features([dense])[:, :2], atol=0.01)
    assert np.abs(features[:, :2]).max() <= 0.5 + 1e-6
    np.testing.assert_allclose(np.hypot(features[:, 2], features[:, 3]), 1.0, atol=1e-5)


def test_trajectory_marks_pen_lifts_and_knows_drawing_order():
    cross = [[(0, 0), (100, 0)], [(50, -50), (50, 50)]]
    features = trajectory_features(cross)
    assert features[:, 4].sum() == 1  # one pen lift, at the first point of the second stroke
    lifted = int(np.argmax(features[:, 4]))
    assert abs(lifted - TRAJECTORY_POINTS // 2) <= 1  # both strokes are equally long
    reversed_order = trajectory_features(cross[::-1])
    assert not np.allclose(features, reversed_order)
    assert trajectory_features([]) is None and trajectory_features([[(5, 5)]]) is None


def test_rendering_for_the_model_ignores_size_and_place():
    stroke = [(x, 0.02 * (x - 50) ** 2) for x in range(0, 101, 5)]
    small = render_for_model([[(x * 0.5 + 10, y * 0.5 + 10) for x, y in stroke]])
    large = render_for_model([[(x * 3 + 400, y * 3 + 40) for x, y in stroke]])
    assert small.shape == (RENDER_SIZE, RENDER_SIZE, 4)
    assert np.abs(small[..., 3].astype(int) - large[..., 3].astype(int)).max() <= 2


def test_a_tap_or_blip_beside_the_digit_is_left_out_and_its_parts_are_kept(pen_digits):
    five = next(d for d in pen_digits if d.label == 5 and len(d.strokes) == 2)  # a body and a cap
    strokes = [list(stroke) for stroke in five.strokes]
    assert without_strays(strokes) == strokes  # a cap is a part of the digit
    points = np.concatenate([np.asarray(s) for s in strokes])
    low, high = points.min(axis=0), points.max(axis=0)
    tap = [(float(high[0]) + 5, float(high[1])), (float(high[0]) + 5.5, float(high[1]))]
    blip = [(float(low[0]), float(low[1])), (float(low[0]) + 0.1 * (high - low).max(), float(low[1]))]
    assert without_strays([tap, *strokes]) == strokes
    assert without_strays([*strokes, blip]) == strokes
    assert without_strays([strokes[0]]) == [strokes[0]]  # a one-stroke drawing is what it is
    assert without_strays([tap, *strokes, blip]) == [tap, *strokes, blip]  # two marks: on purpose
    two_dots = [[(0.0, 0.0)], [(30.0, 0.0), (30.5, 0.0)]]
    assert without_strays(two_dots) == two_dots  # all small: nothing to tell a stray from

