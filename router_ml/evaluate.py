"""Evaluate routers side by side on labeled data (the library side of ``router-ml evaluate``).

Every router sees the same rows:

- ``rules``: the keyword rule router;
- ``ml``: the classifier alone, argmax of its calibrated probabilities;
- ``ml-budget``: the classifier with the fitted underroute budget (no threshold);
- ``chain-safe``: the serving chain as ``Router`` runs it without an LLM: confident rows get the
  budget tier, rows under the confidence threshold go to the fallback, which answers with the safe
  tier. Fallback rows are scored inside the chain's totals and also reported apart (their share,
  and how the classifier alone would have done on them);
- ``chain-llm`` and ``llm``: the same chain with the LLM router as the fallback, and the LLM router
  alone on every row, when an API key or base URL is configured (``ANTHROPIC_API_KEY`` /
  ``ANTHROPIC_BASE_URL``). An LLM call that fails is routed to the safe tier (chain) or COMPLEX
  (alone), as serving does, and counted.

A data directory with ``splits.json`` is evaluated on its dev split; a file on all its rows.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import Settings, load_settings
from .data import Row, load_rows, rows_sha256
from .decision import budget_tier
from .errors import ConfigError, DataError, LLMRouterError
from .eval_metrics import accuracy_coverage, budget_sweep, group_reports, reliability_bins, summary, worst_errors
from .metrics import expected_calibration_error, routing_report
from .normalize import NormalizedRequest
from .rules import RuleRouter
from .tiers import Tier

__all__ = ["evaluate", "select_rows", "format_report", "ROUTERS", "DESCRIPTIONS"]

ROUTERS = ("ml", "rules", "llm", "all")
SPLIT_FILE = "splits.json"  # the trainer's dev split (train/splits.py writes it)
DESCRIPTIONS = {
    "rules": "keyword rule router",
    "ml": "classifier alone (argmax)",
    "ml-budget": "classifier with the fitted underroute budget, no threshold",
    "chain-safe": "serving chain: budget tier when confident, else the safe tier (no LLM)",
    "chain-llm": "serving chain: budget tier when confident, else the LLM router",
    "llm": "LLM router alone on every row",
}


def select_rows(data: str | Path) -> tuple[list[Row], str, list[str]]:
    """``(rows, what was selected, notes)``: a directory's dev split when it has ``splits.json``,
    else every row (with a note, since a model trained there has seen most of them)."""
    path = Path(data)
    rows = load_rows(path)
    notes: list[str] = []
    if not path.is_dir():
        return rows, f"all {len(rows)} rows of {path}", notes
    split = path / SPLIT_FILE
    if not split.is_file():
        notes.append(
            f"{path} has no {SPLIT_FILE}: every row is evaluated; a model trained on this directory has "
            "seen most of them (`router-ml data split` writes a fixed dev split)"
        )
        return rows, f"all {len(rows)} rows of {path} (no {SPLIT_FILE})", notes
    # Read here, not through train/splits.py: the serving package never imports the pipeline.
    try:
        dev = set(json.loads(split.read_text(encoding="utf-8"))["dev"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f'not a valid split file ({err}); expected {{"dev": [ids]}}', path=split) from err
    chosen = [r for r in rows if r.id in dev]
    if not chosen:
        raise DataError("the dev split names no row of this directory", path=split)
    return chosen, f"dev split of {path} ({SPLIT_FILE}): {len(chosen)} of {len(rows)} rows", notes


class _FixedProbs:
    """Stands in for the Predictor inside ``Router``: answers with probabilities computed once, so
    the chain is scored by the serving code itself without embedding every row again."""

    def __init__(self, requests: Sequence[NormalizedRequest], probs: np.ndarray, card: dict[str, Any] | None):
        self._probs = {req: p for req, p in zip(requests, probs)}  # equal requests, equal probabilities
        self.card_ = card or {}

    def predict_proba(self, requests: Sequence[NormalizedRequest]) -> np.ndarray:
        return np.asarray([self._probs[r] for r in requests])


def _serving_numbers(predictor: Any, budget: float | None, threshold: float | None) -> dict[str, Any]:
    serving = (getattr(predictor, "card_", None) or {}).get("serving", {})
    out = {
        "underroute_budget": budget if budget is not None else serving.get("underroute_budget"),
        "confidence_threshold": threshold if threshold is not None else serving.get("confidence_threshold"),
    }
    out["source"] = (
        "arguments" if budget is not None or threshold is not None else ("model card" if serving else "none fitted")
    )
    return out


def _chain(
    rows: list[Row], probs: np.ndarray, predictor: Any, settings: Settings, llm: Any, serving: dict
) -> list[Any]:
    from .router import Router

    router = Router(
        _FixedProbs([r.request for r in rows], probs, getattr(predictor, "card_", None)),
        settings=replace(settings, log_path=None),  # evaluation rows never go to the decision log
        llm=llm,
        underroute_budget=serving["underroute_budget"],
        confidence_threshold=serving["confidence_threshold"] or 0.0,
    )
    return router.route_batch([r.raw for r in rows])


def _llm_alone(rows: list[Row], llm: Any, workers: int = 8) -> tuple[list[Tier], float, int]:
    """The LLM router on every row; a failed call routes to COMPLEX (the safe model) and is counted."""

    def one(req: NormalizedRequest) -> tuple[Tier, float, bool]:
        try:
            verdict = llm.classify(req)
        except LLMRouterError as err:
            return Tier.COMPLEX, err.cost_usd, True
        return verdict.tier, verdict.cost_usd, False

    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(one, [r.request for r in rows]))
    return [t for t, _, _ in results], sum(c for _, c, _ in results), sum(f for _, _, f in results)


def _overhead(report: dict[str, Any], usd: float, n: int) -> None:
    """Add what routing itself cost (LLM calls) to a report."""
    per_1k = 1000 * usd / n if n else 0.0
    report["routing_cost"] = {"usd": usd, "per_1k_usd": per_1k}
    if "cost" in report:
        report["cost"]["routed_plus_routing_per_1k_usd"] = report["cost"]["routed_per_1k_usd"] + per_1k


def _group_keys(rows: list[Row], key: str) -> list[list[str]]:
    out = []
    for r in rows:
        v = r.raw.get(key)
        if v is None or v == [] or v == "":
            out.append(["(none)"])
        elif isinstance(v, list):
            out.append([str(x) for x in v])
        else:
            out.append([str(v)])
    return out


def _describe(rows: list[Row], probs: np.ndarray | None):
    def describe(i: int) -> dict[str, Any]:
        r = rows[i]
        d: dict[str, Any] = {"id": r.id, "prompt": " ".join(r.request.last_user.split())[:200]}
        if r.tags:
            d["tags"] = r.tags
        if probs is not None:
            d["probabilities"] = {t.name: round(float(probs[i][t]), 4) for t in Tier}
        return d

    return describe


def evaluate(
    data: str | Path,
    *,
    router: str = "ml",
    settings: Settings | None = None,
    predictor: Any = None,
    llm: Any = "auto",
    by: Sequence[str] = (),
    underroute_budget: float | None = None,
    confidence_threshold: float | None = None,
    worst: int = 20,
    min_group: int = 5,
) -> dict[str, Any]:
    """Route every selected row with the chosen routers and report them side by side.

    ``router`` is ``ml`` (the classifier views), ``rules``, ``llm`` or ``all``. ``predictor``
    defaults to the configured model; ``llm`` to one built from the environment (``"auto"``), or
    pass an ``LLMRouter`` or None. ``by`` names row keys to break the numbers down by (``tags``,
    ``lang``, ``domain``...; groups under ``min_group`` rows are left out). The top-level keys
    (``n``, ``accuracy``, ``confusion``, ``cost``...) are those of the primary router (``ml``, else
    ``rules``, else ``llm``); ``routers`` holds every one.
    """
    if router not in ROUTERS:
        raise ValueError(f"unknown router {router!r}; choose one of {', '.join(ROUTERS)}")
    settings = settings or load_settings()
    rows, selection, notes = select_rows(data)
    y = [r.tier for r in rows]
    tokens = [r.request.est_tokens for r in rows]
    requests = [r.request for r in rows]
    tiers = settings.tiers
    preds: dict[str, list[Tier]] = {}
    reports: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    chains: dict[str, list[Any]] = {}  # chain name -> RouteDecision per row
    llm_stats: tuple[float, int] | None = None  # (dollars, failed calls) of the LLM router alone
    probs = None
    served_name = None

    if router in ("rules", "all"):
        preds["rules"] = RuleRouter().predict(requests)

    if router in ("ml", "all"):
        if predictor is None:
            from .predictor import Predictor

            predictor = Predictor.load(settings.model_dir)
        probs = predictor.predict_proba(requests)
        preds["ml"] = [Tier(int(i)) for i in probs.argmax(axis=1)]
        serving = _serving_numbers(predictor, underroute_budget, confidence_threshold)
        training = (getattr(predictor, "card_", None) or {}).get("training", {})
        if training.get("data_sha256") and training["data_sha256"] == rows_sha256(rows):
            notes.append(
                "these are exactly the rows the model was trained on (its card's data hash): its "
                "training split is among them, so the numbers are optimistic"
            )
        served_name = "ml"
        if serving["underroute_budget"] is not None:
            preds["ml-budget"] = [budget_tier(p, serving["underroute_budget"]) for p in probs]
            served_name = "ml-budget"
        if serving["confidence_threshold"]:
            chains["chain-safe"] = _chain(rows, probs, predictor, settings, None, serving)
        else:
            notes.append("no confidence threshold (model card or --confidence-threshold): no chain view")
        if serving["source"] == "none fitted":
            notes.append(
                "the model card has no serving numbers (underroute budget, confidence threshold): "
                "retrain or run `router-ml calibrate`; ml-budget and chain views need them"
            )
        out["classifier"] = {"serving": serving}

    llm_obj = None
    if router in ("llm", "all"):
        if llm == "auto":
            from .router import _default_llm

            llm_obj = _default_llm(settings)
        else:
            llm_obj = llm
        if llm_obj is None:
            if router == "llm":
                raise ConfigError("the LLM router needs ANTHROPIC_API_KEY or ANTHROPIC_BASE_URL")
            notes.append("no ANTHROPIC_API_KEY or ANTHROPIC_BASE_URL: the LLM router was not evaluated")
        else:
            llm_tiers, llm_usd, llm_failed = _llm_alone(rows, llm_obj)
            preds["llm"], llm_stats = llm_tiers, (llm_usd, llm_failed)
            if "chain-safe" in chains:
                chains["chain-llm"] = _chain(rows, probs, predictor, settings, llm_obj, out["classifier"]["serving"])
    for name, decisions in chains.items():
        preds[name] = [d.tier for d in decisions]

    for name in sorted(preds, key=list(DESCRIPTIONS).index):
        rep = routing_report(y, preds[name], tokens, tiers=tiers)
        rep["description"] = DESCRIPTIONS[name]
        reports[name] = rep
    for name, decisions in chains.items():
        reports[name]["fallback"] = _fallback_view(decisions, y, preds[served_name], tokens, tiers)
        _overhead(reports[name], sum(d.cost_usd for d in decisions), len(rows))
    if llm_stats is not None:
        _overhead(reports["llm"], llm_stats[0], len(rows))
        reports["llm"]["failed_calls"] = llm_stats[1]

    if probs is not None:
        served = preds[served_name]
        out["classifier"].update(
            served=served_name,
            calibration={
                "ece": expected_calibration_error(y, probs),
                "bins": reliability_bins(y, probs),
            },
            accuracy_coverage={
                "argmax": accuracy_coverage(y, probs),
                **({"budget": accuracy_coverage(y, probs, served)} if served_name == "ml-budget" else {}),
            },
            budget_sweep=budget_sweep(y, probs, tokens, tiers=tiers),
        )
    primary = next(n for n in ("ml", "rules", "llm") if n in reports) if reports else None
    if primary is None:
        raise ConfigError("no router could be evaluated")
    result: dict[str, Any] = {**reports[primary], "router": primary}
    result.update(data=str(data), selection=selection, notes=notes, routers=reports)
    result.update(out)
    if by:
        result["by"] = {
            key: group_reports(
                _group_keys(rows, key), y, {n: preds[n] for n in reports}, tokens, tiers=tiers, min_n=min_group
            )
            for key in by
        }
        result["by_min_rows"] = min_group
    err_name = served_name or primary
    confidence = probs.max(axis=1) if probs is not None else np.ones(len(rows))
    result["worst_errors"] = {
        "router": err_name,
        "rows": worst_errors(y, preds[err_name], confidence, describe=_describe(rows, probs), limit=worst),
    }
    return result


def _fallback_view(
    decisions: list[Any], y: list[Tier], classifier: list[Tier], tokens: list[int], tiers: Any
) -> dict[str, Any]:
    """How the chain's fallback rows are scored: counted in the chain's totals with the tier the
    fallback gave them, and here apart, next to what the classifier alone would have given them."""
    fb = [i for i, d in enumerate(decisions) if d.source != "classifier"]
    conf = [i for i, d in enumerate(decisions) if d.source == "classifier"]
    sources: dict[str, int] = {}
    for d in decisions:
        sources[d.source] = sources.get(d.source, 0) + 1

    def sub(idx: list[int], pred: Sequence[Tier]) -> dict[str, Any] | None:
        if not idx:
            return None
        return summary(
            routing_report([y[i] for i in idx], [pred[i] for i in idx], [tokens[i] for i in idx], tiers=tiers)
        )

    given = [d.tier for d in decisions]
    return {
        "share": len(fb) / len(decisions) if decisions else 0.0,
        "n": len(fb),
        "sources": sources,
        "confident_rows": sub(conf, given),
        "fallback_rows": sub(fb, given),
        "fallback_rows_if_classifier": sub(fb, classifier),
    }


def format_report(report: dict[str, Any]) -> str:
    """The side-by-side table, then the details a reader checks next."""
    from .eval_format import format_text

    return format_text(report)
