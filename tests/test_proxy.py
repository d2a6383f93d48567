"""The routing proxy, driven over HTTP by the official SDKs, with the fake Messages API as its upstream."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import anthropic
import httpx2
import pytest
from fake_server import TEST_KEY
from typer.testing import CliRunner

from router_ml.cli import app as cli
from router_ml.data import load_rows
from router_ml.decision_log import DecisionLog
from router_ml.errors import ConfigError
from router_ml.fake_api import FakeAPI
from router_ml.predictor import Predictor
from router_ml.proxy import ProxyConfig, create_app
from router_ml.routing_core import parse_auto
from router_ml.proxy_metrics import SSEUsageScanner
from router_ml.proxy_server import ProxyServer
from router_ml.router import Router
from router_ml.tiers import Tier, TierConfig

LIGHT = "Translate 'good night' into Spanish."  # the rule router: SIMPLE (Haiku)
DEEP = "Refactor the billing module's architecture."  # the rule router: MEDIUM (Sonnet)
HUGE = "Read all of this. " * 24_000  # over 100,000 estimated tokens: the rule router says COMPLEX
TOKEN = "proxy-access-token-1234"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "typescript"


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def log(tmp_path):
    with DecisionLog(tmp_path / "log.db", privacy="full") as dl:
        yield dl


@pytest.fixture
def start(fake, settings, log):
    """Start a proxy in front of ``fake``: ``start(router=None, **ProxyConfig fields) -> ProxyServer``."""
    servers = []

    def _start(router=None, *, upstream=None, **config):
        app = create_app(router or Router(settings=settings, llm=None),
                         ProxyConfig(upstream=upstream or fake.base_url, **config), log=log)
        servers.append(ProxyServer(app, log_level="debug").start())
        return servers[-1]

    yield _start
    for s in servers:
        s.stop()


@pytest.fixture
def proxy(start):
    return start()


@pytest.fixture
def client(proxy):
    with anthropic.Anthropic(base_url=proxy.url, api_key=TEST_KEY, max_retries=0, timeout=10) as c:
        yield c


def post(proxy, path, body, headers=None):
    """A raw call: ``body`` bytes are sent as they are, anything else as JSON."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.post(proxy.url + path, content=content, headers={"content-type": "application/json",
                                                                   **(headers or {})}, timeout=10)


def metric(proxy, line_start: str) -> float:
    """The value of the first /metrics sample line that starts with ``line_start``."""
    text = httpx2.get(proxy.url + "/metrics", headers={"x-router-token": TOKEN}).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return values[0] if values else 0.0


# -- routing and passthrough ---------------------------------------------------------------------
def test_auto_is_routed_and_the_upstream_body_comes_back_unchanged(client, fake, log):
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=64, messages=user(LIGHT))
    assert fake.received()[-1]["body"]["model"] == "claude-haiku-4-5"
    h = raw.headers
    assert (h["x-router-tier"], h["x-router-model"], h["x-router-source"]) == ("SIMPLE", "claude-haiku-4-5", "rules")
    assert float(h["x-router-confidence"]) == 1.0 and h["request-id"].startswith("req_fake_")
    body = json.loads(raw.http_response.content)
    assert body["model"] == "claude-haiku-4-5" and body["usage"]["input_tokens"] > 0
    assert raw.parse().content[0].text.startswith("Fake answer from claude-haiku-4-5")
    row = log.get(h["x-router-decision-id"])
    assert (row["tier"], row["model_used"], row["input_tokens"]) == ("SIMPLE", "claude-haiku-4-5", body["usage"]["input_tokens"])
    assert row["response_cost_usd"] > 0


def test_a_router_with_its_own_log_records_each_call_once(fake, settings, log):
    app = create_app(Router(settings=settings, llm=None, log=log), ProxyConfig(upstream=fake.base_url))
    with ProxyServer(app) as proxy, anthropic.Anthropic(base_url=proxy.url, api_key=TEST_KEY, max_retries=0) as c:
        raw = c.messages.with_raw_response.create(model="auto", max_tokens=16, messages=user(DEEP))
    assert log.count() == 1 and log.get(raw.headers["x-router-decision-id"])["output_tokens"] > 0


def test_a_fitted_classifier_routes(start, fake, tiny_data, hash_embedder, settings):
    rows = load_rows(tiny_data)
    predictor = Predictor(hash_embedder, cv=2).fit([r.raw for r in rows], [r.tier for r in rows])
    proxy = start(Router(predictor, settings=settings, llm=None))
    with anthropic.Anthropic(base_url=proxy.url, api_key=TEST_KEY, max_retries=0) as c:
        raw = c.messages.with_raw_response.create(model="auto", max_tokens=32, messages=user(rows[0].raw["prompt"]))
    assert raw.headers["x-router-source"] in ("classifier", "safe")
    assert fake.received()[-1]["body"]["model"] == raw.headers["x-router-model"]


def test_an_explicit_model_is_forwarded_untouched(client, fake, log):
    body = {"model": "claude-opus-4-7", "max_tokens": 32, "messages": user(LIGHT), "metadata": {"user_id": "u1"}}
    raw = client.messages.with_raw_response.create(**body, extra_body={"a_field_from_the_future": [1, 2]})
    assert fake.received()[-1]["body"] == {**body, "a_field_from_the_future": [1, 2]}
    assert (raw.headers["x-router-source"], raw.headers["x-router-model"]) == ("explicit", "claude-opus-4-7")
    assert log.get(raw.headers["x-router-decision-id"])["model_used"] == "claude-opus-4-7"


@pytest.mark.parametrize("model, served", [
    ("auto", "claude-opus-4-7"),
    ("auto:sonnet", "claude-sonnet-4-6"),
    ("auto:MEDIUM", "claude-sonnet-4-6"),
    ("auto:haiku", "claude-haiku-4-5"),
    ("auto:claude-sonnet-4-6", "claude-sonnet-4-6"),
])
def test_the_tier_cap_is_respected(client, fake, log, model, served):
    raw = client.messages.with_raw_response.create(model=model, max_tokens=16, messages=user(HUGE))
    assert fake.received()[-1]["body"]["model"] == served == raw.headers["x-router-model"]
    row = log.get(raw.headers["x-router-decision-id"])
    assert (row["tier"], row["model_used"]) == ("COMPLEX", served)  # the router's own choice is kept


def test_a_cap_never_raises_the_tier(client, fake):
    client.messages.create(model="auto:opus", max_tokens=16, messages=user(LIGHT))
    assert fake.received()[-1]["body"]["model"] == "claude-haiku-4-5"


def test_parse_auto():
    tiers = TierConfig()
    assert parse_auto("auto", tiers) is Tier.COMPLEX and parse_auto("auto:simple", tiers) is Tier.SIMPLE
    assert parse_auto("claude-opus-4-7", tiers) is None and parse_auto("automaton", tiers) is None
    assert parse_auto(None, tiers) is None
    with pytest.raises(ValueError, match="unknown tier cap 'gpt'"):
        parse_auto("auto:gpt", tiers)


def test_conversations_never_go_down_a_tier(client, fake):
    sticky = {"x-router-conversation-id": "chat-1"}
    client.messages.create(model="auto", max_tokens=16, messages=user(DEEP), extra_headers=sticky)
    raw = client.messages.with_raw_response.create(model="auto", max_tokens=16, messages=user(LIGHT),
                                                   extra_headers=sticky)
    assert raw.headers["x-router-model"] == "claude-sonnet-4-6" == fake.received()[-1]["body"]["model"]


# -- streaming -----------------------------------------------------------------------------------
def test_streaming_events_arrive_as_the_upstream_sends_them(client, fake, log):
    fake.configure(stream_interval_ms=150)
    arrivals, kinds = [], []
    with client.messages.stream(model="auto", max_tokens=64, messages=user(DEEP)) as stream:
        for event in stream:
            arrivals.append(time.perf_counter())
            kinds.append(event.type)
        final = stream.get_final_message()
    # ~10 events 150 ms apart: relayed, they are spread over ~1.3 s; buffered, they would come at once
    assert arrivals[-1] - arrivals[0] > 0.6
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert final.model == "claude-sonnet-4-6" and final.content[0].text.startswith("Fake answer from claude-sonnet")
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    assert fake.received()[-1]["body"]["stream"] is True
    rows = list(log.rows())
    assert rows[-1]["model_used"] == "claude-sonnet-4-6" and rows[-1]["output_tokens"] == final.usage.output_tokens


def test_a_stream_cut_off_upstream_ends_in_an_error_event(client, fake):
    fake.configure(stream_interval_ms=100)
    stream = client.messages.create(model="auto", max_tokens=64, messages=user(LIGHT), stream=True)
    assert next(iter(stream)).type == "message_start"
    fake.stop()  # the upstream goes away mid-answer
    with pytest.raises(anthropic.APIStatusError, match="the upstream stream broke off"):
        list(stream)


def test_a_stream_keeps_the_router_headers(client):
    with client.messages.with_streaming_response.create(model="auto", max_tokens=16, messages=user(LIGHT),
                                                        stream=True) as raw:
        assert raw.headers["x-router-tier"] == "SIMPLE"
        assert raw.headers["content-type"].startswith("text/event-stream")
        text = b"".join(raw.iter_bytes()).decode()
    assert text.startswith("event: message_start\n") and text.rstrip().endswith('{"type": "message_stop"}')


def test_the_usage_scanner_reads_events_split_anywhere():
    events = (b'event: message_start\r\ndata: {"type": "message_start", "message": {"usage": {"input_tokens": 7}}}\r\n\r\n'
              b'event: ping\ndata: {"type": "ping"}\n\n'
              b'event: message_delta\ndata: {"type": "message_delta", "usage": {"output_tokens": 9}}\n\n')
    scanner, seen = SSEUsageScanner(), []
    for i in range(0, len(events), 5):
        seen += list(scanner.feed(events[i:i + 5]))
    assert [e.type for e in seen] == ["message_start", "message_delta"]
    assert seen[0].message.usage.input_tokens == 7 and seen[1].usage.output_tokens == 9


# -- count_tokens, health, errors ----------------------------------------------------------------
def test_count_tokens_is_forwarded(client, fake):
    assert client.messages.count_tokens(model="claude-haiku-4-5", messages=user("x" * 40)).input_tokens == 10
    raw = client.messages.with_raw_response.count_tokens(model="auto:sonnet", messages=user("x" * 40))
    assert raw.parse().input_tokens == 10 and raw.headers["x-router-model"] == "claude-sonnet-4-6"
    assert fake.calls("count_tokens") == 2 and fake.received("count_tokens")[-1]["body"]["model"] == "claude-sonnet-4-6"


def test_health(proxy):
    r = httpx2.get(proxy.url + "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["router"] == "rules"


@pytest.mark.parametrize("kind, status, error", [
    ("rate_limit", 429, anthropic.RateLimitError),
    ("server_error", 500, anthropic.InternalServerError),
    ("overloaded", 529, anthropic.OverloadedError),
])
def test_upstream_errors_come_back_with_their_status_and_body(client, fake, kind, status, error):
    fake.push_faults({"kind": kind, "retry_after": 7})
    with pytest.raises(error) as info:
        client.messages.create(model="auto", max_tokens=16, messages=user(LIGHT))
    resp = info.value.response
    assert resp.status_code == status and resp.json()["error"]["message"] == f"injected {kind}"
    assert resp.headers["retry-after"] == "7" and resp.headers["x-router-tier"] == "SIMPLE"


def test_an_unreachable_upstream_is_a_502(start):
    proxy = start(upstream="http://127.0.0.1:9")  # the discard port: nothing listens
    r = post(proxy, "/v1/messages", {"model": "auto", "max_tokens": 8, "messages": user(LIGHT)}, {"x-api-key": "k"})
    assert r.status_code == 502 and r.json()["error"]["type"] == "api_error"


@pytest.mark.parametrize("body, says", [
    (b'{"model": "auto", "messages": [', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'["a list"]', "must be a JSON object"),
])
def test_bad_json_is_a_400_with_a_clear_message(proxy, fake, body, says):
    r = post(proxy, "/v1/messages", body, {"x-api-key": TEST_KEY})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error" and says in r.json()["error"]["message"]
    assert fake.calls("messages") == 0


def test_an_unroutable_body_or_an_unknown_cap_is_a_400(client, fake):
    with pytest.raises(anthropic.BadRequestError, match="cannot route this request"):
        client.messages.create(model="auto", max_tokens=16, messages=[])
    with pytest.raises(anthropic.BadRequestError, match="unknown tier cap"):
        client.messages.create(model="auto:gpt-5", max_tokens=16, messages=user(LIGHT))
    assert fake.calls("messages") == 0


def test_unknown_paths_get_an_api_style_404(proxy):
    r = httpx2.get(proxy.url + "/v1/models")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


# -- keys and access -----------------------------------------------------------------------------
def test_the_callers_key_is_passed_through_and_never_logged(tmp_path, settings, caplog):
    db = tmp_path / "keys.db"
    with FakeAPI(api_key=TEST_KEY) as strict, caplog.at_level(logging.DEBUG):
        app = create_app(Router(settings=settings, llm=None), ProxyConfig(upstream=strict.base_url), log=db)
        with ProxyServer(app, log_level="debug") as proxy:
            with anthropic.Anthropic(base_url=proxy.url, api_key=TEST_KEY, max_retries=0) as c:  # as Bearer
                c.messages.create(model="auto", max_tokens=16, messages=user(LIGHT))
                with c.messages.stream(model="claude-haiku-4-5", max_tokens=16, messages=user(LIGHT)) as s:
                    s.get_final_message()
            body = {"model": "auto", "max_tokens": 16, "messages": user(DEEP)}
            assert post(proxy, "/v1/messages", body, {"x-api-key": TEST_KEY}).status_code == 200
            wrong = post(proxy, "/v1/messages", body, {"x-api-key": "sk-wrong"})
            assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
    assert strict.calls("messages") == 3  # the wrong key was refused before counting
    assert caplog.records and TEST_KEY not in caplog.text and "sk-wrong" not in caplog.text
    for f in tmp_path.iterdir():  # the decision log, its WAL and shared memory
        assert TEST_KEY.encode() not in f.read_bytes()


def test_the_proxys_own_key_serves_callers_that_send_none(settings):
    own = "sk-proxy-own-key-5678"
    with FakeAPI(api_key=own) as strict:
        app = create_app(Router(settings=settings, llm=None), ProxyConfig(upstream=strict.base_url, api_key=own), log=False)
        with ProxyServer(app) as proxy:
            body = {"model": "auto", "max_tokens": 16, "messages": user(LIGHT)}
            assert post(proxy, "/v1/messages", body).status_code == 200
            # the Python SDK sends no key when told to omit the header
            with anthropic.Anthropic(base_url=proxy.url, api_key="", max_retries=0,
                                     default_headers={"Authorization": anthropic.omit}) as c:
                assert c.messages.create(model="auto", max_tokens=16, messages=user(LIGHT)).model == "claude-haiku-4-5"


def test_no_key_anywhere_is_a_401(proxy, fake):
    r = post(proxy, "/v1/messages", {"model": "auto", "max_tokens": 16, "messages": user(LIGHT)})
    assert r.status_code == 401 and "no API key" in r.json()["error"]["message"] and fake.calls("messages") == 0


def test_the_access_token_is_enforced(start, fake):
    proxy = start(token=TOKEN)
    body = {"model": "auto", "max_tokens": 16, "messages": user(LIGHT)}
    for headers in ({"x-api-key": TEST_KEY}, {"x-api-key": TEST_KEY, "x-router-token": "wrong"},
                    {"authorization": f"Bearer {TOKEN}"}):  # the token has a header of its own
        r = post(proxy, "/v1/messages", body, headers)
        assert r.status_code == 401 and "x-router-token" in r.json()["error"]["message"]
    assert fake.calls("messages") == 0
    assert post(proxy, "/v1/messages", body, {"x-api-key": TEST_KEY, "x-router-token": TOKEN}).status_code == 200
    with anthropic.Anthropic(base_url=proxy.url, api_key=TEST_KEY, default_headers={"x-router-token": TOKEN}) as c:
        assert c.messages.count_tokens(model="auto", messages=user(LIGHT)).input_tokens > 0
    assert httpx2.get(proxy.url + "/health").status_code == 200  # open, for load balancers
    assert httpx2.get(proxy.url + "/metrics").status_code == 401
    assert httpx2.get(proxy.url + "/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200


# -- metrics -------------------------------------------------------------------------------------
def test_metrics_count_requests_latency_errors_and_dollars(client, fake, proxy):
    for text in (LIGHT, LIGHT, DEEP):
        client.messages.create(model="auto", max_tokens=16, messages=user(text))
    client.messages.create(model="claude-opus-4-7", max_tokens=16, messages=user(LIGHT))
    fake.push_faults("rate_limit")
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="auto", max_tokens=16, messages=user(LIGHT))
    post(proxy, "/v1/messages", b"{", {"x-api-key": TEST_KEY})
    assert metric(proxy, 'router_ml_proxy_requests_total{source="rules",tier="SIMPLE"}') == 3
    assert metric(proxy, 'router_ml_proxy_requests_total{source="rules",tier="MEDIUM"}') == 1
    assert metric(proxy, 'router_ml_proxy_requests_total{source="explicit",tier="COMPLEX"}') == 1
    assert metric(proxy, "router_ml_proxy_routing_seconds_count") == 4
    assert metric(proxy, 'router_ml_proxy_upstream_errors_total{status="429"}') == 1
    assert metric(proxy, 'router_ml_proxy_rejected_total{reason="bad_json"}') == 1
    haiku = fake.received()[0]["body"]
    assert haiku["model"] == "claude-haiku-4-5"
    assert metric(proxy, 'router_ml_proxy_cost_dollars_total{model="claude-haiku-4-5"}') > 0
    assert metric(proxy, 'router_ml_proxy_tokens_total{kind="output",model="claude-opus-4-7"}') > 0


# -- configuration and CLI -----------------------------------------------------------------------
def test_config_precedence_and_secrets_kept_out_of_repr():
    env = {"ROUTER_ML_UPSTREAM": "http://env:1", "ROUTER_ML_PROXY_TOKEN": "env-token", "ANTHROPIC_API_KEY": "sk-env"}
    c = ProxyConfig.resolve(env=env)
    assert (c.upstream, c.token, c.api_key) == ("http://env:1", "env-token", "sk-env")
    assert ProxyConfig.resolve(upstream="http://arg:2", token="arg", env=env).upstream == "http://arg:2"
    assert ProxyConfig.resolve(env={}).upstream == "https://api.anthropic.com"
    assert "env-token" not in repr(c) and "sk-env" not in repr(c)
    with pytest.raises(ConfigError, match="upstream must be an http"):
        ProxyConfig(upstream="ftp://x", timeout=-1)


def test_cli_serve_is_registered():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "--upstream" in result.output and "--token" in result.output


# -- the TypeScript example ----------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("node") is None or not (EXAMPLE / "node_modules" / "@anthropic-ai" / "sdk").is_dir(),
                    reason="needs node and `make examples-deps`")
def test_the_typescript_example_runs_against_the_proxy(start, fake):
    subprocess.run([str(EXAMPLE / "node_modules" / ".bin" / "tsc"), "-p", str(EXAMPLE)], check=True, timeout=120)
    proxy = start(token=TOKEN)
    env = {**os.environ, "ROUTER_ML_PROXY_URL": proxy.url, "ANTHROPIC_API_KEY": TEST_KEY, "ROUTER_ML_PROXY_TOKEN": TOKEN}
    out = subprocess.run(["node", str(EXAMPLE / "dist" / "main.js")], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "routed: SIMPLE -> claude-haiku-4-5 (rules" in out.stdout
    assert "from claude-sonnet-4-6, stop_reason end_turn" in out.stdout and "count_tokens: " in out.stdout
    assert [r["body"]["model"] for r in fake.received()] == ["claude-haiku-4-5", "claude-sonnet-4-6"]
