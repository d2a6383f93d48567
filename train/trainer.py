"""Train a ``Predictor`` on labeled data and write the artifact with its model card.

The dev split is held out from fitting and is what the card's metrics describe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router_ml.data import Row, load_rows, rows_sha256
from router_ml.embedder import Embedder
from router_ml.metrics import routing_report
from router_ml.predictor import Predictor
from router_ml.rules import RuleRouter
from router_ml.tiers import Tier, TierConfig

from .calibration import DEFAULT_FALLBACK_RATE, DEFAULT_TARGET_UNDERROUTE, fit_serving, oof_logits, serving_metrics
from .lexical import fit_lexical
from .splits import split_rows

__all__ = ["TrainResult", "train_model"]


@dataclass
class TrainResult:
    predictor: Predictor
    card: dict[str, Any]
    dev_report: dict[str, Any]
    rules_dev_report: dict[str, Any]
    dev_serving: dict[str, Any]
    out: Path


def _counts(rows: list[Row]) -> dict[str, int]:
    c = Counter(str(r.tier) for r in rows)
    return {t.name: c.get(t.name, 0) for t in Tier}


def _dev_report(rows: list[Row], pred: list[Tier], tiers: TierConfig) -> dict[str, Any]:
    return routing_report([r.tier for r in rows], pred, [r.request.est_tokens for r in rows], tiers=tiers)


def train_model(
    data: str | Path,
    out: str | Path,
    *,
    embedder: Embedder | None = None,
    tiers: TierConfig | None = None,
    dev_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = False,
    target_underroute: float = DEFAULT_TARGET_UNDERROUTE,
    target_fallback_rate: float = DEFAULT_FALLBACK_RATE,
    lexical: bool | None = None,
) -> TrainResult:
    """Load ``data``, split, embed once, fit the head on the training split, score dev, save to ``out``.

    ``lexical``: stack a TF-IDF head over the embedder's token ids (``router_ml.lexical``); default
    on when the embedder gives token ids (the static backend).
    """
    tiers = tiers or TierConfig()
    rows = load_rows(data)
    train_rows, dev_rows = split_rows(rows, data, dev_fraction=dev_fraction, seed=seed)
    predictor = Predictor(embedder, random_state=seed, progress=progress)
    X = predictor.featurize([r.request for r in rows])
    index = {id(r): i for i, r in enumerate(rows)}
    X_train = X[[index[id(r)] for r in train_rows]]
    X_dev = X[[index[id(r)] for r in dev_rows]]
    y_train = [r.tier for r in train_rows]
    if lexical is None:
        lexical = callable(getattr(predictor._embedder(), "token_ids", None))
    lexical_card = None
    if lexical:
        X_train, X_dev, lexical_card = _stack_lexical(predictor, train_rows, dev_rows, X_train, X_dev, seed)
    predictor.fit_vectors(X_train, y_train)
    # Serving numbers come from out-of-fold predictions on the training split; dev stays unseen.
    serving = fit_serving(
        oof_logits(X_train, y_train, C=predictor.C_, seed=seed),
        y_train,
        target_underroute=target_underroute,
        target_fallback_rate=target_fallback_rate,
        fitted_on="out-of-fold predictions on the training split",
    )
    predictor.temperature_ = serving.temperature
    dev_logits = predictor.decision_function_vectors(X_dev)
    dev_serving = serving_metrics(dev_logits, [r.tier for r in dev_rows], serving)

    dev_pred = [Tier(int(i)) for i in dev_logits.argmax(axis=1)]
    dev_report = _dev_report(dev_rows, dev_pred, tiers)
    rules_report = _dev_report(dev_rows, RuleRouter().predict([r.request for r in dev_rows]), tiers)
    card = {
        "training": {
            "data": str(data),
            "data_sha256": rows_sha256(rows),
            "n_rows": len(rows),
            "n_train": len(train_rows),
            "n_dev": len(dev_rows),
            "train_counts": _counts(train_rows),
            "dev_counts": _counts(dev_rows),
            "label_sources": dict(Counter(str(r.raw.get("label_source", "unknown")) for r in rows)),
            "seed": seed,
        },
        "models": {t.name: tiers.model(t) for t in Tier},
        "dev_metrics": _summary(dev_report),
        "rules_dev_metrics": _summary(rules_report),
        "calibration": {"method": "temperature", "ece_before_dev": dev_serving["ece_before"], "ece_after_dev": dev_serving["ece_after"]},
        "serving": serving.to_card(),
        "dev_serving": dev_serving,
    }
    if lexical_card:
        card["lexical_training"] = lexical_card
    predictor.save(out, card=card)
    predictor.card_ = card
    return TrainResult(predictor, card, dev_report, rules_report, dev_serving, Path(out))


def _stack_lexical(predictor: Predictor, train_rows, dev_rows, X_train, X_dev, seed: int):
    """Fit the lexical head and append its log-probabilities: out-of-fold ones on the training rows."""
    train_ids = predictor.token_ids([r.request.text for r in train_rows])
    vocab_size = int(predictor._embedder().vocab_size)
    head, oof, C = fit_lexical(train_ids, [int(r.tier) for r in train_rows], vocab_size=vocab_size, seed=seed)
    predictor.lexical_ = head
    dev_lex = head.log_proba(predictor.token_ids([r.request.text for r in dev_rows]))
    stacked = (np.hstack([X_train, oof]).astype(np.float32), np.hstack([X_dev, dev_lex]).astype(np.float32))
    return (*stacked, {"C": C, "features": int(len(head.keys)), "ngrams": 2, "min_df": 2})


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("n", "accuracy", "underroute_rate", "overroute_rate", "per_tier", "confusion")
    out = {k: report[k] for k in keep}
    if "cost" in report:
        out["savings_vs_opus"] = report["cost"]["savings_vs_opus"]
        out["routed_per_1k_usd"] = report["cost"]["routed_per_1k_usd"]
    return _round(out)


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, 4)
    if isinstance(obj, dict):
        return {k: _round(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_round(v) for v in obj]
    if isinstance(obj, np.generic):
        return _round(obj.item())
    return obj
