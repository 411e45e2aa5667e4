"""Pen strokes: from the canvas's vector paths to what the trajectory model and the image model read.

A stroke is a sequence of `(x, y)` points in the image's pixel coordinates, y pointing down,
in drawing order; a drawing is a list of strokes. `st_canvas` returns Fabric.js objects
(`json_data`): `strokes_from_canvas` turns them into this form, bounded, since a visitor's
browser sends them.

Two views of the same strokes feed the recogniser:
- `trajectory_features`: TRAJECTORY_POINTS points resampled by arc length along the pen-down
  path (position, direction, pen lifts): how the digit was *written*.
- `render_for_model`: the strokes drawn again at one pen width and size, so however thick the
  visitor's pen was, `preprocess` (the one preprocessing function) sees the same picture.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from digitrec.errors import DigitrecError

TRAJECTORY_POINTS = 64
FEATURES = 5  # x, y, direction cos, direction sin, pen lifted before this point
MAX_STROKES = 64  # a digit has a handful; a number a few dozen
MAX_POINTS = 20_000  # over all strokes: about a minute of continuous drawing
MAX_COORDINATE = 10_000.0  # canvas pixels; anything beyond is not from our canvas
# The one rendering the image model reads strokes at: a RENDER_SIZE canvas, the drawing's
# longer side RENDER_HEIGHT, pen RENDER_PEN px (the pen width of the model's canvas training
# drawings' middle, where it reads best on held-out writers; see benchmarks/accuracy.py).
RENDER_SIZE = 280
RENDER_HEIGHT = 196.0
RENDER_PEN = 16.0

Strokes = list[list[tuple[float, float]]]


class StrokesError(DigitrecError, ValueError):
    """Stroke data that cannot be a drawing (too many strokes or points, not numbers)."""


def strokes_from_canvas(json_data) -> Strokes:
    """Turn `st_canvas(...).json_data` into strokes in canvas pixels (drawing order).

    Only free-hand paths ("Path" objects) are read: a move-to starts a stroke, quadratic
    curves and lines add their control and end points. Other objects are ignored; a path
    that has been moved, scaled or rotated is placed where the canvas shows it.
    """
    if not json_data:
        return []
    objects = json_data.get("objects", []) if isinstance(json_data, dict) else None
    if not isinstance(objects, list):
        raise StrokesError("the canvas sent drawing data in an unknown form")
    if len(objects) > MAX_STROKES:
        raise StrokesError(f"the drawing has {len(objects)} strokes; at most {MAX_STROKES} are read. "
                           "Clear the canvas and draw again.")
    strokes, total = [], 0
    for item in objects:
        if not isinstance(item, dict) or item.get("type") not in ("Path", "path"):
            continue
        stroke = _path_points(item.get("path"))
        if not stroke:
            continue
        stroke = _placed(stroke, item)
        total += len(stroke)
        if total > MAX_POINTS:
            raise StrokesError(f"the drawing has more than {MAX_POINTS} points; clear the canvas and draw again")
        strokes.append(stroke)
    return strokes


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StrokesError("the canvas sent a stroke point that is not a number")
    value = float(value)
    if not math.isfinite(value) or abs(value) > MAX_COORDINATE:
        raise StrokesError("the canvas sent a stroke point outside the canvas")
    return value


def _path_points(path) -> list[tuple[float, float]]:
    if not isinstance(path, list):
        return []
    points = []
    for command in path[: MAX_POINTS + 1]:
        if not isinstance(command, (list, tuple)) or not command:
            continue
        name, values = command[0], command[1:]
        if name not in ("M", "L", "Q", "C") or len(values) % 2 or len(values) > 6:
            continue
        coordinates = [_number(value) for value in values]
        # A quadratic's control point is the pointer sample Fabric smoothed through: keep it.
        points.extend(zip(coordinates[0::2], coordinates[1::2]))
    return points


def _placed(points, item) -> list[tuple[float, float]]:
    """Apply a path object's transform when it was moved or scaled after drawing."""
    scale_x, scale_y = _number(item.get("scaleX", 1) or 1), _number(item.get("scaleY", 1) or 1)
    angle = _number(item.get("angle", 0) or 0)
    offset = item.get("pathOffset")
    left, top = item.get("left"), item.get("top")
    if scale_x == 1 and scale_y == 1 and angle == 0:
        if not isinstance(offset, dict) or left is None or top is None:
            return points  # freshly drawn: path points are canvas pixels already
        shift_x, shift_y = _number(left) - _number(offset.get("x", 0)), _number(top) - _number(offset.get("y", 0))
        return points if shift_x == shift_y == 0 else [(x + shift_x, y + shift_y) for x, y in points]
    array = np.array(points, np.float64)
    centre = array.mean(axis=0) if not isinstance(offset, dict) else np.array(
        [_number(offset.get("x", 0)), _number(offset.get("y", 0))])
    target = np.array([_number(left), _number(top)]) if left is not None and top is not None else centre
    radians = math.radians(angle)
    rotation = np.array([[math.cos(radians), -math.sin(radians)], [math.sin(radians), math.cos(radians)]])
    moved = ((array - centre) * [scale_x, scale_y]) @ rotation.T + target
    return [(float(x), float(y)) for x, y in moved]


def checked(strokes) -> Strokes:
    """Validate strokes passed to the recogniser (a list of point sequences); StrokesError if not."""
    if strokes is None:
        return []
    if not isinstance(strokes, (list, tuple)):
        raise StrokesError("strokes must be a list of point lists")
    if len(strokes) > MAX_STROKES:
        raise StrokesError(f"at most {MAX_STROKES} strokes are read, got {len(strokes)}")
    result, total = [], 0
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64) if len(stroke) else np.zeros((0, 2))
        if points.ndim != 2 or points.shape[1] != 2:
            raise StrokesError("each stroke must be a sequence of (x, y) points")
        if not np.isfinite(points).all() or np.abs(points).max(initial=0) > MAX_COORDINATE:
            raise StrokesError("stroke points must be finite numbers on the canvas")
        total += len(points)
        if total > MAX_POINTS:
            raise StrokesError(f"at most {MAX_POINTS} stroke points are read")
        if len(points):
            result.append([(float(x), float(y)) for x, y in points])
    return result


def bounds(strokes: Strokes) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of all points."""
    points = np.array([p for stroke in strokes for p in stroke], np.float64)
    return (*points.min(axis=0), *points.max(axis=0))


# --- the trajectory view --------------------------------------------------------------------


def trajectory_features(strokes: Sequence[Sequence[tuple[float, float]]],
                        points: int = TRAJECTORY_POINTS) -> np.ndarray | None:
    """(points, FEATURES) float32: the pen-down path resampled by arc length; None if no ink.

    Positions are centred on the drawing's box and divided by its longer side (aspect kept);
    direction is the unit tangent; the last feature is 1 where the pen was lifted before.
    """
    arrays = [np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes if len(stroke)]
    if not arrays:
        return None
    everything = np.concatenate(arrays)
    low, high = everything.min(axis=0), everything.max(axis=0)
    extent = float((high - low).max())
    if extent <= 0:
        return None
    centre = (low + high) / 2
    # One long polyline over all strokes; pen-up jumps get zero length so no samples fall there.
    segments, lifts, offsets = [], [], []
    length_before = 0.0
    for index, stroke in enumerate(arrays):
        normalised = (stroke - centre) / extent
        if len(normalised) == 1:
            normalised = np.repeat(normalised, 2, axis=0)
        steps = np.linalg.norm(np.diff(normalised, axis=0), axis=1)
        # A dot still gets a sliver of length, so it is sampled at least once.
        steps = np.maximum(steps, 1e-4)
        cumulative = np.concatenate([[0.0], np.cumsum(steps)]) + length_before
        segments.append((normalised, cumulative))
        lifts.append(index > 0)
        offsets.append(length_before)
        length_before = cumulative[-1]
    total = length_before
    targets = (np.arange(points) + 0.5) / points * total
    features = np.zeros((points, FEATURES), np.float32)
    stroke_of = np.searchsorted([c[-1] for _, c in segments], targets, side="left")
    stroke_of = np.minimum(stroke_of, len(segments) - 1)
    previous_stroke = -1
    for i, (target, s) in enumerate(zip(targets, stroke_of)):
        path, cumulative = segments[s]
        j = int(np.clip(np.searchsorted(cumulative, target) - 1, 0, len(path) - 2))
        span = cumulative[j + 1] - cumulative[j]
        t = 0.0 if span <= 0 else (target - cumulative[j]) / span
        point = path[j] + t * (path[j + 1] - path[j])
        direction = path[j + 1] - path[j]
        norm = float(np.hypot(*direction))
        features[i, 0:2] = point
        if norm > 0:
            features[i, 2:4] = direction / norm
        features[i, 4] = 1.0 if (s != previous_stroke and previous_stroke != -1) else 0.0
        previous_stroke = s
    return features


# --- the image view -------------------------------------------------------------------------


def render_for_model(strokes: Strokes) -> np.ndarray:
    """The strokes drawn again at one size and pen width (an RGBA canvas like the app's)."""
    from digitrec.data import render_strokes

    left, top, right, bottom = bounds(strokes)
    scale = RENDER_HEIGHT / max(right - left, bottom - top, 1e-6)
    middle_x, middle_y = (left + right) / 2, (top + bottom) / 2
    placed = [[((x - middle_x) * scale + RENDER_SIZE / 2, (y - middle_y) * scale + RENDER_SIZE / 2)
               for x, y in stroke] for stroke in strokes]
    return render_strokes(placed, RENDER_SIZE, RENDER_PEN)
