"""Training settings and architecture presets (no TensorFlow here: pages import this)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

VALIDATION_SIZE = 5000
# Architecture presets. "standard" is the committed model (about 70 s an epoch on 2 CPU cores
# with augmentation); "fast" is the Retrain page's default (about 20 s an epoch: 4 epochs
# reach 99.26% on MNIST test in 92 s here, see benchmarks/retrain_speed.py).
ARCHITECTURES = {
    "fast": {"blocks": [(32, 1), (64, 1)], "dense": 128, "dropout": 0.3},
    "standard": {"blocks": [(32, 2), (64, 2)], "head_filters": 128, "dense": 128, "dropout": 0.4},
}


LIMITS = {  # caps so one browser user cannot tie up a shared server for hours
    "epochs": (1, 30),
    "batch_size": (16, 1024),
    "learning_rate": (1e-5, 0.1),
    "mnist_fraction": (0.005, 1.0),
    "sample_weight": (1, 3),  # see MAX_SAMPLE_WEIGHT
}

# --- saved samples in training: opt-in and bounded, so one visitor cannot poison a model --------
# 5,000 canvas 3s saved as "8" with weight 10 once made 98.3% of held-out canvas 3s read as 8.
MAX_SAMPLE_WEIGHT = LIMITS["sample_weight"][1]  # each saved sample is repeated at most this often
MAX_SAMPLE_SHARE = 0.03  # saved samples (with repeats) are at most 3% of the other training examples
MAX_SAMPLE_LABEL_SHARE = 0.005  # ... and those of any one label at most 0.5% of them
# A candidate more than this far below the active model on any digit (per-class accuracy on
# MNIST test or on the held-out canvas drawings) is "worse": promoting it asks first.
CLASS_TOLERANCE = 0.02


def sample_row_limits(other_examples: int) -> tuple[int, int]:
    """(total, per label): how many saved-sample rows (repeats included) a training set of
    `other_examples` MNIST and pen-digit examples may take."""
    return int(MAX_SAMPLE_SHARE * other_examples), int(MAX_SAMPLE_LABEL_SHARE * other_examples)


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a training run; stored in the model card."""

    architecture: str = "standard"
    epochs: int = 15
    batch_size: int = 128
    learning_rate: float = 2e-3
    augment: bool = True
    mnist_fraction: float = 1.0
    pendigits: bool = True  # add canvas-drawn digits of the training writers (1-20)
    user_samples: bool = False  # train on saved samples too (opt-in; bounded by MAX_SAMPLE_SHARE)
    sample_weight: int = 2  # how many times each saved user sample is repeated
    seed: int = 1
    validation_size: int = VALIDATION_SIZE

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{name} must be a number from {low} to {high}, got {value!r}")
        if not isinstance(self.user_samples, bool):
            raise ValueError("user_samples must be true or false")
        for name in ("epochs", "batch_size", "sample_weight", "seed", "validation_size"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a whole number")

    @classmethod
    def from_dict(cls, values: dict) -> "TrainingConfig":
        """Build a config from a dict (a card, a form), ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})



def config_dict(config: TrainingConfig) -> dict:
    """The config as a plain dict for the model card."""
    return asdict(config)
