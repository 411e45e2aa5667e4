"""Model cards: what a model folder's card.json says, as the Models page, the CLI, evaluation and
the recogniser read it.

`digitrec.evaluate.build_card` writes the JSON and `digitrec.companion_training` adds to it;
this module only reads. Every field is optional in the file: cards written by older versions
(architecture "standard"/"fast", `sample_weight: 10`, no per-class canvas figures, no
calibration) load, with what they lack left empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from digitrec import registry
from digitrec.config import TrainingConfig, architecture_name


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _whole(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _per_class(value) -> tuple[float, ...] | None:
    """Ten per-digit figures, or None (absent, or not ten numbers)."""
    if not isinstance(value, list) or len(value) != 10 or any(_number(v) is None for v in value):
        return None
    return tuple(float(v) for v in value)


@dataclass(frozen=True)
class Metrics:
    """Accuracy figures measured when the model was made."""

    mnist_test_accuracy: float | None = None
    mnist_test_per_class: tuple[float, ...] | None = None
    canvas_accuracy: float | None = None  # held-out pen writers drawn on a canvas
    canvas_per_class: tuple[float, ...] | None = None
    canvas_note: str | None = None
    validation_accuracy: float | None = None

    @classmethod
    def from_dict(cls, values) -> Metrics:
        values = _dict(values)
        note = values.get("pendigits_canvas_note")
        return cls(_number(values.get("mnist_test_accuracy")), _per_class(values.get("mnist_test_per_class")),
                   _number(values.get("pendigits_canvas_accuracy")),
                   _per_class(values.get("pendigits_canvas_per_class")),
                   note if isinstance(note, str) else None, _number(values.get("validation_accuracy")))


EXAMPLE_SOURCES = {  # the keys of Training.examples (dataset.prepare_data's counts) in words
    "mnist": "MNIST digits",
    "pendigits": "pen digits drawn on a canvas",
    "small_bitmaps": "small bitmaps",
    "user_samples": "saved samples",
    "user_samples_left_out": "saved samples left out (over the cap)",
}


@dataclass(frozen=True)
class Training:
    """How the model was trained."""

    config: dict = field(default_factory=dict)  # as stored: older cards' values may be outside today's limits
    seconds: float | None = None
    epochs_done: int | None = None
    stopped_early: bool | None = None
    examples: dict = field(default_factory=dict)  # examples per source (mnist, pendigits, user_samples, ...)

    @classmethod
    def from_dict(cls, values) -> Training:
        values = _dict(values)
        stopped = values.get("stopped_early")
        return cls(dict(_dict(values.get("config"))), _number(values.get("seconds")),
                   _whole(values.get("epochs_done")), stopped if isinstance(stopped, bool) else None,
                   {name: count for name, count in _dict(values.get("examples")).items()
                    if _whole(count) is not None})

    @property
    def used_samples(self) -> bool:
        """Whether it trained on saved samples (its config says so)."""
        return bool(self.config.get("user_samples"))

    def describe_examples(self) -> str:
        """The training examples in words, e.g. "16,500 MNIST digits, 7,200 pen digits drawn on a canvas"
        (a source this version does not know keeps its own name)."""
        return ", ".join(f"{count:,} {EXAMPLE_SOURCES.get(name, name.replace('_', ' '))}"
                         for name, count in self.examples.items())

    def training_config(self) -> TrainingConfig | None:
        """The config as a TrainingConfig, or None if today's limits refuse it (an older card's)
        or the card has none (a model averaged from others)."""
        if not self.config:
            return None
        try:
            return TrainingConfig.from_dict(self.config)
        except (ValueError, TypeError):
            return None


@dataclass(frozen=True)
class Calibration:
    """Temperatures and thresholds fitted after training; without them probabilities are used as
    they come and nothing is flagged as not a digit."""

    image_temperature: float = 1.0
    strokes_temperature: float = 1.0
    gate_threshold: float = 1.0
    strokes_threshold: float = 1.0
    gate_head_threshold: float = 1.0  # with a gate head (inference.GATE_HEAD_FILE) it decides
    # ... and this one for small ink (inference.SMALL_INK_SIDE); None: gate_head_threshold
    gate_head_small_threshold: float | None = None
    feature_mean: tuple[float, ...] | None = None  # the image model's mean penultimate features
    fitted_on: str | None = None

    @classmethod
    def from_dict(cls, values) -> Calibration:
        values = _dict(values)
        figures = {name: _number(values.get(name)) for name in
                   ("image_temperature", "strokes_temperature", "gate_threshold", "strokes_threshold",
                    "gate_head_threshold", "gate_head_small_threshold")}
        mean = values.get("feature_mean")
        fitted = values.get("fitted_on")
        return cls(**{name: value for name, value in figures.items() if value is not None},
                   feature_mean=tuple(float(v) for v in mean) if isinstance(mean, list) and mean else None,
                   fitted_on=fitted if isinstance(fitted, str) else None)


@dataclass(frozen=True)
class ModelCard:
    """A model folder's card.json, read."""

    version: str
    created: str = ""  # ISO time, UTC
    architecture: str = "?"  # the preset's current name ("standard" in an old card reads "deep")
    parameters: int | None = None
    metrics: Metrics = field(default_factory=Metrics)
    training: Training = field(default_factory=Training)
    confusion_mnist_test: list | None = None  # 10x10 counts: row = true digit
    calibration: Calibration = field(default_factory=Calibration)
    companions: dict = field(default_factory=dict)  # "strokes", "gate": how each was trained
    files: dict = field(default_factory=dict)  # file name -> bytes
    preprocess_version: str | None = None
    active: bool = False  # filled in by `list_cards`
    raw: dict = field(default_factory=dict, repr=False, compare=False)  # the JSON as stored

    @property
    def network(self) -> str:
        """The architecture in a few characters, for a table: "average of deep + deep" is
        "deep ×2" (a narrow column had cut it to "average of c…")."""
        prefix = "average of "
        if not self.architecture.startswith(prefix):
            return self.architecture
        parts = self.architecture[len(prefix):].split(" + ")
        return f"{parts[0]} ×{len(parts)}" if len(set(parts)) == 1 else " + ".join(parts)

    @classmethod
    def from_dict(cls, card: dict, version: str | None = None, active: bool | None = None) -> ModelCard:
        """Read a card's JSON (a dict); `version` and `active` override what it says."""
        card = _dict(card)
        created, architecture = card.get("created"), card.get("architecture")
        confusion = card.get("confusion_mnist_test")
        preprocess = card.get("preprocess_version")
        return cls(
            version=str(version if version is not None else card.get("version", "")),
            created=created if isinstance(created, str) else "",
            architecture=architecture_name(architecture) if isinstance(architecture, str) and architecture
            else "?",
            parameters=_whole(card.get("parameters")),
            metrics=Metrics.from_dict(card.get("metrics")),
            training=Training.from_dict(card.get("training")),
            confusion_mnist_test=confusion if isinstance(confusion, list) and len(confusion) == 10 else None,
            calibration=Calibration.from_dict(card.get("calibration")),
            companions=dict(_dict(card.get("companions"))),
            files={name: size for name, size in _dict(card.get("files")).items() if _whole(size) is not None},
            preprocess_version=None if preprocess is None else str(preprocess),
            active=bool(card.get("active", False)) if active is None else active,
            raw=card,
        )

    @property
    def not_digit_judge(self) -> str:
        """Who says "not a digit" for this model, in words for the Models page."""
        gate, head = (_dict(self.companions.get(name)) for name in ("gate", "gate_head"))
        if not gate:
            return "nothing: every drawing is read as a digit"
        source = f" (inherited from {gate['inherited_from']})" if gate.get("inherited_from") else ""
        if head and not head.get("inherited_from"):
            return f"the gate{source} and this model's own head"
        return f"the gate{source} alone, without a head of its own: it lets more non-digits through"

    @property
    def created_text(self) -> str:
        """The creation time to the minute, e.g. "2026-11-24 09:30"."""
        return self.created[:16].replace("T", " ")

    @property
    def size_bytes(self) -> int:
        """The model folder's files (as the card lists them) together."""
        return sum(self.files.values())


def read(folder) -> ModelCard:
    """The card of a model folder; ModelError if it is absent or unreadable."""
    return ModelCard.from_dict(registry.read_card(folder), version=Path(folder).name)


def list_cards(directory: Path | None = None) -> list[ModelCard]:
    """Cards of every model folder, newest first, with `active` filled in (see registry.list_models)."""
    return [ModelCard.from_dict(card) for card in registry.list_models(directory)]
