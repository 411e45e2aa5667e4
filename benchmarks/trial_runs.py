"""Small trial trainings (the Retrain page's "share of MNIST" slider turned down), with batch
norm's statistics re-estimated (digitrec.train.recompute_batch_norm) and, for comparison,
without (the statistics the layers' running averages reached, as before).

    python -m benchmarks.trial_runs                 # 1% x 1 epoch, 5% x 2 (about a minute)
    python -m benchmarks.trial_runs --runs 0.01:1

Each setting trains the shallow network twice with the same seed and data, prints the
validation accuracy at each epoch's end, the training batches' accuracy, and the trained
network's accuracy on the 10,000 MNIST test digits (the Keras model on the preprocessed test
set; the served candidate adds calibration, which does not change which digit wins).
"""

import argparse
import time

import numpy as np

from digitrec import data
from digitrec import train as training
from digitrec.config import RETRAIN_DEFAULTS, TrainingConfig
from digitrec.dataset import prepare_data

# Trainings of BN_REFRESH_BELOW batches an epoch or more are not re-estimated: both ways alike.
DEFAULT_RUNS = ("0.01:1", "0.05:2")


def run(share: float, epochs: int, recompute: bool, mnist) -> dict:
    config = TrainingConfig(architecture="shallow", epochs=epochs, mnist_fraction=share, pendigits=False,
                            augment=False, learning_rate=RETRAIN_DEFAULTS.learning_rate)
    training_data = prepare_data(config, mnist)
    kept = training.recompute_batch_norm
    if not recompute:
        training.recompute_batch_norm = lambda *args, **kwargs: None  # the running averages as they are
    try:
        started = time.monotonic()
        result = training.train(config, training_data)
        seconds = time.monotonic() - started
    finally:
        training.recompute_batch_norm = kept
    read = result.model.predict(training_data.x_test[..., None] / 255.0, verbose=0, batch_size=512).argmax(1)
    return {"val": result.history["val_accuracy"], "train": result.history["accuracy"],
            "test": float((read == training_data.y_test).mean()), "answers": len(set(read.tolist())),
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=list(DEFAULT_RUNS), help="SHARE:EPOCHS ...")
    args = parser.parse_args()
    mnist = data.load_mnist()
    for item in args.runs:
        share, epochs = float(item.split(":")[0]), int(item.split(":")[1])
        for recompute in (False, True):
            got = run(share, epochs, recompute, mnist)
            print(f"{share:.0%} of MNIST x {epochs} epoch(s), batch norm statistics "
                  f"{'re-estimated' if recompute else 'running averages'}: validation "
                  + " ".join(f"{v:.1%}" for v in got["val"]) + " · training batches "
                  + " ".join(f"{v:.1%}" for v in got["train"])
                  + f" · MNIST test {got['test']:.2%} ({got['answers']} different answers)"
                  + f" · {got['seconds']:.0f} s",
                  flush=True)


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
