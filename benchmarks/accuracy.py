"""Accuracy of a model folder as served (preprocess -> LiteRT): MNIST test and canvas drawings.

    python -m benchmarks.accuracy [MODEL_FOLDER]

Numbers are 3-5 of those pen digits laid out side by side on the 700x280 number canvas.
Canvas drawings are the pendigits pen trajectories of writers 21-30 (never trained on)
drawn on a 280x280 canvas with varied size, place and pen width. For context it also prints
what the same model reads when the canvas is merely resized to 28x28 (the classic bug).
"""

import sys
import time

import numpy as np
from PIL import Image

from digitrec import Recognizer, data
from digitrec.evaluate import accuracy_report
from digitrec.train import held_out_pendigits, preprocessed_mnist


def naive_inputs(digits, seed=2024):
    """The seed-app pipeline: the whole canvas resized to 28x28, no crop or centring."""
    rng = np.random.default_rng(seed)
    canvases = [data.draw_pen_digit(d, rng) for d in digits]
    return np.stack([np.asarray(Image.fromarray(c[..., 3]).resize((28, 28), Image.BILINEAR),
                                np.float32) / 255 for c in canvases])


def main(folder=None):
    recognizer = Recognizer.load(folder)
    print(f"model {recognizer.version} ({recognizer.backend})")
    started = time.perf_counter()
    mnist = preprocessed_mnist(data.load_mnist())
    report = accuracy_report(mnist["y_test"], recognizer.probabilities(mnist["x_test"]))
    print(f"MNIST test accuracy:                      {report['accuracy']:.2%} ({report['count']} digits)")
    pen = held_out_pendigits()
    report = accuracy_report(pen["y"], recognizer.probabilities(pen["x"]))
    print(f"canvas-drawn pendigits, held-out writers: {report['accuracy']:.2%} ({report['count']} digits)")
    print("  per class: " + " ".join(f"{d}:{a:.3f}" for d, a in enumerate(report["per_class"])))
    _, held_out = data.split_writers(data.load_pendigits())
    naive = accuracy_report([d.label for d in held_out], recognizer.probabilities(naive_inputs(held_out)))
    print(f"same drawings, canvas merely resized:     {naive['accuracy']:.2%} (why preprocessing matters)")
    print(f"numbers of 3-5 digits drawn side by side, read exactly: {numbers_read(recognizer, held_out):.1%} of 200")
    print(f"({time.perf_counter() - started:.0f} s)")


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


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
