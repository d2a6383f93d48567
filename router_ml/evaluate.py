"""Evaluate a router on a labeled data file (the library side of ``router-ml evaluate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import Settings, load_settings
from .data import load_rows
from .metrics import routing_report
from .rules import RuleRouter

__all__ = ["evaluate_router", "format_report"]

ROUTERS = ("ml", "rules")


def evaluate_router(data: str | Path, *, router: str = "ml", settings: Settings | None = None) -> dict[str, Any]:
    """Route every labeled row with ``router`` (``ml`` or ``rules``) and report the metrics."""
    if router not in ROUTERS:
        raise ValueError(f"unknown router {router!r}; choose one of {', '.join(ROUTERS)}")
    settings = settings or load_settings()
    rows = load_rows(data)
    requests = [r.request for r in rows]
    if router == "rules":
        pred = RuleRouter().predict(requests)
    else:
        from .predictor import Predictor

        pred = Predictor.load(settings.model_dir).predict(requests)
    report = routing_report(
        [r.tier for r in rows], pred, [r.request.est_tokens for r in rows], tiers=settings.tiers
    )
    report["router"] = router
    report["data"] = str(data)
    return report


def format_report(report: dict[str, Any]) -> str:
    """A short human-readable table of a ``routing_report``."""
    lines = [
        f"router: {report.get('router', '?')}   rows: {report['n']}",
        f"accuracy {report['accuracy']:.3f}   underroute {report['underroute_rate']:.3f}   "
        f"overroute {report['overroute_rate']:.3f}",
        "",
        "confusion (rows: true, columns: routed)",
        "          " + "".join(f"{x:>9}" for x in report["confusion"]["labels"]),
    ]
    for name, row in zip(report["confusion"]["labels"], report["confusion"]["matrix"]):
        lines.append(f"{name:>9} " + "".join(f"{v:>9}" for v in row))
    cost = report.get("cost")
    if cost:
        lines += [
            "",
            f"cost per 1,000 requests: routed ${cost['routed_per_1k_usd']:.2f}, "
            f"always-Opus ${cost['always_opus_per_1k_usd']:.2f}, always-Sonnet ${cost['always_sonnet_per_1k_usd']:.2f}",
            f"savings: {cost['savings_vs_opus']:.1%} vs Opus, {cost['savings_vs_sonnet']:.1%} vs Sonnet",
        ]
    return "\n".join(lines)
