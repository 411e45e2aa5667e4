"""What one visitor's flood of mislabelled samples does to a default retrain (issue 8 item 5).

    python -m benchmarks.poisoning [--samples 5000] [--weight 3] [--unbounded]

The attack of the issue: thousands of canvas-drawn 3s saved as "8". Here they are the pen
digits "3" of the training writers (1-20) drawn on a 280x280 canvas in many random ways,
through `preprocess`, as the Draw page saves them. A candidate is trained with the Retrain
page's defaults (`RETRAIN_DEFAULTS`) and "Include my saved samples" switched on at the
largest weight, through `run_training` as the page's job does, so the share bounds of
`prepare_data` apply. Prints how many samples were kept, what the candidate reads for the
held-out writers' (21-30) canvas 3s, MNIST test accuracy, and the digits on which
`evaluate.class_losses` flags it against the committed model (what the promotion dialog names).
Without the bounds (samples in training by default, weight 10), the issue measured 98.3% of
held-out canvas 3s read as 8; `--unbounded` lifts the share caps (the weight stays <= 3) to
show that the per-class comparison flags such a candidate. Takes a few minutes on 2 CPU cores.
"""

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from digitrec import card as model_card
from digitrec import data, dataset, registry
from digitrec.config import MAX_SAMPLE_WEIGHT, RETRAIN_DEFAULTS
from digitrec.evaluate import CANVAS, MNIST_TEST, class_losses, evaluate_version
from digitrec.jobs import run_training
from digitrec.preprocess import preprocess_many


def poisoned_samples(count: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """`count` canvas drawings of training writers' 3s, labelled 8."""
    training_writers, _ = data.split_writers(data.load_pendigits())
    threes = [digit for digit in training_writers if digit.label == 3]
    rng = np.random.default_rng(seed)
    canvases = [data.draw_pen_digit(threes[i % len(threes)], rng) for i in range(count)]
    return preprocess_many(canvases).astype(np.float32), np.full(count, 8, np.uint8)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--weight", type=int, default=MAX_SAMPLE_WEIGHT)
    parser.add_argument("--unbounded", action="store_true",
                        help="lift the share caps of prepare_data (what an unbounded server would do)")
    args = parser.parse_args()
    if args.unbounded:
        dataset.sample_row_limits = lambda other_examples: (10**9, 10**9)
    samples = poisoned_samples(args.samples)
    config = replace(RETRAIN_DEFAULTS, user_samples=True, sample_weight=args.weight)
    committed = registry.REPO_MODELS / registry.committed_version(registry.REPO_MODELS)
    with tempfile.TemporaryDirectory() as directory:
        folder = run_training(config, Path(directory), samples=samples, version="poisoned")
        counts = model_card.read(folder).training.examples
        candidate = evaluate_version(folder)
    active = evaluate_version(committed)
    confusion = np.array(candidate["reports"][CANVAS]["confusion"])
    print(f"saved samples offered: {args.samples:,} canvas 3s labelled 8, weight {args.weight}"
          + (", share caps lifted" if args.unbounded else ""))
    print(f"training examples: {counts}")
    print(f"held-out canvas 3s read as 8: {confusion[3, 8] / confusion[3].sum():.1%} "
          f"(accuracy on canvas 3s {candidate['reports'][CANVAS]['per_class'][3]:.1%}, "
          f"committed model {active['reports'][CANVAS]['per_class'][3]:.1%})")
    print(f"MNIST test: {candidate['reports'][MNIST_TEST]['accuracy']:.2%} "
          f"(committed {active['reports'][MNIST_TEST]['accuracy']:.2%}); canvas drawings: "
          f"{candidate['reports'][CANVAS]['accuracy']:.2%} "
          f"(committed {active['reports'][CANVAS]['accuracy']:.2%})")
    losses = class_losses(candidate["reports"], active["reports"])
    print("flagged against the committed model (the promotion dialog): "
          + ("; ".join(loss.describe() for loss in losses) or "nothing"))


if __name__ == "__main__":
    main()
