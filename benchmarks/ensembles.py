"""Which nets to average: every combination of trained image models, on validation digits only.

    python -m benchmarks.ensembles models/A models/B models/C [--validation-seed 1]

The MNIST validation digits of the seed's split (5,000 training digits no net trained with that
`--validation-seed` saw), as they are and redrawn as 16x16 and 32x32 grey and 1-bit bitmaps in
both polarities, are read by each net once (logits); every pair, triple, ... is then scored by
the argmax of its averaged logits, exactly as `python -m digitrec average` serves it (image
model alone: no gate, no calibration, which does not move an argmax). Test sets are never read
here: choose on these figures, then measure the chosen folder with `benchmarks.accuracy`.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec import data
from digitrec.dataset import as_model_input, preprocessed_mnist, validation_split
from digitrec.preprocess import preprocess_many

SIZES = (16, 32)
ONE_BIT_THRESHOLD = 100


def validation_sets(mnist, seed: int) -> tuple[dict, np.ndarray]:
    """{name: model inputs} for the validation digits as they are and as small bitmaps; labels."""
    held_out, _ = validation_split({"seed": seed, "validation_size": 5000}, len(mnist.y_train))
    sets = {"as they are": as_model_input(preprocessed_mnist(mnist)["x_train"][held_out])}
    for size in SIZES:
        grey = [np.asarray(Image.fromarray(image).resize((size, size), Image.BOX))
                for image in mnist.x_train[held_out]]
        one_bit = [np.where(g > ONE_BIT_THRESHOLD, 255, 0).astype(np.uint8) for g in grey]
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
    parser.add_argument("--validation-seed", type=int, default=1)
    args = parser.parse_args()
    sets, labels = validation_sets(data.load_mnist(), args.validation_seed)
    logits = {folder.name: net_logits(folder, sets) for folder in args.folders}
    print(f"validation digits: {len(labels)} (seed {args.validation_seed}); accuracy of the averaged logits")
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
