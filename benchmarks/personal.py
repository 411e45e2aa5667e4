"""Personal adaptation per held-out pen writer: read their later digits with and without their examples.

    python -m benchmarks.personal [MODEL_FOLDER]

For each pendigits writer 21-30 (never trained on: the image model trained on writers 1-20 and
the trajectory model read here is the cross-validation fold that held 21-30 out), in the
writer's own order: the first 40% of their digits are the teaching part, drawn on the canvas
and read one by one as a person would meet them; every misread is corrected and every third
right answer confirmed, each becoming a personal example. The remaining 60% are then read
with and without those examples (strokes and pixels, as the canvas gives them). Prints per
writer and the mean, and the cost of adding an example and of an adapted predict.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from digitrec import Recognizer, data
from digitrec.companion_training import fold_models_dir

from benchmarks.accuracy import drawn

HELD_OUT = range(21, 31)
TEACHING_SHARE = 0.4
CONFIRM_EVERY = 3


def writer_run(recognizer, digits, rng):
    items = [drawn(d.strokes, rng)[:2] for d in digits]
    labels = [d.label for d in digits]
    split = int(len(items) * TEACHING_SHARE)
    personal = recognizer.personalize([])
    right_seen = 0
    add_times = []
    for (canvas, strokes), label in zip(items[:split], labels[:split]):
        reading = personal.predict(canvas, strokes=strokes)
        if reading.digit == label:
            right_seen += 1
            if right_seen % CONFIRM_EVERY:
                continue
        began = time.perf_counter()
        personal = personal.adding([(canvas, label, strokes)])
        add_times.append((time.perf_counter() - began) * 1000)
    rest = items[split:]
    truth = np.array(labels[split:])
    images, strokes = [c for c, _ in rest], [s for _, s in rest]
    before = np.array([-1 if p.digit is None else p.digit for p in recognizer.predict_many(images, strokes)])
    began = time.perf_counter()
    adapted = personal.predict_many(images, strokes)
    per_predict = (time.perf_counter() - began) * 1000 / len(images)
    after = np.array([-1 if p.digit is None else p.digit for p in adapted])
    return ((before == truth).mean(), (after == truth).mean(), len(personal), len(truth), add_times,
            per_predict)


def main(folder=None):
    recognizer = Recognizer.load(folder)
    fold = fold_models_dir(recognizer.version) / "fold-21-30.tflite"
    if recognizer.reads_strokes and fold.is_file():
        recognizer = recognizer.with_trajectory_model(fold.read_bytes())
        print(f"model {recognizer.version}, trajectory model of the fold that held writers 21-30 out")
    else:
        print(f"model {recognizer.version} (NOTE: no held-out trajectory fold model: strokes as served)")
    if not recognizer.personalize([]).adapts:
        print("this model's .tflite does not export features: no personal adaptation")
        return
    pen = data.load_pendigits()
    rng = np.random.default_rng(31)
    rows, adds, predicts = [], [], []
    for writer in HELD_OUT:
        digits = [d for d in pen if d.writer == writer]  # file order is the writer's own order
        before, after, examples, count, add_times, per_predict = writer_run(recognizer, digits, rng)
        rows.append((writer, before, after))
        adds += add_times
        predicts.append(per_predict)
        print(f"writer {writer}: {examples:3d} examples; later {count} digits: "
              f"{before:.2%} -> {after:.2%} ({(after - before) * 100:+.2f} pt)")
    befores, afters = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    print(f"mean over writers: {befores.mean():.2%} -> {afters.mean():.2%}; "
          f"worst writer after {afters.min():.2%}; "
          f"largest drop {max(0.0, (befores - afters).max()) * 100:.2f} pt")
    print(f"adding an example: p50 {np.percentile(adds, 50):.1f} ms; adapted predict (batched, per digit) "
          f"{np.mean(predicts):.2f} ms")
    canvas, strokes = drawn(pen[0].strokes, rng)[:2]
    personal = recognizer.personalize([(canvas, pen[0].label, strokes)] * 100)
    times = []
    for _ in range(200):
        began = time.perf_counter()
        personal.predict(canvas, strokes=strokes)
        times.append((time.perf_counter() - began) * 1000)
    print(f"single adapted predict with 100 examples: p50 {np.percentile(times, 50):.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
