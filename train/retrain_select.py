"""Step 1 and 2 of a retrain: which logged requests are new, which labels they already have, and
which ones to buy a teacher label for.

- Records without a stored request (privacy "hash", or only normalized text) cannot be relabeled:
  they are counted apart.
- Exact duplicates (same messages/system/tools) fold into one request; requests already in the
  data give their log labels to the existing row (see ``retrain_merge``); near-duplicates (of the data
  or of an earlier new request; shingle Jaccard >= ``near_threshold`` on the whole request and on the
  last user turn) are dropped, unless a user gave feedback on them.
- Labels already paid for are reused: the LLM fallback's answer (``haiku``) and user feedback.
- A label is bought only where the labeler outranks every label the request already has. First a
  seeded random sample, ``random_share`` of ``max_new``, drawn uniformly from every such request: it
  keeps the estimate of live accuracy unbiased, and it is interleaved through the list so that a
  budget running out early still leaves an unbiased slice. The rest goes, in this order, to
  low-confidence decisions (no label yet, confidence below ``low_confidence``, least confident
  first), to disagreements (the classifier's best guess differs from the label the request has),
  then to more of the random sample.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from router_ml.data import Row
from router_ml.errors import ConfigError
from router_ml.normalize import normalize

from .datacheck import full_text, near_duplicate_pairs, shingles
from .retrain_log import LogRecord
from .retrain_merge import LabelVote, Precedence
from .transcript import request_hash

__all__ = ["SelectionConfig", "Candidate", "Selection", "select", "votes_of", "BUCKETS"]

BUCKETS = ("low_confidence", "disagreement", "random")


@dataclass(frozen=True)
class SelectionConfig:
    """``max_new`` labels to buy at most (default 2000); ``low_confidence`` the confidence below which
    a decision counts as unsure (0.6); ``random_share`` of ``max_new`` kept for the random sample
    (0.2); ``near_threshold`` for near-duplicates (0.8); ``seed`` of the random sample (0)."""

    max_new: int = 2000
    low_confidence: float = 0.6
    random_share: float = 0.2
    near_threshold: float = 0.8
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.max_new, int) or self.max_new < 0:
            problems.append(f"max_new must be a non-negative integer, got {self.max_new!r}")
        for name in ("low_confidence", "random_share", "near_threshold"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if problems:
            raise ConfigError("; ".join(problems))


@dataclass
class Candidate:
    """One distinct new request: its data row, the log records that carried it, its labels."""

    key: str
    row: dict[str, Any]
    records: list[LogRecord]
    votes: list[LabelVote] = field(default_factory=list)
    bucket: str | None = None  # set when chosen for labeling

    @property
    def confidence(self) -> float | None:
        known = [r.confidence for r in self.records if isinstance(r.confidence, (int, float))]
        return min(known) if known else None

    @property
    def classifier_tier(self):
        return next((r.classifier_tier for r in self.records if r.classifier_tier is not None), None)


@dataclass
class Selection:
    candidates: list[Candidate]  # new distinct requests kept, in log order
    existing_votes: dict[str, list[LabelVote]]  # request_hash -> log labels for rows already in the data
    to_label: list[Candidate]  # what to buy, most useful first
    counts: dict[str, Any]


def votes_of(record: LogRecord) -> list[LabelVote]:
    """The labels a log record already paid for."""
    votes = []
    if record.feedback_tier is not None:
        votes.append(LabelVote("feedback", record.feedback_tier, record.feedback_at or record.created_at,
                               {"decision_id": record.id, "via": "user feedback"}))
    if record.source == "llm" and record.routed_tier is not None:
        votes.append(LabelVote("haiku", record.routed_tier, record.created_at,
                               {"decision_id": record.id, "via": "LLM fallback", "model": record.llm_model}))
    if record.label is not None:
        votes.append(LabelVote(record.label[0], record.label[1], record.created_at, {"decision_id": record.id}))
    return votes


def _provenance(record: LogRecord) -> dict[str, Any]:
    return {"from": "log", "decision_id": record.id, "created_at": record.created_at,
            "routed_tier": record.routed_tier.name if record.routed_tier is not None else None,
            "routed_source": record.source, "confidence": record.confidence}


def _near_drops(cands: list[Candidate], existing: Sequence[Row], threshold: float) -> set[int]:
    """Indices of candidates that nearly repeat the data or an earlier candidate."""
    rows = [Row(raw=c.row, request=normalize(c.row), tier=None, where=c.row["id"]) for c in cands]
    texts = [full_text(r) for r in rows]
    last = [shingles(r.request.last_user) for r in rows]

    def same_turn(a: set[int], b: set[int]) -> bool:
        return (len(a & b) / len(a | b) if a | b else 1.0) >= threshold

    drop = {i for i, j, _ in near_duplicate_pairs(texts, threshold=threshold, others=[full_text(r) for r in existing])
            if same_turn(last[i], shingles(existing[j].request.last_user))}
    for i, j, _ in near_duplicate_pairs(texts, threshold=threshold):
        if i not in drop and same_turn(last[i], last[j]):
            drop.add(j)  # the later one repeats the earlier one
    return drop


def _interleave(first: list[Candidate], second: list[Candidate]) -> list[Candidate]:
    """Spread ``second`` evenly through ``first`` (keeping each list's order)."""
    keyed = [((i + 0.5) / len(first), 0, c) for i, c in enumerate(first)]
    keyed += [((j + 0.5) / len(second), 1, c) for j, c in enumerate(second)]
    return [c for *_, c in sorted(keyed, key=lambda k: (k[0], k[1]))]


def select(
    records: Sequence[LogRecord],
    existing: Sequence[Row],
    *,
    labeler: str,
    precedence: Precedence | None = None,
    config: SelectionConfig | None = None,
) -> Selection:
    """Deduplicate ``records`` against themselves and ``existing``, collect the labels they carry,
    and order the requests worth a ``labeler`` label (see the module docstring)."""
    precedence = precedence or Precedence()
    config = config or SelectionConfig()
    counts: Counter[str] = Counter(records=len(records))
    known = {request_hash(r.raw) for r in existing}
    existing_votes: dict[str, list[LabelVote]] = {}
    by_key: dict[str, Candidate] = {}
    used_ids: set[str] = set()
    for rec in records:
        if rec.request is None:
            counts["hash_only" if rec.privacy == "hash" else "no_request_stored"] += 1
            continue
        key = request_hash(rec.request)
        votes = votes_of(rec)
        if key in known:
            counts["already_in_data"] += 1
            if votes:
                existing_votes.setdefault(key, []).extend(votes)
            continue
        if key in by_key:
            counts["exact_duplicates"] += 1
            by_key[key].records.append(rec)
            by_key[key].votes.extend(votes)
            continue
        rid = f"log-{rec.id}"
        if rid in used_ids:
            rid = f"{rid}-{key[:8]}"
        used_ids.add(rid)
        row = {"id": rid, **rec.request, "provenance": _provenance(rec)}
        by_key[key] = Candidate(key, row, [rec], votes)
    cands = list(by_key.values())
    drops = _near_drops(cands, existing, config.near_threshold) if cands else set()
    kept = []
    for i, c in enumerate(cands):
        if i in drops and not any(v.source == "feedback" for v in c.votes):
            counts["near_duplicates"] += 1
        else:
            kept.append(c)
    counts["new_requests"] = len(kept)
    for c in kept:
        for v in c.votes:
            counts[f"reused_{v.source}"] += 1
    for v in (v for vs in existing_votes.values() for v in vs):
        counts[f"reused_{v.source}"] += 1

    eligible: list[Candidate] = []
    for c in kept:
        best = precedence.resolve(c.votes).winner if c.votes else None
        if best is None or precedence.outranks(labeler, best.source):
            eligible.append(c)  # else it already has a label at least as trusted as the one we would buy
    # The random sample is drawn first, uniformly from everything eligible: that is what keeps the
    # estimate of live accuracy unbiased. The rest goes to the requests that teach the most.
    # Ordered by a seeded hash of the request, not shuffled: requests logged since a killed run do not
    # reshuffle the sample, so the resumed run asks for (nearly) the same, already cached, labels.
    shuffled = sorted(eligible, key=lambda c: hashlib.sha256(f"{config.seed}:{c.key}".encode()).digest())
    sample = shuffled[: min(len(shuffled), math.ceil(config.max_new * config.random_share))]
    for c in sample:
        c.bucket = "random"
    priority: list[Candidate] = []
    for c in shuffled[len(sample):]:
        best = precedence.resolve(c.votes).winner if c.votes else None
        if best is None and c.confidence is not None and c.confidence < config.low_confidence:
            c.bucket = "low_confidence"
        elif best is not None and c.classifier_tier is not None and c.classifier_tier != best.tier:
            c.bucket = "disagreement"
        else:
            continue  # confident and unlabeled, or agreeing: only the random sample buys those
        priority.append(c)
    priority.sort(key=lambda c: (BUCKETS.index(c.bucket), c.confidence if c.confidence is not None else 1.0))
    for c in priority[config.max_new - len(sample):]:
        c.bucket = None
    priority = priority[: config.max_new - len(sample)]
    room = config.max_new - len(sample) - len(priority)
    extra = [c for c in shuffled[len(sample):] if c.bucket is None][:room]  # then more of the random sample
    for c in extra:
        c.bucket = "random"
    to_label = (_interleave(priority, sample) if priority and sample else priority + sample) + extra
    counts["eligible_for_labeling"] = len(eligible)
    counts["not_selected"] = len(eligible) - len(to_label)
    for c in to_label:
        counts[f"to_label_{c.bucket}"] += 1
    return Selection(kept, existing_votes, to_label, dict(counts))
