"""Label precedence and merging: one label per request, the most trusted source wins, conflicts counted."""

from __future__ import annotations

import pytest

from router_ml.data import Row
from router_ml.errors import ConfigError
from router_ml.normalize import normalize
from router_ml.tiers import Tier
from train.retrain_merge import DEFAULT_PRECEDENCE, LabelVote, NewRequest, Precedence, merge_labels
from train.transcript import request_hash

S, M, C = Tier.SIMPLE, Tier.MEDIUM, Tier.COMPLEX


def row(id: str, prompt: str, tier: str, source: str | None = "author") -> Row:
    raw = {"id": id, "prompt": prompt, "tier": tier}
    if source:
        raw["label_source"] = source
    return Row(raw=raw, request=normalize(raw), tier=Tier.parse(tier), where=f"data.jsonl:{id}")


def test_default_precedence_is_feedback_opus_outcome_haiku_author():
    p = Precedence()
    assert p.order == DEFAULT_PRECEDENCE == ("feedback", "opus", "outcome", "haiku", "author")
    assert p.outranks("feedback", "opus") and p.outranks("haiku", "author") and not p.outranks("author", "haiku")
    assert p.rank("someone-else") == len(DEFAULT_PRECEDENCE)  # unknown sources rank last


def test_precedence_is_configurable_and_validated():
    assert Precedence.parse("author, feedback").order == ("author", "feedback")
    assert Precedence.parse(["opus"]).order == ("opus",)
    with pytest.raises(ConfigError, match="distinct"):
        Precedence.parse("opus,opus")
    with pytest.raises(ConfigError):
        Precedence.parse("")


@pytest.mark.parametrize(
    "votes, winner",
    [
        ([LabelVote("haiku", S), LabelVote("feedback", C), LabelVote("opus", M)], ("feedback", C)),
        ([LabelVote("author", S), LabelVote("haiku", M)], ("haiku", M)),
        ([LabelVote("outcome", C), LabelVote("opus", M)], ("opus", M)),
        ([LabelVote("stranger", C), LabelVote("author", S)], ("author", S)),
    ],
)
def test_the_most_trusted_source_wins(votes, winner):
    res = Precedence().resolve(votes)
    assert (res.winner.source, res.winner.tier) == winner and res.conflict


def test_within_one_source_the_latest_label_wins_and_agreement_is_no_conflict():
    p = Precedence()
    res = p.resolve([LabelVote("feedback", C, "2026-01-02T00:00:00.000000Z"),
                     LabelVote("feedback", S, "2026-01-01T00:00:00.000000Z")])
    assert res.winner.tier == C and res.beaten == ("feedback",)
    same = p.resolve([LabelVote("haiku", M), LabelVote("opus", M)])
    assert same.winner.source == "opus" and not same.conflict and same.beaten == ()


def test_feedback_relabels_an_existing_row_and_keeps_its_provenance():
    existing = [row("a", "Summarize this contract for me", "SIMPLE"), row("b", "Hello there", "SIMPLE")]
    vote = LabelVote("feedback", C, "2026-01-01T00:00:00.000000Z", {"decision_id": "d1"})
    votes = {request_hash(existing[0].raw): [vote]}
    out = merge_labels(existing, votes, [])
    relabeled = out.rows[0]
    assert relabeled["tier"] == "COMPLEX" and relabeled["label_source"] == "feedback"
    assert relabeled["provenance"]["relabeled"] == {"tier": "SIMPLE", "label_source": "author"}
    assert relabeled["provenance"]["decision_id"] == "d1"
    assert out.rows[1] is existing[1].raw  # untouched rows are passed through as they were
    assert out.stats["relabeled_existing"] == 1 and out.stats["conflicts"] == 1
    assert out.stats["conflicts_by_winner"] == {"feedback over author": 1}


def test_new_requests_take_the_best_label_and_unlabeled_ones_are_left_out():
    new = [
        NewRequest({"id": "log-1", "messages": [{"role": "user", "content": "x"}], "provenance": {"from": "log"}},
                   [LabelVote("haiku", S), LabelVote("opus", M, detail={"reason": "needs a summary"})]),
        NewRequest({"id": "log-2", "messages": [{"role": "user", "content": "y"}], "provenance": {}},
                   [LabelVote("haiku", C)]),
        NewRequest({"id": "log-3", "messages": [{"role": "user", "content": "z"}], "provenance": {}}, []),
    ]
    out = merge_labels([], {}, new)
    assert [(r["id"], r["tier"], r["label_source"]) for r in out.new_rows] == [
        ("log-1", "MEDIUM", "opus"), ("log-2", "COMPLEX", "haiku")]
    assert out.new_rows[0]["label_reason"] == "needs a summary"
    assert out.new_rows[0]["provenance"] == {"from": "log", "labels": {"haiku": "SIMPLE", "opus": "MEDIUM"}}
    assert out.stats["new"] == 2 and out.stats["new_unlabeled"] == 1
    assert out.stats["conflicts_by_winner"] == {"opus over haiku": 1}
    assert out.stats["label_sources"] == {"opus": 1, "haiku": 1}


def test_a_precedence_that_trusts_authors_keeps_their_labels():
    existing = [row("a", "Write a haiku about autumn", "SIMPLE", source=None)]  # no label_source: "author"
    votes = {request_hash(existing[0].raw): [LabelVote("haiku", M)]}
    out = merge_labels(existing, votes, [], Precedence.parse("author,haiku"))
    assert out.rows[0]["tier"] == "SIMPLE" and out.stats["relabeled_existing"] == 0
    assert out.stats["conflicts_by_winner"] == {"author over haiku": 1}
