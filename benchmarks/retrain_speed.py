"""The Retrain page's default settings, end to end on this machine: time, accuracy, memory.

    python -m benchmarks.retrain_speed

Runs the training exactly as the page does: `digitrec.jobs.manager`-style job in its own
process (`python -m digitrec.worker`) with `digitrec.config.RETRAIN_DEFAULTS`, no saved
samples. Prints the wall time from start to saved candidate (process start, loading and
preprocessing data from the on-disk cache, training, evaluating, exporting, saving), the
MNIST test accuracy, and the training process's peak resident memory (its own
getrusage ru_maxrss, reported as its last event).

Targets: >= 99.0% MNIST test accuracy in <= 3 minutes on a 2-core CPU (issue #4); the
training process peaks at <= 1 GB (issue #8). Run it on an idle machine.
"""

import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from digitrec import card as model_card
from digitrec.config import RETRAIN_DEFAULTS
from digitrec.dataset import prepare_data
from digitrec.events import JobState
from digitrec.jobs import TrainingManager


def main():
    config = RETRAIN_DEFAULTS
    prepare_data(config)  # fill the preprocessing cache, as the first run on a server does once
    with tempfile.TemporaryDirectory() as directory:
        started = time.perf_counter()
        job = TrainingManager(lock_path=Path(directory) / ".lock", cooldown_s=0).start(
            config, "benchmark", directory=Path(directory))
        state = job.wait()
        seconds = time.perf_counter() - started
        if state.state != JobState.FINISHED:
            raise SystemExit(f"training {state.state.value}: {state.error}")
        card = model_card.read(Path(directory) / state.version)
    metrics = card.metrics
    print(f"settings: {asdict(config)}")
    print(f"examples: {state.counts}; {len(state.curve)} live progress points "
          f"over {len(state.epochs)} epochs")
    print(f"wall time, start to saved candidate: {seconds:.0f} s "
          f"(training alone {card.training.seconds:.0f} s)")
    print(f"MNIST test accuracy: {metrics.mnist_test_accuracy:.2%}   (target >= 99.0% in <= 180 s)")
    print(f"canvas-drawn pendigits (held-out writers): {metrics.canvas_accuracy:.2%}")
    print(f"training process peak RSS: {state.peak_rss_mb:.0f} MiB   (target <= 1 GB)")


if __name__ == "__main__":
    main()
