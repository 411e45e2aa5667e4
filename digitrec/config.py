"""Training settings and architecture presets (no TensorFlow here: pages import this)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

VALIDATION_SIZE = 5000
# Architecture presets, named for what they are. "deep" (5 convolutions, 207k parameters) is the
# committed model's network: about 70 s an epoch on 2 CPU cores with augmentation. "shallow"
# (2 convolutions and a wide dense layer: 422k parameters, more than "deep" but far less
# computation) is the Retrain page's default: about 20 s an epoch, 4 epochs reach 99.26% on
# MNIST test (benchmarks/retrain_speed.py).
ARCHITECTURES = {
    "shallow": {"blocks": [(32, 1), (64, 1)], "dense": 128, "dropout": 0.3},
    "deep": {"blocks": [(32, 2), (64, 2)], "head_filters": 128, "dense": 128, "dropout": 0.4},
    "wide": {"blocks": [(48, 2), (96, 2)], "head_filters": 192, "dense": 192, "dropout": 0.4},
}
ARCHITECTURE_NOTES = {
    "shallow": "2 convolutions, 422k weights: quick, about 20 s an epoch on 2 CPU cores",
    "deep": "5 convolutions, 207k weights, about 3.5x the work: the committed model averages two of "
            "these (414k weights)",
    "wide": "5 convolutions 1.5x as wide, 464k weights, about 2.2x the work of deep: for a GPU",
}
# The presets' former names, as older model cards and commands spell them.
ARCHITECTURE_ALIASES = {"fast": "shallow", "standard": "deep"}


def architecture_name(name: str) -> str:
    """The current name of a preset, given its current or former name (unknown names as they are)."""
    return ARCHITECTURE_ALIASES.get(name, name)


LIMITS = {  # caps so one browser user cannot tie up a shared server for hours
    "epochs": (1, 30),
    "batch_size": (16, 1024),
    "learning_rate": (1e-5, 0.1),
    "mnist_fraction": (0.005, 1.0),
    "sample_weight": (1, 3),  # see MAX_SAMPLE_WEIGHT
    "pen_renderings": (1, 6),
    "small_images": (0, 30_000),
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


def _setting(default, help: str, cli: bool = True):
    """A TrainingConfig field with its help text (a switch's says what it adds: "image augmentation");
    `cli=False` keeps it out of the command line's `train` options (digitrec.cli generates one option
    per field from these)."""
    return field(default=default, metadata={"help": help, "cli": cli})


@dataclass(frozen=True)
class TrainingConfig:
    """Everything that decides a training run; stored in the model card."""

    architecture: str = _setting("deep", "shallow (2 convolutions, quick) | deep (5 convolutions, the "
                                         "committed model's); the former names fast and standard still work")
    epochs: int = _setting(15, "passes over the training set")
    batch_size: int = _setting(128, "examples per training step")
    learning_rate: float = _setting(2e-3, "peak learning rate (warm-up, then cosine decay)")
    augment: bool = _setting(True, "image augmentation (rotate, shift, zoom, stroke width)")
    mnist_fraction: float = _setting(1.0, "share of MNIST train to use")
    pendigits: bool = _setting(True, "canvas-drawn pen digits of the training writers (1-20)")
    pen_renderings: int = _setting(2, "draw each training writer's pen digit this many ways")
    wide_pens: bool = _setting(False, "pen digits drawn at every pen width (6-40 px) and size (25-85%) "
                                      "visitors use (data.USER_PENS, USER_HEIGHTS)")
    pen_styles: bool = _setting(False, "half of the pen digits' drawings varied as people write: slant, "
                                       "aspect, wobble, and styles MNIST rarely has (1s with a long flag "
                                       "or a foot, crossed 7s, slashed 0s)")
    small_images: int = _setting(0, "add this many MNIST training digits redrawn as small grey/1-bit bitmaps")
    weight_average: bool = _setting(False, "an exponential moving average of the weights, saved as the model")
    # Saved samples come from the app's samples database: the Retrain page offers them, the CLI does not.
    user_samples: bool = _setting(False, "saved samples too (opt-in; bounded by MAX_SAMPLE_SHARE)",
                                  cli=False)
    sample_weight: int = _setting(2, "how many times each saved user sample is repeated", cli=False)
    gate_head: bool = _setting(True, "its own not-a-digit head (about a minute), fitted when the "
                                     "candidate inherits a gate: the active model's head reads that "
                                     "model's features, not the candidate's")
    seed: int = _setting(1, "random seed (data order, initial weights, augmentation)")
    validation_size: int = _setting(VALIDATION_SIZE, "MNIST training images held back for validation")
    validation_seed: int | None = _setting(None, "seed of the MNIST validation split and of the small "
                                                 "bitmaps' choice (default: --seed); networks trained "
                                                 "with different seeds and one validation seed can be "
                                                 "averaged and calibrated on all of it")

    @property
    def split_seed(self) -> int:
        """The seed `dataset.prepare_data` splits MNIST by: validation_seed, else seed."""
        return self.seed if self.validation_seed is None else self.validation_seed

    def __post_init__(self):
        if isinstance(self.architecture, str) and self.architecture in ARCHITECTURE_ALIASES:
            object.__setattr__(self, "architecture", ARCHITECTURE_ALIASES[self.architecture])
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {sorted(ARCHITECTURES)}")
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise ValueError(f"{name} must be a number from {low} to {high}, got {value!r}")
        for name in ("user_samples", "wide_pens", "pen_styles", "weight_average", "gate_head"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false")
        for name in ("epochs", "batch_size", "sample_weight", "seed", "validation_size",
                     "pen_renderings", "small_images", "split_seed"):
            if not isinstance(getattr(self, name), int) or isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a whole number")

    @classmethod
    def from_dict(cls, values: dict) -> TrainingConfig:
        """Build a config from a dict (a card, a form), ignoring unknown keys."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})



def config_dict(config: TrainingConfig) -> dict:
    """The config as a plain dict for the model card."""
    return asdict(config)


# --- the Retrain page's defaults: the quick preset -------------------------------------------
RETRAIN_DEFAULTS = TrainingConfig(architecture="shallow", epochs=4, batch_size=128,
                                  learning_rate=0.003, augment=False, mnist_fraction=1.0,
                                  pendigits=True)

# --- how much training a visitor may start on a shared server --------------------------------
# Work is counted in example-epochs of the shallow network: one training example through the
# shallow preset once, without augmentation (about 0.3 ms on 2 CPU cores).
WORK_PER_EXAMPLE = {"shallow": 1.0, "deep": 2.5, "wide": 5.6}
AUGMENT_WORK = 1.4  # "deep" with augmentation: 3.5x the shallow preset's work per example
MNIST_TRAINING_IMAGES = 60_000  # before the validation images are set aside
PENDIGITS_TRAINING_DIGITS = 4_996  # writers 1-20, each digit drawn `pen_renderings` times
# A visitor may start up to the quick preset's work (4 epochs x 64,992 examples = 259,968,
# about 2 min here) with room for a fifth epoch; more needs the admin password when one is set
# (without one, nobody can start more from the browser: use `python -m digitrec train`).
VISITOR_WORK_LIMIT = 330_000
# After a training ends, the next one may start this much later (the admin's at once).
TRAINING_COOLDOWN_S = 60


def training_work(config: TrainingConfig, sample_count: int = 0) -> int:
    """Estimated work of a training run in example-epochs of the shallow network (see above).

    Saved samples (when the config uses them) count with their weight, within the share
    `sample_row_limits` allows them (as in `digitrec.dataset.prepare_data`).
    """
    mnist = max(1, int((MNIST_TRAINING_IMAGES - config.validation_size) * config.mnist_fraction))
    examples = (mnist + config.small_images
                + (PENDIGITS_TRAINING_DIGITS * config.pen_renderings if config.pendigits else 0))
    if config.user_samples:
        examples += min(max(sample_count, 0) * config.sample_weight, sample_row_limits(examples)[0])
    factor = WORK_PER_EXAMPLE[config.architecture] * (AUGMENT_WORK if config.augment else 1.0)
    return int(config.epochs * examples * factor)
