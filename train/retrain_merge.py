"""Merge new labels with the existing data: one label per request, chosen by a stated precedence.

A request may carry several labels: the author's tier in ``data/``, the LLM fallback's answer in the
decision log (``haiku``), a user's right tier (``feedback``), one bought now (``opus``...). The most
trusted source wins; within one source the latest label wins. Every request whose labels disagree is
a conflict, counted by which source beat which (``"feedback over haiku": 3``).

Default precedence, most trusted first: feedback > opus > outcome > haiku > author. Feedback is a
person who saw the answer; opus reads the whole request; outcome judges answers (opt-in and noisy on
borderline requests); haiku sees an excerpt; author labels were written before any traffic existed.
A source missing from the list ranks below all of them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from router_ml.data import Row
from router_ml.errors import ConfigError
from router_ml.tiers import Tier

from .transcript import request_hash

__all__ = ["DEFAULT_PRECEDENCE", "Precedence", "LabelVote", "Resolution", "NewRequest", "MergeResult", "merge_labels"]

DEFAULT_PRECEDENCE = ("feedback", "opus", "outcome", "haiku", "author")


@dataclass(frozen=True)
class LabelVote:
    """One label for a request: where it came from, the tier, when (ISO UTC text), and details
    (decision id, how it was obtained) kept as provenance."""

    source: str
    tier: Tier
    at: str | None = None
    detail: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Resolution:
    winner: LabelVote
    conflict: bool  # the votes named more than one tier
    beaten: tuple[str, ...]  # sources whose (different) tier lost


@dataclass(frozen=True)
class Precedence:
    """Label sources, most trusted first.

    >>> Precedence.parse("feedback,opus,haiku").outranks("opus", "haiku")
    True
    """

    order: tuple[str, ...] = DEFAULT_PRECEDENCE

    def __post_init__(self) -> None:
        if not self.order or len(set(self.order)) != len(self.order) or not all(self.order):
            raise ConfigError(f"precedence must list distinct label sources, got {list(self.order)!r}")

    @classmethod
    def parse(cls, value: "str | Sequence[str] | Precedence | None") -> "Precedence":
        if value is None:
            return cls()
        if isinstance(value, Precedence):
            return value
        items = value.split(",") if isinstance(value, str) else list(value)
        return cls(tuple(s.strip() for s in items if s.strip()))

    def rank(self, source: str) -> int:
        """0 for the most trusted; a source not listed ranks after every listed one."""
        return self.order.index(source) if source in self.order else len(self.order)

    def outranks(self, a: str, b: str) -> bool:
        return self.rank(a) < self.rank(b)

    def resolve(self, votes: Iterable[LabelVote]) -> Resolution:
        """The winning vote: best rank, then the latest (a vote without a time counts as oldest)."""
        votes = list(votes)
        if not votes:
            raise ValueError("no labels to resolve")
        best = min(self.rank(v.source) for v in votes)
        group = [(i, v) for i, v in enumerate(votes) if self.rank(v.source) == best]
        winner = max(group, key=lambda iv: (iv[1].at or "", iv[0]))[1]  # latest; then the later one given
        beaten = tuple(sorted({v.source for v in votes if v.tier != winner.tier}))
        return Resolution(winner, len({v.tier for v in votes}) > 1, beaten)


@dataclass
class NewRequest:
    """A request from the log that is not in the data yet: its row and every label it got."""

    row: dict[str, Any]  # id, messages/system/tools, provenance
    votes: list[LabelVote]


@dataclass
class MergeResult:
    rows: list[dict[str, Any]]  # every training row: existing (maybe relabeled) + new
    new_rows: list[dict[str, Any]]  # the new requests that got a label
    stats: dict[str, Any]


def _provenance_labels(votes: Sequence[LabelVote]) -> dict[str, str]:
    return {v.source: v.tier.name for v in votes}


def merge_labels(
    existing: Sequence[Row],
    existing_votes: dict[str, list[LabelVote]],
    new: Sequence[NewRequest],
    precedence: Precedence | None = None,
) -> MergeResult:
    """Resolve every request's labels and return the rows to train on.

    ``existing``: labeled data rows (their ``label_source``, default "author", is their vote).
    ``existing_votes``: log labels for requests already in the data, by ``request_hash``.
    ``new``: requests not in the data; those without a vote (budget ran out) are left out.
    """
    precedence = precedence or Precedence()
    conflicts: Counter[str] = Counter()
    n_conflicts = relabeled = unlabeled = 0
    rows: list[dict[str, Any]] = []
    for r in existing:
        log_votes = existing_votes.get(request_hash(r.raw))
        if not log_votes:
            rows.append(r.raw)
            continue
        own = LabelVote(str(r.raw.get("label_source") or "author"), Tier.parse(r.tier))
        res = precedence.resolve([own, *log_votes])
        if res.conflict:
            n_conflicts += 1
            conflicts.update(f"{res.winner.source} over {b}" for b in res.beaten)
        if res.winner.tier == own.tier:
            rows.append(r.raw)
            continue
        relabeled += 1
        rows.append({
            **r.raw, "tier": res.winner.tier.name, "label_source": res.winner.source,
            "provenance": {**(r.raw.get("provenance") or {}), **res.winner.detail,
                           "relabeled": {"tier": own.tier.name, "label_source": own.source},
                           "labels": _provenance_labels(log_votes)},
        })
    new_rows = []
    for req in new:
        if not req.votes:
            unlabeled += 1
            continue
        res = precedence.resolve(req.votes)
        if res.conflict:
            n_conflicts += 1
            conflicts.update(f"{res.winner.source} over {b}" for b in res.beaten)
        row = {**req.row, "tier": res.winner.tier.name, "label_source": res.winner.source}
        if res.winner.detail.get("reason"):
            row["label_reason"] = res.winner.detail["reason"]
        row["provenance"] = {**req.row.get("provenance", {}), "labels": _provenance_labels(req.votes)}
        new_rows.append(row)
    rows.extend(new_rows)
    stats = {
        "existing": len(existing),
        "new": len(new_rows),
        "new_unlabeled": unlabeled,
        "relabeled_existing": relabeled,
        "conflicts": n_conflicts,
        "conflicts_by_winner": dict(sorted(conflicts.items())),
        "label_sources": dict(Counter(str(r.get("label_source", "author")) for r in rows)),
        "precedence": list(precedence.order),
    }
    return MergeResult(rows, new_rows, stats)
