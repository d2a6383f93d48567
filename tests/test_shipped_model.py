"""The committed default model: loadable, consistent with its card, and sensible."""

import json

from router_ml import Router, Tier
from router_ml.embedder import DEFAULT_EMBEDDER_ID


def test_card_describes_the_shipped_model(shipped_model_dir):
    card = json.loads((shipped_model_dir / "card.json").read_text())
    # any backend of the packaged MiniLM: fp32 (384-dim), "#onnx-int8" (384) or "#static-256" (256)
    assert card["embedder"]["id"].startswith(DEFAULT_EMBEDDER_ID) and card["embedder"]["dim"] in (384, 256)
    t = card["training"]
    assert t["n_train"] + t["n_dev"] == t["n_rows"] and t["n_rows"] >= 600
    assert 0 <= card["dev_metrics"]["underroute_rate"] <= 1


def test_router_load_default_routes_obvious_requests_apart(shipped_model_dir):
    router = Router.load(shipped_model_dir, llm=None)
    easy_q = "What's the capital of Canada?"
    hard_q = (
        "Review our payment service, ledger and reconciliation jobs (three repos) for race conditions that "
        "could double-charge customers during failover, and design the fix with idempotency keys."
    )
    easy, hard = router.route(easy_q), router.route(hard_q)
    assert easy.probabilities["COMPLEX"] < hard.probabilities["COMPLEX"]
    assert max(easy.probabilities, key=easy.probabilities.get) == "SIMPLE"
    assert max(hard.probabilities, key=hard.probabilities.get) == "COMPLEX"
    assert easy.tier < hard.tier and hard.tier is Tier.COMPLEX


def test_shipped_card_carries_fitted_serving_numbers(shipped_model_dir):
    card = json.loads((shipped_model_dir / "card.json").read_text())
    s = card["serving"]
    assert 0 < s["underroute_budget"] < 1 and 0 < s["confidence_threshold"] < 1 and s["temperature"] > 0
    router = Router.load(shipped_model_dir, llm=None)
    assert (router.underroute_budget, router.confidence_threshold) == (s["underroute_budget"], s["confidence_threshold"])
    # the fitted budget keeps dev underroute (classifier alone) under the 5% target
    assert card["dev_serving"]["classifier_budget"]["underroute_rate"] < 0.05
