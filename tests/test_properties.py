"""Property tests: whatever an app passes, route() returns a decision or raises a clear ValueError."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router_ml import Predictor, RouteDecision, Router
from router_ml.data import load_rows

text = st.text(alphabet=st.characters(codec=None, blacklist_categories=()), max_size=300)  # includes lone surrogates
block = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries({"type": st.just("image"), "source": st.fixed_dictionaries({"type": st.just("base64"), "data": st.text(max_size=50)})}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": st.text(max_size=5), "name": st.text(max_size=10), "input": st.dictionaries(st.text(max_size=5), st.integers())}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": st.text(max_size=5), "content": text}),
    st.fixed_dictionaries({"type": st.sampled_from(["document", "thinking", "weird"])}),
)
junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "bot", ""]), "content": st.one_of(text, st.lists(block, max_size=4), junk)}
)
request = st.one_of(
    text,
    st.lists(message, max_size=5),
    st.fixed_dictionaries({"messages": st.lists(message, max_size=4)}, optional={"system": st.one_of(text, junk), "tools": junk}),
    junk,
)


@pytest.fixture(scope="module")
def router(tmp_path_factory):
    from conftest import FIXTURES, HashEmbedder

    rows = load_rows(FIXTURES / "tiny.jsonl")
    p = Predictor(HashEmbedder(), cv=3).fit([r.request for r in rows], [r.tier for r in rows])
    return Router(p, llm=None, underroute_budget=0.2, confidence_threshold=0.5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(req=request)
def test_route_never_crashes_except_with_value_error(router, req):
    try:
        d = router.route(req)
    except ValueError as err:
        assert str(err)  # says what is wrong
        return
    assert isinstance(d, RouteDecision) and d.source in {"classifier", "safe"}
    json.dumps(d.to_dict())  # serializable


@pytest.mark.parametrize(
    "req",
    [
        "x" * 10_000_000,  # 10 MB
        "\ud800\udfff lone surrogates \udc00",
        [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "AAAA"}}]}],
        [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": [{"type": "text", "text": "ok"}]}]}],
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}], "system": [{"type": "text", "text": "sys"}]},
    ],
)
def test_extreme_but_valid_requests_route(router, req):
    d = router.route(req)
    assert d.tier is not None
    if isinstance(req, str) and len(req) > 1_000_000:
        assert d.probabilities["COMPLEX"] >= 0 and router.route(req).tier == d.tier


@settings(max_examples=300, deadline=None)
@given(t=text)
def test_a_string_normalizes_like_the_one_message_it_stands_for(t):
    # normalize() has a fast path for plain strings; it must agree with the general walk, errors too
    from router_ml.normalize import normalize

    def outcome(req):
        try:
            return normalize(req)
        except ValueError as err:
            return type(err), str(err)

    assert outcome(t) == outcome([{"role": "user", "content": t}])
