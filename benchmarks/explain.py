"""What "Why did it read that?" costs: occlusion evidence for drawn digits, through the Recognizer.

    python -m benchmarks.explain [--digits 100]

Held-out pendigits drawn on the 280x280 canvas are read once (Recognizer.predict) and then
explained (digitrec.explain.explain: one batched model call of explain.BATCH inputs, LiteRT as
served). Prints p50/p95 of both, so the toggle's cost per stroke can be compared with a plain
prediction. The page keeps the view off until asked because it costs tens of ms, not a few.
"""

import argparse
import time

import numpy as np

from digitrec import Recognizer
from digitrec.data import load_pendigits, place_strokes, render_strokes, split_writers
from digitrec.explain import BATCH, explain


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=100)
    args = parser.parse_args()
    recognizer = Recognizer.load()
    _, held_out = split_writers(load_pendigits())
    drawings = [render_strokes(place_strokes(digit.strokes, 190, (140, 140)))
                for digit in held_out[: args.digits]]
    predict_ms, explain_ms, agree = [], [], 0
    for drawing in drawings:
        started = time.perf_counter()
        prediction = recognizer.predict(drawing)
        predict_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        result = explain(recognizer, prediction.model_input)
        explain_ms.append((time.perf_counter() - started) * 1000)
        agree += result is not None and result.answer == prediction.digit
    for name, values in (("predict", predict_ms), (f"explain ({BATCH} inputs, one call)", explain_ms)):
        print(f"{name}: p50 {np.percentile(values, 50):.2f} ms / p95 {np.percentile(values, 95):.2f} ms")
    print(f"explanations whose answer is the prediction's: {agree}/{len(drawings)} "
          f"({recognizer.backend}, model {recognizer.version})")


if __name__ == "__main__":
    main()
