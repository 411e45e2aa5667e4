"""Numbers as people write them: exact-number accuracy of `read_number`, from strokes and from pixels.

    python -m benchmarks.numbers [--model FOLDER] [--writers 21-30] [--count 100] [--seed 0]

Numbers of 2-6 digits by pendigits writers (default 21-30: the image model trained on writers
1-20, and the trajectory model read here is the cross-validation fold that held 21-30 out) are
laid out on the 700x280 number canvas by `lay_out_number`: per number a digit height, pen
width 8-30 px; per digit a size within +-15%, a baseline that wanders, and a gap to the
previous digit that is drawn from a mixture: with TOUCH_SHARE the inks' columns meet or
overlap by up to a quarter of the narrower digit's width, else a gap up to a generous one. Strokes keep
their digit, so the truth is known.

Prints exact-number accuracy for the stroke path (`read_number(r, canvas, strokes)`), the
pixel path (`read_number(r, canvas)`) and the same numbers as phone photos (`photo_of`: written
with a thin pen at twice the canvas's size, on paper in uneven light, noisy, blurred, JPEG), per
number length and for numbers whose neighbouring
digits all stand apart ("spaced") vs numbers with at least one pair touching or overlapping,
the share of pairs whose ink columns meet and whose ink touches, how many misread (and right)
numbers the reading flags, milliseconds per number, and how the writers' digits of several
strokes read alone on the number canvas (`several_strokes_alone`)
(wall clock, and the process's CPU time, which a busy machine inflates less). Every number is
read cold: in the app a new stroke re-reads only the stroke groups that hold it.
From pixels a model folder with a line model (`digitrec.lines`) has the cut-out reading checked by
it; the share of numbers it changed, and how many of those it got right, are printed.
Tune `digitrec.segment` on other writers (--writers 1-20, the line model's margin on 18-20,
which it never trained on) and another seed, never on 21-30.
"""

from __future__ import annotations

import argparse
import io
import time
from collections import defaultdict

import numpy as np
from PIL import Image, ImageFilter

from digitrec import Recognizer, calibrate, data
from digitrec.companion_training import fold_models_dir
from digitrec.segment import DigitFlag, read_number

WIDTH, HEIGHT = data.NUMBER_CANVAS  # the Draw page's Number canvas
LENGTHS = (2, 3, 4, 5, 6)
TOUCH_SHARE = 0.4  # share of neighbouring pairs drawn touching or overlapping
# Touching pairs: the inks' columns meet or overlap by up to this share of the narrower digit's
# ink width (pen included): a 1 slid a quarter of its width under the bar of a 7, not into an 8.
TOUCH_OVERLAP = (0.0, 0.25)
SPACED_GAP = (0.03, 0.35)  # spaced pairs: the gap between the inks, in digit heights
PEN = (8.0, 30.0)
DIGIT_HEIGHT = (100.0, 170.0)
SIZE_SPREAD = 0.15  # each digit's height within +-15% of the number's
WANDER = 0.03  # baseline random walk step, in digit heights (kept within +-0.12)
MARGIN = 10.0
PATHS = ("strokes", "pixels", "photo")
PHOTO_SCALE = 2  # a photo has this many times the canvas's pixels across
PHOTO_PEN = (3.0, 10.0)  # a ballpoint to a fine felt-tip, in photo pixels (the canvas's pens: 8-30)
PAPER = (238, 232, 220)
INKS = ((30, 40, 110), (25, 25, 30))  # blue, black


def lay_out_number(digits, rng: np.random.Generator, width: int = WIDTH, height: int = HEIGHT):
    """Pen digits written side by side as a person might: returns (strokes, digit of each stroke, gaps, pen).

    Strokes are in canvas pixels in drawing order (digit by digit, left to right); gaps[i] is the
    planned gap between digit i and i+1 in pixels (<= 0: their ink columns meet or overlap).
    Returns None when the number does not fit across the canvas even at the smallest size.
    """
    base = rng.uniform(*DIGIT_HEIGHT)
    pen = rng.uniform(*PEN)
    sizes = base * rng.uniform(1 - SIZE_SPREAD, 1 + SIZE_SPREAD, len(digits))
    touching = rng.random(len(digits) - 1) < TOUCH_SHARE
    overlaps = rng.uniform(*TOUCH_OVERLAP, len(digits) - 1)
    spaced_gaps = rng.uniform(*SPACED_GAP, len(digits) - 1)
    walk = np.clip(np.cumsum(rng.normal(0, WANDER, len(digits))), -0.12, 0.12)
    for shrink in (1.0, 0.85, 0.7, 0.6, 0.5):
        placed, x, gaps, previous_width = [], 0.0, [], 0.0
        for index, digit in enumerate(digits):
            size = sizes[index] * shrink
            strokes = data.place_strokes(digit.strokes, size, (0.0, height / 2 + walk[index] * base * shrink))
            xs = [p[0] for s in strokes for p in s]
            ink_width = max(xs) - min(xs) + pen
            if index:
                if touching[index - 1]:
                    gap = -overlaps[index - 1] * min(ink_width, previous_width)
                else:
                    gap = spaced_gaps[index - 1] * base * shrink
                gaps.append(gap)
                x += gap
            previous_width = ink_width
            shift = x + pen / 2 - min(xs)
            placed.append([[(px + shift, py) for px, py in s] for s in strokes])
            x += max(xs) - min(xs) + pen
        if x <= width - 2 * MARGIN:
            offset = rng.uniform(MARGIN, width - MARGIN - x)
            strokes, owner = [], []
            for index, digit_strokes in enumerate(placed):
                for stroke in digit_strokes:
                    strokes.append([(px + offset, py) for px, py in stroke])
                    owner.append(index)
            return strokes, owner, gaps, pen
    return None


def photo_of(strokes, rng: np.random.Generator) -> np.ndarray:
    """The number as a phone photo of it written on paper with a thin pen: light falling off
    across the page, sensor noise, a little blur and JPEG (quality 70); RGB uint8."""
    big = [[(x * PHOTO_SCALE, y * PHOTO_SCALE) for x, y in stroke] for stroke in strokes]
    width, height = WIDTH * PHOTO_SCALE, HEIGHT * PHOTO_SCALE
    alpha = data.render_strokes(big, width, rng.uniform(*PHOTO_PEN))[:height, :width, 3:] / 255.0
    ink = np.array(INKS[rng.integers(len(INKS))], np.float64)
    light = (np.linspace(rng.uniform(0.65, 0.85), 1.0, width)[None, :, None]
             * np.linspace(1.0, rng.uniform(0.8, 1.0), height)[:, None, None])
    if rng.random() < 0.5:
        light = light[:, ::-1]
    pixels = (np.array(PAPER, np.float64) * (1 - alpha) + ink * alpha) * light
    pixels += rng.normal(0.0, 6.0, pixels.shape)
    picture = Image.fromarray(pixels.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0))
    encoded = io.BytesIO()
    picture.save(encoded, "JPEG", quality=70)
    return np.asarray(Image.open(encoded).convert("RGB"))


def inks_touch(first, second, pen: float) -> bool:
    """Whether two digits' ink touches: their pen paths come within one pen width."""
    a, b = _dense(first), _dense(second)
    distances = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2))
    return bool(distances.min() <= pen)


def _dense(strokes, step: float = 2.0) -> np.ndarray:
    points = []
    for stroke in strokes:
        array = np.asarray(stroke, np.float64)
        points.append(array[:1])
        for start, end in zip(array[:-1], array[1:]):
            count = max(1, int(np.linalg.norm(end - start) / step))
            points.append(start + (end - start) * (np.arange(1, count + 1) / count)[:, None])
    return np.concatenate(points)


def trajectory_reader(recognizer, writers: range):
    """The recogniser with the cross-validation fold's trajectory model that never saw `writers`."""
    if not recognizer.reads_strokes:
        return recognizer, ("no trajectory model: strokes are grouped, each group read from its "
                            "re-rendered pixels")
    folds = fold_models_dir(recognizer.version)
    for path in sorted(folds.glob("fold-*.tflite")) if folds.is_dir() else []:
        low, high = (int(n) for n in path.stem.split("-")[1:3])
        if low <= writers.start and writers.stop - 1 <= high:
            return (recognizer.with_trajectory_model(path.read_bytes()),
                    f"trajectory model: {path.name} (never saw these writers)")
    return recognizer, "NOTE: no fold model that held these writers out: the served trajectory model saw them"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--writers", default="21-30")
    parser.add_argument("--count", type=int, default=100, help="numbers per length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=12, help="misreadings listed per path")
    args = parser.parse_args()
    low, high = (int(n) for n in args.writers.split("-"))
    writers = range(low, high + 1)
    recognizer = Recognizer.load(args.model)
    reader, note = trajectory_reader(recognizer, writers)
    pool = [d for d in data.load_pendigits() if d.writer in writers]
    rng = np.random.default_rng(args.seed)
    print(f"model {recognizer.version}; writers {args.writers} ({len(pool)} digits); {note}")
    results = {path: defaultdict(list) for path in PATHS}
    times = {path: defaultdict(list) for path in PATHS}
    cpu = {path: defaultdict(list) for path in PATHS}
    misread = {path: [] for path in PATHS}
    whole = []  # from pixels, numbers the line model changed: read right?
    # From pixels, numbers read with the right count of digits: each digit's probabilities and
    # truth, by who read it (the line model or the cut-out digit), for their calibration.
    confidence = {"line model": ([], []), "cut out": ([], [])}
    flagged = {path: {True: [], False: []} for path in PATHS}
    # Spaced numbers misread: is it the number's reading, or a digit misread even on its own?
    spaced_misread = {path: defaultdict(int) for path in PATHS}
    photo_rng = np.random.default_rng(args.seed + 1)  # its own: the numbers drawn stay the same
    pairs_meeting = pairs_touching = pairs = 0
    for length in LENGTHS:
        done = 0
        while done < args.count:
            digits = [pool[i] for i in rng.choice(len(pool), length, replace=False)]
            layout = lay_out_number(digits, rng)
            if layout is None:
                continue
            strokes, owner, gaps, pen = layout
            canvas = data.render_strokes(strokes, WIDTH, pen)[:HEIGHT, :WIDTH]
            per_digit = [[s for s, o in zip(strokes, owner) if o == i] for i in range(length)]
            meets = [gap <= 0 for gap in gaps]
            touch = [inks_touch(per_digit[i], per_digit[i + 1], pen) for i in range(length - 1)]
            pairs += length - 1
            pairs_meeting += sum(meets)
            pairs_touching += sum(touch)
            kind = "touching/overlapping" if any(meets) or any(touch) else "spaced"
            truth = "".join(str(d.label) for d in digits)
            photo = photo_of(strokes, photo_rng)
            for path, picture, given in (("strokes", canvas, strokes), ("pixels", canvas, None),
                                         ("photo", photo, None)):
                started, started_cpu = time.perf_counter(), time.process_time()
                reading = read_number(reader if given else recognizer, picture, given)
                text = reading.text
                elapsed = (time.perf_counter() - started) * 1000
                cpu[path][length].append((time.process_time() - started_cpu) * 1000)
                right = text == truth
                if path == "pixels" and any(DigitFlag.READ_WHOLE in flags for flags in reading.flags):
                    whole.append(right)
                if path == "pixels" and len(reading.digits) == length:
                    for digit, prediction, flags in zip(digits, reading.digits, reading.flags):
                        if prediction.probabilities is not None:
                            who = "line model" if DigitFlag.READ_WHOLE in flags else "cut out"
                            confidence[who][0].append(prediction.probabilities)
                            confidence[who][1].append(digit.label)
                results[path][length].append(right)
                results[path][kind].append(right)
                flagged[path][right].append(reading.unsure)
                times[path][length].append(elapsed)
                if not right:
                    misread[path].append(f"{truth}->{text or '-'}")
                    if kind == "spaced" and path != "photo":
                        cause = _spaced_cause(reader if given else recognizer, truth, text, per_digit, pen,
                                              bool(given))
                        spaced_misread[path][cause] += 1
            done += 1
    print(f"neighbouring pairs: {pairs}; ink columns meet or overlap {pairs_meeting / pairs:.1%}, "
          f"ink touches {pairs_touching / pairs:.1%}")
    for path in PATHS:
        if path == "photo":
            print(f"photo    the same numbers as phone photos of them written with a thin pen "
                  f"({PHOTO_PEN[0]:.0f}-{PHOTO_PEN[1]:.0f} px at {PHOTO_SCALE}x the canvas: "
                  f"{WIDTH * PHOTO_SCALE}x{HEIGHT * PHOTO_SCALE}), uneven light, noise, JPEG; from pixels")
        everything = [r for length in LENGTHS for r in results[path][length]]
        print(f"{path:8s} exact numbers {np.mean(everything):.1%} of {len(everything)}")
        print("  by length:  " + "  ".join(f"{length} digits {np.mean(results[path][length]):.1%}"
                                          for length in LENGTHS))
        print("  by spacing: " + "  ".join(
            f"{kind} {np.mean(results[path][kind]):.1%} of {len(results[path][kind])}"
            for kind in ("spaced", "touching/overlapping")))
        print("  ms per number by length, wall p50/p95 (CPU time p50): " + "  ".join(
            f"{length}: {np.percentile(times[path][length], 50):.1f}/"
            f"{np.percentile(times[path][length], 95):.1f}"
            f" ({np.percentile(cpu[path][length], 50):.1f})" for length in LENGTHS))
        print(f"  flagged on the page (a digit unsure, maybe two digits or one with the next): "
              f"{np.mean(flagged[path][False] or [0]):.0%} of misread numbers, "
              f"{np.mean(flagged[path][True] or [0]):.0%} of numbers read right")
        if path == "pixels":
            print(f"  line model: {'yes' if recognizer.reads_lines else 'none'}; it changed the cut-out "
                  f"reading of {len(whole) / len(everything):.1%} of numbers, {np.mean(whole or [0]):.0%} "
                  f"of those now right")
            print("  digits of numbers read with the right count, by who read them: " + "  ".join(
                _calibration(name, *pair) for name, pair in confidence.items() if pair[1]))
        causes = spaced_misread[path]
        if causes:
            print(f"  spaced numbers misread: {sum(causes.values())}; "
                  f"{causes[ALONE_TOO]} hold a digit read the same wrong way when drawn alone in its place, "
                  f"{causes[IN_NUMBER]} a digit read right alone (the number's reading lost it), "
                  f"{causes[COUNT]} the wrong count of digits")
        if args.show:
            print(f"  misread (first {args.show}): " + ", ".join(misread[path][: args.show]))
    print(several_strokes_alone(reader, pool, np.random.default_rng(args.seed + 2)))


ALONE_TOO, IN_NUMBER, COUNT = "alone too", "in the number", "count"


def several_strokes_alone(reader, pool, rng: np.random.Generator) -> str:
    """Every digit of `pool` written in several strokes, alone on the number canvas (a height and
    pen as `lay_out_number` draws), read from strokes: the share read as that one digit, and of
    the two-stroke 4s (a 4 whose hook ends short of its stem had read "11")."""
    right, fours = [], []
    for digit in (d for d in pool if len(d.strokes) > 1):
        height, pen = rng.uniform(*DIGIT_HEIGHT), rng.uniform(*PEN)
        strokes = data.place_strokes(digit.strokes, height, (WIDTH / 2, HEIGHT / 2))
        canvas = data.render_strokes(strokes, WIDTH, pen)[:HEIGHT, :WIDTH]
        read = read_number(reader, canvas, strokes).text == str(digit.label)
        right.append(read)
        if digit.label == 4 and len(digit.strokes) == 2:
            fours.append(read)
    return (f"digits of several strokes alone on the number canvas, read from strokes as one digit: "
            f"{np.mean(right):.1%} of {len(right)}; two-stroke 4s {np.mean(fours):.1%} of {len(fours)}")


def _spaced_cause(reader, truth: str, text: str, per_digit: list, pen: float, with_strokes: bool) -> str:
    """Why a spaced number was misread: every wrong digit is misread the same way when its strokes
    are drawn alone, in the same place on the canvas (ALONE_TOO), else IN_NUMBER; COUNT when the
    reading has another number of digits."""
    if len(text) != len(truth):
        return COUNT
    for index, (right, read) in enumerate(zip(truth, text)):
        if right == read:
            continue
        alone = data.render_strokes(per_digit[index], WIDTH, pen)[:HEIGHT, :WIDTH]
        prediction = reader.predict(alone, per_digit[index] if with_strokes else None)
        if prediction.digit is None or str(prediction.digit) != read:
            return IN_NUMBER
    return ALONE_TOO


def _calibration(name: str, probabilities: list, labels: list) -> str:
    """'line model: 172 digits 98.3% right, mean confidence 99.5%, ECE 1.20%'."""
    probabilities, labels = np.array(probabilities), np.array(labels)
    right = probabilities.argmax(axis=1) == labels
    return (f"{name}: {len(labels)} digits {right.mean():.1%} right, mean confidence "
            f"{probabilities.max(axis=1).mean():.1%}, ECE "
            f"{calibrate.expected_calibration_error(probabilities, labels):.2%}")


if __name__ == "__main__":
    main()
