"""The committed default model: loadable, consistent with its card, and sensible."""

import json

from router_ml import Router, Tier
from router_ml.embedder import DEFAULT_EMBEDDER_ID


def test_card_describes_the_shipped_model(shipped_model_dir):
    card = json.loads((shipped_model_dir / "card.json").read_text())
    assert card["embedder"]["id"] == DEFAULT_EMBEDDER_ID and card["embedder"]["dim"] == 384
    t = card["training"]
    assert t["n_train"] + t["n_dev"] == t["n_rows"] and t["n_rows"] >= 600
    assert 0 <= card["dev_metrics"]["underroute_rate"] <= 1


def test_router_load_default_routes_obvious_requests_apart(shipped_model_dir):
    router = Router.load(shipped_model_dir)
    easy = router.route("What's the capital of Canada?")
    hard = router.route(
        "Review our payment service, ledger and reconciliation jobs (three repos) for race conditions that "
        "could double-charge customers during failover, and design the fix with idempotency keys."
    )
    assert easy.source == hard.source == "classifier"
    assert easy.probabilities["COMPLEX"] < hard.probabilities["COMPLEX"]
    assert easy.tier < hard.tier
    assert easy.tier is Tier.SIMPLE
