"""The serving chain: classifier -> LLM router -> safe tier, under every fault, with the real SDK
against the project's fake Messages API."""

import asyncio
import socket
import time

import numpy as np
import pytest
from fake_server import TEST_KEY

from router_ml import Predictor, Router, Tier
from router_ml.breaker import CircuitBreaker
from router_ml.data import load_rows
from router_ml.decision import safe_tier
from router_ml.llm_router import LLMRouter


@pytest.fixture
def predictor(tiny_data, hash_embedder):
    rows = load_rows(tiny_data)
    return Predictor(hash_embedder, cv=3).fit([r.request for r in rows], [r.tier for r in rows])


@pytest.fixture
def llm(fake, settings):
    r = LLMRouter(settings=settings, base_url=fake.base_url, api_key=TEST_KEY, timeout=0.5)
    yield r
    r.close()


def make_router(predictor, llm, **kw):
    kw.setdefault("underroute_budget", 0.2)
    return Router(predictor, llm=llm, **kw)


PROMPT = "Translate 'good night' into Spanish."  # 36 chars: the fake server's rule says SIMPLE


def test_confident_requests_never_call_the_api(predictor, llm, fake):
    d = make_router(predictor, llm, confidence_threshold=0.0).route(PROMPT)
    assert d.source == "classifier" and d.cost_usd == 0.0
    assert fake.calls("messages") == 0


def test_unconfident_requests_ask_the_llm_router(predictor, llm, fake):
    d = make_router(predictor, llm, confidence_threshold=1.0).route(PROMPT)
    assert d.source == "llm" and d.tier is Tier.SIMPLE and d.model == "claude-haiku-4-5"
    assert d.cost_usd > 0 and d.reason.startswith("LLM router:")
    assert fake.calls("messages") == 1
    # the classifier's view is still reported
    assert set(d.probabilities) == {"SIMPLE", "MEDIUM", "COMPLEX"}


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "rate_limit", "retry_after": 1},
        "overloaded",
        "server_error",
        {"kind": "timeout", "seconds": 10},
        "non_json",
        "disconnect",
        {"kind": "answer", "text": "I think it is probably HARD."},
        {"kind": "answer", "text": '{"tier": "ULTRA", "reason": "x"}'},
    ],
)
def test_every_fault_gives_the_safe_tier_without_raising(predictor, llm, fake, fault):
    router = make_router(predictor, llm, confidence_threshold=1.0)
    fake.push_faults(fault)
    started = time.perf_counter()
    d = router.route(PROMPT)
    elapsed = time.perf_counter() - started
    assert d.source == "safe" and "LLM router failed" in d.reason
    probs = np.array([d.probabilities[t.name] for t in Tier])
    assert d.tier is safe_tier(probs, 0.2) and d.tier > Tier(int(probs.argmax())) or d.tier is Tier.COMPLEX
    # Bounded by the LLM router's 0.5 s timeout, not by the server's 10 s stall (a wide margin:
    # this checks that the timeout is enforced, not how fast anything is).
    assert elapsed < 5.0


def test_circuit_opens_after_repeated_failures_and_recovers(predictor, llm, fake):
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=3, reset_after=30, clock=lambda: now[0])
    router = make_router(predictor, llm, confidence_threshold=1.0, breaker=breaker)
    fake.push_faults("server_error", "server_error", "server_error")
    for _ in range(3):
        assert router.route(PROMPT).source == "safe"
    assert breaker.state == "open" and fake.calls("messages") == 3
    d = router.route(PROMPT)  # open: no call at all
    assert d.source == "safe" and "circuit open" in d.reason and fake.calls("messages") == 3
    now[0] = 31.0  # half-open: one trial call, which succeeds and closes the circuit
    assert router.route(PROMPT).source == "llm" and breaker.state == "closed"
    assert fake.calls("messages") == 4


def test_retry_after_keeps_the_circuit_open_longer(predictor, llm, fake):
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=1, reset_after=5, clock=lambda: now[0])
    router = make_router(predictor, llm, confidence_threshold=1.0, breaker=breaker)
    fake.push_faults({"kind": "rate_limit", "retry_after": 60})
    router.route(PROMPT)
    now[0] = 30.0
    assert breaker.state == "open"
    now[0] = 61.0
    assert breaker.state == "half-open"


def test_unreachable_api_returns_within_the_timeout_and_opens_the_circuit(predictor, settings):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave the block: connection refused
    llm = LLMRouter(settings=settings, base_url=f"http://127.0.0.1:{port}", api_key=TEST_KEY, timeout=1.0)
    router = make_router(predictor, llm, confidence_threshold=1.0)
    for _ in range(3):
        started = time.perf_counter()
        d = router.route(PROMPT)
        assert d.source == "safe" and time.perf_counter() - started < 5.0  # timeout 1 s, wide margin
    assert router.breaker.state == "open"
    assert "circuit open" in router.route(PROMPT).reason


def test_without_an_llm_router_unconfident_requests_get_the_safe_tier(predictor):
    d = make_router(predictor, None, confidence_threshold=1.0).route(PROMPT)
    assert d.source == "safe" and "no LLM router configured" in d.reason


def test_aroute_follows_the_same_chain(predictor, llm, fake):
    router = make_router(predictor, llm, confidence_threshold=1.0)

    async def both():
        ok = await router.aroute(PROMPT)
        fake.push_faults("overloaded")
        bad = await router.aroute(PROMPT)
        return ok, bad

    ok, bad = asyncio.run(both())
    assert ok.source == "llm" and bad.source == "safe"
    confident = asyncio.run(make_router(predictor, llm, confidence_threshold=0.0).aroute(PROMPT))
    assert confident.source == "classifier"


def test_route_batch_sends_only_unconfident_rows_to_the_llm(predictor, llm, fake, tiny_data):
    rows = load_rows(tiny_data)
    reqs = [r.raw for r in rows[:12]]
    probs = predictor.predict_proba([r.request for r in rows[:12]])
    threshold = float(np.median(probs.max(axis=1)))
    router = make_router(predictor, llm, confidence_threshold=threshold)
    out = router.route_batch(reqs)
    n_unconfident = int((probs.max(axis=1) < threshold).sum())
    assert [d.source for d in out].count("llm") == n_unconfident == fake.calls("messages")
    assert [d.tier for d in out if d.source == "classifier"] == [
        router.route(q).tier for q, d in zip(reqs, out) if d.source == "classifier"
    ]


def test_budget_and_threshold_come_from_the_card_and_can_be_overridden(predictor):
    predictor.card_ = {"serving": {"underroute_budget": 0.1, "confidence_threshold": 0.6}}
    r = Router(predictor, llm=None)
    assert (r.underroute_budget, r.confidence_threshold) == (0.1, 0.6)
    r = Router(predictor, llm=None, underroute_budget=0.3, confidence_threshold=0.2)
    assert (r.underroute_budget, r.confidence_threshold) == (0.3, 0.2)
    with pytest.raises(ValueError, match="underroute_budget must be in"):
        Router(predictor, llm=None, underroute_budget=1.5)
