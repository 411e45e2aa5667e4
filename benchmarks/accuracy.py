"""Accuracy of a model folder as served (preprocess -> LiteRT), on data it never trained on.

    python -m benchmarks.accuracy [MODEL_FOLDER] [--quick] [--record]

--record also writes the report into the model folder's card (`benchmark`: the command, when,
the library versions and every line printed), so the card carries its measured figures.

Prints:
- MNIST test: accuracy, expected calibration error (ECE) before and after the card's
  temperature, digits wrongly flagged "not a digit"; and read as uploads are (each image
  through `predict`: from pixels, the line model's one-digit reading weighed in).
- Pen writers 21-30 (pendigits trajectories; the image model trained on writers 1-20 and the
  trajectory model read here is the cross-validation fold that held writers 21-30 out), drawn
  on a 280x280 canvas the way people draw: random size and place, pen 6-40 px. From pixels
  alone, with strokes, and with the strokes written backwards (reverse order, each from its
  end: how some people write); by pen-width bucket and by digit size; ECE; digits flagged.
- The trajectory model's writer-wise cross-validation (3 folds of 10 writers) from the card.
- MNIST test digits rendered as 16x16 and 32x32, grey and 1-bit, both polarities.
- Non-digits never trained on (letters of the test fonts, doodles of an unseen seed), drawn on
  the canvas: share flagged "not a digit", from pixels, with strokes and written backwards.
- Numbers of 3-5 held-out pen digits on the 700x280 number canvas, read exactly.
- Milliseconds per predict with strokes (p50).
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import sys
import time
from datetime import UTC, datetime

import numpy as np
from PIL import Image

from digitrec import Recognizer, calibrate, companions, data, nondigits
from digitrec.companion_training import fold_models_dir
from digitrec.dataset import as_model_input, preprocessed_mnist
from digitrec.evaluate import accuracy_report
from digitrec.inference import Status
from digitrec.strokes import render_for_model

HELD_OUT = range(21, 31)
WIDTH_BUCKETS = [(6, 10), (10, 15), (15, 20), (20, 25), (25, 30), (30, 35), (35, 40)]
SIZE_BUCKETS = [("small (25-45% of the canvas)", 0.25, 0.45), ("medium (45-65%)", 0.45, 0.65),
                ("large (65-85%)", 0.65, 0.85)]
CANVAS = data.CANVAS_SIZE


def drawn(strokes, rng, height_range=data.USER_HEIGHTS, width_range=data.USER_PENS):
    """Strokes drawn as a visitor might: random size, place and pen; returns canvas, strokes, pen, size."""
    size = rng.uniform(*height_range)
    height = size * CANVAS
    margin = height / 2 + 8
    centre = (rng.uniform(margin * 0.8, CANVAS - margin * 0.8), rng.uniform(margin, CANVAS - margin))
    placed = data.place_strokes(strokes, height, centre)
    pen = rng.uniform(*width_range)
    return data.render_strokes(placed, CANVAS, pen), placed, pen, size


# How each canvas drawing is read: from its pixels, with its strokes, with them written backwards.
PATHS = ("pixels alone", "with strokes", "written backwards")
PATH_WIDTH = max(len(name) for name in PATHS)  # the report's figures line up in one column


def backwards(drawings) -> list:
    """Each drawing written the other way: its strokes in reverse order, each from its end (the
    same ink; people differ in how they write a digit, and the trajectory model reads how)."""
    return [[list(stroke)[::-1] for stroke in reversed(strokes)] for strokes in drawings]


def pen_section(recognizer, digits, rng):
    canvases, strokes, pens, sizes = zip(*(drawn(d.strokes, rng) for d in digits))
    labels = np.array([d.label for d in digits])
    for name, given in zip(PATHS, (None, list(strokes), backwards(strokes))):
        if given is not None and not recognizer.reads_strokes:
            continue
        predictions = recognizer.predict_many(list(canvases), given)
        digits_read = np.array([-1 if p.digit is None else p.digit for p in predictions])
        probabilities = np.array([p.probabilities or [0.1] * 10 for p in predictions])
        flagged = np.array([p.status == Status.NOT_DIGIT for p in predictions])
        # A digit flagged "not a digit" counts as wrong; accuracy of the digit reading itself too.
        correct = digits_read == labels
        argmax_correct = probabilities.argmax(1) == labels
        print(f"  {name:{PATH_WIDTH}s} {correct.mean():.2%} of {len(labels)} "
              f"(digit reading {argmax_correct.mean():.2%}; flagged not-a-digit {flagged.mean():.2%}; "
              f"ECE {calibrate.expected_calibration_error(probabilities, labels):.2%})")
        pens_array, sizes_array = np.array(pens), np.array(sizes)
        print("    by pen width: " + "  ".join(
            f"{low}-{high}px {correct[(pens_array >= low) & (pens_array < high)].mean():.1%}"
            for low, high in WIDTH_BUCKETS))
        print("    by size:      " + "  ".join(
            f"{label} {correct[(sizes_array >= low) & (sizes_array < high)].mean():.1%}"
            for label, low, high in SIZE_BUCKETS))
    return canvases, strokes


ONE_BIT_THRESHOLD = 100  # a 1-bit render keeps the pixels brighter than this


def small_render(image: np.ndarray, size: int, one_bit: bool) -> np.ndarray:
    """A 28x28 MNIST-form digit (uint8, ink bright) area-averaged down to size x size; 1-bit:
    thresholded at ONE_BIT_THRESHOLD. The benchmark's (and benchmarks.ensembles') small bitmaps."""
    small = np.asarray(Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.BOX))
    return np.where(small > ONE_BIT_THRESHOLD, 255, 0).astype(np.uint8) if one_bit else small


def small_renders(recognizer, mnist):
    images, labels = mnist.x_test, mnist.y_test
    for size in (16, 32):
        for kind in ("grey", "1-bit"):
            rendered = [small_render(image, size, kind == "1-bit") for image in images]
            both = [(polarity, rendered if polarity == "white on black" else [255 - r for r in rendered])
                    for polarity in ("white on black", "black on white")]
            line = []
            for polarity, batch in both:
                predictions = recognizer.predict_many(batch)
                read = np.array([-1 if p.digit is None else p.digit for p in predictions])
                line.append(f"{polarity} {(read == labels).mean():.2%}")
            print(f"  {size}x{size} {kind:5s}: " + "  ".join(line))


def non_digit_section(recognizer, rng):
    test_items = nondigits.letters("test") + nondigits.doodles(240, seed=99)
    canvases, strokes = [], []
    for _, item in test_items:
        varied = companions.augment(item, rng)
        canvas, placed, _, _ = drawn(varied, rng, width_range=(6, 30))
        canvases.append(canvas)
        strokes.append(placed)
    letters = len(nondigits.letters("test"))
    for name, given in zip(PATHS, (None, strokes, backwards(strokes))):
        if given is not None and not recognizer.reads_strokes:
            continue
        predictions = recognizer.predict_many(canvases, given)
        flagged = np.array([p.status == Status.NOT_DIGIT for p in predictions])
        print(f"  {name:{PATH_WIDTH}s} flagged {flagged.mean():.2%} of {len(flagged)} "
              f"(letters {flagged[:letters].mean():.2%}, doodles {flagged[letters:].mean():.2%})")
    # Small ink is judged at its own, far stricter threshold (inference.SMALL_INK_SIDE): the same
    # non-digits in MNIST form (the pixels' model inputs) rendered small as the MNIST digits are.
    mnist_form = [np.round(p.model_input * 255).astype(np.uint8) for p in recognizer.predict_many(canvases)]
    line = []
    for size in (16, 32):
        for kind in ("grey", "1-bit"):
            smalls = [small_render(image, size, kind == "1-bit") for image in mnist_form]
            flagged = np.array([p.status == Status.NOT_DIGIT for p in recognizer.predict_many(smalls)])
            line.append(f"{size}x{size} {kind} {flagged.mean():.2%}")
    print("  as small bitmaps, flagged: " + "  ".join(line))


def main(folder=None, quick=False):
    recognizer = Recognizer.load(folder)
    print(f"model {recognizer.version} ({recognizer.backend}; "
          f"{'reads strokes' if recognizer.reads_strokes else 'pixels only'})")
    started = time.perf_counter()
    mnist_raw = data.load_mnist()
    mnist = {key: as_model_input(value) if key.startswith("x") else value
             for key, value in preprocessed_mnist(mnist_raw).items()}
    raw = recognizer.probabilities(mnist["x_test"], calibrated=False)
    calibrated = recognizer.probabilities(mnist["x_test"])
    flagged = recognizer.not_digit_scores(mnist["x_test"]) > recognizer.gate_threshold
    report = accuracy_report(mnist["y_test"], calibrated)
    print(f"MNIST test: {report['accuracy']:.2%} of {report['count']}; "
          f"ECE {calibrate.expected_calibration_error(raw, mnist['y_test']):.2%} uncalibrated, "
          f"{calibrate.expected_calibration_error(calibrated, mnist['y_test']):.2%} calibrated "
          f"(T={recognizer.image_temperature:.3f}); flagged not-a-digit {flagged.mean():.2%}")

    if recognizer.reads_lines:  # an upload: pixels alone, the line model's one-digit reading weighed in
        tests = mnist_raw.y_test if not quick else mnist_raw.y_test[:2000]
        uploads = recognizer.predict_many(list(mnist_raw.x_test[: len(tests)]))
        read = np.array([-1 if p.digit is None else p.digit for p in uploads])
        print(f"MNIST test as uploads (each 28x28 image through predict, the line model's opinion "
              f"weighed in): {(read == tests).mean():.2%} of {len(tests)}")
    held_out = [d for d in data.load_pendigits() if d.writer in HELD_OUT]
    fold = fold_models_dir(recognizer.version) / "fold-21-30.tflite"
    reader = recognizer
    if recognizer.reads_strokes:
        if fold.is_file():
            reader = recognizer.with_trajectory_model(fold.read_bytes())
            print(f"pen writers 21-30 (trajectory model: the fold that never saw them, {fold.name}):")
        else:
            print("pen writers 21-30 (NOTE: the cross-validation fold model is missing, so the served "
                  "trajectory model, trained on these writers, is used: not a held-out figure):")
    else:
        print("pen writers 21-30:")
    pen_section(reader, held_out, np.random.default_rng(2024))
    card = recognizer.card.companions.get("strokes")
    if card:
        folds = "  ".join(f"writers {f['writers'][0]}-{f['writers'][1]} {f['accuracy']:.2%}"
                          for f in card["cross_validation"])
        print(f"trajectory model alone, writer-wise cross-validation: {folds}; "
              f"mean {card['cross_validated_accuracy_mean']:.2%}, "
              f"spread {card['cross_validated_accuracy_spread']:.2%}")
    photo_section(recognizer, held_out, np.random.default_rng(11))
    print("small renders of MNIST test:")
    small_renders(recognizer, mnist_raw if not quick else _head(mnist_raw, 2000))
    print("non-digits never trained on (test fonts, unseen doodles), drawn on the canvas:")
    non_digit_section(recognizer, np.random.default_rng(7))
    print(f"numbers of 3-5 digits drawn side by side, read exactly: "
          f"{numbers_read(recognizer, held_out):.1%} of 200")
    timing(recognizer, held_out)
    print(f"({time.perf_counter() - started:.0f} s)")


def photo_section(recognizer, digits, rng, count=1000):
    """Held-out pen digits as phone photos of them written with a thin pen (an upload: pixels)."""
    from benchmarks.numbers import HEIGHT, PHOTO_PEN, PHOTO_SCALE, WIDTH, photo_of

    chosen = [digits[i] for i in rng.choice(len(digits), min(count, len(digits)), replace=False)]
    places = [(rng.uniform(100, 220), (rng.uniform(150, WIDTH - 150), HEIGHT / 2)) for _ in chosen]
    photos = [photo_of(data.place_strokes(d.strokes, *place), rng) for d, place in zip(chosen, places)]
    predictions = recognizer.predict_many(photos)
    read = np.array([-1 if p.digit is None else p.digit for p in predictions])
    print(f"photos of them ({len(chosen)}, written {PHOTO_PEN[0]:.0f}-{PHOTO_PEN[1]:.0f} px thin on "
          f"{WIDTH * PHOTO_SCALE}x{HEIGHT * PHOTO_SCALE} photos, 100-220 canvas px tall; uneven light, "
          f"noise, blur, JPEG): {(read == np.array([d.label for d in chosen])).mean():.1%} read right, "
          f"{np.mean([p.status == Status.NOT_DIGIT for p in predictions]):.1%} 'not a digit', "
          f"{np.mean([p.status == Status.EMPTY for p in predictions]):.1%} read as blank")


def _head(mnist, count):
    return data.Mnist(mnist.x_train, mnist.y_train, mnist.x_test[:count], mnist.y_test[:count],
                      mnist.checksums)


def timing(recognizer, held_out, count=300):
    rng = np.random.default_rng(1)
    items = [drawn(held_out[i].strokes, rng)[:2] for i in rng.choice(len(held_out), count)]
    for name, use in (("pixels", False), ("with strokes", True)):
        if use and not recognizer.reads_strokes:
            continue
        times = []
        for canvas, strokes in items:
            begin = time.perf_counter()
            recognizer.predict(canvas, strokes=strokes if use else None)
            times.append((time.perf_counter() - begin) * 1000)
        print(f"predict {name}: p50 {np.percentile(times, 50):.2f} ms, p95 {np.percentile(times, 95):.2f} ms")
    strokes = items[0][1]
    begin = time.perf_counter()
    for _ in range(100):
        render_for_model(strokes)
    print(f"  of which re-rendering strokes: {(time.perf_counter() - begin) * 10:.2f} ms")


def numbers_read(recognizer, held_out, count=200, seed=0):
    """Share of numbers (3-5 held-out pen digits on the 700x280 number canvas) read exactly."""
    from digitrec.segment import read_number

    rng = np.random.default_rng(seed)
    right = done = 0
    while done < count:
        digits = [held_out[i] for i in rng.choice(len(held_out), int(rng.integers(3, 6)), replace=False)]
        canvas = data.draw_pen_number(digits, rng)
        if canvas is None:
            continue
        done += 1
        right += read_number(recognizer, canvas).text == "".join(str(d.label) for d in digits)
    return right / count


class _Tee(io.StringIO):
    """Prints as usual and keeps what was printed."""

    def write(self, text):
        sys.__stdout__.write(text)
        return super().write(text)


def record(folder, report: str) -> None:
    """Write the printed report into the model folder's card (`benchmark`)."""
    from digitrec import registry
    from digitrec.evaluate import library_versions

    card = registry.read_card(folder)
    card["benchmark"] = {"command": "python -m benchmarks.accuracy",
                         "measured": datetime.now(UTC).isoformat(timespec="seconds"),
                         "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                         "versions": library_versions(),
                         "report": [line for line in report.splitlines() if line.strip()]}
    registry.write_card(folder, card)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    folder = arguments[0] if arguments else None
    if "--record" in sys.argv and "--quick" not in sys.argv:
        with contextlib.redirect_stdout(_Tee()) as printed:
            main(folder)
        record(Recognizer.load(folder).folder, printed.getvalue())
    else:
        main(folder, quick="--quick" in sys.argv)
