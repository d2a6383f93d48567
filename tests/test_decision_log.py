"""DecisionLog: schema, privacy, secrets, feedback, and many writers (threads and processes)."""

from __future__ import annotations

import hashlib
import multiprocessing
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from router_ml.config import Settings, load_settings
from router_ml.decision_log import SCHEMA_VERSION, DecisionLog, DecisionLogError, DecisionNotFoundError
from router_ml.errors import ConfigError, RouterMLError
from router_ml.normalize import normalize
from router_ml.router import RouteDecision
from router_ml.tiers import Tier

ROOT = Path(__file__).resolve().parent.parent
KEYS = [
    "sk-ant-api03-Zq8xW1vB7nM4kL2pR9tY6uI3oE5aS0dF-gH1jK2lZ3xC4vB5nM6-AAAAAA",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    "bearertoken-9f8e7d6c5b4a39281706",
    "xk-custom-header-value-77aa",
    "hunter2-correct-horse",
]


def decision(tier: Tier = Tier.MEDIUM, **kw) -> RouteDecision:
    fields = dict(tier=tier, model={0: "claude-haiku-4-5", 1: "claude-sonnet-4-6", 2: "claude-opus-4-7"}[int(tier)],
                  confidence=0.7, probabilities={"SIMPLE": 0.1, "MEDIUM": 0.7, "COMPLEX": 0.2},
                  source="classifier", reason="classifier: p=0.70")
    return RouteDecision(**{**fields, **kw})


def raw_bytes(path: Path) -> bytes:
    """Every byte SQLite wrote for this log: the file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


@pytest.fixture
def log(tmp_path):
    with DecisionLog(tmp_path / "log.db", privacy="full") as dl:
        yield dl


# -- schema and basics ---------------------------------------------------------------------------
def test_created_on_first_use_in_wal_mode_with_schema_version(tmp_path):
    path = tmp_path / "sub" / "log.db"
    dl = DecisionLog(path)
    assert not path.exists()  # constructing does nothing
    dl.record("hi there", decision())
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert dict(db.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
    db.close()
    dl.close()


def test_record_stores_the_decision_and_request(log):
    request = {"system": "Be brief.", "messages": [{"role": "user", "content": "Translate 'cat' into French"}]}
    d = decision(Tier.SIMPLE, source="rules", reason="rule router: light-task word 'translate'")
    row = log.get(log.record(request, d, conversation_id="conv-1"))
    assert (row["tier"], row["model"], row["source"]) == ("SIMPLE", "claude-haiku-4-5", "rules")
    assert row["probabilities"] == d.probabilities and row["confidence"] == 0.7
    assert row["request_json"] == request and "Translate 'cat'" in row["request_text"]
    assert row["est_tokens"] == normalize(request).est_tokens and row["n_turns"] == 1 and row["has_system"]
    assert len(row["request_hash"]) == 64 and row["conversation_id"] == "conv-1"
    assert row["model_used"] is None and row["feedback"] == []
    assert row["created_at"].endswith("Z") and row["privacy"] == "full"


def test_every_request_shape_is_accepted(log):
    ids = [
        log.record("plain string", decision()),
        log.record([{"role": "user", "content": "a messages list"}], decision()),
        log.record({"prompt": "a data-file row"}, decision()),
        log.record(normalize("already normalized"), decision()),
    ]
    rows = {r["id"]: r for r in log.rows()}
    assert [rows[i]["request_json"] is None for i in ids] == [False, False, False, True]
    assert rows[ids[3]]["request_text"] == "already normalized"


def test_malformed_request_is_a_value_error(log):
    with pytest.raises(ValueError, match="no user turn"):
        log.record([{"role": "assistant", "content": "x"}], decision())


def test_image_payloads_are_not_stored(log):
    data = "iVBORw0KGgo" + "A" * 5000
    request = [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                                          "data": data}},
                                             {"type": "text", "text": "what is this?"}]}]
    row = log.get(log.record(request, decision()))
    assert row["request_json"]["messages"][0]["content"][0]["source"]["data"].startswith("<omitted 5011 chars sha256:")
    assert data.encode() not in raw_bytes(log.path)


def test_lone_surrogates_and_huge_requests_are_stored_safely(log):
    row = log.get(log.record("bad \ud800 text", decision()))
    assert row["request_text"] == "bad ? text"
    huge = "word " * 400_000  # 2 MB: the JSON is dropped, the bounded text and the hash stay
    row = log.get(log.record(huge, decision()))
    assert row["request_json"] is None and row["request_text"] and row["est_tokens"] == 500_000


def test_request_hash_is_the_same_in_every_mode(tmp_path):
    request = "Email bob@example.com about key sk-ant-api03-abcdefghijklmnopqrstuvwxyz"
    hashes = set()
    for mode in ("full", "redact", "hash"):
        with DecisionLog(tmp_path / f"{mode}.db", privacy=mode) as dl:
            hashes.add(dl.get(dl.record(request, decision()))["request_hash"])
    assert len(hashes) == 1


# -- privacy -------------------------------------------------------------------------------------
PII = ("Mail jane.doe@example.com or call +1 (415) 555-0134; card 4111 1111 1111 1111; "
       "server 10.20.30.40; fe80::1ff:fe23:4567:890a")


def test_full_mode_keeps_personal_data(tmp_path):
    with DecisionLog(tmp_path / "f.db", privacy="full") as dl:
        row = dl.get(dl.record(PII, decision()))
    assert "jane.doe@example.com" in row["request_text"] and "4111 1111 1111 1111" in row["request_text"]


def test_redact_mode_replaces_personal_data(tmp_path):
    with DecisionLog(tmp_path / "r.db", privacy="redact") as dl:
        row = dl.get(dl.record({"system": "Reply to jane.doe@example.com", "messages": [{"role": "user", "content": PII}]},
                               decision(), conversation_id="c"))
        blob = raw_bytes(dl.path)
    text = row["request_json"]["messages"][0]["content"]
    assert text == "Mail [EMAIL] or call [PHONE]; card [CARD]; server [IP]; [IP]"
    assert row["request_json"]["system"] == "Reply to [EMAIL]"
    for leaked in (b"jane.doe", b"555-0134", b"4111 1111", b"10.20.30.40", b"fe80::"):
        assert leaked not in blob


def test_hash_mode_stores_no_text(tmp_path):
    with DecisionLog(tmp_path / "h.db", privacy="hash") as dl:
        row = dl.get(dl.record("Summarize the xylophone quarterly memo", decision(), conversation_id="user-42"))
        blob = raw_bytes(dl.path)
    assert row["request_text"] is None and row["request_json"] is None
    assert row["conversation_id"] == hashlib.sha256(b"user-42").hexdigest()
    assert b"xylophone" not in blob and b"user-42" not in blob


@pytest.mark.parametrize("mode", ["full", "redact", "hash"])
def test_api_keys_never_reach_the_file(tmp_path, mode):
    path = tmp_path / f"{mode}.db"
    request = {
        "system": f"Use x-api-key: {KEYS[3]} when calling.",
        "messages": [
            {"role": "user", "content": f"my key is {KEYS[0]} and the openai one {KEYS[1]}"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "http",
                                               "input": {"headers": {"Authorization": f"Bearer {KEYS[2]}"}}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                          "content": f"DB_PASSWORD={KEYS[4]}"}]},
        ],
    }
    with DecisionLog(path, privacy=mode) as dl:
        decision_id = dl.record(request, decision(reason=f"saw {KEYS[0]}", extra={"k": KEYS[1]}),
                                conversation_id=f"conv {KEYS[0]}")
        dl.feedback(decision_id, good=False, note=f"oops, pasted {KEYS[0]} and x-api-key: {KEYS[3]}")
        row = dl.get(decision_id)
    blob = raw_bytes(path)
    for key in KEYS:
        assert key.encode() not in blob, key
    if mode != "hash":
        assert "[SECRET]" in row["request_json"]["messages"][0]["content"]


# -- usage and feedback --------------------------------------------------------------------------
class FakeUsage:  # the attribute names of the SDK's Usage
    input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens = 120, 30, 2000, 0


def test_record_usage_attaches_tokens_and_cost(log):
    decision_id = log.record("hello there", decision())
    log.record_usage(decision_id, model="claude-sonnet-4-6", usage=FakeUsage(), cost_usd=0.0123)
    row = log.get(decision_id)
    assert (row["model_used"], row["input_tokens"], row["output_tokens"]) == ("claude-sonnet-4-6", 120, 30)
    assert (row["cache_write_tokens"], row["cache_read_tokens"], row["response_cost_usd"]) == (2000, 0, 0.0123)
    log.record_usage(decision_id, model="m", usage={"input_tokens": 1, "cache_read_tokens": 5}, cost_usd=None)
    assert log.get(decision_id)["cache_read_tokens"] == 5
    with pytest.raises(DecisionNotFoundError, match="no decision with id 'nope'"):
        log.record_usage("nope", model="m", usage=FakeUsage(), cost_usd=0)


def test_feedback_is_appended_and_validated(log):
    decision_id = log.record("Translate 'cat' into French", decision(Tier.SIMPLE))
    first = log.feedback(decision_id, good=False, note="wrong gender")
    second = log.feedback(decision_id, right_tier="medium")
    assert second > first
    fb = log.get(decision_id)["feedback"]
    assert [(f["good"], f["right_tier"], f["note"]) for f in fb] == [(False, None, "wrong gender"),
                                                                     (None, "MEDIUM", None)]
    with pytest.raises(DecisionNotFoundError) as err:
        log.feedback("00000000-missing", good=True)
    assert isinstance(err.value, (LookupError, RouterMLError)) and "00000000-missing" in str(err.value)
    with pytest.raises(ValueError, match="at least one"):
        log.feedback(decision_id)
    with pytest.raises(ValueError, match="unknown tier"):
        log.feedback(decision_id, right_tier="GIGANTIC")
    with pytest.raises(ValueError, match="good must be"):
        log.feedback(decision_id, good="yes")  # type: ignore[arg-type]


def test_rows_since_and_training_rows(log):
    a = log.record("first", decision())
    b = log.record({"prompt": "second"}, decision(Tier.SIMPLE))
    c = log.record("third", decision())
    rows = list(log.rows())
    assert [r["id"] for r in rows] == [a, b, c] and log.count() == 3
    assert [r["id"] for r in log.rows(since=rows[0]["created_at"])] == [b, c]
    assert [r["id"] for r in log.rows(limit=1)] == [a]
    log.feedback(b, good=False, right_tier="COMPLEX")
    log.feedback(c, good=True)  # good alone is not a label
    assert list(log.training_rows()) == [
        {"id": b, "messages": [{"role": "user", "content": "second"}], "tier": "COMPLEX",
         "label_source": "feedback", "created_at": rows[1]["created_at"]}
    ]


# -- configuration and failures ------------------------------------------------------------------
def test_bad_privacy_mode_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="'secret-ish'"):
        DecisionLog(tmp_path / "x.db", privacy="secret-ish")
    with pytest.raises(ConfigError, match="'loud'"):
        load_settings(env={"ROUTER_ML_LOG_PRIVACY": "loud"})
    with pytest.raises(ConfigError, match="'nope'"):
        Settings(log_privacy="nope")


def test_settings_configure_the_log(tmp_path):
    s = load_settings(env={"ROUTER_ML_LOG": str(tmp_path / "env.db"), "ROUTER_ML_LOG_PRIVACY": "hash"})
    assert s.log_path == tmp_path / "env.db" and s.log_privacy == "hash"
    assert load_settings(env={"ROUTER_ML_LOG_PRIVACY": "hash"}, log_privacy="full").log_privacy == "full"
    dl = DecisionLog.from_settings(s)
    assert dl is not None and dl.privacy == "hash" and dl.path == tmp_path / "env.db"
    assert DecisionLog.from_settings(Settings()) is None
    assert Settings().log_privacy == "redact"


def test_the_config_file_sets_the_log_and_the_environment_wins(tmp_path):
    toml = tmp_path / "router-ml.toml"
    toml.write_text('[router]\nlog_path = "file.db"\nlog_privacy = "full"\n')
    s = load_settings(toml, env={})
    assert (s.log_path, s.log_privacy) == (Path("file.db"), "full")
    assert load_settings(toml, env={"ROUTER_ML_LOG_PRIVACY": "hash"}).log_privacy == "hash"
    toml.write_text('[router]\nlog_privacy = "everything"\n')
    with pytest.raises(ConfigError, match="router-ml.toml.*'everything'"):
        load_settings(toml, env={})


def test_unusable_files_raise_decision_log_error(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(DecisionLogError, match="junk.db"):
        DecisionLog(junk).record("hi there", decision())
    newer = tmp_path / "newer.db"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(DecisionLogError, match="newer"):
        DecisionLog(newer).record("hi there", decision())
    closed = DecisionLog(tmp_path / "closed.db")
    closed.close()
    with pytest.raises(DecisionLogError, match="closed"):
        closed.record("hi there", decision())


# -- concurrency ---------------------------------------------------------------------------------
def _requests(worker: int, n: int) -> list[str]:
    return [f"worker {worker} request {i}: translate 'item {i}' into French" for i in range(n)]


def _summary(dl: DecisionLog) -> list[tuple]:
    return sorted((r["request_hash"], r["request_text"], r["tier"], r["conversation_id"]) for r in dl.rows())


def test_eight_threads_lose_no_rows_and_match_serial(tmp_path):
    threads, n = 8, 1000
    shared = DecisionLog(tmp_path / "threads.db", privacy="redact")
    ids: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for i, text in enumerate(_requests(w, n)):
                ids[w].append(shared.record(text, decision(Tier(i % 3)), conversation_id=f"c{w}"))
        except BaseException as err:  # surfaced below: a thread's failure must fail the test
            errors.append(err)

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    all_ids = [i for chunk in ids for i in chunk]
    assert len(all_ids) == len(set(all_ids)) == threads * n == shared.count()

    with DecisionLog(tmp_path / "serial.db", privacy="redact") as serial:
        for w in range(threads):
            for i, text in enumerate(_requests(w, n)):
                serial.record(text, decision(Tier(i % 3)), conversation_id=f"c{w}")
        assert _summary(shared) == _summary(serial)
    shared.close()


_WRITER = """
import sys
from router_ml.decision_log import DecisionLog
from router_ml.router import RouteDecision
from router_ml.tiers import Tier
path, worker, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = RouteDecision(tier=Tier.SIMPLE, model="claude-haiku-4-5", confidence=1.0, probabilities={}, source="rules")
with DecisionLog(path, privacy="full") as log:
    for i in range(n):
        log.record(f"process {worker} request {i}", d)
"""


def test_several_processes_write_one_file(tmp_path):
    path, procs, n = tmp_path / "procs.db", 4, 300
    running = [subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(w), str(n)], cwd=ROOT)
               for w in range(procs)]
    assert [p.wait(timeout=120) for p in running] == [0] * procs
    with DecisionLog(path) as dl:
        texts = [r["request_text"] for r in dl.rows()]
    assert sorted(texts) == sorted(f"process {w} request {i}" for w in range(procs) for i in range(n))


def _child_writes(log: DecisionLog, worker: int) -> None:
    for i in range(50):
        log.record(f"child {worker} request {i}", decision())


def test_a_forked_child_opens_its_own_connection(tmp_path):
    log = DecisionLog(tmp_path / "fork.db")
    log.record("parent request", decision())  # the parent's connection is open now
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_child_writes, args=(log, w)) for w in range(3)]
    for c in children:
        c.start()
    for c in children:
        c.join(timeout=60)
    assert [c.exitcode for c in children] == [0, 0, 0]
    log.record("parent again", decision())
    assert log.count() == 152
    log.close()
