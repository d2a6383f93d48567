"""Reading traffic for retraining: a decision log or a JSONL file, the window, and late feedback."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from traffic import write_jsonl

from router_ml.decision_log import DecisionLog
from router_ml.errors import DataError
from router_ml.router import RouteDecision
from router_ml.tiers import Tier
from train.retrain_log import parse_since, read_log


def decision(tier: str = "SIMPLE", source: str = "classifier", **kw) -> RouteDecision:
    probs = {"SIMPLE": 0.2, "MEDIUM": 0.7, "COMPLEX": 0.1}
    return RouteDecision(tier=Tier[tier], model="m", confidence=0.7, probabilities=probs, source=source, **kw)


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "routes.db"
    with DecisionLog(path, privacy="full") as log:
        old = log.record("Translate 'cat' into German", decision())
        mid = log.record([{"role": "user", "content": "Refactor this module"}],
                         decision("MEDIUM", "llm", extra={"llm_model": "h"}))
        log.record("Design our billing system", decision("COMPLEX"))
        log.feedback(old, good=False, right_tier="MEDIUM")  # feedback arrives late, on an old decision
    with DecisionLog(path, privacy="hash") as log:
        log.record("secret plans", decision())
    return path, old, mid


def test_a_decision_log_becomes_records_with_requests_routing_and_feedback(db):
    path, old, mid = db
    records = read_log(path)
    assert [r.request is not None for r in records] == [True, True, True, False]
    first, second = records[0], records[1]
    assert first.request == {"messages": [{"role": "user", "content": "Translate 'cat' into German"}]}
    assert first.feedback_tier == Tier.MEDIUM and first.classifier_tier == Tier.MEDIUM
    assert second.source == "llm" and second.routed_tier == Tier.MEDIUM and second.llm_model == "h"
    assert records[3].privacy == "hash" and records[3].text is None


def test_the_window_starts_after_since_and_keeps_late_feedback_when_asked(db):
    path, old, mid = db
    since = read_log(path)[1].created_at
    assert [r.source for r in read_log(path, since)] == ["classifier", "classifier"]
    with_fb = read_log(path, since, with_feedback_before=True)
    assert [r.id for r in with_fb][0] == old and len(with_fb) == 3


def test_a_jsonl_of_dumped_decisions_reads_like_the_database(db, tmp_path):
    path, _, _ = db
    log = DecisionLog(path)
    dumped = write_jsonl(tmp_path / "dump.jsonl", list(log.rows()))
    log.close()
    assert [(r.id, r.request, r.feedback_tier) for r in read_log(dumped)] == \
           [(r.id, r.request, r.feedback_tier) for r in read_log(path)]


def test_a_jsonl_of_bare_requests_with_labels_and_feedback(tmp_path):
    path = write_jsonl(tmp_path / "requests.jsonl", [
        {"id": "q1", "prompt": "hello", "created_at": "2026-11-28T10:00:00Z"},
        {"id": "q2", "messages": [{"role": "user", "content": "hi"}], "tier": "COMPLEX", "label_source": "opus",
         "right_tier": "MEDIUM", "created_at": "2026-11-28T11:00:00Z", "source": "classifier", "confidence": 0.55},
        {"id": "q3", "prompt": "no label source, so the tier is not a label", "tier": "SIMPLE"},
    ])
    q1, q2, q3 = read_log(path)
    assert q1.request == {"messages": [{"role": "user", "content": "hello"}]}
    assert q1.created_at == "2026-11-28T10:00:00.000000Z"  # the log's sortable form
    assert q2.label == ("opus", Tier.COMPLEX) and q2.feedback_tier == Tier.MEDIUM and q2.confidence == 0.55
    assert q3.label is None
    assert [r.id for r in read_log(path, "2026-11-28T10:30:00.000000Z")] == ["q2"]


def test_bad_input_names_the_file_and_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"nothing": 1}) + "\n")
    with pytest.raises(DataError, match=r"x.jsonl:1: expected a decision"):
        read_log(path)
    with pytest.raises(DataError, match="no such log file"):
        read_log(tmp_path / "missing.db")


def test_since_takes_iso_times_and_durations():
    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.timezone.utc)
    assert parse_since("7d", now=now) == "2026-11-21T12:00:00.000000Z"
    assert parse_since("12h", now=now) == "2026-11-28T00:00:00.000000Z"
    assert parse_since("2026-11-01T00:00:00+01:00") == "2026-10-31T23:00:00.000000Z"
    assert parse_since(None) is None
    with pytest.raises(DataError, match="7d"):
        parse_since("last week")
