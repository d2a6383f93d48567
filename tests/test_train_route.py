"""Train -> save -> load -> route, end to end on the small fixture (fast embedder)."""

import json

import pytest

from router_ml import Router, Tier
from router_ml.predictor import Predictor
from train.trainer import train_model


def test_train_writes_card_with_dev_metrics_and_routes(tiny_data, hash_embedder, tmp_path):
    result = train_model(tiny_data, tmp_path / "m", embedder=hash_embedder, dev_fraction=0.25)
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    t = card["training"]
    assert t["n_rows"] == 48 and t["n_train"] + t["n_dev"] == 48 and len(t["data_sha256"]) == 64
    assert set(card["dev_metrics"]) >= {"accuracy", "underroute_rate", "overroute_rate", "confusion"}
    assert card["models"]["MEDIUM"] == "claude-sonnet-4-6"
    assert result.rules_dev_report["n"] == t["n_dev"]

    router = Router(Predictor.load(tmp_path / "m", embedder=hash_embedder))
    d = router.route("Translate 'good night' into Spanish.")
    assert d.source == "classifier" and d.model == router.tiers.model(d.tier)
    assert set(d.probabilities) == {"SIMPLE", "MEDIUM", "COMPLEX"}
    assert d.confidence == max(d.probabilities.values()) and d.latency_ms >= 0
    # The fixture is separable enough that training rows come back with their own labels.
    from router_ml.data import load_rows

    rows = load_rows(tiny_data)
    batch = router.route_batch([r.raw for r in rows])
    acc = sum(d.tier is r.tier for d, r in zip(batch, rows)) / len(rows)
    assert acc > 0.8
    assert [d.tier for d in batch[:5]] == [router.route(r.raw).tier for r in rows[:5]]


def test_training_is_reproducible(tiny_data, hash_embedder, tmp_path):
    a = train_model(tiny_data, tmp_path / "a", embedder=hash_embedder)
    b = train_model(tiny_data, tmp_path / "b", embedder=hash_embedder)
    assert (tmp_path / "a" / "head.joblib").read_bytes() == (tmp_path / "b" / "head.joblib").read_bytes()
    assert a.card["dev_metrics"] == b.card["dev_metrics"]


def test_router_without_model_uses_rules():
    d = Router().route("Translate 'cat' into French")
    assert d.source == "rules" and d.tier is Tier.SIMPLE and d.model == "claude-haiku-4-5"
    assert "light-task word" in d.reason


def test_route_rejects_malformed_input_with_value_error():
    with pytest.raises(ValueError, match="no user turn"):
        Router().route([{"role": "assistant", "content": "hi"}])
