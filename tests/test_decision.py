"""The decision rule, the circuit breaker, and the fitting of the serving numbers."""

import numpy as np
import pytest

from router_ml import Tier
from router_ml.breaker import CircuitBreaker
from router_ml.decision import budget_tier, risk_above, safe_tier
from router_ml.metrics import expected_calibration_error
from router_ml.predictor import softmax
from train.calibration import fit_budget, fit_temperature, fit_threshold, serving_metrics, ServingFit


def test_budget_picks_the_cheapest_tier_within_the_risk():
    p = [0.6, 0.3, 0.1]
    assert risk_above(p, Tier.SIMPLE) == pytest.approx(0.4)
    assert budget_tier(p, 0.5) is Tier.SIMPLE
    assert budget_tier(p, 0.39) is Tier.MEDIUM
    assert budget_tier(p, 0.05) is Tier.COMPLEX
    assert budget_tier(p, 1.0) is Tier.SIMPLE and budget_tier([0.0, 0.0, 1.0], 0.0) is Tier.COMPLEX
    with pytest.raises(ValueError):
        budget_tier(p, -0.1)


def test_safe_tier_is_one_up_from_the_best_guess_and_never_below_the_budget():
    assert safe_tier([0.8, 0.15, 0.05], 0.5) is Tier.MEDIUM
    assert safe_tier([0.1, 0.8, 0.1], 0.5) is Tier.COMPLEX
    assert safe_tier([0.1, 0.1, 0.8], 0.5) is Tier.COMPLEX
    assert safe_tier([0.5, 0.1, 0.4], 0.1) is Tier.COMPLEX  # the budget asks for more than one up


def test_breaker_states():
    now = [0.0]
    b = CircuitBreaker(failure_threshold=2, reset_after=10, clock=lambda: now[0])
    assert b.allow() and b.state == "closed"
    b.record_failure()
    b.record_success()  # success resets the count
    b.record_failure()
    assert b.state == "closed"
    b.record_failure()
    assert b.state == "open" and not b.allow()
    now[0] = 10.0
    assert b.state == "half-open"
    assert b.allow() and not b.allow()  # a single trial call
    b.record_failure()  # the trial failed: open again
    assert b.state == "open" and b.opened_count == 2
    now[0] = 20.0
    assert b.allow()
    b.record_success()
    assert b.state == "closed" and b.allow()


def test_ece_by_hand():
    # two rows at confidence 0.9 (one right, one wrong) and one at 0.6 (right)
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.2, 0.6, 0.2]])
    y = ["SIMPLE", "MEDIUM", "MEDIUM"]
    # bin 0.8-0.9: accuracy 0.5, confidence 0.9 -> 2/3 * 0.4; bin 0.5-0.6: 1/3 * 0.4
    assert expected_calibration_error(y, probs) == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.4)


def _synthetic(t_true=2.5, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, 3))
    p = softmax(logits, t_true)
    y = np.array([rng.choice(3, p=row) for row in p])
    return logits, y


def test_temperature_recovers_the_true_scale_and_lowers_ece():
    logits, y = _synthetic()
    t = fit_temperature(logits, y)
    assert t == pytest.approx(2.5, rel=0.15)
    assert expected_calibration_error(y, softmax(logits, t)) < expected_calibration_error(y, softmax(logits, 1.0))


def test_budget_fit_meets_its_target_and_threshold_its_share():
    logits, y = _synthetic()
    probs = softmax(logits, 2.5)
    b = fit_budget(probs, y, 0.05)
    under = np.mean([budget_tier(p, b) < t for p, t in zip(probs, y)])
    assert under <= 0.05
    assert np.mean([budget_tier(p, b + 0.05) < t for p, t in zip(probs, y)]) > 0.05  # the cheapest that meets it
    th = fit_threshold(probs, 0.2)
    assert np.mean(probs.max(axis=1) < th) == pytest.approx(0.2, abs=0.01)
    m = serving_metrics(logits, y, ServingFit(2.5, b, th, 0.05, 0.2, "synthetic", len(y)))
    assert m["fallback_share"] == pytest.approx(0.2, abs=0.01) and m["classifier_budget"]["underroute_rate"] <= 0.05
