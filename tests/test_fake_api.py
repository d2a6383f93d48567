"""The fake Messages API, driven by the real anthropic SDK (and plain HTTP for what the SDK hides)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request

import anthropic
import pytest
from fake_server import TEST_KEY
from typer.testing import CliRunner

from router_ml.cli import app
from router_ml.errors import ConfigError
from router_ml.fake_api import FakeAPI


@pytest.fixture
def client(fake):
    c = anthropic.Anthropic(base_url=fake.base_url, api_key=TEST_KEY, max_retries=0, timeout=2.0)
    yield c
    c.close()


def _http(fake, method, path, body=None, headers=None):
    """A raw request; returns (status, parsed JSON or text)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(fake.base_url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=2) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, raw = err.code, err.read()
    try:
        return status, json.loads(raw)
    except json.JSONDecodeError:
        return status, raw.decode()


def _params(text="hello", model="claude-haiku-4-5", max_tokens=64):
    return {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}


# -- messages -----------------------------------------------------------------------------------


def test_message_shape_and_usage(client):
    msg = client.messages.create(**_params("hello there"))
    assert msg.type == "message" and msg.role == "assistant" and msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and "Fake answer from claude-haiku-4-5" in msg.content[0].text
    assert msg.usage.input_tokens == 3  # 11 characters at about 4 a token
    assert msg.usage.output_tokens > 0
    assert msg.usage.cache_creation_input_tokens == 0 and msg.usage.cache_read_input_tokens == 0


def test_answers_are_cut_at_max_tokens(client):
    msg = client.messages.create(**_params("hello", max_tokens=2))
    assert msg.stop_reason == "max_tokens" and len(msg.content[0].text) == 8 and msg.usage.output_tokens == 2


def test_cache_write_then_read_per_model_and_floor(fake, client):
    system = [{"type": "text", "text": "s" * 400, "cache_control": {"type": "ephemeral"}}]
    a = client.messages.create(system=system, **_params())
    b = client.messages.create(system=system, **_params("other"))
    c = client.messages.create(system=system, **_params(model="claude-opus-4-7"))
    assert (a.usage.cache_creation_input_tokens, a.usage.cache_read_input_tokens) == (100, 0)
    assert (b.usage.cache_creation_input_tokens, b.usage.cache_read_input_tokens) == (0, 100)
    assert c.usage.cache_creation_input_tokens == 100  # caches are per model
    fake.configure(min_cache_tokens=1000)
    d = client.messages.create(system=[{**system[0], "text": "t" * 400}], **_params())
    assert d.usage.cache_creation_input_tokens == 0 and d.usage.input_tokens == 100 + 2


def test_count_tokens(fake, client):
    assert client.messages.count_tokens(**{k: v for k, v in _params("x" * 40).items() if k != "max_tokens"}).input_tokens == 10
    assert fake.calls("count_tokens") == 1


def test_streaming_is_server_sent_events_the_sdk_assembles(fake, client):
    with client.messages.stream(**_params("hello there, stream me")) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert kinds.count("text") >= 2  # the answer came in several deltas
    whole = client.messages.create(**_params("hello there, stream me"))
    assert final.content[0].text == whole.content[0].text and final.stop_reason == "end_turn"
    assert final.usage.input_tokens == whole.usage.input_tokens and final.usage.output_tokens == whole.usage.output_tokens


def test_stream_events_are_paced(fake, client):
    fake.configure(stream_interval_ms=40)
    seen = []
    for _ in client.messages.create(**_params("pace me please, one two three"), stream=True):
        seen.append(time.perf_counter())
    assert len(seen) >= 6 and seen[-1] - seen[0] >= 0.04 * (len(seen) - 1) * 0.8


def test_invalid_body_is_400(client):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=[])


# -- auth and secrets ---------------------------------------------------------------------------


def test_accepts_bearer_and_x_api_key_and_rejects_none(fake):
    body = _params()
    assert _http(fake, "POST", "/v1/messages", body, {"Authorization": f"Bearer {TEST_KEY}"})[0] == 200
    assert _http(fake, "POST", "/v1/messages", body, {"x-api-key": TEST_KEY})[0] == 200
    status, err = _http(fake, "POST", "/v1/messages", body)
    assert status == 401 and err["error"]["type"] == "authentication_error"


def test_keys_never_logged_or_recorded(fake, client, caplog):
    with caplog.at_level(logging.DEBUG):
        client.messages.create(**_params())
        _http(fake, "POST", "/v1/messages", _params(), {"x-api-key": TEST_KEY})
    assert caplog.records  # it does log requests...
    assert TEST_KEY not in caplog.text  # ...but never the key
    assert TEST_KEY not in json.dumps(fake.received()) and TEST_KEY not in json.dumps(fake.stats())


# -- scripting, faults, counters ----------------------------------------------------------------


def test_script_table_first_match_wins_and_can_fail(fake, client):
    fake.script("alpha", "scripted A")
    fake.script("alp", "never reached")
    fake.script("omega", error="overloaded")
    assert client.messages.create(**_params("say alpha")).content[0].text == "scripted A"
    for _ in range(2):  # a scripted error fails every time
        with pytest.raises(anthropic.OverloadedError):
            client.messages.create(**_params("omega"))
    fake.clear_script()
    assert "Fake answer" in client.messages.create(**_params("omega")).content[0].text


def test_fault_queue_is_per_call_and_per_endpoint(fake, client):
    fake.push_faults({"kind": "rate_limit", "retry_after": 3}, {"kind": "server_error", "endpoint": "count_tokens"})
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(**_params())
    assert info.value.response.headers["retry-after"] == "3"
    client.messages.create(**_params())  # the queue is empty for messages now
    with pytest.raises(anthropic.InternalServerError):
        client.messages.count_tokens(model="m", messages=[{"role": "user", "content": "x"}])
    assert fake.stats()["faults_served"] == {"rate_limit": 1, "server_error": 1}


def test_unknown_fault_kind_is_rejected(fake):
    with pytest.raises(ConfigError, match="unknown fault kind"):
        fake.push_faults("gremlins")


def test_fail_rate_is_seeded():
    def pattern(seed):
        with FakeAPI(fail_rate=0.5, seed=seed) as server:
            c = anthropic.Anthropic(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
            out = []
            for _ in range(12):
                try:
                    c.messages.create(**_params())
                    out.append("ok")
                except anthropic.APIStatusError as err:
                    out.append(err.status_code)
            return out

    first = pattern(7)
    assert first == pattern(7)
    assert "ok" in first and {429, 529, 500} & set(first)


def test_counts_per_endpoint_and_model(fake, client):
    client.messages.create(**_params())
    client.messages.create(**_params(model="claude-opus-4-7"))
    client.messages.create(**_params(model="claude-opus-4-7"))
    assert fake.calls("messages") == 3
    assert fake.calls("messages", model="claude-opus-4-7") == 2
    stats = fake.stats()
    assert stats["calls_by_model"] == {"claude-haiku-4-5": 1, "claude-opus-4-7": 2}
    assert stats["paid_calls"] == 3 and stats["paid_twice"] == 1  # the two identical opus calls


def test_stop_is_prompt_with_a_stalled_handler():
    server = FakeAPI().start()
    server.push_faults({"kind": "timeout", "seconds": 60})
    c = anthropic.Anthropic(base_url=server.base_url, api_key=TEST_KEY, max_retries=0, timeout=0.2)
    with pytest.raises(anthropic.APITimeoutError):
        c.messages.create(**_params())
    server.stop()  # wakes the stalled handler instead of waiting a minute
    with pytest.raises(RuntimeError, match="not started"):
        server.base_url


def test_port_in_use_is_a_config_error(fake):
    with pytest.raises(ConfigError, match="cannot listen"):
        FakeAPI(port=fake.port).start()


# -- batches ------------------------------------------------------------------------------------


def test_batches_end_to_end(fake, client):
    reqs = [{"custom_id": f"id-{i}", "params": _params("y" * (10 * i))} for i in range(4)]
    batch = client.messages.batches.create(requests=reqs)
    assert batch.processing_status == "in_progress" and batch.request_counts.processing == 4
    batch = client.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended" and batch.request_counts.succeeded == 4
    results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert set(results) == {f"id-{i}" for i in range(4)}
    assert all(r.type == "succeeded" and r.message.usage.service_tier == "batch" for r in results.values())
    assert fake.stats()["calls"]["batch_items"] == 4
    assert fake.calls("messages") == 0


def test_batch_item_errors_list_cancel_delete(fake, client):
    fake.script("bad item", error="overloaded")
    done = client.messages.batches.create(
        requests=[{"custom_id": "good", "params": _params()}, {"custom_id": "bad", "params": _params("bad item")}]
    )
    results = {r.custom_id: r.result for r in client.messages.batches.results(done.id)}
    assert results["good"].type == "succeeded"
    assert results["bad"].type == "errored" and results["bad"].error.error.type == "overloaded_error"

    fake.configure(batch_delay_s=3600)
    slow = client.messages.batches.create(requests=[{"custom_id": "later", "params": _params()}])
    assert client.messages.batches.retrieve(slow.id).processing_status == "in_progress"
    with pytest.raises(anthropic.BadRequestError, match="cancel it first"):
        client.messages.batches.delete(slow.id)

    page = client.messages.batches.list(limit=1)
    assert [b.id for b in page.data] == [slow.id] and page.has_more
    assert [b.id for b in client.messages.batches.list(limit=5)] == [slow.id, done.id]

    canceled = client.messages.batches.cancel(slow.id)
    assert canceled.processing_status == "ended" and canceled.request_counts.canceled == 1
    assert [r.result.type for r in client.messages.batches.results(slow.id)] == ["canceled"]
    assert client.messages.batches.delete(slow.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.batches.retrieve(slow.id)


def test_batch_create_validates_custom_ids(client):
    with pytest.raises(anthropic.BadRequestError, match="duplicate"):
        client.messages.batches.create(
            requests=[{"custom_id": "a", "params": _params()}, {"custom_id": "a", "params": _params()}]
        )
    with pytest.raises(anthropic.BadRequestError, match="custom_id"):
        client.messages.batches.create(requests=[{"custom_id": "no spaces!", "params": _params()}])


# -- control for a server run from the shell -----------------------------------------------------


def test_admin_endpoints(fake, client):
    assert _http(fake, "POST", "/_admin/faults", {"faults": ["server_error"]})[0] == 200
    assert _http(fake, "POST", "/_admin/script", {"match": "ping", "answer": "pong"})[0] == 200
    assert _http(fake, "POST", "/_admin/config", {"latency_ms": 1})[0] == 200
    with pytest.raises(anthropic.InternalServerError):
        client.messages.create(**_params("ping"))
    assert client.messages.create(**_params("ping")).content[0].text == "pong"
    status, stats = _http(fake, "GET", "/_admin/stats")
    assert status == 200 and stats["calls"]["messages"] == 2
    status, err = _http(fake, "POST", "/_admin/faults", {"faults": ["gremlins"]})
    assert status == 400 and "unknown fault kind" in err["error"]["message"]
    assert _http(fake, "POST", "/_admin/reset", {})[0] == 200
    assert _http(fake, "GET", "/_admin/stats")[1]["calls"] == {}


def test_unknown_path_is_404(fake):
    status, err = _http(fake, "GET", "/v1/models", headers={"x-api-key": TEST_KEY})
    assert status == 404 and err["error"]["type"] == "not_found_error"


def test_cli_rejects_bad_options_in_one_line():
    result = CliRunner().invoke(app, ["fake-api", "--fail-rate", "1.5"])
    assert result.exit_code == 1
    assert "fail_rate must be between 0 and 1" in result.output and "Traceback" not in result.output
