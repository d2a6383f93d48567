"""The RouterBench ladder: route each test prompt to a rung (SIMPLE -> claude-instant-v1, MEDIUM ->
claude-v1 or gpt-3.5-turbo-1106, COMPLEX -> gpt-4-1106-preview) and score the routed model's real
0/1 outcome and real dollar cost, against each single rung and the oracle (cheapest correct rung).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from router_ml.decision import budget_tier
from router_ml.errors import DataError
from router_ml.eval_metrics import BUDGET_GRID
from router_ml.metrics import routing_report
from router_ml.tiers import Tier

from .outcomes import (
    ROUTERBENCH_LADDER,
    ROUTERBENCH_LADDER_GPT35,
    Ladder,
    Outcome,
    cheapest_correct_tier,
    read_wide_csv,
)

__all__ = ["LADDERS", "load_routerbench", "ladder_outcomes", "score_ladder", "routerbench_scores"]

LADDERS = {"claude-v1": ROUTERBENCH_LADDER, "gpt-3.5": ROUTERBENCH_LADDER_GPT35}


def load_routerbench(folder: Path) -> list[Outcome]:
    """Every ``*_test.csv`` under ``folder`` (the 953 test prompts), with the models of both ladders."""
    files = sorted(folder.glob("*_test.csv"))
    if not files:
        raise DataError("no *_test.csv files", path=folder)
    models = sorted({m for ladder in LADDERS.values() for m in ladder.models})
    out: list[Outcome] = []
    for f in files:
        out += read_wide_csv(f, models)
    return out


def ladder_outcomes(outcomes: Sequence[Outcome], ladder: Ladder) -> tuple[np.ndarray, np.ndarray]:
    """``(correct, cost)``: ``(n, 3)`` arrays, columns in tier order."""
    correct = np.asarray([[o.correct[ladder.model(t)] for t in Tier] for o in outcomes], dtype=float)
    cost = np.asarray([[o.cost[ladder.model(t)] for t in Tier] for o in outcomes], dtype=float)
    return correct, cost


def _score(tiers: Sequence[int], correct: np.ndarray, cost: np.ndarray) -> dict[str, float]:
    idx = np.asarray(tiers, dtype=int)
    rows = np.arange(len(idx))
    n = len(idx)
    return {
        "accuracy": float(correct[rows, idx].mean()),
        "cost_usd": float(cost[rows, idx].sum()),
        "cost_per_1k_usd": float(1000 * cost[rows, idx].sum() / n),
        "share": {t.name: float(np.mean(idx == t)) for t in Tier},
    }


def score_ladder(
    outcomes: Sequence[Outcome],
    ladder: Ladder,
    routers: dict[str, Sequence[Tier]],
    probs: np.ndarray | None = None,
    *,
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy and dollars of each router's routed choices on one ladder.

    Next to them: each rung alone and the oracle (cheapest correct rung; a prompt no rung solves goes
    to the cheapest rung). Tier metrics (``vs_oracle``) compare the routed tier with the oracle's on
    the prompts some rung solved; the unsolved are counted apart. With ``probs`` the underroute
    budget is swept from 0 to 1 (``curve``). ``groups`` (e.g. the source benchmark of each prompt)
    adds a per-group table. Prompts missing a rung's score or cost are left out and counted.
    """
    keep = [i for i, o in enumerate(outcomes) if all(m in o.correct and m in o.cost for m in ladder.models)]
    missing = len(outcomes) - len(keep)
    outcomes = [outcomes[i] for i in keep]
    routers = {name: [pred[i] for i in keep] for name, pred in routers.items()}
    probs = probs[keep] if probs is not None else None
    groups = [groups[i] for i in keep] if groups is not None else None
    correct, cost = ladder_outcomes(outcomes, ladder)
    oracle = [cheapest_correct_tier(o.correct, ladder) for o in outcomes]
    solved = [i for i, t in enumerate(oracle) if t is not None]
    oracle_tiers = [int(t) if t is not None else int(Tier.SIMPLE) for t in oracle]
    out: dict[str, Any] = {
        "ladder": {t.name: ladder.model(t) for t in Tier},
        "n": len(outcomes),
        "missing_outcome": missing,  # prompts left out: a rung's score is empty in the table
        "unsolved": len(outcomes) - len(solved),
        "single": {ladder.model(t): _score([int(t)] * len(outcomes), correct, cost) for t in Tier},
        "oracle": _score(oracle_tiers, correct, cost),
        "oracle_tiers": {t.name: int(sum(1 for i in solved if oracle[i] == t)) for t in Tier},
        "routers": {},
    }
    for name, pred in routers.items():
        tiers = [int(Tier.parse(p)) for p in pred]
        rep = routing_report([oracle[i] for i in solved], [tiers[i] for i in solved])
        out["routers"][name] = {
            **_score(tiers, correct, cost),
            "vs_oracle": {k: rep[k] for k in ("n", "accuracy", "underroute_rate", "overroute_rate", "confusion")},
        }
    if probs is not None:
        out["curve"] = [
            {"budget": float(b), **_score([int(budget_tier(p, float(b))) for p in probs], correct, cost)}
            for b in BUDGET_GRID
        ]
    if groups is not None:
        out["by_group"] = {}
        for g in sorted(set(groups)):
            idx = [i for i, x in enumerate(groups) if x == g]
            sub = {
                name: _score([int(Tier.parse(pred[i])) for i in idx], correct[idx], cost[idx])
                for name, pred in routers.items()
            }
            sub["oracle"] = _score([oracle_tiers[i] for i in idx], correct[idx], cost[idx])
            for t in Tier:
                sub[ladder.model(t)] = _score([int(t)] * len(idx), correct[idx], cost[idx])
            out["by_group"][g] = {"n": len(idx), "scores": sub}
    return out


def routerbench_scores(
    folder: Path,
    classify: Callable[[list[str]], np.ndarray],
    rules: Callable[[list[str]], list[Tier]],
    *,
    underroute_budget: float | None = None,
) -> dict[str, Any]:
    """Both ladders for the classifier (argmax, and the budget tier when fitted) and the rules."""
    outcomes = load_routerbench(folder)
    prompts = [o.prompt for o in outcomes]
    probs = classify(prompts)
    routers: dict[str, Sequence[Tier]] = {"rules": rules(prompts), "ml": [Tier(int(i)) for i in probs.argmax(axis=1)]}
    if underroute_budget is not None:
        routers["ml-budget"] = [budget_tier(p, underroute_budget) for p in probs]
    groups = [o.extra.get("eval_name", "?") for o in outcomes]
    return {
        "files": sorted(p.name for p in folder.glob("*_test.csv")),
        "ladders": {
            name: score_ladder(outcomes, ladder, routers, probs, groups=groups) for name, ladder in LADDERS.items()
        },
    }
