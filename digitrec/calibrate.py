"""Calibrated confidence: temperature scaling, expected calibration error, reliability bins.

Probabilities are tempered as p_i ** (1 / T), renormalised (the same as dividing the logits by
T). T is fitted on held-out data by minimising the negative log-likelihood; serving applies the
T stored in the model card. No TensorFlow here.
"""

from __future__ import annotations

import numpy as np

BINS = 10
EPSILON = 1e-12


def temper(probabilities, temperature: float) -> np.ndarray:
    """Probabilities with temperature `temperature` applied (rows renormalised)."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), EPSILON, 1.0))
    return softmax(logits / temperature)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def fit_temperature(probabilities, labels) -> float:
    """The T (0.05-20) that minimises the negative log-likelihood of `labels`."""
    logits = np.log(np.clip(np.asarray(probabilities, np.float64), EPSILON, 1.0))
    labels = np.asarray(labels, np.int64)

    def nll(temperature):
        tempered = softmax(logits / temperature)
        return -np.mean(np.log(np.clip(tempered[np.arange(len(labels)), labels], EPSILON, 1.0)))

    # Golden-section search on log T: the NLL is unimodal in T.
    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    a, b = high - ratio * (high - low), low + ratio * (high - low)
    fa, fb = nll(np.exp(a)), nll(np.exp(b))
    for _ in range(60):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - ratio * (high - low)
            fa = nll(np.exp(a))
        else:
            low, a, fa = a, b, fb
            b = low + ratio * (high - low)
            fb = nll(np.exp(b))
    return float(np.exp((low + high) / 2))


def reliability(probabilities, labels, bins: int = BINS) -> list[dict]:
    """Per confidence bin: range, count, mean confidence and accuracy (for a reliability diagram)."""
    probabilities = np.asarray(probabilities, np.float64)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for index in range(bins):
        inside = (confidence > edges[index]) & (confidence <= edges[index + 1])
        if index == 0:
            inside |= confidence == 0.0
        count = int(inside.sum())
        rows.append({"low": float(edges[index]), "high": float(edges[index + 1]), "count": count,
                     "confidence": float(confidence[inside].mean()) if count else None,
                     "accuracy": float(correct[inside].mean()) if count else None})
    return rows


def expected_calibration_error(probabilities, labels, bins: int = BINS) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over equal-width confidence bins."""
    rows = reliability(probabilities, labels, bins)
    total = sum(row["count"] for row in rows)
    return float(sum(row["count"] * abs(row["accuracy"] - row["confidence"])
                     for row in rows if row["count"]) / max(total, 1))
