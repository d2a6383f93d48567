"""The labeling pipeline against the fake API: cache, retries, failures, budget, kill -9, batches."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from fake_server import TEST_KEY, expected_tier, read_rows, sample_rows, write_rows
from typer.testing import CliRunner

from router_ml.errors import ConfigError, DataError
from router_ml.fake_api import FakeAPI
from train.label_cache import LabelCache
from train.label_cli import register
from train.labelers import make_labeler
from train.labeling import RetryPolicy, label_file

FAST_RETRY = RetryPolicy(max_attempts=4, base_s=0.01, max_s=0.05)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rows_file(tmp_path):
    return write_rows(tmp_path / "requests.jsonl", sample_rows(12))


def _labeler(fake, settings, name="haiku", **kw):
    return make_labeler(name, settings=settings, base_url=fake.base_url, api_key=TEST_KEY, **kw)


def _run(fake, settings, src, tmp_path, name="haiku", **kw):
    kw.setdefault("policy", FAST_RETRY)
    kw.setdefault("progress", False)
    lab = _labeler(fake, settings, name)
    try:
        return label_file(src, tmp_path / f"out-{name}.jsonl", lab, cache=tmp_path / "cache.sqlite", **kw)
    finally:
        lab.close()


# -- the happy path and the cache ---------------------------------------------------------------


def test_labels_every_row_in_order_with_source_and_reason(fake, settings, rows_file, tmp_path):
    report = _run(fake, settings, rows_file, tmp_path)
    out = read_rows(tmp_path / "out-haiku.jsonl")
    assert report.complete and report.labeled == 12 and report.written == 12
    assert [r["id"] for r in out] == [r["id"] for r in sample_rows(12)]
    assert [r["tier"] for r in out] == [expected_tier(r) for r in sample_rows(12)]
    assert {r["label_source"] for r in out} == {"haiku"}
    assert all(r["label_reason"] for r in out)
    assert report.cost_usd > 0


def test_rerun_pays_nothing_and_duplicates_are_labeled_once(fake, settings, tmp_path):
    rows = sample_rows(6)
    dup = {**rows[0], "id": "dup", "tier": "COMPLEX", "label_source": "author"}  # same request, other keys
    src = write_rows(tmp_path / "in.jsonl", rows + [dup])
    first = _run(fake, settings, src, tmp_path)
    assert fake.calls("messages") == 6 and first.written == 7
    out = read_rows(tmp_path / "out-haiku.jsonl")
    assert out[-1]["id"] == "dup" and out[-1]["tier"] == out[0]["tier"] and out[-1]["label_source"] == "haiku"

    again = _run(fake, settings, src, tmp_path)
    assert fake.calls("messages") == 6  # nothing paid twice
    assert again.cached == 6 and again.labeled == 0 and again.cost_usd == 0
    assert read_rows(tmp_path / "out-haiku.jsonl") == out


def test_cache_key_separates_labelers(fake, settings, rows_file, tmp_path):
    _run(fake, settings, rows_file, tmp_path, "haiku")
    report = _run(fake, settings, rows_file, tmp_path, "opus")
    assert report.labeled == 12 and fake.calls("messages", model="claude-opus-4-7") == 12
    assert {r["label_source"] for r in read_rows(tmp_path / "out-opus.jsonl")} == {"opus"}


def test_opus_sees_the_whole_request(fake, settings, tmp_path):
    long = {"id": "long", "system": "Review carefully.", "messages": [
        {"role": "user", "content": "draft " * 50},
        {"role": "assistant", "content": "noted"},
        {"role": "user", "content": "A" * 900 + "THE-END"},
    ]}
    _run(fake, settings, write_rows(tmp_path / "in.jsonl", [long]), tmp_path, "opus")
    sent = fake.received()[0]["body"]["messages"][0]["content"]
    assert "THE-END" in sent and "draft draft" in sent and "Review carefully." in sent
    assert "3 message(s)" in sent


def test_invalid_input_fails_before_any_call(fake, settings, tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text('{"prompt": "fine"}\n{"nothing": 1}\n')
    with pytest.raises(DataError, match="bad.jsonl:2"):
        _run(fake, settings, src, tmp_path)
    assert fake.calls("messages") == 0


# -- retries and failures -----------------------------------------------------------------------


def test_transient_faults_are_retried(fake, settings, rows_file, tmp_path):
    fake.push_faults(
        {"kind": "rate_limit", "retry_after": 0.01}, {"kind": "rate_limit", "retry_after": 0.01},
        "overloaded", "server_error", "non_json_error", "disconnect",
    )
    lab = _labeler(fake, settings, timeout=0.3)
    fake.push_faults({"kind": "timeout", "seconds": 2})
    patient = RetryPolicy(max_attempts=len(fake.backend._faults["messages"]) + 1, base_s=0.01, max_s=0.05)
    report = label_file(rows_file, tmp_path / "o.jsonl", lab, cache=tmp_path / "c.sqlite",
                        policy=patient, progress=False, concurrency=2)
    assert report.complete and report.labeled == 12
    assert fake.calls("messages") == 12 + 7


def test_permanent_failures_are_reported_and_skipped_never_defaulted(fake, settings, rows_file, tmp_path):
    fake.script("request 004", '{"tier": "MAYBE", "reason": "?"}')
    fake.script("request 007", error="bad_request")
    report = _run(fake, settings, rows_file, tmp_path)
    failed = {f.id: f for f in report.failures}
    assert set(failed) == {"r004", "r007"} and not report.complete
    assert "unknown tier 'MAYBE'" in failed["r004"].error and failed["r004"].where.endswith("requests.jsonl:5")
    assert "HTTP 400" in failed["r007"].error
    out_ids = [r["id"] for r in read_rows(tmp_path / "out-haiku.jsonl")]
    assert "r004" not in out_ids and "r007" not in out_ids and len(out_ids) == 10
    assert fake.calls("messages") == 12  # permanent: not retried

    fake.clear_script()
    again = _run(fake, settings, rows_file, tmp_path)
    assert again.complete and again.labeled == 2 and fake.calls("messages") == 14


def test_retries_are_bounded(fake, settings, tmp_path):
    src = write_rows(tmp_path / "one.jsonl", sample_rows(1))
    fake.push_faults(*["server_error"] * 4)
    report = _run(fake, settings, src, tmp_path)
    assert [f.id for f in report.failures] == ["r000"] and "HTTP 500" in report.failures[0].error
    assert fake.calls("messages") == FAST_RETRY.max_attempts


# -- budget --------------------------------------------------------------------------------------


def test_budget_stops_before_it_is_exceeded(fake, settings, rows_file, tmp_path):
    lab = _labeler(fake, settings)
    one_call = lab.max_cost({"prompt": "request 000: " + "x" * 450})  # worst case, ~10x the real cost
    budget = 1.5 * one_call
    report = label_file(rows_file, tmp_path / "o.jsonl", lab, cache=tmp_path / "c.sqlite",
                        budget_usd=budget, concurrency=2, policy=FAST_RETRY, progress=False)
    assert 0 < report.labeled < 12 and report.budget_left_out == 12 - report.labeled
    assert report.cost_usd <= budget and not report.complete
    assert fake.calls("messages") == report.labeled

    rest = label_file(rows_file, tmp_path / "o.jsonl", lab, cache=tmp_path / "c.sqlite",
                      budget_usd=1.0, policy=FAST_RETRY, progress=False)
    assert rest.complete and fake.calls("messages") == 12 and rest.written == 12


def test_zero_budget_sends_nothing(fake, settings, rows_file, tmp_path):
    report = _run(fake, settings, rows_file, tmp_path, budget_usd=0.0)
    assert report.budget_left_out == 12 and fake.calls("messages") == 0 and report.written == 0


# -- kill -9 and resume ---------------------------------------------------------------------------


def test_resume_after_kill_9_pays_nothing_twice(settings, tmp_path):
    n = 60
    src = write_rows(tmp_path / "in.jsonl", sample_rows(n))
    cache_path, out = tmp_path / "cache.sqlite", tmp_path / "out.jsonl"
    with FakeAPI(latency_ms=20) as server:
        env = {**os.environ, "ANTHROPIC_BASE_URL": server.base_url, "ANTHROPIC_API_KEY": TEST_KEY}
        proc = subprocess.Popen(
            [sys.executable, "-m", "train.label_cli", "label", "--in", str(src), "--out", str(out),
             "--cache", str(cache_path), "--concurrency", "4", "--json"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while server.calls("messages") < 15 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
        assert not out.exists()  # the output is written only at the end, atomically

        with LabelCache(cache_path) as cache:
            committed = cache.count()
        calls_before = server.calls("messages")
        assert 0 < committed < n

        lab = make_labeler("haiku", settings=settings, base_url=server.base_url, api_key=TEST_KEY)
        report = label_file(src, out, lab, cache=cache_path, policy=FAST_RETRY, progress=False)
        assert report.complete and report.written == n
        assert report.cached == committed and report.labeled == n - committed
        # exactly the missing labels were requested again; only calls in flight at the kill repeat
        assert server.calls("messages") - calls_before == n - committed
        assert server.stats()["paid_twice"] <= 4
        assert [r["tier"] for r in read_rows(out)] == [expected_tier(r) for r in sample_rows(n)]


# -- batches -------------------------------------------------------------------------------------


def test_batch_end_to_end_at_half_price(settings, rows_file, tmp_path):
    with FakeAPI() as a, FakeAPI() as b:
        lab_b = make_labeler("haiku", settings=settings, base_url=b.base_url, api_key=TEST_KEY)
        batch = label_file(rows_file, tmp_path / "batch.jsonl", lab_b, cache=tmp_path / "b.sqlite",
                           batch=True, poll_s=0.01, progress=False)
        lab_a = make_labeler("haiku", settings=settings, base_url=a.base_url, api_key=TEST_KEY)
        sync = label_file(rows_file, tmp_path / "sync.jsonl", lab_a, cache=tmp_path / "a.sqlite",
                          progress=False)
        assert batch.complete and batch.labeled == 12
        assert b.calls("batches.create") == 1 and b.stats()["calls"]["batch_items"] == 12
        assert b.calls("messages") == 0
        assert read_rows(tmp_path / "batch.jsonl") == read_rows(tmp_path / "sync.jsonl")
        assert batch.cost_usd == pytest.approx(0.5 * sync.cost_usd)


def test_batch_resumes_across_restarts(fake, settings, rows_file, tmp_path):
    fake.configure(batch_delay_s=3600)
    first = _run(fake, settings, rows_file, tmp_path, batch=True, poll_s=0.01, max_wait_s=0.05)
    assert len(first.pending_batches) == 1 and not first.complete and first.written == 0

    again = _run(fake, settings, rows_file, tmp_path, batch=True, poll_s=0.01, max_wait_s=0.05)
    assert again.pending_batches == first.pending_batches  # polled, not resubmitted

    fake.configure(batch_delay_s=0)
    done = _run(fake, settings, rows_file, tmp_path, batch=True, poll_s=0.01)
    assert done.complete and done.labeled == 12 and done.written == 12
    assert fake.calls("batches.create") == 1 and fake.stats()["calls"]["batch_items"] == 12

    last = _run(fake, settings, rows_file, tmp_path, batch=True, poll_s=0.01)
    assert last.cached == 12 and fake.calls("batches.create") == 1


def test_batch_item_errors_are_failures_resubmitted_next_run(fake, settings, rows_file, tmp_path):
    fake.script("request 005", error="overloaded")
    report = _run(fake, settings, rows_file, tmp_path, batch=True, poll_s=0.01)
    assert [f.id for f in report.failures] == ["r005"] and "errored: overloaded_error" in report.failures[0].error
    assert report.written == 11
    fake.clear_script()
    again = _run(fake, settings, rows_file, tmp_path, batch=True, poll_s=0.01)
    assert again.complete and again.labeled == 1 and fake.calls("batches.create") == 2


def test_batch_needs_a_single_call_labeler(fake, settings, rows_file, tmp_path):
    with pytest.raises(ConfigError, match="--batch works with the haiku and opus"):
        _run(fake, settings, rows_file, tmp_path, "outcome", batch=True)


# -- outcome -------------------------------------------------------------------------------------


def test_outcome_labels_by_judged_answers(fake, settings, rows_file, tmp_path):
    report = _run(fake, settings, rows_file, tmp_path, "outcome")
    out = read_rows(tmp_path / "out-outcome.jsonl")
    assert report.complete and [r["tier"] for r in out] == [expected_tier(r) for r in sample_rows(12)]
    assert {r["label_source"] for r in out} == {"outcome"}
    assert fake.calls("messages") == 12 * 4
    assert fake.calls("messages", model="claude-sonnet-4-6") == 12
    judge = [r for r in fake.received() if "<reference_answer>" in str(r["body"]["messages"])]
    assert len(judge) == 12 and judge[0]["body"]["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_outcome_failure_at_the_judge_keeps_the_paid_answers(fake, settings, tmp_path):
    src = write_rows(tmp_path / "in.jsonl", sample_rows(3))
    fake.script("<reference_answer>", error="server_error")
    report = _run(fake, settings, src, tmp_path, "outcome")
    assert len(report.failures) == 3 and report.cost_usd > 0
    assert fake.calls("messages") == 3 * 3 + 3 * FAST_RETRY.max_attempts  # answers once, judge retried
    fake.clear_script()
    again = _run(fake, settings, src, tmp_path, "outcome")
    assert again.complete and fake.calls("messages") == 9 + 12 + 3  # only the judge this time
    assert fake.stats()["paid_twice"] == 0


# -- CLI -----------------------------------------------------------------------------------------


@pytest.fixture
def cli(fake, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", TEST_KEY)
    monkeypatch.delenv("ROUTER_ML_CONFIG", raising=False)
    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    return lambda *args: CliRunner().invoke(app, ["label", *args])


def test_cli_label_complete_partial_and_errors(cli, fake, rows_file, tmp_path):
    out, cache = str(tmp_path / "o.jsonl"), str(tmp_path / "c.sqlite")
    partial = cli("--in", str(rows_file), "--out", out, "--cache", cache, "--budget-usd", "0.004", "--json")
    assert partial.exit_code == 2, partial.output
    done = cli("--in", str(rows_file), "--out", out, "--cache", cache, "--json")
    assert done.exit_code == 0 and '"complete": true' in done.output
    assert len(read_rows(Path(out))) == 12

    bad = cli("--in", str(tmp_path / "missing.jsonl"), "--out", out, "--cache", cache)
    assert bad.exit_code == 1 and "missing.jsonl" in bad.output and "Traceback" not in bad.output
    unknown = cli("--in", str(rows_file), "--out", out, "--labeler", "gpt")
    assert unknown.exit_code == 1 and "unknown labeler 'gpt'" in unknown.output
    batch = cli("--in", str(rows_file), "--out", out, "--labeler", "outcome", "--batch")
    assert batch.exit_code == 1 and "--batch works with" in batch.output


# -- small parts ---------------------------------------------------------------------------------


def test_retry_policy_honours_retry_after_else_backs_off():
    from router_ml.errors import LLMUnavailableError

    policy = RetryPolicy(max_attempts=5, base_s=1.0, max_s=10.0)
    assert policy.delay(1, LLMUnavailableError("x", status_code=429, retry_after=7.0)) == 7.0
    assert policy.delay(1, LLMUnavailableError("x", status_code=429, retry_after=600.0)) == 10.0
    plain = LLMUnavailableError("x", status_code=500)
    assert 0.5 <= policy.delay(1, plain) <= 1.0 and 4.0 <= policy.delay(4, plain) <= 8.0
    assert policy.delay(9, plain) <= 10.0
    with pytest.raises(ConfigError):
        RetryPolicy(max_attempts=0)


def test_transcript_is_bounded_and_keeps_the_last_turn():
    from train.transcript import render_transcript, request_hash

    turns = []
    for i in range(40):
        turns += [{"role": "user", "content": f"question {i} " + "q" * 2000},
                  {"role": "assistant", "content": f"answer {i} " + "a" * 2000}]
    turns.append({"role": "user", "content": "FINAL " + "z" * 30_000 + " TAIL"})
    text = render_transcript({"messages": turns}, max_chars=20_000)
    assert len(text) < 24_000
    assert "FINAL" in text and "TAIL" in text and "characters left out" in text
    assert "earlier message(s) left out" in text and "answer 39" in text and "question 0 " not in text
    assert request_hash({"prompt": "hi"}) == request_hash({"messages": [{"role": "user", "content": "hi"}], "id": 1})
