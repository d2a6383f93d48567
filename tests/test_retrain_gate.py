"""The gate: promote only if underroute does not rise and accuracy does not fall beyond the tolerances."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from traffic import REVERSE, labeled_rows

from router_ml.data import Row
from router_ml.errors import ConfigError
from router_ml.normalize import normalize
from router_ml.predictor import Predictor
from router_ml.tiers import Tier
from train.retrain_gate import GatePolicy, compare, gate, score


def rows(n: int, seed: int, **kw) -> list[Row]:
    return [Row(raw=r, request=normalize(r), tier=Tier[r["tier"]], where=r["id"])
            for r in labeled_rows(n, seed, "g", **kw)]


@pytest.fixture(scope="module")
def models():
    """A good model (right labels) and a bad one (SIMPLE and COMPLEX swapped), trained once."""
    from conftest import HashEmbedder

    train = rows(90, 1)
    good = Predictor(HashEmbedder(), Cs=(0.3, 1.0)).fit([r.request for r in train], [r.tier for r in train])
    flipped = rows(90, 1, flip_every=1, flip=REVERSE)
    bad = Predictor(HashEmbedder(), Cs=(0.3, 1.0)).fit([r.request for r in flipped], [r.tier for r in flipped])
    return good, bad


@pytest.fixture(scope="module")
def evaluation() -> list[Row]:
    return rows(60, 2)


def test_a_better_challenger_is_promoted_and_a_worse_one_refused_with_reasons(models, evaluation):
    good, bad = models
    up = gate(bad, good, {"frozen eval": evaluation})
    assert up.promote and up.verdict == "promote" and up.reasons == []
    s = up.sets["frozen eval"]
    assert s["challenger"]["accuracy"] > s["champion"]["accuracy"] and s["gated"]
    down = gate(good, bad, {"frozen eval": evaluation, "new holdout": evaluation[:30]})
    assert not down.promote and down.verdict == "refuse"
    assert any(r.startswith("frozen eval: underroute") for r in down.reasons)
    assert any(r.startswith("new holdout: accuracy") for r in down.reasons)


def test_an_equal_challenger_passes_the_tolerances(models, evaluation):
    good, _ = models
    strict = GatePolicy(max_underroute_rise=0.0, max_accuracy_drop=0.0, noise_z=0.0)
    result = gate(good, copy.deepcopy(good), {"frozen eval": evaluation}, strict)
    assert result.promote


def test_small_sets_are_shown_but_not_gated_and_some_set_must_count(models, evaluation):
    good, bad = models
    result = gate(good, bad, {"frozen eval": evaluation[:5]}, GatePolicy(min_rows=20))
    assert not result.sets["frozen eval"]["gated"]
    assert not result.promote and "nothing to compare on" in result.reasons[0]
    assert "not gated" in result.format()


def test_without_a_champion_the_challenger_is_promoted(models, evaluation):
    good, _ = models
    result = gate(None, good, {"frozen eval": evaluation})
    assert result.promote and result.verdict == "promote (no champion)"
    assert result.sets["frozen eval"]["champion"] is None
    assert "- -> " in result.format()


def test_the_table_shows_champion_then_challenger_and_the_verdict(models, evaluation):
    good, bad = models
    text = gate(good, bad, {"frozen eval": evaluation}).format()
    old, new = score(good, evaluation)["accuracy"], score(bad, evaluation)["accuracy"]
    assert f"{old:.3f} -> {new:.3f}" in text and "verdict: REFUSE" in text


def test_scores_use_the_served_decision_the_card_budget(models, evaluation):
    good, _ = models
    cautious = copy.deepcopy(good)
    cautious.card_ = {"serving": {"underroute_budget": 0.0}}  # COMPLEX unless certain: never underroutes
    assert score(cautious, evaluation)["underroute_rate"] == 0.0
    assert score(cautious, evaluation)["overroute_rate"] > score(good, evaluation)["overroute_rate"]


@pytest.mark.parametrize("n, refused", [(30, False), (300, True)])
def test_the_same_drop_is_noise_on_few_rows_and_a_change_on_many(n, refused):
    true = np.zeros(n, dtype=int)
    old = true.copy()
    new = true.copy()
    new[: n // 15] = 1  # the challenger overroutes one row in 15 more: accuracy -0.067
    reasons, noise = compare("holdout", true, old, new, GatePolicy())
    assert bool(reasons) is refused and noise["underroute"] == 0.0
    bare, _ = compare("holdout", true, old, new, GatePolicy(noise_z=0.0))
    assert bare and "accuracy 1.000 -> 0.933" in bare[0]  # without the noise margin, both are refused


def test_policy_is_validated():
    with pytest.raises(ConfigError, match="max_accuracy_drop"):
        GatePolicy(max_accuracy_drop=2)
    with pytest.raises(ConfigError, match="noise_z"):
        GatePolicy(noise_z=-1)
    with pytest.raises(ConfigError, match="min_rows"):
        GatePolicy(min_rows=0)
