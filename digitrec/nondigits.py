"""Drawings that are not digits, as pen strokes: letters from stroke fonts and procedural doodles.

They teach the recogniser to say "not a digit". Letters come from the Hershey stroke fonts
(the `hershey-fonts` package); letters that can pass for a digit (O, I, l, S, Z, B, G, g, q,
...) are left out, since a person drawing them may well mean the digit. Doodles are shapes
people draw on a canvas instead of a digit: scribbles, zigzags, spirals, stars, squares,
triangles, smileys, hatching, hearts, arrows, crosses, waves. Circles and single lines are
left out: they are 0s and 1s.

Everything is seeded; strokes are lists of (x, y) points, y down, in arbitrary units (the
recogniser normalises size and position).
"""

from __future__ import annotations

import math

import numpy as np

# Letters a reader would not take for a digit (both cases), by design of the list.
LETTERS = "AEFHKMNRVWXaefhkmnrvwx"
# Which fonts teach, which choose thresholds and which only test (never mixed).
FONTS = {
    "train": ("futural", "rowmans", "rowmant", "timesr", "timesib", "scripts", "cursive", "gothiceng",
              "gothicita"),
    "validation": ("futuram", "timesi"),
    "test": ("rowmand", "timesrb", "scriptc"),
}
DOODLES = ("scribble", "zigzag", "spiral", "star", "square", "triangle", "smiley", "hatching",
           "heart", "arrow", "cross_box", "wave")


def letter_strokes(letter: str, font: str) -> list[list[tuple[float, float]]]:
    """One letter of a Hershey font as strokes (y down), consecutive segments joined."""
    hershey = _font(font)
    strokes: list[list[tuple[float, float]]] = []
    for segment in hershey.strokes_for_text(letter):
        points = [(float(x), -float(y)) for x, y in segment]
        if strokes and strokes[-1][-1] == points[0]:
            strokes[-1].extend(points[1:])  # the pen did not lift between these segments
        else:
            strokes.append(points)
    return strokes


_FONTS: dict = {}


def _font(name: str):
    if name not in _FONTS:
        from HersheyFonts import HersheyFonts

        font = HersheyFonts()
        font.load_default_font(name)
        font.normalize_rendering(100)
        _FONTS[name] = font
    return _FONTS[name]


def letters(split: str) -> list[tuple[str, list]]:
    """Every (letter, strokes) of the split's fonts."""
    return [(f"{letter}:{font}", letter_strokes(letter, font)) for font in FONTS[split] for letter in LETTERS
            if letter_strokes(letter, font)]


def _circle(cx, cy, r, start=0.0, end=2 * math.pi, count=24, ry=None):
    ry = r if ry is None else ry
    return [(cx + r * math.cos(a), cy + ry * math.sin(a)) for a in np.linspace(start, end, count)]


def doodle(kind: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """One procedural doodle of a kind, as strokes in a roughly 100x100 box."""
    u = lambda low, high: float(rng.uniform(low, high))  # noqa: E731
    if kind == "scribble":
        steps = rng.normal(0, 1, (int(rng.integers(40, 120)), 2)).cumsum(axis=0)
        steps = np.apply_along_axis(lambda c: np.convolve(c, np.ones(5) / 5, mode="valid"), 0, steps)
        return [[(float(x), float(y)) for x, y in steps * 8]]
    if kind == "zigzag":
        teeth = int(rng.integers(3, 7))
        height = u(20, 60)
        return [[(i * 100 / teeth, height * (i % 2)) for i in range(teeth + 1)]]
    if kind == "spiral":
        turns = u(1.5, 3.5)
        angles = np.linspace(0, turns * 2 * math.pi, 80)
        return [[(a * 6 * math.cos(a), a * 6 * math.sin(a)) for a in angles]]
    if kind == "star":
        tips = int(rng.choice([5, 5, 6, 7]))
        step = 2 if tips % 2 else 1
        order = [(i * step) % tips for i in range(tips + 1)] if tips % 2 else list(range(tips)) + [0]
        outer = [(50 * math.cos(2 * math.pi * k / tips - math.pi / 2),
                  50 * math.sin(2 * math.pi * k / tips - math.pi / 2)) for k in range(tips)]
        if tips % 2:
            return [[outer[k] for k in order]]
        points = []
        for k in range(tips):
            points.append(outer[k])
            angle = 2 * math.pi * (k + 0.5) / tips - math.pi / 2
            points.append((20 * math.cos(angle), 20 * math.sin(angle)))
        return [points + [outer[0]]]
    if kind == "square":
        w, h = u(60, 100), u(60, 100)
        return [[(0, 0), (w, 0), (w, h), (0, h), (0, 0)]]
    if kind == "triangle":
        return [[(0, 100), (u(30, 70), 0), (100, 100), (0, 100)]]
    if kind == "smiley":
        face = _circle(50, 50, 50, count=36)
        mouth = _circle(50, 55, 25, 0.2 * math.pi, 0.8 * math.pi, 12)
        eyes = [_circle(33, 35, 4, count=8), _circle(67, 35, 4, count=8)]
        return [face, *eyes, mouth]
    if kind == "hatching":
        lines = int(rng.integers(4, 9))
        slope = u(-0.6, 0.6)
        strokes = [[(i * 100 / lines, 0), (i * 100 / lines + 40 * slope, 100)] for i in range(lines)]
        if rng.random() < 0.5:  # cross-hatched
            strokes += [[(0, i * 100 / lines), (100, i * 100 / lines + 40 * slope)] for i in range(lines)]
        return strokes
    if kind == "heart":
        angles = np.linspace(0, 2 * math.pi, 50)
        return [[(16 * math.sin(a) ** 3 * 3, -(13 * math.cos(a) - 5 * math.cos(2 * a) - 2 * math.cos(3 * a)
                                                - math.cos(4 * a)) * 3) for a in angles]]
    if kind == "arrow":
        return [[(0, 50), (100, 50)], [(70, 25), (100, 50), (70, 75)]]
    if kind == "cross_box":
        return [[(0, 0), (100, 0), (100, 100), (0, 100), (0, 0)], [(0, 0), (100, 100)], [(100, 0), (0, 100)]]
    if kind == "wave":
        xs = np.linspace(0, 100, 50)
        periods = u(1.5, 4)
        return [[(float(x), 20 * math.sin(x / 100 * periods * 2 * math.pi)) for x in xs]]
    raise ValueError(f"unknown doodle {kind!r}")


def doodles(count: int, seed: int) -> list[tuple[str, list]]:
    """`count` doodles of every kind in turn (seeded)."""
    rng = np.random.default_rng(seed)
    return [(kind, doodle(kind, rng)) for kind in (DOODLES[i % len(DOODLES)] for i in range(count))]


def non_digits(split: str, doodle_count: int, seed: int) -> list[tuple[str, list]]:
    """Letters of the split's fonts and `doodle_count` doodles: (name, strokes) pairs."""
    return letters(split) + doodles(doodle_count, seed)
