"""Selection: what is new, which labels are reused, and which requests get a bought label first."""

from __future__ import annotations

import random

import pytest
from traffic import prompt

from router_ml.data import Row
from router_ml.errors import ConfigError
from router_ml.normalize import normalize
from router_ml.tiers import Tier
from train.retrain_log import LogRecord
from train.retrain_select import SelectionConfig, select

PROBS = {"SIMPLE": {"SIMPLE": 0.8, "MEDIUM": 0.15, "COMPLEX": 0.05},
         "MEDIUM": {"SIMPLE": 0.2, "MEDIUM": 0.6, "COMPLEX": 0.2},
         "COMPLEX": {"SIMPLE": 0.05, "MEDIUM": 0.15, "COMPLEX": 0.8}}
_rng = random.Random(11)


def text(tier: str = "MEDIUM") -> str:
    return prompt(tier, _rng)


def rec(id: str, content: str | None = None, *, conf: float = 0.9, source: str = "classifier",
        routed: str = "SIMPLE", guess: str = "SIMPLE", feedback: str | None = None, privacy: str = "full") -> LogRecord:
    request = {"messages": [{"role": "user", "content": content or text()}]} if privacy != "hash" else None
    return LogRecord(id=id, created_at=f"2026-11-28T00:00:{int(id[1:]) % 60:02d}.000000Z", request=request,
                     privacy=privacy, routed_tier=Tier[routed], source=source, confidence=conf,
                     probabilities=PROBS[guess], feedback_tier=Tier[feedback] if feedback else None)


def data_row(id: str, content: str, tier: str = "SIMPLE") -> Row:
    raw = {"id": id, "prompt": content, "tier": tier, "label_source": "author"}
    return Row(raw=raw, request=normalize(raw), tier=Tier[tier], where=f"d.jsonl:{id}")


def test_hash_only_and_unstored_requests_are_counted_apart():
    unstored = rec("r2")
    unstored.request = None
    sel = select([rec("r1", privacy="hash"), unstored, rec("r3")], [], labeler="opus")
    assert sel.counts["hash_only"] == 1 and sel.counts["no_request_stored"] == 1
    assert [c.row["id"] for c in sel.candidates] == ["log-r3"]


def test_exact_duplicates_fold_and_requests_in_the_data_lend_their_labels_to_it():
    same, known = text(), text()
    records = [rec("r1", same), rec("r2", same, source="llm", routed="MEDIUM"), rec("r3", known, feedback="COMPLEX")]
    sel = select(records, [data_row("d1", known)], labeler="opus")
    assert sel.counts["exact_duplicates"] == 1 and sel.counts["already_in_data"] == 1
    (cand,) = sel.candidates
    assert [r.id for r in cand.records] == ["r1", "r2"] and [v.source for v in cand.votes] == ["haiku"]
    (votes,) = sel.existing_votes.values()
    assert [(v.source, v.tier) for v in votes] == [("feedback", Tier.COMPLEX)]
    assert sel.counts["reused_haiku"] == 1 and sel.counts["reused_feedback"] == 1


def test_near_duplicates_are_dropped_unless_a_user_gave_feedback():
    base = "please " + text("COMPLEX")
    near = base + " thanks"
    records = [rec("r1", near), rec("r2", base + " ok", feedback="COMPLEX"), rec("r3")]
    sel = select(records, [data_row("d1", base)], labeler="opus")
    assert sel.counts["near_duplicates"] == 1
    assert [c.row["id"] for c in sel.candidates] == ["log-r2", "log-r3"]


def test_labels_are_bought_only_where_the_labeler_outranks_what_the_request_has():
    records = [rec("r1", source="llm", routed="MEDIUM"), rec("r2", feedback="COMPLEX"), rec("r3", conf=0.4)]
    by_haiku = select(records, [], labeler="haiku")
    assert [c.row["id"] for c in by_haiku.to_label] == ["log-r3"]  # r1 has haiku's answer, r2 feedback
    by_opus = select(records, [], labeler="opus")
    assert {c.row["id"] for c in by_opus.to_label} == {"log-r1", "log-r3"}


def test_low_confidence_first_least_sure_first_then_disagreements_then_the_rest():
    records = [
        rec("r1", conf=0.9),  # confident, unlabeled: random sample only
        rec("r2", conf=0.55), rec("r3", conf=0.35),  # unsure, no label
        rec("r4", conf=0.5, source="llm", routed="COMPLEX", guess="SIMPLE"),  # LLM disagreed with the classifier
        rec("r5", conf=0.45, source="llm", routed="SIMPLE", guess="SIMPLE"),  # LLM agreed
    ]
    sel = select(records, [], labeler="opus", config=SelectionConfig(random_share=0.0, max_new=10))
    chosen = [(c.row["id"], c.bucket) for c in sel.to_label]
    assert chosen[:3] == [("log-r3", "low_confidence"), ("log-r2", "low_confidence"), ("log-r4", "disagreement")]
    assert sorted(chosen[3:]) == [("log-r1", "random"), ("log-r5", "random")]  # then the rest, at random
    assert sel.counts["to_label_low_confidence"] == 2 and sel.counts["to_label_disagreement"] == 1


def test_max_new_caps_the_list_and_the_priority_buckets_fill_it_first():
    records = [rec(f"r{i}", conf=0.3 + i / 100) for i in range(1, 11)]
    records += [rec(f"r{i}", conf=0.95) for i in range(11, 21)]
    sel = select(records, [], labeler="opus", config=SelectionConfig(max_new=5, random_share=0.0))
    assert [c.row["id"] for c in sel.to_label] == ["log-r1", "log-r2", "log-r3", "log-r4", "log-r5"]
    assert sel.counts["not_selected"] == 15


def test_a_uniform_random_sample_is_reserved_and_spread_through_the_list():
    records = [rec(f"r{i}", conf=0.3) for i in range(1, 31)] + [rec(f"r{i}", conf=0.95) for i in range(31, 61)]
    config = SelectionConfig(max_new=20, random_share=0.25, seed=3)
    sel = select(records, [], labeler="opus", config=config)
    buckets = [c.bucket for c in sel.to_label]
    assert buckets.count("random") == 5 and buckets.count("low_confidence") == 15
    positions = [i for i, b in enumerate(buckets) if b == "random"]
    assert positions[0] < 5 and positions[-1] > 14  # interleaved, not left at the end for the budget to cut
    again = select(records, [], labeler="opus", config=config)
    assert [c.row["id"] for c in again.to_label] == [c.row["id"] for c in sel.to_label]  # seeded


def test_selection_config_is_validated():
    with pytest.raises(ConfigError, match="random_share"):
        SelectionConfig(random_share=1.5)
    with pytest.raises(ConfigError, match="max_new"):
        SelectionConfig(max_new=-1)
