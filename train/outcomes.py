"""Outcome importers: per-model outcome tables -> tier labels, by the cheapest-correct-rung rule.

A ladder names one model per tier, cheapest first. A prompt's tier is the cheapest rung that answered
it correctly; a prompt that no rung answered is reported apart (escalating it buys nothing, so when
kept it is labeled SIMPLE and flagged). Two table shapes are read:

- wide (RouterBench): one row per prompt, a score column per model (``claude-v1``: 0/1) and a cost
  column per model (``claude-v1|total_cost``);
- long: one row per (prompt, model): ``prompt, model, correct, cost`` (optional ``id``).

Rows come out in the project's data format with ``label_source: "outcome"``, so users with their own
outcome logs can train on them. (Not to be confused with ``outcome.py``, the LLM-judged labeler.)
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from router_ml.errors import DataError
from router_ml.tiers import Tier

__all__ = [
    "Ladder",
    "Outcome",
    "ROUTERBENCH_LADDER",
    "ROUTERBENCH_LADDER_GPT35",
    "cheapest_correct_tier",
    "read_wide_csv",
    "read_long_csv",
    "read_outcomes",
    "label_outcomes",
    "import_outcomes",
]

COST_SUFFIX = "|total_cost"
_TRUE = {"1", "1.0", "true", "yes", "y", "t", "correct", "pass"}
_FALSE = {"0", "0.0", "false", "no", "n", "f", "incorrect", "fail"}


@dataclass(frozen=True)
class Ladder:
    """One model per tier, SIMPLE first. ``Ladder(("a", "b", "c")).model(Tier.MEDIUM) == "b"``."""

    models: tuple[str, str, str]

    def __post_init__(self) -> None:
        if len(self.models) != len(Tier) or len(set(self.models)) != len(self.models):
            raise ValueError(f"a ladder needs {len(Tier)} distinct models (SIMPLE, MEDIUM, COMPLEX), got {self.models}")

    @classmethod
    def parse(cls, text: str) -> "Ladder":
        """``"haiku,sonnet,opus"`` -> a ladder."""
        return cls(tuple(m.strip() for m in text.split(",")))  # type: ignore[arg-type]

    def model(self, tier: Tier | str | int) -> str:
        return self.models[int(Tier.parse(tier))]


ROUTERBENCH_LADDER = Ladder(("claude-instant-v1", "claude-v1", "gpt-4-1106-preview"))
ROUTERBENCH_LADDER_GPT35 = Ladder(("claude-instant-v1", "gpt-3.5-turbo-1106", "gpt-4-1106-preview"))


@dataclass
class Outcome:
    """What each model did on one prompt: ``correct[model]`` and, when known, ``cost[model]`` in dollars."""

    id: str
    prompt: str
    correct: dict[str, bool]
    cost: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. eval_name, kept as the row's domain


def cheapest_correct_tier(correct: Mapping[str, bool], ladder: Ladder) -> Tier | None:
    """The cheapest tier whose rung answered correctly; None when no rung did.

    Raises ``KeyError`` naming the rung when a rung's outcome is missing below the first correct
    one (without it the rule cannot say the cheaper model would have failed).

    >>> cheapest_correct_tier({"a": False, "b": True, "c": True}, Ladder(("a", "b", "c")))
    <Tier.MEDIUM: 1>
    """
    for tier in Tier:
        model = ladder.model(tier)
        if model not in correct:
            raise KeyError(model)
        if correct[model]:
            return tier
    return None


def _bool(value: Any, *, where: str) -> bool:
    s = str(value).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    try:
        return float(s) >= 0.5  # graded scores in [0, 1]: at least half counts as correct
    except ValueError:
        raise DataError(f"cannot read {value!r} as correct/incorrect", path=where) from None


def _float(value: Any, *, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DataError(f"cannot read cost {value!r} as a number", path=where) from None


def _prompt_text(raw: str) -> str:
    """RouterBench stores prompts as a Python list literal (``"['...']"``); join its parts."""
    s = raw.strip()
    if s.startswith("[") and s.endswith("]"):
        try:
            parts = ast.literal_eval(s)
        except (ValueError, SyntaxError):
            return raw
        if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
            return "\n\n".join(parts)
    return raw


def _reader(path: Path):
    csv.field_size_limit(sys.maxsize)  # RouterBench keeps whole responses in its cells
    try:
        f = path.open(newline="", encoding="utf-8")
    except OSError as err:
        raise DataError(f"cannot open: {err.strerror}", path=path) from err
    return f


def read_wide_csv(
    path: str | Path, models: Sequence[str] | None = None, *, prompt_col: str = "prompt", id_col: str = "sample_id"
) -> list[Outcome]:
    """RouterBench-style rows; ``models`` default: every column with a ``|total_cost`` partner."""
    path = Path(path)
    with _reader(path) as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        if prompt_col not in cols:
            raise DataError(f"no {prompt_col!r} column (columns: {', '.join(cols[:8])}...)", path=path)
        found = [c[: -len(COST_SUFFIX)] for c in cols if c.endswith(COST_SUFFIX)]
        models = list(models) if models is not None else found
        missing = [m for m in models if m not in cols]
        if missing:
            raise DataError(f"no score column for model(s) {', '.join(missing)}", path=path)
        out = []
        for n, row in enumerate(reader, 2):
            where = f"{path}:{n}"
            out.append(
                Outcome(
                    id=str(row.get(id_col) or f"{path.stem}-{n}"),
                    prompt=_prompt_text(row[prompt_col]),
                    # an empty score cell is a missing outcome, not a failure
                    correct={m: _bool(row[m], where=where) for m in models if row[m].strip()},
                    cost={m: _float(row[m + COST_SUFFIX], where=where) for m in models if m + COST_SUFFIX in row},
                    extra={"eval_name": row["eval_name"]} if row.get("eval_name") else {},
                )
            )
    return out


def read_long_csv(path: str | Path) -> list[Outcome]:
    """``prompt, model, correct[, cost][, id]`` rows, grouped by ``id`` (else by prompt text)."""
    path = Path(path)
    with _reader(path) as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        need = {"prompt", "model", "correct"} - cols
        if need:
            raise DataError(
                f"long format needs columns prompt, model, correct; missing {', '.join(sorted(need))}", path=path
            )
        by_key: dict[str, Outcome] = {}
        for n, row in enumerate(reader, 2):
            where = f"{path}:{n}"
            key = (row.get("id") or "").strip() or row["prompt"]
            o = by_key.get(key)
            if o is None:
                o = by_key[key] = Outcome(
                    id=(row.get("id") or "").strip() or f"{path.stem}-{len(by_key) + 1}",
                    prompt=row["prompt"],
                    correct={},
                )
            model = row["model"].strip()
            if model in o.correct:
                raise DataError(f"a second outcome for model {model!r} on the same prompt", path=path, line=n)
            o.correct[model] = _bool(row["correct"], where=where)
            if row.get("cost") not in (None, ""):
                o.cost[model] = _float(row["cost"], where=where)
    return list(by_key.values())


def read_outcomes(path: str | Path, *, ladder: Ladder | None = None, fmt: str = "auto") -> list[Outcome]:
    """Read a wide or long outcome CSV (``fmt``: ``auto``, ``wide`` or ``long``)."""
    path = Path(path)
    if fmt == "auto":
        with _reader(path) as f:
            header = next(csv.reader(f), [])
        fmt = "long" if {"model", "correct"} <= set(header) else "wide"
    if fmt == "long":
        return read_long_csv(path)
    if fmt == "wide":
        return read_wide_csv(path, ladder.models if ladder else None)
    raise ValueError(f"unknown outcome format {fmt!r}; expected auto, wide or long")


def label_outcomes(outcomes: Iterable[Outcome], ladder: Ladder, *, unsolved_tier: Tier | None = None) -> dict[str, Any]:
    """Label each outcome by the cheapest correct rung.

    Returns ``{"rows": [...], "unsolved": [ids], "incomplete": [ids]}``: ``rows`` are data rows;
    prompts no rung solved are left out (or labeled ``unsolved_tier`` and flagged ``unsolved``);
    prompts missing a rung's outcome are left out as ``incomplete``.
    """
    rows, unsolved, incomplete = [], [], []
    for o in outcomes:
        try:
            tier = cheapest_correct_tier(o.correct, ladder)
        except KeyError:
            incomplete.append(o.id)
            continue
        flagged = tier is None
        if flagged:
            unsolved.append(o.id)
            if unsolved_tier is None:
                continue
            tier = unsolved_tier
        row: dict[str, Any] = {
            "id": o.id,
            "prompt": o.prompt,
            "tier": tier.name,
            "label_source": "outcome",
            "outcome": {
                "ladder": list(ladder.models),
                "correct": {m: o.correct[m] for m in ladder.models if m in o.correct},
                **({"cost_usd": {m: o.cost[m] for m in ladder.models if m in o.cost}} if o.cost else {}),
            },
        }
        if flagged:
            row["outcome"]["unsolved"] = True
        if o.extra.get("eval_name"):
            row["domain"] = o.extra["eval_name"]
        rows.append(row)
    return {"rows": rows, "unsolved": unsolved, "incomplete": incomplete}


def import_outcomes(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    ladder: Ladder,
    fmt: str = "auto",
    unsolved_tier: Tier | None = None,
) -> dict[str, Any]:
    """Read outcome tables, label them, write one JSONL file; return counts by tier and what was left out."""
    outcomes: list[Outcome] = []
    for src in sources:
        outcomes += read_outcomes(src, ladder=ladder, fmt=fmt)
    seen: set[str] = set()
    for o in outcomes:
        if o.id in seen:
            raise DataError(f"duplicate prompt id {o.id!r} across the inputs", path=str(sources[0]))
        seen.add(o.id)
    labeled = label_outcomes(outcomes, ladder, unsolved_tier=unsolved_tier)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in labeled["rows"]:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = {t.name: 0 for t in Tier}
    for row in labeled["rows"]:
        counts[row["tier"]] += 1
    return {
        "out": str(out),
        "read": len(outcomes),
        "written": len(labeled["rows"]),
        "tiers": counts,
        "ladder": list(ladder.models),
        "unsolved": len(labeled["unsolved"]),
        "unsolved_kept_as": unsolved_tier.name if unsolved_tier is not None else None,
        "incomplete": len(labeled["incomplete"]),
        "unsolved_ids": labeled["unsolved"][:20],
        "incomplete_ids": labeled["incomplete"][:20],
    }
