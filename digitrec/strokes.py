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
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from digitrec.errors import StrokesError
from digitrec.preprocess import TAP_SPAN

TRAJECTORY_POINTS = 64
FEATURES = 5  # x, y, direction cos, direction sin, pen lifted before this point
MAX_STROKES = 64  # a digit has a handful; a number a few dozen
MAX_POINTS = 20_000  # over all strokes: about a minute of continuous drawing
MAX_COORDINATE = 10_000.0  # canvas pixels; anything beyond is not from our canvas
# The one rendering the image model reads strokes at: a RENDER_SIZE canvas, the drawing's
# longer side RENDER_HEIGHT, pen RENDER_PEN px (the middle of the pen widths the image model
# was trained on, relative to the digit's size).
RENDER_SIZE = 100
RENDER_HEIGHT = 80.0  # = preprocess.WORK_SIZE: no resampling before strokes are measured
RENDER_PEN = 6.5  # 16 px on a 196 px tall digit
SUPERSAMPLE = 2
# A stroke no longer than this share of the drawing is a stray mark (`without_strays`): drawn by
# `render_for_model`, it spans at most TAP_SPAN of its pen widths, what inference.TAP_EXTENT
# counts as a tap.
# Every such stroke among pendigits' 7,494 drawings (in 20 drawings, up to 11.5% of the drawing)
# is a pen-down blip or a stray mark beside the digit; the shortest parts of digits there are
# 13-15% (a small 4's first stroke, a 5's cap).
STRAY_SHARE = TAP_SPAN * RENDER_PEN / RENDER_HEIGHT

Strokes = list[list[tuple[float, float]]]


def strokes_from_canvas(json_data, size: tuple[float, float] | None = None) -> Strokes:
    """Turn `st_canvas(...).json_data` into strokes in canvas pixels (drawing order).

    Only free-hand paths ("Path" objects) are read: a move-to starts a stroke, quadratic
    curves and lines add their control and end points. Other objects are ignored; a path
    that has been moved, scaled or rotated is placed where the canvas shows it. With the
    canvas's `size` (width, height), strokes further than a canvas's size outside it (no drag
    goes there) are refused: the drawing is then read from its picture.
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
            raise StrokesError(f"the drawing has more than {MAX_POINTS} points; "
                               "clear the canvas and draw again")
        strokes.append(stroke)
    strokes = checked(strokes)  # where a transform placed them, too
    if size is not None and strokes:
        points = np.concatenate([np.asarray(stroke) for stroke in strokes])
        if ((points < -np.asarray(size)) | (points > 2 * np.asarray(size))).any():
            raise StrokesError("the canvas sent pen strokes far outside the drawing")
    return strokes


def _number(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise StrokesError("the canvas sent a stroke point that is not a number")
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise StrokesError("the canvas sent a stroke point outside the canvas") from None
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
        shift_x = _number(left) - _number(offset.get("x", 0))
        shift_y = _number(top) - _number(offset.get("y", 0))
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


def without_strays(strokes: Strokes) -> Strokes:
    """The strokes without a stray mark: the one stroke no longer than STRAY_SHARE of the drawing's
    longer side, when the others are longer (a tap beside the digit, a pen-down blip).

    Drawn the way the image model reads strokes (RENDER_HEIGHT tall, a RENDER_PEN pen) such a
    stroke is a dot, which no digit has; with it the digit was drawn smaller and off-centre, and
    the trajectory model read a pen lift to nowhere. Two or more such marks are kept: they are
    drawn on purpose (a smiley's eyes), and leaving them out made doodles read as digits.
    """
    if len(strokes) < 2:
        return strokes
    arrays = [np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes]
    everything = np.concatenate(arrays)
    longest = float((everything.max(axis=0) - everything.min(axis=0)).max())
    short = [float((a.max(axis=0) - a.min(axis=0)).max()) <= STRAY_SHARE * longest for a in arrays]
    if sum(short) != 1:
        return strokes
    return [stroke for stroke, stray in zip(strokes, short) if not stray]


def _thinned(points: np.ndarray, spacing: float) -> np.ndarray:
    """Drop points closer than `spacing` to the last kept one (a browser sends one every few px)."""
    kept, last = [0], points[0]
    for index in range(1, len(points) - 1):
        if abs(points[index, 0] - last[0]) + abs(points[index, 1] - last[1]) >= spacing:
            kept.append(index)
            last = points[index]
    if len(points) > 1:
        kept.append(len(points) - 1)
    return points[kept]


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
    # A one-point stroke (a dot) becomes a tiny segment so it is sampled like any stroke.
    arrays = [np.repeat(a, 2, axis=0) if len(a) == 1 else a for a in arrays]
    path = np.concatenate(arrays)
    low, high = path.min(axis=0), path.max(axis=0)
    extent = float((high - low).max())
    if extent <= 0:
        return None
    path = (path - (low + high) / 2) / extent
    stroke_of_point = np.repeat(np.arange(len(arrays)), [len(a) for a in arrays])
    steps = np.linalg.norm(np.diff(path, axis=0), axis=1)
    same_stroke = stroke_of_point[1:] == stroke_of_point[:-1]
    # Pen-up jumps between strokes take no length, so no sample falls there; every pen-down
    # step a sliver at least, so a dot is sampled too.
    steps = np.where(same_stroke, np.maximum(steps, 1e-4), 0.0)
    cumulative = np.concatenate([[0.0], np.cumsum(steps)])
    targets = (np.arange(points) + 0.5) / points * cumulative[-1]
    segment = np.clip(np.searchsorted(cumulative, targets, side="right") - 1, 0, len(path) - 2)
    span = steps[segment]
    t = np.where(span > 0, (targets - cumulative[segment]) / np.where(span > 0, span, 1.0), 0.0)
    start, end = path[segment], path[segment + 1]
    direction = end - start
    norm = np.linalg.norm(direction, axis=1, keepdims=True)
    stroke = stroke_of_point[segment]
    features = np.zeros((points, FEATURES), np.float32)
    features[:, 0:2] = start + t[:, None] * direction
    features[:, 2:4] = np.divide(direction, norm, out=np.zeros_like(direction), where=norm > 0)
    features[1:, 4] = stroke[1:] != stroke[:-1]
    return features


# --- the image view -------------------------------------------------------------------------


def render_for_model(strokes: Strokes) -> np.ndarray:
    """The strokes drawn again at one size and pen width: an RGBA canvas (ink in alpha) like the app's.

    The drawing's longer side becomes RENDER_HEIGHT pixels, the scale `preprocess` works at,
    with a round pen of RENDER_PEN pixels; drawn at twice the size and averaged down for the
    anti-aliased edges a browser canvas has.
    """
    arrays = [np.asarray(stroke, np.float64).reshape(-1, 2) for stroke in strokes if len(stroke)]
    everything = np.concatenate(arrays)
    low, high = everything.min(axis=0), everything.max(axis=0)
    scale = SUPERSAMPLE * RENDER_HEIGHT / max(float((high - low).max()), 1e-6)
    size = SUPERSAMPLE * RENDER_SIZE
    image = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(image)
    pen = SUPERSAMPLE * RENDER_PEN
    radius = pen / 2
    for stroke in arrays:
        placed = _thinned((stroke - (low + high) / 2) * scale + size / 2, pen / 4)
        if len(placed) > 1:
            draw.line(placed.ravel().tolist(), fill=255, width=round(pen))
        for x, y in placed.tolist():  # a round pen: round joints and caps (PIL's own joints are slow)
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    canvas = np.zeros((RENDER_SIZE, RENDER_SIZE, 4), np.uint8)
    canvas[..., 3] = np.asarray(image.reduce(SUPERSAMPLE))
    return canvas
