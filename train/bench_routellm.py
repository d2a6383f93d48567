"""RouteLLM's two-model benchmarks (MMLU, GSM8K, MT-Bench; Mixtral weak, GPT-4 strong) and their
metrics, APGR and CPT, as ``../shared/benchmarks/README.md`` defines them.

A router gives each prompt a score for "needs the strong model"; sweeping a threshold over the
scores traces quality against the share of strong calls. Prompts with equal scores cannot be split
by any threshold, so they move together (a constant score gives the straight line of a random
router). Contaminated prompts (in RouteLLM's own training data) are dropped, as RouteLLM does.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from router_ml.errors import DataError

__all__ = [
    "TwoModelSet",
    "load_mmlu",
    "load_gsm8k",
    "load_mt_bench",
    "load_routellm",
    "quality_curve",
    "apgr",
    "cpt",
    "random_router",
    "score_two_model",
]

WEAK, STRONG = "mixtral-8x7b", "gpt-4-1106-preview"


@dataclass
class TwoModelSet:
    """Prompts with the quality each model reached on them (0/1 accuracy, or a 1-10 judge score)."""

    name: str
    prompts: list[str]
    weak: np.ndarray
    strong: np.ndarray
    dropped: int  # contaminated prompts left out
    quality: str  # "accuracy" or "judge score"


def _contaminated(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.is_file():
        return set()
    with path.open(encoding="utf-8") as f:
        return {json.loads(line)["eval_prompt"] for line in f if line.strip()}


def _truth(value: str, where: str) -> float:
    v = value.strip().lower()
    if v not in ("true", "false"):
        raise DataError(f"expected True or False, got {value!r}", path=where)
    return float(v == "true")


def _two_model_csv(name: str, path: Path, weak_col: str, strong_col: str) -> TwoModelSet:
    csv.field_size_limit(sys.maxsize)
    bad = _contaminated(path.parent)
    prompts, weak, strong, dropped = [], [], [], 0
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"prompt", weak_col, strong_col} - set(reader.fieldnames or [])
        if missing:
            raise DataError(f"missing column(s) {', '.join(sorted(missing))}", path=path)
        for n, row in enumerate(reader, 2):
            if row["prompt"] in bad:
                dropped += 1
                continue
            prompts.append(row["prompt"])
            weak.append(_truth(row[weak_col], f"{path}:{n}"))
            strong.append(_truth(row[strong_col], f"{path}:{n}"))
    return TwoModelSet(name, prompts, np.asarray(weak), np.asarray(strong), dropped, "accuracy")


def load_mmlu(root: Path) -> TwoModelSet:
    return _two_model_csv("mmlu", root / "mmlu" / "outcomes.csv", "mixtral_8x7b_correct", "gpt4_1106_correct")


def load_gsm8k(root: Path) -> TwoModelSet:
    return _two_model_csv(
        "gsm8k", root / "gsm8k" / "gsm8k_responses.csv", "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"
    )


def load_mt_bench(root: Path) -> TwoModelSet:
    """Routed on the first turn (the second depends on the answer); quality is the model's mean
    judge score over both turns. A question is dropped when either turn is contaminated."""
    folder = root / "mt_bench"
    bad = _contaminated(folder)
    scores: dict[tuple[int, str], list[float]] = {}
    with (folder / "judgements.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                j = json.loads(line)
                scores.setdefault((int(j["question_id"]), j["model"]), []).append(float(j["score"]))
    models = {m for _, m in scores}
    weak_m = next((m for m in models if "mixtral" in m.lower()), None)
    strong_m = next((m for m in models if "gpt-4" in m.lower()), None)
    if weak_m is None or strong_m is None:
        raise DataError(f"judgements name models {sorted(models)}; expected a Mixtral and a GPT-4", path=folder)
    prompts, weak, strong, dropped = [], [], [], 0
    with (folder / "question.jsonl").open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            q = json.loads(line)
            if any(t in bad for t in q["turns"]):
                dropped += 1
                continue
            qid = int(q["question_id"])
            if (qid, weak_m) not in scores or (qid, strong_m) not in scores:
                raise DataError(f"question {qid} has no judgement for both models", path=folder / "judgements.jsonl")
            prompts.append(q["turns"][0])
            weak.append(float(np.mean(scores[(qid, weak_m)])))
            strong.append(float(np.mean(scores[(qid, strong_m)])))
    return TwoModelSet("mt_bench", prompts, np.asarray(weak), np.asarray(strong), dropped, "judge score")


def load_routellm(root: Path) -> list[TwoModelSet]:
    """The three sets under ``root`` (``.../benchmarks/routellm``) that are present."""
    loaders = {"mmlu": load_mmlu, "gsm8k": load_gsm8k, "mt_bench": load_mt_bench}
    return [load(root) for name, load in loaders.items() if (root / name).is_dir()]


def quality_curve(
    scores: Sequence[float], weak: Sequence[float], strong: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """``(share_strong, quality)`` at every threshold: prompts sent to the strong model in order of
    falling score, equal scores together. Starts at (0, weak mean), ends at (1, strong mean).

    >>> quality_curve([0.9, 0.1], [0, 1], [1, 1])
    (array([0. , 0.5, 1. ]), array([0.5, 1. , 1. ]))
    """
    s, w, g = (np.asarray(a, dtype=float) for a in (scores, weak, strong))
    if not len(s) == len(w) == len(g) or len(s) == 0:
        raise ValueError(f"scores, weak and strong need the same non-zero length, got {len(s)}, {len(w)}, {len(g)}")
    order = np.argsort(-s, kind="stable")
    gain = (g - w)[order]
    cum = np.concatenate([[0.0], np.cumsum(gain)])
    sorted_s = s[order]
    # cut points: before the first prompt, after each run of equal scores
    cuts = [0] + [k for k in range(1, len(s)) if sorted_s[k] != sorted_s[k - 1]] + [len(s)]
    n = len(s)
    x = np.asarray(cuts, dtype=float) / n
    q = (w.sum() + cum[cuts]) / n
    return x, q


def apgr(x: np.ndarray, q: np.ndarray, weak_q: float, strong_q: float) -> float | None:
    """Average performance gap recovered: (area under the curve - weak) / (strong - weak), over
    the share of strong calls from 0 to 1. Random routing scores 0.5; None when strong is not better."""
    if strong_q <= weak_q:
        return None
    area = float(np.sum((x[1:] - x[:-1]) * (q[1:] + q[:-1]) / 2))  # trapezoids
    return (area - weak_q) / (strong_q - weak_q)


def cpt(x: np.ndarray, q: np.ndarray, weak_q: float, strong_q: float, recovered: float) -> float | None:
    """Call-performance threshold: the smallest share of strong calls at which the curve, linearly
    interpolated between thresholds, recovers ``recovered`` (0.5 for CPT(50%)) of the quality gap."""
    if strong_q <= weak_q:
        return None
    target = weak_q + recovered * (strong_q - weak_q)
    if q[0] >= target - 1e-12:
        return float(x[0])
    for k in range(1, len(x)):
        if q[k] >= target - 1e-12:
            return float(x[k - 1] + (target - q[k - 1]) / (q[k] - q[k - 1]) * (x[k] - x[k - 1]))
    return None


def _metrics(scores: Sequence[float], data: TwoModelSet) -> dict[str, Any]:
    w, s = float(data.weak.mean()), float(data.strong.mean())
    x, q = quality_curve(scores, data.weak, data.strong)
    return {
        "apgr": apgr(x, q, w, s),
        "cpt50": cpt(x, q, w, s, 0.5),
        "cpt80": cpt(x, q, w, s, 0.8),
        "curve": {"share_strong": x.tolist(), "quality": q.tolist()} if len(x) <= 201 else _thin(x, q),
    }


def _thin(x: np.ndarray, q: np.ndarray, points: int = 101) -> dict[str, list[float]]:
    """The curve at ``points`` evenly spaced shares (for plots and JSON; the metrics use every cut)."""
    grid = np.linspace(0, 1, points)
    return {"share_strong": grid.tolist(), "quality": np.interp(grid, x, q).tolist()}


def random_router(data: TwoModelSet, *, seeds: int = 20) -> dict[str, Any]:
    """A router with uniformly random scores, measured on the data (not assumed): mean and spread
    over ``seeds`` draws."""
    runs = [_metrics(np.random.default_rng(seed).random(len(data.prompts)), data) for seed in range(seeds)]

    def stat(key: str) -> dict[str, float | None]:
        vals = [r[key] for r in runs if r[key] is not None]
        return {"mean": float(np.mean(vals)), "sd": float(np.std(vals))} if vals else {"mean": None, "sd": None}

    return {"apgr": stat("apgr"), "cpt50": stat("cpt50"), "cpt80": stat("cpt80"), "seeds": seeds}


def score_two_model(data: TwoModelSet, scorers: dict[str, Callable[[list[str]], np.ndarray]]) -> dict[str, Any]:
    """Every scorer's APGR and CPT on one set, next to a random router and the oracle (scores =
    how much the strong model gains on the prompt: the best any router could do)."""
    out: dict[str, Any] = {
        "n": len(data.prompts),
        "dropped_contaminated": data.dropped,
        "quality": data.quality,
        "weak": {"model": WEAK, "quality": float(data.weak.mean())},
        "strong": {"model": STRONG, "quality": float(data.strong.mean())},
        "routers": {},
    }
    for name, scorer in scorers.items():
        out["routers"][name] = _metrics(np.asarray(scorer(data.prompts), dtype=float), data)
    out["random"] = random_router(data)
    out["oracle"] = _metrics(data.strong - data.weak, data)
    return out
