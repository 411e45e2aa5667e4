"""Typed training events and job states: what a training run reports, and how a job stands.

A training run (`digitrec.train.train`, `digitrec.jobs.run_training`) reports these events
through a plain callback; the training process (`digitrec.worker`) sends them to the server
as JSON lines, and `decode` turns each line back into the same dataclass.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from functools import cached_property


class JobState(StrEnum):
    """Where a training job stands."""

    STARTING = "starting"  # the process is loading data
    RUNNING = "running"
    STOPPING = "stopping"  # Stop was pressed: it ends after the current batch and saves
    FINISHED = "finished"
    STOPPED = "stopped"  # ended early by Stop; what it learned was saved
    FAILED = "failed"

    @property
    def active(self) -> bool:
        """True while the job has not ended."""
        return self in (JobState.STARTING, JobState.RUNNING, JobState.STOPPING)


@dataclass(frozen=True)
class DataReady:
    """Training data assembled: examples per source (mnist, pendigits, user_samples)."""

    counts: dict


@dataclass(frozen=True)
class BatchProgress:
    """Progress within an epoch, sent every PROGRESS_INTERVAL_S or so (and on each epoch's last batch).

    `loss` and `accuracy` are those of the batches since the previous BatchProgress (not the
    running mean over the epoch), so a curve of them moves within an epoch.
    """

    epoch: int  # the epoch in progress, from 1
    epochs: int
    batch: int  # batches done in this epoch
    batches: int  # batches per epoch
    elapsed: float  # seconds since training began
    remaining: float | None  # estimated seconds left; None until a few batches have been timed
    loss: float
    accuracy: float

    @cached_property
    def position(self) -> float:
        """Epochs done, as a fraction (1.5 = halfway through the second epoch)."""
        return self.epoch - 1 + self.batch / max(self.batches, 1)

    @cached_property
    def fraction(self) -> float:
        """Share of the whole training done, 0..1."""
        return min(self.position / max(self.epochs, 1), 1.0)


@dataclass(frozen=True)
class EpochEnd:
    """An epoch ended: its training and validation loss and accuracy."""

    epoch: int  # from 1
    epochs: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None


class FinishingStep(StrEnum):
    """What a training does between its last batch and the saved candidate, as the page says it."""

    SAVING = "saving what it learned"
    EVALUATING = "evaluating it on MNIST test and held-out pen digits"
    CALIBRATING = "calibrating its confidence"
    SERVED = "evaluating it as the app will serve it"
    GATE_HEAD = "teaching it to say \"not a digit\""


@dataclass(frozen=True)
class Finishing:
    """The last batch is done; the candidate is being made ready (`step`)."""

    step: FinishingStep

    def __post_init__(self):
        object.__setattr__(self, "step", FinishingStep(self.step))  # decoded from JSON: a str


@dataclass(frozen=True)
class Saved:
    """The candidate was evaluated and saved as `version`; `metrics` as in its card."""

    version: str
    metrics: dict
    warning: str | None = None  # what the candidate lacks, e.g. a not-a-digit head that failed


@dataclass(frozen=True)
class TrainedAsWorker:
    """Multi-worker training (TF_CONFIG): this process trained as a worker other than the chief,
    which evaluates and saves the model folder; nothing was saved here."""


@dataclass(frozen=True)
class Failed:
    """The run failed; `message` is meant to be shown to the user."""

    message: str


@dataclass(frozen=True)
class Usage:
    """The training process's last word: its peak resident memory."""

    peak_rss_mb: float


Event = DataReady | BatchProgress | EpochEnd | Finishing | Saved | TrainedAsWorker | Failed | Usage
EVENT_TYPES = {cls.__name__: cls for cls in (DataReady, BatchProgress, EpochEnd, Finishing, Saved,
                                             TrainedAsWorker, Failed, Usage)}


def encode(event: Event) -> str:
    """One event as a single JSON line (no newline)."""
    return json.dumps({"type": type(event).__name__, **asdict(event)}, separators=(",", ":"))


def decode(line: str) -> Event:
    """The event a line from `encode` describes; ValueError if it is not one."""
    try:
        values = json.loads(line)
        cls = EVENT_TYPES[values.pop("type")]
        return cls(**{f.name: values[f.name] for f in fields(cls)})
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not a training event: {line[:200]!r} ({error})") from None
