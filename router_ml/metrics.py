"""Routing metrics: accuracy, over/underroute, confusion, and what the routed choices cost."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .tiers import Tier, TierConfig

__all__ = ["routing_report", "expected_calibration_error", "OUTPUT_TOKENS"]

# Assumed answer length by the work a request really needs (the true tier): output size follows the
# task, not the model that answers it.
OUTPUT_TOKENS = {Tier.SIMPLE: 200, Tier.MEDIUM: 700, Tier.COMPLEX: 1_500}


def _rate(num: int, den: int) -> float:
    return num / den if den else 0.0


def routing_report(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    input_tokens: Sequence[int] | None = None,
    *,
    tiers: TierConfig | None = None,
    output_tokens: Sequence[int] | None = None,
) -> dict[str, Any]:
    """One JSON-ready dict: ``n``, ``accuracy``, ``overroute_rate``, ``underroute_rate``,
    ``per_tier``, ``confusion`` (rows true, columns predicted, tier order) and ``cost``.

    Costs use ``input_tokens`` (estimates are fine) and ``output_tokens`` (default by true tier) at
    each tier's model price; ``per_1k`` is dollars per 1,000 requests.
    """
    t = np.asarray([int(Tier.parse(v)) for v in y_true], dtype=int)
    p = np.asarray([int(Tier.parse(v)) for v in y_pred], dtype=int)
    if len(t) != len(p):
        raise ValueError(f"{len(t)} true labels but {len(p)} predictions")
    n = len(t)
    tiers = tiers or TierConfig()
    conf = np.zeros((3, 3), dtype=int)
    for a, b in zip(t, p):
        conf[a, b] += 1
    per_tier = {}
    for tier in Tier:
        m = t == tier
        k = int(m.sum())
        per_tier[tier.name] = {
            "n": k,
            "accuracy": _rate(int((p[m] == tier).sum()), k),
            "underroute_rate": _rate(int((p[m] < tier).sum()), k),
            "overroute_rate": _rate(int((p[m] > tier).sum()), k),
        }
    report: dict[str, Any] = {
        "n": n,
        "accuracy": _rate(int((t == p).sum()), n),
        "overroute_rate": _rate(int((p > t).sum()), n),
        "underroute_rate": _rate(int((p < t).sum()), n),
        "per_tier": per_tier,
        "confusion": {
            "labels": [x.name for x in Tier],
            "matrix": conf.tolist(),
        },
    }
    if input_tokens is not None:
        inp = np.asarray(input_tokens, dtype=float)
        if len(inp) != n:
            raise ValueError(f"{n} labels but {len(inp)} token counts")
        out = (
            np.asarray(output_tokens, dtype=float)
            if output_tokens is not None
            else np.asarray([OUTPUT_TOKENS[Tier(x)] for x in t], dtype=float)
        )

        # (n, 3): what each request costs at each tier; prices are linear, so arrays go through whole
        per_tier_cost = np.stack([tiers.price(tier).cost(inp, out) for tier in Tier], axis=1).reshape(n, len(Tier))
        rows = np.arange(n)

        def total(choice: np.ndarray) -> float:
            return float(per_tier_cost[rows, np.asarray(choice, dtype=int)].sum())

        routed = total(p)
        always = {tier.name: total(np.full(n, int(tier))) for tier in Tier}
        oracle = total(t)
        per_1k = (lambda v: 1000 * v / n) if n else (lambda v: 0.0)
        report["cost"] = {
            "routed_usd": routed,
            "oracle_usd": oracle,
            "always_opus_usd": always["COMPLEX"],
            "always_sonnet_usd": always["MEDIUM"],
            "always_haiku_usd": always["SIMPLE"],
            "routed_per_1k_usd": per_1k(routed),
            "always_opus_per_1k_usd": per_1k(always["COMPLEX"]),
            "always_sonnet_per_1k_usd": per_1k(always["MEDIUM"]),
            "savings_vs_opus": 1 - _rate_f(routed, always["COMPLEX"]),
            "savings_vs_sonnet": 1 - _rate_f(routed, always["MEDIUM"]),
        }
    return report


def _rate_f(a: float, b: float) -> float:
    return a / b if b else 0.0


def expected_calibration_error(y_true: Sequence[Any], probs: np.ndarray, *, n_bins: int = 10) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over equal-width bins.

    0 means "0.9" is right nine times in ten at every confidence level.
    """
    probs = np.asarray(probs, dtype=float)
    t = np.asarray([int(Tier.parse(v)) for v in y_true], dtype=int)
    if probs.ndim != 2 or len(probs) != len(t):
        raise ValueError(f"probs must be (n, 3) for {len(t)} labels, got shape {probs.shape}")
    if len(t) == 0:
        return 0.0
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == t
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)
