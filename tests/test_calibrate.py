"""Calibration: temperature fitting recovers a known temperature; ECE and reliability bins."""

import numpy as np

from digitrec.calibrate import expected_calibration_error, fit_temperature, reliability, softmax, temper


def sampled(temperature, count=20000, seed=0):
    """Labels drawn from softmax(logits / T): probabilities softmax(logits) are off by T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (count, 10))
    true = softmax(logits / temperature)
    labels = np.array([rng.choice(10, p=row) for row in true])
    return softmax(logits), labels


def test_fitted_temperature_recovers_the_true_one_and_fixes_the_ece():
    probabilities, labels = sampled(2.0)
    temperature = fit_temperature(probabilities, labels)
    assert 1.85 < temperature < 2.15
    before = expected_calibration_error(probabilities, labels)
    after = expected_calibration_error(temper(probabilities, temperature), labels)
    assert before > 0.05 and after < 0.02


def test_temper_keeps_the_ranking_and_sums_to_one():
    probabilities, _ = sampled(1.0, count=50)
    for temperature in (0.3, 1.0, 4.0):
        tempered = temper(probabilities, temperature)
        np.testing.assert_allclose(tempered.sum(axis=1), 1.0, atol=1e-9)
        assert (tempered.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    np.testing.assert_allclose(temper(probabilities, 1.0), probabilities, atol=1e-9)


def test_reliability_bins_count_every_prediction():
    probabilities = np.array([[0.95, 0.05], [0.55, 0.45], [0.15, 0.85], [0.92, 0.08]])
    labels = np.array([0, 1, 1, 0])
    rows = reliability(probabilities, labels)
    assert sum(row["count"] for row in rows) == 4
    top = rows[-1]
    assert top["count"] == 2 and top["accuracy"] == 1.0 and abs(top["confidence"] - 0.935) < 1e-9
    # ECE by hand: bin 0.5-0.6 has one wrong at 0.55, bin 0.8-0.9 one right at 0.85, top bin 2 right.
    expected = (1 * 0.55 + 1 * 0.15 + 2 * 0.065) / 4
    assert abs(expected_calibration_error(probabilities, labels) - expected) < 1e-9
