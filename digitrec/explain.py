"""Why did the model read that? Occlusion sensitivity of one reading, in one batched model call.

Every square patch of the 28x28 model input is blanked in turn (PATCH pixels wide, moved by
STRIDE), and the model reads all the blanked copies together with the original in a single
call through the Recognizer (LiteRT when serving: no TensorFlow). For each copy the change of
the margin between the answer and the runner-up, log p(answer) - log p(runner-up), says how
much that patch argued for one against the other; each pixel gets the mean over the patches
that cover it:

- evidence > 0: blanking it lowers the margin: that part of the drawing drove the answer;
- evidence < 0: blanking it raises the margin: that part pulled towards the runner-up.

Blanking empty background changes nothing, so the evidence sits on and around the ink.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digitrec.preprocess import MODEL_SIZE

PATCH = 4  # pixels of the 28x28 input blanked at a time (MNIST strokes are 2-3 px wide)
STRIDE = 2
EPSILON = 1e-7  # keeps log() finite for a probability the model rounds to 0

_STARTS = tuple(range(0, MODEL_SIZE - PATCH + 1, STRIDE))
BATCH = 1 + len(_STARTS) ** 2  # the original and every blanked copy: one model call (170)


@dataclass(frozen=True)
class Explanation:
    """Which pixels of a model input drove the answer and which pulled towards the runner-up."""

    answer: int
    runner_up: int
    evidence: np.ndarray  # (28, 28) float: margin change in nats, > 0 for the answer

    @property
    def strongest(self) -> float:
        """The largest absolute evidence (0.0 when nothing mattered)."""
        return float(np.abs(self.evidence).max())


def occluded_copies(model_input: np.ndarray) -> np.ndarray:
    """The input with each PATCH x PATCH square blanked in turn, (len(_STARTS)**2, 28, 28)."""
    image = np.asarray(model_input, np.float32).reshape(MODEL_SIZE, MODEL_SIZE)
    copies = np.repeat(image[None], len(_STARTS) ** 2, axis=0)
    for index, (top, left) in enumerate((t, left) for t in _STARTS for left in _STARTS):
        copies[index, top : top + PATCH, left : left + PATCH] = 0.0
    return copies


def explain(recognizer, model_input: np.ndarray, pair: tuple[int, int] | None = None) -> Explanation | None:
    """Occlusion evidence for what `recognizer` reads in a preprocessed 28x28 input.

    `recognizer` needs only `probabilities((N, 28, 28)) -> (N, 10)`: it is called exactly
    once, with BATCH images. None for an input without ink (nothing to explain). `pair`
    (answer, runner-up): the two digits to weigh against each other, e.g. the page's answer and
    second choice when strokes took part in them; by default the picture's own top two.
    """
    image = np.asarray(model_input, np.float32).reshape(MODEL_SIZE, MODEL_SIZE)
    if not np.isfinite(image).all() or image.max() <= 0:
        return None
    batch = np.concatenate([image[None], occluded_copies(image)])
    probabilities = np.asarray(recognizer.probabilities(batch), np.float64)
    if probabilities.shape != (BATCH, 10):
        raise ValueError(f"the model returned {probabilities.shape} probabilities for {BATCH} inputs")
    order = np.argsort(probabilities[0])[::-1]
    answer, runner_up = (int(order[0]), int(order[1])) if pair is None else (int(pair[0]), int(pair[1]))
    if answer == runner_up or not (0 <= answer < 10 and 0 <= runner_up < 10):
        raise ValueError(f"cannot weigh {answer} against {runner_up}")
    logs = np.log(probabilities + EPSILON)
    margins = logs[:, answer] - logs[:, runner_up]
    drops = margins[0] - margins[1:]  # > 0: blanking this patch weakened the answer
    total = np.zeros((MODEL_SIZE, MODEL_SIZE))
    count = np.zeros((MODEL_SIZE, MODEL_SIZE))
    for drop, (top, left) in zip(drops, ((t, left) for t in _STARTS for left in _STARTS)):
        total[top : top + PATCH, left : left + PATCH] += drop
        count[top : top + PATCH, left : left + PATCH] += 1
    return Explanation(answer, runner_up, (total / np.maximum(count, 1)).astype(np.float32))
