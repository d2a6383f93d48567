"""RoutedAnthropic against the project's fake Messages API, through the real anthropic SDK."""

from __future__ import annotations

import asyncio
import copy

import anthropic
import pytest
from fake_server import TEST_KEY

from router_ml.caching import add_cache_control
from router_ml.client import AsyncRoutedAnthropic, RoutedAnthropic, RoutedMessage, RoutedStream
from router_ml.data import load_rows
from router_ml.decision_log import DecisionLog
from router_ml.predictor import Predictor
from router_ml.router import Router
from router_ml.tiers import Tier

LIGHT = "Translate 'good night' into Spanish."  # the rule router: SIMPLE (Haiku)
DEEP = "Refactor the billing module's architecture."  # the rule router: MEDIUM (Sonnet)
SONNET_MIN_CHARS = 1024 * 4  # Sonnet caches from about 1,024 tokens, Haiku from about 2,048


@pytest.fixture
def log(tmp_path):
    with DecisionLog(tmp_path / "log.db", privacy="full") as dl:
        yield dl


@pytest.fixture
def rules(settings):
    return Router(settings=settings)  # no model: the rule router, instant


@pytest.fixture
def client(fake, rules, log):
    with RoutedAnthropic(rules, log=log, base_url=fake.base_url, api_key=TEST_KEY, max_retries=0, timeout=5) as c:
        yield c


def sent(fake, i: int = -1) -> dict:
    """The body the server received for the i-th messages call."""
    return fake.received("messages")[i]["body"]


def breakpoints(body: dict) -> list[str]:
    """Where the request carries cache_control, as paths."""
    out = [f"tools[{i}]" for i, t in enumerate(body.get("tools") or []) if t.get("cache_control")]
    if isinstance(body.get("system"), list):
        out += [f"system[{i}]" for i, b in enumerate(body["system"]) if b.get("cache_control")]
    for m, msg in enumerate(body["messages"]):
        if isinstance(msg["content"], list):
            out += [f"messages[{m}].content[{k}]" for k, b in enumerate(msg["content"]) if b.get("cache_control")]
    return out


# -- routing -------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [None, "auto"])
def test_routes_when_no_model_is_given(client, fake, log, model):
    kwargs = {"max_tokens": 64, "messages": [{"role": "user", "content": LIGHT}]}
    reply = client.messages.create(**kwargs, **({"model": model} if model else {}))
    assert sent(fake)["model"] == "claude-haiku-4-5" == reply.routing.model
    assert isinstance(reply, RoutedMessage) and isinstance(reply.message, anthropic.types.Message)
    assert reply.content[0].text.startswith("Fake answer from claude-haiku-4-5")  # falls through to the Message
    assert reply.routing.tier is Tier.SIMPLE and reply.routing.source == "rules"
    row = log.get(reply.decision_id)
    assert (row["tier"], row["model"], row["model_used"]) == ("SIMPLE", "claude-haiku-4-5", "claude-haiku-4-5")


def test_explicit_model_wins_and_is_logged(client, fake, log):
    reply = client.messages.create(model="claude-opus-4-7", max_tokens=64, messages=[{"role": "user", "content": LIGHT}])
    assert sent(fake)["model"] == "claude-opus-4-7" == reply.model
    assert reply.routing.source == "explicit" and reply.routing.tier is Tier.COMPLEX
    row = log.get(reply.decision_id)
    assert (row["source"], row["model"], row["model_used"]) == ("explicit", "claude-opus-4-7", "claude-opus-4-7")


def test_a_fitted_classifier_routes(fake, log, tiny_data, hash_embedder, settings):
    rows = load_rows(tiny_data)
    predictor = Predictor(hash_embedder, cv=2).fit([r.raw for r in rows], [r.tier for r in rows])
    with RoutedAnthropic(Router(predictor, settings=settings), log=log, base_url=fake.base_url,
                         api_key=TEST_KEY, max_retries=0) as c:
        reply = c.messages.create(max_tokens=32, messages=[{"role": "user", "content": rows[0].raw["prompt"]}])
    assert reply.routing.source == "classifier" and sent(fake)["model"] == reply.routing.model
    assert log.get(reply.decision_id)["probabilities"] == reply.routing.probabilities


def test_previous_replies_in_the_history_are_routed(client, fake):
    first = client.messages.create(max_tokens=64, messages=[{"role": "user", "content": LIGHT}])
    history = [{"role": "user", "content": LIGHT}, {"role": "assistant", "content": first.content},
               {"role": "user", "content": "And into Italian?"}]
    reply = client.messages.create(max_tokens=64, messages=history)
    assert reply.routing.source == "rules"  # SDK content blocks did not make the request unroutable


def test_usage_and_cost_are_logged(client, fake, log, rules):
    reply = client.messages.create(max_tokens=64, system="x" * 10_000, messages=[{"role": "user", "content": DEEP}])
    u = reply.usage
    expected = rules.tiers.price("claude-sonnet-4-6").cost(
        u.input_tokens, u.output_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens)
    assert u.cache_creation_input_tokens > 0 and reply.cost_usd == pytest.approx(expected)
    row = log.get(reply.decision_id)
    assert (row["input_tokens"], row["output_tokens"]) == (u.input_tokens, u.output_tokens)
    assert row["cache_write_tokens"] == u.cache_creation_input_tokens and row["cache_read_tokens"] == 0
    assert row["response_cost_usd"] == pytest.approx(expected)
    again = client.messages.create(max_tokens=64, system="x" * 10_000, messages=[{"role": "user", "content": DEEP}])
    assert log.get(again.decision_id)["cache_read_tokens"] == u.cache_creation_input_tokens


def test_a_router_with_its_own_log_records_once(fake, log, settings):
    router = Router(settings=settings, log=log)
    with RoutedAnthropic(router, base_url=fake.base_url, api_key=TEST_KEY, max_retries=0) as c:
        reply = c.messages.create(max_tokens=64, messages=[{"role": "user", "content": LIGHT}], conversation_id="c9")
    assert log.count() == 1 and reply.decision_id == reply.routing.decision_id
    row = log.get(reply.decision_id)
    assert row["model_used"] == "claude-haiku-4-5" and row["input_tokens"] > 0 and row["conversation_id"] == "c9"


# -- prompt caching ------------------------------------------------------------------------------
def test_short_prompts_get_no_cache_control(client, fake):
    client.messages.create(max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": DEEP}])
    assert sent(fake)["system"] == "Be brief." and breakpoints(sent(fake)) == []


def test_a_long_system_prompt_is_cached_when_it_reaches_the_models_minimum(client, fake):
    system = "You are a meticulous assistant. " * (SONNET_MIN_CHARS // 30)  # ~1,100 tokens
    client.messages.create(max_tokens=64, system=system, messages=[{"role": "user", "content": DEEP}])
    assert breakpoints(sent(fake)) == ["system[0]"]  # Sonnet: over 1,024 tokens
    assert sent(fake)["system"][0]["cache_control"] == {"type": "ephemeral"}
    client.messages.create(max_tokens=64, system=system, messages=[{"role": "user", "content": LIGHT}])
    assert sent(fake)["model"] == "claude-haiku-4-5" and breakpoints(sent(fake)) == []  # Haiku: under 2,048


def test_a_shared_document_is_cached_but_not_the_question(client, fake):
    doc = "Clause %d: the supplier shall deliver on time. " * 200 % tuple(range(200))
    kwargs = {"max_tokens": 64, "messages": [{"role": "user", "content": [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": doc}},
        {"type": "text", "text": DEEP}]}]}
    before = copy.deepcopy(kwargs)
    reply = client.messages.create(**kwargs)
    assert breakpoints(sent(fake)) == ["messages[0].content[0]"] == reply.cache_breakpoints
    assert kwargs == before and "cache_control" not in kwargs["messages"][0]["content"][0]  # caller's objects untouched


def test_never_more_than_four_breakpoints(client, fake):
    big = "z" * (SONNET_MIN_CHARS + 100)
    tools = [{"name": f"t{i}", "description": big, "input_schema": {"type": "object"},
              "cache_control": {"type": "ephemeral"}} for i in range(3)]
    system = [{"type": "text", "text": big}]
    history = [{"role": "user", "content": [{"type": "text", "text": big}]},
               {"role": "assistant", "content": "ok"}, {"role": "user", "content": big + DEEP}]
    client.messages.create(max_tokens=64, tools=tools, system=system, messages=history)
    assert len(breakpoints(sent(fake))) == 4  # the caller's 3, plus one of ours
    tools.append({"name": "t3", "description": big, "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}})
    client.messages.create(max_tokens=64, tools=tools, system=system, messages=history)
    assert breakpoints(sent(fake)) == [f"tools[{i}]" for i in range(4)]


def test_a_long_conversation_caches_its_history():
    big = "history " * 700  # ~1,400 tokens a turn
    params = {"model": "claude-sonnet-4-6", "system": "Be brief.", "messages": [
        {"role": "user", "content": big}, {"role": "assistant", "content": big}, {"role": "user", "content": "go on"}]}
    out, placed = add_cache_control(params, min_tokens=1024)
    assert placed == ["messages[0].content[0]", "messages[2].content[0]"]
    assert out["messages"][0]["content"][0] == {"type": "text", "text": big, "cache_control": {"type": "ephemeral"}}
    assert params["messages"][0]["content"] == big  # a copy was changed, not the caller's


def test_caching_can_be_turned_off(fake, rules, log):
    with RoutedAnthropic(rules, log=log, cache=False, base_url=fake.base_url, api_key=TEST_KEY) as c:
        c.messages.create(max_tokens=64, system="s" * 20_000, messages=[{"role": "user", "content": DEEP}])
    assert breakpoints(sent(fake)) == []


# -- conversation stickiness ---------------------------------------------------------------------
def ask(client, text, **kw):
    return client.messages.create(max_tokens=64, messages=[{"role": "user", "content": text}], **kw)


def test_a_conversation_escalates_but_never_downgrades(client, fake, log):
    assert ask(client, LIGHT, conversation_id="c1").routing.tier is Tier.SIMPLE
    assert ask(client, DEEP, conversation_id="c1").routing.tier is Tier.MEDIUM  # escalates
    again = ask(client, LIGHT, conversation_id="c1")
    assert again.routing.tier is Tier.MEDIUM and sent(fake)["model"] == "claude-sonnet-4-6"  # no downgrade
    assert again.routing.extra["routed_tier"] == "SIMPLE" and "sticky" in again.routing.reason
    assert "conversation_id" not in sent(fake)  # consumed here, never sent
    row = log.get(again.decision_id)  # the log keeps the router's own choice and what served
    assert (row["tier"], row["model_used"], row["conversation_id"]) == ("SIMPLE", "claude-sonnet-4-6", "c1")
    assert ask(client, LIGHT, conversation_id="c2").routing.tier is Tier.SIMPLE  # other conversations
    assert ask(client, LIGHT).routing.tier is Tier.SIMPLE  # and calls without one


def test_an_explicit_tier_model_raises_the_conversation_too(client, fake):
    client.messages.create(model="claude-opus-4-7", max_tokens=64, messages=[{"role": "user", "content": DEEP}],
                           conversation_id="x")
    assert ask(client, LIGHT, conversation_id="x").routing.tier is Tier.COMPLEX  # Opus's cache is warm
    client.messages.create(model="some-other-model", max_tokens=64, messages=[{"role": "user", "content": DEEP}],
                           conversation_id="y")
    assert ask(client, LIGHT, conversation_id="y").routing.tier is Tier.SIMPLE  # says nothing about tiers


def test_stickiness_is_opt_out_and_bounded(fake, rules):
    with RoutedAnthropic(rules, log=False, sticky=False, base_url=fake.base_url, api_key=TEST_KEY) as c:
        ask(c, DEEP, conversation_id="c")
        assert ask(c, LIGHT, conversation_id="c").routing.tier is Tier.SIMPLE
    with RoutedAnthropic(rules, log=False, max_conversations=2, base_url=fake.base_url, api_key=TEST_KEY) as c:
        ask(c, DEEP, conversation_id="old")
        ask(c, LIGHT, conversation_id="b")
        ask(c, LIGHT, conversation_id="c")  # "old" is evicted (least recently used)
        assert ask(c, LIGHT, conversation_id="old").routing.tier is Tier.SIMPLE


# -- streaming, errors, async --------------------------------------------------------------------
def test_streaming_is_passed_through_after_routing(client, fake, log):
    stream = client.messages.create(max_tokens=64, messages=[{"role": "user", "content": LIGHT}], stream=True)
    assert isinstance(stream, RoutedStream) and isinstance(stream.stream, anthropic.Stream)
    list(stream)
    assert sent(fake)["stream"] is True and sent(fake)["model"] == "claude-haiku-4-5"
    assert log.get(stream.decision_id)["tier"] == "SIMPLE"


@pytest.mark.parametrize("fault,error", [("rate_limit", anthropic.RateLimitError),
                                         ("bad_request", anthropic.BadRequestError)])
def test_sdk_errors_propagate_unchanged(client, fake, log, fault, error):
    fake.push_faults(fault)
    with pytest.raises(error):
        ask(client, LIGHT)
    (row,) = log.rows()
    assert row["tier"] == "SIMPLE" and row["model_used"] is None  # decided and logged, never answered


def test_an_unroutable_request_goes_to_the_api_which_gives_its_own_verdict(client, fake):
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(max_tokens=64, messages=[])
    assert sent(fake)["model"] == "claude-opus-4-7"  # the safe tier; our normalizer's error is not raised


def test_keys_never_reach_the_log(client, log):
    secret = "sk-ant-api03-" + "Q" * 40
    ask(client, f"{LIGHT} My key is {secret}")
    blob = b"".join(p.read_bytes() for p in log.path.parent.glob(log.path.name + "*"))
    assert secret.encode() not in blob and TEST_KEY.encode() not in blob


def test_async_client_routes_and_logs(fake, rules, log):
    async def main():
        async with AsyncRoutedAnthropic(rules, log=log, base_url=fake.base_url, api_key=TEST_KEY, max_retries=0) as c:
            first = await c.messages.create(max_tokens=64, messages=[{"role": "user", "content": DEEP}], conversation_id="a")
            second = await c.messages.create(max_tokens=64, messages=[{"role": "user", "content": LIGHT}], conversation_id="a")
            return first, second

    first, second = asyncio.run(main())
    assert (first.routing.tier, second.routing.tier) == (Tier.MEDIUM, Tier.MEDIUM)
    assert [b["model"] for b in (sent(fake, 0), sent(fake, 1))] == ["claude-sonnet-4-6"] * 2
    assert log.get(second.decision_id)["response_cost_usd"] == pytest.approx(second.cost_usd) and second.cost_usd > 0


def test_client_and_sdk_arguments_are_exclusive(rules):
    with pytest.raises(ValueError, match="either client= or anthropic keyword arguments"):
        RoutedAnthropic(rules, client=object(), api_key="x")
    assert RoutedAnthropic(rules, log=False, api_key="x").decision_log is None


def test_the_stream_helper_routes_first(client, fake):
    with client.messages.stream(max_tokens=64, messages=[{"role": "user", "content": DEEP}]) as stream:
        list(stream)
    assert sent(fake)["stream"] is True and sent(fake)["model"] == "claude-sonnet-4-6"


def test_stream_usage_is_read_from_the_sdks_events():
    from anthropic.types import RawMessageDeltaEvent, RawMessageStartEvent, RawMessageStopEvent

    start = RawMessageStartEvent.model_validate({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 11, "output_tokens": 1, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2048}}})
    delta = RawMessageDeltaEvent.model_validate({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                 "stop_sequence": None}, "usage": {"output_tokens": 42}})
    events = [start, delta, RawMessageStopEvent(type="message_stop")]
    seen = []

    class Events(list):
        def close(self):
            pass

    from router_ml.router import RouteDecision

    d = RouteDecision(tier=Tier.SIMPLE, model="claude-haiku-4-5", confidence=1.0, probabilities={}, source="rules")
    stream = RoutedStream(Events(events), d, "id-1", seen.append)
    assert list(stream) == events
    stream.close()  # usage is reported once
    (usage,) = seen
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (11, 42, 2048)


def test_a_routed_message_copies_and_keeps_the_sdk_object(client):
    reply = ask(client, LIGHT)
    assert copy.copy(reply).message is reply.message and reply.message.model_dump()["model"] == "claude-haiku-4-5"
    assert "routing" not in reply.message.model_dump()  # the SDK object is not touched
