"""The normalizer: every request shape apps send, and a clear error for malformed ones."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router_ml import InvalidRequestError, normalize
from router_ml.normalize import IMAGE_TOKENS, NUMERIC_FEATURES


def test_plain_string_messages_list_and_kwargs_agree():
    text = "Write a Python function that parses ISO 8601 dates"
    msgs = [{"role": "user", "content": text}]
    a = normalize(text)
    b = normalize(msgs)
    c = normalize(messages=msgs, model="claude-sonnet-4-6", max_tokens=100)
    d = normalize({"messages": msgs})
    e = normalize({"prompt": text, "tier": "MEDIUM", "id": "x"})
    f = normalize(messages=[{"role": "user", "content": [{"type": "text", "text": text}]}])
    assert a == b == c == d == e == f
    assert a.text == text and a.n_turns == 1 and not a.has_system


def test_last_user_turn_comes_first_then_bounded_context():
    r = normalize(
        system="You are a support bot for ACME. " * 50,
        messages=[
            {"role": "user", "content": "Long coding question " * 100},
            {"role": "assistant", "content": "Here is a long answer " * 100},
            {"role": "user", "content": "thanks! what's the capital of Peru?"},
        ],
    )
    assert r.text.startswith("thanks! what's the capital of Peru?")
    assert "earlier: Here is a long answer" in r.text and "system: You are a support bot" in r.text
    assert len(r.text) < 1_000  # context is bounded
    assert r.last_user == "thanks! what's the capital of Peru?"
    assert r.n_turns == 3 and r.has_system
    # the size estimate covers the whole request, not only what the embedder reads
    assert r.est_tokens > 1_000


def test_long_last_turn_keeps_head_and_tail():
    body = "alpha " * 5_000 + "FINAL QUESTION: which line failed?"
    r = normalize(body)
    assert r.text.startswith("alpha alpha") and r.text.endswith("which line failed?")
    assert len(r.text) < 1_000
    assert r.est_tokens == math.ceil(len(body) / 4)


def test_blocks_images_documents_tools():
    r = normalize(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "x" * 400}},
                    {"type": "text", "text": "What does this chart show?"},
                ],
            },
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {"q": "a"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42 rows"}]},
        ],
        tools=[{"name": "lookup", "description": "find rows", "input_schema": {"type": "object"}}],
    )
    assert r.has_images and r.has_tools
    assert r.est_tokens >= IMAGE_TOKENS + 100
    assert r.last_user == "42 rows"


def test_image_only_request_is_valid():
    r = normalize([{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}]}])
    assert r.has_images and r.text == "(no text)"


def test_unknown_block_types_are_counted_not_rejected():
    r = normalize([{"role": "user", "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}, {"type": "text", "text": "hi"}]}])
    assert r.last_user == "hi" and r.est_tokens > 1


def test_code_detection():
    assert normalize("```python\nprint(1)\n```").has_code
    assert normalize("def parse(x):\n    return x").has_code
    assert not normalize("What is the capital of Peru?").has_code


def test_features_are_in_declared_order():
    r = normalize(system="s", messages=[{"role": "user", "content": "hello"}])
    feats = r.features()
    assert len(feats) == len(NUMERIC_FEATURES)
    assert feats[NUMERIC_FEATURES.index("has_system")] == 1.0
    assert feats[NUMERIC_FEATURES.index("has_tools")] == 0.0


def test_lone_surrogates_are_replaced():
    r = normalize("bad \ud800 text")
    r.text.encode("utf-8")  # must not raise


@pytest.mark.parametrize(
    "request_, message",
    [
        ("", "empty"),
        ("   ", "empty"),
        (42, "cannot route a int"),
        (None, "no request"),
        ([], "non-empty list"),
        ({"foo": 1}, "needs 'messages' or 'prompt'"),
        ({"prompt": 5}, "'prompt' must be a string"),
        ({"prompt": "a", "messages": []}, "both"),
        ([{"role": "system", "content": "x"}], "role must be 'user' or 'assistant'"),
        (["just a string"], "messages[0] must be an object"),
        ([{"role": "user"}], "has no 'content'"),
        ([{"role": "user", "content": 3}], "content must be a string or a list"),
        ([{"role": "user", "content": ["x"]}], "must be a block object"),
        ([{"role": "user", "content": [{"text": "x"}]}], "has no 'type'"),
        ([{"role": "user", "content": [{"type": "text", "text": None}]}], "without a string 'text'"),
        ([{"role": "user", "content": [{"type": "document"}]}], "without a 'source'"),
        ([{"role": "assistant", "content": "hi"}], "no user turn"),
    ],
)
def test_malformed_requests_raise_value_error_naming_the_problem(request_, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        normalize(request_)
    assert isinstance(info.value, InvalidRequestError)


def test_tools_must_be_a_list():
    with pytest.raises(InvalidRequestError, match="'tools' must be a list"):
        normalize(messages=[{"role": "user", "content": "x"}], tools="lookup")


def test_positional_and_keywords_together_is_an_error():
    with pytest.raises(InvalidRequestError, match="not both"):
        normalize("hi", messages=[])


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(["a", "bc", " ", "   ", "\n", "\t", "\u3000", "é", " " * 300, "w" * 200]), max_size=400),
    head=st.integers(0, 800),
    tail=st.integers(0, 300),
)
def test_head_tail_of_a_long_text_equals_collapsing_the_whole_text(pieces, head, tail):
    # _head_tail reads long texts through windows so a 500k-character paste costs what a 5k one does;
    # the result must be what collapsing every whitespace run of the whole text would give.
    from router_ml.normalize import _head_tail

    text = "".join(pieces)
    whole = " ".join(text.split())
    want = whole if len(whole) <= head + tail else whole[:head] + " … " + (whole[-tail:] if tail else "")
    assert _head_tail(text, head, tail) == want
