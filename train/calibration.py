"""Fit the serving numbers: temperature (calibration), underroute budget, confidence threshold.

``make train`` fits them on out-of-fold predictions of the training split, so the dev split stays
untouched for the report; ``router-ml calibrate`` refits them on any held-out labeled data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from router_ml.decision import budget_tier
from router_ml.metrics import expected_calibration_error
from router_ml.predictor import softmax
from router_ml.tiers import Tier

__all__ = [
    "ServingFit",
    "oof_logits",
    "fit_temperature",
    "fit_budget",
    "fit_threshold",
    "fit_serving",
    "serving_metrics",
    "calibrate_artifact",
    "DEFAULT_TARGET_UNDERROUTE",
    "DEFAULT_FALLBACK_RATE",
]

DEFAULT_TARGET_UNDERROUTE = 0.03  # fitted with a margin so held-out underroute stays under 5%
DEFAULT_FALLBACK_RATE = 0.15


@dataclass
class ServingFit:
    temperature: float
    underroute_budget: float
    confidence_threshold: float
    target_underroute: float
    target_fallback_rate: float
    fitted_on: str
    n: int

    def to_card(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _labels(y: Sequence[Any]) -> np.ndarray:
    return np.asarray([int(Tier.parse(v)) for v in y], dtype=int)


def oof_logits(X: np.ndarray, y: Sequence[Any], *, C: float, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold logits of a head with the chosen ``C``: every row scored by a model that did not see it."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = _labels(y)
    folds = max(2, min(folds, int(np.bincount(labels, minlength=3).min())))
    out = np.zeros((len(labels), len(Tier)))
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, labels):
        head = make_pipeline(
            StandardScaler(), LogisticRegression(C=C, class_weight="balanced", max_iter=5000, random_state=seed)
        ).fit(X[train_idx], labels[train_idx])
        out[test_idx] = head.decision_function(X[test_idx])
    return out


def fit_temperature(logits: np.ndarray, y: Sequence[Any]) -> float:
    """The temperature minimizing negative log-likelihood (one parameter: it cannot reorder classes)."""
    from scipy.optimize import minimize_scalar

    labels = _labels(y)
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        p = softmax(logits, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(p[rows, labels], 1e-12, None))))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def _underroute(probs: np.ndarray, labels: np.ndarray, budget: float) -> float:
    pred = np.asarray([budget_tier(p, budget) for p in probs])
    return float(np.mean(pred < labels)) if len(labels) else 0.0


def fit_budget(probs: np.ndarray, y: Sequence[Any], target_underroute: float) -> float:
    """The largest (cheapest) budget whose underroute on these rows is at most the target."""
    if not 0 <= target_underroute < 1:
        raise ValueError(f"target underroute must be in [0, 1), got {target_underroute}")
    labels = _labels(y)
    best = 0.0
    for b in np.round(np.arange(0.0, 1.0001, 0.005), 3):
        if _underroute(probs, labels, float(b)) <= target_underroute:
            best = float(b)
        else:
            break  # underroute only grows with the budget
    return best


def fit_threshold(probs: np.ndarray, target_fallback_rate: float) -> float:
    """Confidence below which a request goes to the LLM router, so that about this share does."""
    if not 0 <= target_fallback_rate < 1:
        raise ValueError(f"fallback rate must be in [0, 1), got {target_fallback_rate}")
    if target_fallback_rate == 0:
        return 0.0
    return float(np.quantile(np.asarray(probs).max(axis=1), target_fallback_rate))


def fit_serving(
    logits: np.ndarray,
    y: Sequence[Any],
    *,
    target_underroute: float = DEFAULT_TARGET_UNDERROUTE,
    target_fallback_rate: float = DEFAULT_FALLBACK_RATE,
    fitted_on: str = "",
) -> ServingFit:
    t = fit_temperature(logits, y)
    probs = softmax(logits, t)
    return ServingFit(
        temperature=t,
        underroute_budget=fit_budget(probs, y, target_underroute),
        confidence_threshold=fit_threshold(probs, target_fallback_rate),
        target_underroute=target_underroute,
        target_fallback_rate=target_fallback_rate,
        fitted_on=fitted_on,
        n=len(logits),
    )


def serving_metrics(logits: np.ndarray, y: Sequence[Any], fit: ServingFit) -> dict[str, Any]:
    """What the fitted numbers do on these rows: ECE before/after, argmax vs budget, and the split
    between confident rows (served by the classifier) and the share sent to the fallback."""
    labels = _labels(y)
    raw = softmax(logits, 1.0)
    cal = softmax(logits, fit.temperature)
    argmax = cal.argmax(axis=1)
    budget = np.asarray([budget_tier(p, fit.underroute_budget) for p in cal])
    confident = cal.max(axis=1) >= fit.confidence_threshold
    n_conf = int(confident.sum())

    def rates(pred: np.ndarray, lab: np.ndarray) -> dict[str, float]:
        n = len(lab)
        return {
            "accuracy": round(float(np.mean(pred == lab)), 4) if n else 0.0,
            "underroute_rate": round(float(np.mean(pred < lab)), 4) if n else 0.0,
            "overroute_rate": round(float(np.mean(pred > lab)), 4) if n else 0.0,
        }

    return {
        "n": len(labels),
        "ece_before": round(expected_calibration_error(labels, raw), 4),
        "ece_after": round(expected_calibration_error(labels, cal), 4),
        "classifier_argmax": rates(argmax, labels),
        "classifier_budget": rates(budget, labels),
        "fallback_share": round(1 - n_conf / max(len(labels), 1), 4),
        "confident_rest": {"n": n_conf, **rates(budget[confident], labels[confident])},
    }


def calibrate_artifact(
    model_dir: str | Path,
    data: str | Path,
    *,
    target_underroute: float = DEFAULT_TARGET_UNDERROUTE,
    target_fallback_rate: float = DEFAULT_FALLBACK_RATE,
) -> dict[str, Any]:
    """Refit temperature, budget and threshold of a saved model on held-out labeled data.

    ``data`` is a file (all rows are held out) or a data directory with ``splits.json`` (its dev
    rows). The model card is rewritten in place; returns the new serving numbers and their metrics.
    """
    from router_ml.data import load_rows
    from router_ml.errors import DataError
    from router_ml.predictor import Predictor

    from .splits import load_split

    rows = load_rows(data)
    data = Path(data)
    if data.is_dir():
        dev = load_split(data)
        if dev is None:
            raise DataError("a data directory needs splits.json to say which rows are held out; pass a file", path=data)
        rows = [r for r in rows if r.id in dev]
    predictor = Predictor.load(model_dir)
    logits = predictor.decision_function_vectors(predictor.featurize([r.request for r in rows]))
    y = [r.tier for r in rows]
    fit = fit_serving(
        logits, y, target_underroute=target_underroute, target_fallback_rate=target_fallback_rate, fitted_on=str(data)
    )
    metrics = serving_metrics(logits, y, fit)
    predictor.temperature_ = fit.temperature
    card = dict(predictor.card_)
    card["serving"] = fit.to_card()
    card["calibration"] = {"method": "temperature", "ece_before_heldout": metrics["ece_before"], "ece_after_heldout": metrics["ece_after"]}
    card["heldout_serving"] = metrics
    predictor.save(predictor.path_, card=card)  # the directory loaded: a registry's active version
    return {"serving": fit.to_card(), "metrics": metrics}
