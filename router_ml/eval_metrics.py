"""Metrics that need more than one routed tier per row: selective prediction (accuracy against
coverage), reliability bins, the cost-quality sweep of the underroute budget, breakdowns by a key,
and the worst errors. ``routing_report`` (``metrics.py``) stays the one place that scores a routing.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from .decision import budget_tier
from .metrics import routing_report
from .tiers import Tier, TierConfig

__all__ = [
    "COVERAGE_LEVELS",
    "BUDGET_GRID",
    "accuracy_coverage",
    "reliability_bins",
    "budget_sweep",
    "group_reports",
    "worst_errors",
    "summary",
]

COVERAGE_LEVELS = tuple(round(0.05 * k, 2) for k in range(1, 21))  # 5%, 10%, ..., 100%
BUDGET_GRID = tuple(round(0.02 * k, 2) for k in range(51))  # 0.00, 0.02, ..., 1.00


def _labels(y: Sequence[Any]) -> np.ndarray:
    return np.asarray([int(Tier.parse(v)) for v in y], dtype=int)


def summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """The headline numbers of a ``routing_report``: what a side-by-side table shows."""
    out = {k: report[k] for k in ("n", "accuracy", "underroute_rate", "overroute_rate")}
    cost = report.get("cost")
    if cost:
        out["routed_per_1k_usd"] = cost["routed_per_1k_usd"]
        out["savings_vs_opus"] = cost["savings_vs_opus"]
        out["savings_vs_sonnet"] = cost["savings_vs_sonnet"]
    return out


def accuracy_coverage(
    y_true: Sequence[Any],
    probs: np.ndarray,
    pred: Sequence[Any] | None = None,
    *,
    levels: Iterable[float] = COVERAGE_LEVELS,
) -> list[dict[str, float]]:
    """Selective prediction: keep the most confident ``coverage`` share of rows, score the rest away.

    Rows are ranked by top probability (ties keep data order); at each level the ``ceil(level * n)``
    most confident rows are kept and their ``pred`` (default: argmax) is scored. ``threshold`` is the
    lowest confidence kept, i.e. the confidence threshold that serves that share.

    >>> pts = accuracy_coverage(["SIMPLE", "MEDIUM"], np.array([[.9, .1, 0], [.6, .4, 0]]), levels=[.5, 1])
    >>> [(p["coverage"], p["threshold"], p["accuracy"], p["underroute_rate"]) for p in pts]
    [(0.5, 0.9, 1.0, 0.0), (1.0, 0.6, 0.5, 0.5)]
    """
    t = _labels(y_true)
    probs = np.asarray(probs, dtype=float)
    if probs.shape != (len(t), len(Tier)):
        raise ValueError(f"probs must be ({len(t)}, {len(Tier)}), got {probs.shape}")
    p = probs.argmax(axis=1) if pred is None else _labels(pred)
    if len(p) != len(t):
        raise ValueError(f"{len(t)} labels but {len(p)} predictions")
    conf = probs.max(axis=1)
    order = np.argsort(-conf, kind="stable")
    out = []
    for level in levels:
        if not 0 < level <= 1:
            raise ValueError(f"coverage levels must be in (0, 1], got {level}")
        k = int(np.ceil(round(level * len(t), 9)))
        if k == 0:
            continue
        keep = order[:k]
        out.append(
            {
                "coverage": float(level),
                "threshold": float(conf[keep[-1]]),
                "n": k,
                "accuracy": float(np.mean(p[keep] == t[keep])),
                "underroute_rate": float(np.mean(p[keep] < t[keep])),
            }
        )
    return out


def reliability_bins(y_true: Sequence[Any], probs: np.ndarray, *, n_bins: int = 10) -> list[dict[str, float]]:
    """The reliability diagram's bins: top-label confidence against accuracy, equal-width bins.

    Binned as ``expected_calibration_error`` bins, so ``sum(n / N * |accuracy - confidence|)`` over
    these bins is that ECE. Empty bins are left out.
    """
    t = _labels(y_true)
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 2 or len(probs) != len(t):
        raise ValueError(f"probs must be (n, 3) for {len(t)} labels, got shape {probs.shape}")
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == t
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = bins == b
        if m.any():
            out.append(
                {
                    "low": float(edges[b]),
                    "high": float(edges[b + 1]),
                    "n": int(m.sum()),
                    "confidence": float(conf[m].mean()),
                    "accuracy": float(correct[m].mean()),
                }
            )
    return out


def budget_sweep(
    y_true: Sequence[Any],
    probs: np.ndarray,
    input_tokens: Sequence[int],
    *,
    tiers: TierConfig | None = None,
    budgets: Iterable[float] = BUDGET_GRID,
) -> list[dict[str, float]]:
    """The cost-quality curve: accuracy, underroute and dollars per 1k requests as the underroute
    budget moves from 0 (COMPLEX unless certain) to 1 (always the cheapest tier)."""
    probs = np.asarray(probs, dtype=float)
    out = []
    for b in budgets:
        pred = [budget_tier(p, float(b)) for p in probs]
        rep = routing_report(y_true, pred, input_tokens, tiers=tiers)
        out.append({"budget": float(b), **summary(rep)})
    return out


def group_reports(
    keys: Sequence[Sequence[str]],
    y_true: Sequence[Any],
    preds: Mapping[str, Sequence[Any]],
    input_tokens: Sequence[int],
    *,
    tiers: TierConfig | None = None,
    min_n: int = 1,
) -> dict[str, dict[str, Any]]:
    """Per-group summaries for several routers; ``keys[i]`` lists the groups of row ``i`` (a row
    with several tags counts in each). Groups are sorted by size, largest first; groups smaller
    than ``min_n`` are left out (free-form tags make hundreds of one-row groups)."""
    members: dict[str, list[int]] = defaultdict(list)
    for i, ks in enumerate(keys):
        for k in dict.fromkeys(ks):  # a tag listed twice counts once
            members[k].append(i)
    out = {}
    for key in sorted(members, key=lambda k: (-len(members[k]), k)):
        if len(members[key]) < min_n:
            continue
        idx = members[key]
        sub_true = [y_true[i] for i in idx]
        sub_tok = [input_tokens[i] for i in idx]
        out[key] = {
            "n": len(idx),
            "routers": {
                name: summary(routing_report(sub_true, [pred[i] for i in idx], sub_tok, tiers=tiers))
                for name, pred in preds.items()
            },
        }
    return out


def worst_errors(
    y_true: Sequence[Any],
    pred: Sequence[Any],
    confidence: Sequence[float],
    *,
    describe: Callable[[int], dict[str, Any]] | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """Misrouted rows, underroutes first (they hurt users), then by confidence, highest first (a
    confident mistake is one no threshold catches), then by how many tiers off."""
    t, p = _labels(y_true), _labels(pred)
    conf = np.asarray(confidence, dtype=float)
    wrong = [i for i in range(len(t)) if t[i] != p[i]]
    wrong.sort(key=lambda i: (p[i] > t[i], -conf[i], -abs(int(t[i]) - int(p[i])), i))
    out = []
    for i in wrong[:limit]:
        row = {
            "kind": "underroute" if p[i] < t[i] else "overroute",
            "true": Tier(int(t[i])).name,
            "routed": Tier(int(p[i])).name,
            "confidence": float(conf[i]),
        }
        if describe is not None:
            row.update(describe(i))
        out.append(row)
    return out
