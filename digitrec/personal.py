"""Personal adaptation: a person's corrections and confirmations change how *their* next drawing is read.

No training: each example is kept as what the served models see of it (the image model's
penultimate features and, when drawn, the pen trajectory). A new drawing is compared with the
person's examples; examples that look much alike lend their labels (a kernel nearest-neighbour
vote), mixed into the shared model's calibrated (fused) probabilities p:

    E(c)  = Σ_{examples i of class c} exp((similarity_i − 1) / BANDWIDTH)
    λ     = ΣE / (ΣE + KAPPA)
    p'(c) = (1 − λ) · p(c) + λ · E(c) / ΣE

Only near-identical examples count (a narrow kernel), so a person's 4s written like 5s pull
their next such 4 towards 4, while a drawing unlike any example (ΣE ≈ 0) is read as before. The
shared model is never changed; one person's examples live in their own PersonalRecognizer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from digitrec.limits import MAX_PERSONAL_EXAMPLES as MAX_EXAMPLES  # per person: the newest kept

# Chosen on pendigits writers 1-20 (benchmarks/personal.py's protocol), never on writers 21-30,
# which the benchmark reports.
KAPPA = 0.5  # the evidence at which the examples' vote and the shared model weigh the same
BANDWIDTH = 0.15
TRAJECTORY_SHARE = 0.5  # how much the pen path counts in the similarity when both have one


@dataclass(frozen=True)
class Example:
    """What the models see of one of a person's drawings, with its true label."""

    features: np.ndarray  # unit vector: the image model's penultimate features, centred
    trajectory: np.ndarray | None  # unit vector: the resampled pen path, or None
    label: int


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


def _trajectory_vector(trajectory) -> np.ndarray | None:
    if trajectory is None:
        return None
    return _unit(np.asarray(trajectory, np.float64)[:, :4].ravel())


class PersonalRecognizer:
    """A Recognizer plus one person's examples (immutable: `adding` returns a new one)."""

    def __init__(self, base, examples: tuple[Example, ...] = ()):
        self.base = base
        self.examples = tuple(examples)[-MAX_EXAMPLES:]
        centre = base.card.calibration.feature_mean
        self._centre = None if centre is None else np.asarray(centre, np.float64)
        if self.examples:  # the examples as matrices, so a drawing is compared with all at once
            self._features = np.stack([e.features for e in self.examples])
            self._has_path = np.array([e.trajectory is not None for e in self.examples])
            width = next((len(e.trajectory) for e in self.examples if e.trajectory is not None), 1)
            self._paths = np.stack([e.trajectory if e.trajectory is not None else np.zeros(width)
                                    for e in self.examples])
            self._labels = np.array([e.label for e in self.examples])

    def __getattr__(self, name):  # version, card, reads_strokes, probabilities, ... of the shared model
        return getattr(self.base, name)

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def adapts(self) -> bool:
        """Whether the shared model exports the features personal examples are compared by."""
        return self.base.exports_features

    def adding(self, items) -> PersonalRecognizer:
        """A new PersonalRecognizer that also knows `items`: (image, label) or (image, label, strokes)."""
        items = list(items)
        for item in items:
            if not 2 <= len(item) <= 3:
                raise ValueError("a personal example is (image, label) or (image, label, strokes)")
            label = item[1]
            if (isinstance(label, bool) or not isinstance(label, (int, np.integer))
                    or not 0 <= int(label) <= 9):
                raise ValueError(f"a personal example's label must be a digit 0-9, got {label!r}")
        if not items:
            return PersonalRecognizer(self.base, self.examples)
        reading = self.base.read([item[0] for item in items],
                                 [item[2] if len(item) == 3 else None for item in items])
        if reading.features is None:
            return PersonalRecognizer(self.base, self.examples)  # this model cannot adapt
        new = []
        for row, index in enumerate(reading.drawn):  # empty drawings teach nothing
            new.append(Example(self._centred(reading.features[row]),
                               _trajectory_vector(reading.trajectories[index]), int(items[index][1])))
        return PersonalRecognizer(self.base, self.examples + tuple(new))

    def _centred(self, features: np.ndarray) -> np.ndarray:
        features = np.asarray(features, np.float64)
        return _unit(features - self._centre if self._centre is not None else features)

    def evidence(self, features: np.ndarray, trajectory) -> np.ndarray:
        """Per class, the summed kernel of the examples that look like this drawing."""
        evidence = np.zeros(10)
        if not self.examples:
            return evidence
        similarity = self._features @ self._centred(features)
        path = _trajectory_vector(trajectory)
        if path is not None and self._has_path.any():
            both = (1 - TRAJECTORY_SHARE) * similarity + TRAJECTORY_SHARE * (self._paths @ path)
            similarity = np.where(self._has_path, both, similarity)
        np.add.at(evidence, self._labels, np.exp((similarity - 1.0) / BANDWIDTH))
        return evidence

    def predict(self, image, strokes=None):
        """Like Recognizer.predict, adapted to this person's examples."""
        return self.predict_many([image], [strokes])[0]

    def predict_many(self, images, strokes=None):
        """Like Recognizer.predict_many, adapted; each Prediction keeps the shared model's answer."""
        reading = self.base.read(images, strokes)
        if not self.examples or reading.features is None or not reading.drawn:
            return reading.predictions()
        adapted = reading.probabilities.copy()
        not_digit = reading.not_digit.copy()
        for row, index in enumerate(reading.drawn):
            evidence = self.evidence(reading.features[row], reading.trajectories[index])
            total = float(evidence.sum())
            if total > 0:
                share = total / (total + KAPPA)
                adapted[row] = (1 - share) * adapted[row] + share * evidence / total
                # The person said drawings like this one are digits: their examples outweigh the gate.
                not_digit[row] &= share < 0.5
        return dataclasses.replace(reading, not_digit=not_digit).predictions(
            adapted, base=reading.probabilities)
