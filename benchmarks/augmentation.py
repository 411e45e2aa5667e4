"""The training-time augmentation per batch, Keras' layers against the batched transform.

    python -m benchmarks.augmentation [--backends tensorflow torch] [--batch 256]

For each Keras backend installed (each in its own process: KERAS_BACKEND is read at import),
prints milliseconds per batch of 28x28 inputs (median of 20, after 3 warm-up batches) for
- Keras' RandomRotation + RandomZoom + RandomTranslation + StrokeThickness (what `train` uses
  on TensorFlow, and what `fit` used on other backends before), and
- `digitrec.model.RandomAffine` + StrokeThickness (the same random geometry drawn per image,
  applied to the whole batch at once: what `fit` uses off TensorFlow now),
and, with the committed "deep" network behind each, one training step.

Why: Keras' torch backend transforms a batch one image at a time (a Python loop over the
images in `affine_transform`), so on an H100 a training step took 540 ms with the augmentation
layers and 21 ms without. This machine has no GPU; the figures here are CPU figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time

import numpy as np

REPEATS = 20


def measure(batch: int) -> None:
    """In this process's backend: ms per augmented batch and per training step, both augmenters."""
    import keras

    from digitrec.config import TrainingConfig
    from digitrec.model import build_augmenter, build_model

    rng = np.random.default_rng(0)
    x = rng.random((batch, 28, 28, 1)).astype(np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 10, batch), 10)
    device = keras.backend.backend()
    if device == "torch":
        import torch

        device += f" on {torch.cuda.get_device_name() if torch.cuda.is_available() else 'CPU'}"
    for name, batched in (("Keras layers", False), ("batched (RandomAffine)", True)):
        augmenter = build_augmenter(1, batched=batched)
        inputs = keras.ops.convert_to_tensor(x)
        times = []
        for _ in range(3 + REPEATS):
            started = time.perf_counter()
            keras.ops.convert_to_numpy(augmenter(inputs, training=True))
            times.append(time.perf_counter() - started)
        augment_ms = np.median(times[3:]) * 1000
        model = build_model(TrainingConfig(architecture="deep"))
        fitted = keras.Sequential([keras.Input((28, 28, 1)), augmenter, model])
        fitted.compile(optimizer="adam", loss="categorical_crossentropy")
        steps = []
        for _ in range(3 + REPEATS // 2):
            started = time.perf_counter()
            fitted.train_on_batch(x, y)
            steps.append(time.perf_counter() - started)
        print(f"{device:12s} {name:24s} augmentation {augment_ms:7.1f} ms / batch of {batch}; "
              f"training step with it {np.median(steps[3:]) * 1000:7.1f} ms", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=["tensorflow", "torch", "jax"])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        measure(arguments.batch)
        return
    for backend in arguments.backends:
        if importlib.util.find_spec(backend) is None:
            print(f"{backend}: not installed here")
            continue
        environment = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-m", "benchmarks.augmentation", "--child", "--batch",
                        str(arguments.batch)], env=environment, check=False)


if __name__ == "__main__":
    main()
