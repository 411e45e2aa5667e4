"""Which nets to average: every combination of trained image models, on validation digits only.

    python -m benchmarks.ensembles models/A models/B models/C

The MNIST training digits that every one of the nets held out for validation (from their
cards: `dataset.held_out_indices`, the digits `average` calibrates on), as they are and redrawn
as 16x16 and 32x32 grey and 1-bit bitmaps in both polarities, are read by each net once
(logits); every pair, triple, ... is then scored by the argmax of its averaged logits, exactly
as `python -m digitrec average` serves it (image model alone: no gate, no calibration, which
does not move an argmax). Test sets are never read here: choose on these figures, then measure
the chosen folder with `benchmarks.accuracy`.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from digitrec import card as model_card
from digitrec import data
from digitrec.dataset import as_model_input, held_out_indices, preprocessed_mnist
from digitrec.preprocess import preprocess_many

from benchmarks.accuracy import small_render

SIZES = (16, 32)


def validation_sets(mnist, held_out: np.ndarray) -> tuple[dict, np.ndarray]:
    """{name: model inputs} for these validation digits as they are and as small bitmaps; labels."""
    sets = {"as they are": as_model_input(preprocessed_mnist(mnist)["x_train"][held_out])}
    for size in SIZES:
        grey = [small_render(image, size, one_bit=False) for image in mnist.x_train[held_out]]
        one_bit = [small_render(image, size, one_bit=True) for image in mnist.x_train[held_out]]
        for kind, images in (("grey", grey), ("1-bit", one_bit)):
            inverted = [255 - image for image in images]
            sets[f"{size}x{size} {kind}"] = (preprocess_many(images), preprocess_many(inverted))
    return sets, mnist.y_train[held_out]


def net_logits(folder: Path, sets: dict) -> dict:
    """One net's logits for every set (both polarities of the small ones)."""
    import keras

    model = keras.models.load_model(folder / "model.keras", compile=False)
    last = model.layers[-1]
    body = keras.Model(model.inputs, last.input)
    kernel, bias = last.get_weights()

    def logits(x):
        return body.predict(np.asarray(x, np.float32), batch_size=1000, verbose=0) @ kernel + bias

    return {name: tuple(logits(x) for x in value) if isinstance(value, tuple) else logits(value)
            for name, value in sets.items()}


def _accuracy(logits: dict, combo, name: str, polarity, labels) -> float:
    averaged = np.mean([logits[net][name] if polarity is None else logits[net][name][polarity]
                        for net in combo], axis=0)
    return float((averaged.argmax(1) == labels).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    args = parser.parse_args()
    mnist = data.load_mnist()
    cards = [model_card.read(folder).raw for folder in args.folders]
    held_out = held_out_indices({"averaged_from": cards}, len(mnist.y_train))
    if not len(held_out):
        raise SystemExit("these nets hold out no MNIST digits in common: nothing to choose on")
    sets, labels = validation_sets(mnist, held_out)
    logits = {folder.name: net_logits(folder, sets) for folder in args.folders}
    print(f"validation digits every net held out: {len(labels)}; accuracy of the averaged logits")
    print(" | ".join(["nets"] + list(sets)))
    for count in range(1, len(logits) + 1):
        for combo in itertools.combinations(logits, count):
            row = []
            for name, value in sets.items():
                # the small bitmaps: both polarities, averaged
                polarities = [0, 1] if isinstance(value, tuple) else [None]
                row.append(f"{np.mean([_accuracy(logits, combo, name, p, labels) for p in polarities]):.2%}")
            print(" + ".join(combo) + " | " + " | ".join(row), flush=True)


if __name__ == "__main__":
    main()
