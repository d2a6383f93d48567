"""The simulated model behind ``fake_api``: answers, token usage, prompt cache, faults and batches.

No HTTP here, so the behaviour is easy to read in one place:

- **Answers.** A scripted table wins (``script(match, answer)``: the first entry whose ``match`` occurs
  in the text of the request's messages). Otherwise a fixed rule keyed on the output contract the
  system prompt asks for: a prompt asking for ``"tier"`` gets a tier by the length of the text inside
  ``<request>...</request>`` (under 100 characters SIMPLE, under 300 MEDIUM, else COMPLEX); a prompt
  asking for ``"answer_1_as_good"`` gets the outcome judge's verdicts by the same rule; anything else gets a
  short plain-text answer. Answers longer than ``max_tokens`` are cut, with ``stop_reason`` "max_tokens".
- **Usage.** About four characters a token. The prefix up to the last system block carrying
  ``cache_control`` is written to the cache the first time it is seen (per model) and read after;
  prefixes under ``min_cache_tokens`` are not cached, as with the real API's per-model floors.
- **Batches** live in ``fake_batches.BatchStore``.
- **Streaming.** ``"stream": true`` gets the same message as server-sent events, in the API's order
  (``message_start``, ``content_block_start``, ``ping``, text deltas of a few words each,
  ``content_block_stop``, ``message_delta`` with the output usage, ``message_stop``); the server
  waits ``stream_interval_ms`` between events, so a test can tell a relay from a buffer.
- **Faults.** A queue per endpoint (``push_faults``), consumed one per call, then a random
  ``fail_rate`` (429/529/500 drawn from a seeded generator) on ``/v1/messages``.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import ConfigError

__all__ = ["Fault", "FAULT_KINDS", "Backend", "ApiError", "validate_params", "stream_events"]

# kind -> (HTTP status, error type in the body); kinds with status None are not HTTP errors
FAULT_KINDS: dict[str, tuple[int | None, str | None]] = {
    "rate_limit": (429, "rate_limit_error"),
    "overloaded": (529, "overloaded_error"),
    "server_error": (500, "api_error"),
    "bad_request": (400, "invalid_request_error"),
    "timeout": (None, None),  # stall ``seconds`` (past the client's timeout), then answer
    "disconnect": (None, None),  # close the connection without a response
    "non_json": (None, None),  # 200 with an HTML body
    "non_json_error": (502, None),  # 502 with an HTML body, as a proxy would send
    "answer": (None, None),  # 200 with ``text`` as the model's answer (unknown tiers, garbage)
}
_RANDOM_KINDS = ("rate_limit", "overloaded", "server_error")
_REQUEST = re.compile(r"<request>(.*?)</request>", re.DOTALL)


class ApiError(Exception):
    """An error answer of the fake API: status, error type, message, extra headers."""

    def __init__(self, status: int, kind: str, message: str, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.kind, "message": self.message}}


@dataclass(frozen=True)
class Fault:
    """One injected failure. ``endpoint``: "messages", "count_tokens", "batches" or "batches.<op>"."""

    kind: str
    retry_after: float | None = None  # seconds, sent as retry-after on 429/529
    seconds: float = 5.0  # how long "timeout" stalls
    text: str = ""  # the answer of kind "answer"
    endpoint: str = "messages"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ConfigError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")

    @classmethod
    def of(cls, spec: "Fault | str | Mapping[str, Any]") -> "Fault":
        """Accept a Fault, a kind name, or a mapping of the fields (as the admin endpoint gets)."""
        if isinstance(spec, Fault):
            return spec
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, Mapping):
            try:
                return cls(**spec)
            except TypeError as err:
                raise ConfigError(f"bad fault {dict(spec)!r}: {err}") from None
        raise ConfigError(f"a fault is a kind name or a mapping, got {type(spec).__name__}")

    def error(self) -> ApiError:
        status, kind = FAULT_KINDS[self.kind]
        headers = {"retry-after": f"{self.retry_after:g}"} if self.retry_after is not None else {}
        return ApiError(status or 500, kind or "api_error", f"injected {self.kind}", headers)


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _blocks_text(content: Any) -> str:
    """Text of a string or a list of content blocks (text blocks and tool results)."""
    if isinstance(content, str):
        return content
    parts = []
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            parts.append(_blocks_text(block.get("content")))
    return "\n".join(parts)


def _tier_by_rule(text: str) -> str:
    n = len(text.strip())
    return "SIMPLE" if n < 100 else "MEDIUM" if n < 300 else "COMPLEX"


def validate_params(body: Any) -> None:
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request_error", "body must be a JSON object")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise ApiError(400, "invalid_request_error", "model: field required")
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        raise ApiError(400, "invalid_request_error", "max_tokens: must be a positive integer")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ApiError(400, "invalid_request_error", "messages: must be a non-empty list")


@dataclass
class Backend:
    """State of one fake API: configuration, script, fault queues, cache, batches and counters."""

    latency_ms: float = 0.0
    fail_rate: float = 0.0
    seed: int = 0
    min_cache_tokens: int = 0
    batch_delay_s: float = 0.0
    stream_interval_ms: float = 0.0
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ConfigError(f"fail_rate must be between 0 and 1, got {self.fail_rate!r}")
        if self.latency_ms < 0:
            raise ConfigError(f"latency_ms must be >= 0, got {self.latency_ms!r}")
        self.reset()

    def reset(self) -> None:
        """Forget script, faults, cache, batches and counters (configuration stays)."""
        with self._lock:
            self._rng = random.Random(self.seed)
            self._script: list[tuple[str, str | None, str | None]] = []
            self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
            self._cache: set[tuple[str, str]] = set()
            from .fake_batches import BatchStore  # here: that module builds on this one

            self.batches = BatchStore(self)
            self.calls: collections.Counter[str] = collections.Counter()
            self.calls_by_model: collections.Counter[str] = collections.Counter()
            self.paid: collections.Counter[str] = collections.Counter()  # request hash -> billed answers
            self.faults_served: collections.Counter[str] = collections.Counter()
            self.received: collections.deque[dict[str, Any]] = collections.deque(maxlen=10_000)
            self._seq = 0

    # -- scripting -------------------------------------------------------------------------------
    def script(self, match: str, answer: str | None = None, *, error: str | None = None) -> None:
        """Answer ``answer`` (or fail with fault kind ``error``, every time) when ``match`` occurs in
        the request's messages. Earlier entries win."""
        if (answer is None) == (error is None):
            raise ConfigError("script: give exactly one of answer or error")
        if error is not None and FAULT_KINDS.get(error, (None,))[0] is None:
            raise ConfigError(f"script: error must be an HTTP fault kind, got {error!r}")
        with self._lock:
            self._script.append((match, answer, error))

    def clear_script(self) -> None:
        with self._lock:
            self._script.clear()

    def push_faults(self, *faults: Fault | str | Mapping[str, Any]) -> None:
        """Queue faults; each is served once, to the next call of its endpoint."""
        parsed = [Fault.of(f) for f in faults]
        with self._lock:
            for f in parsed:
                self._faults[f.endpoint].append(f)

    def next_fault(self, endpoint: str) -> Fault | None:
        with self._lock:
            for name in (endpoint, endpoint.split(".")[0]):
                if self._faults.get(name):
                    fault = self._faults[name].popleft()
                    self.faults_served[fault.kind] += 1
                    return fault
            if endpoint == "messages" and self.fail_rate and self._rng.random() < self.fail_rate:
                fault = Fault(self._rng.choice(_RANDOM_KINDS), retry_after=0.0)
                self.faults_served[fault.kind] += 1
                return fault
        return None

    def record(self, endpoint: str, body: Any, headers: Mapping[str, str]) -> None:
        """Count a call and keep what was received (never the credentials)."""
        safe = {k.lower(): v for k, v in headers.items() if k.lower() not in ("authorization", "x-api-key")}
        with self._lock:
            self.calls[endpoint] += 1
            if isinstance(body, dict) and isinstance(body.get("model"), str):
                self.calls_by_model[body["model"]] += 1
            self.received.append({"endpoint": endpoint, "body": body, "headers": safe})

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "calls_by_model": dict(self.calls_by_model),
                "paid_calls": sum(self.paid.values()),
                "paid_twice": sum(1 for n in self.paid.values() if n > 1),
                "faults_served": dict(self.faults_served),
                "batches": len(self.batches),
            }

    def _next_id(self, prefix: str) -> str:
        with self._lock:
            self._seq += 1
            return f"{prefix}_fake{self._seq:06d}{self._rng.getrandbits(32):08x}"

    # -- one message -----------------------------------------------------------------------------
    def _answer(self, body: dict[str, Any]) -> str:
        messages_text = "\n".join(_blocks_text(m.get("content")) for m in body["messages"] if isinstance(m, dict))
        with self._lock:
            script = list(self._script)
        for match, answer, error in script:
            if match in messages_text:
                if error is not None:
                    raise Fault(error).error()
                return answer or ""
        system = _blocks_text(body.get("system"))
        users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        last = _blocks_text(users[-1].get("content")) if users else ""
        found = _REQUEST.search(last)
        focus = found.group(1) if found else last
        if '"tier"' in system:
            tier = _tier_by_rule(focus)
            return json.dumps({"tier": tier, "reason": f"Fake rule: {len(focus.strip())} characters of request."})
        if '"answer_1_as_good"' in system:  # the outcome judge: answer 1 is SIMPLE's, 2 MEDIUM's
            tier = _tier_by_rule(focus)
            return json.dumps(
                {
                    "answer_1_as_good": tier == "SIMPLE",
                    "answer_2_as_good": tier in ("SIMPLE", "MEDIUM"),
                    "reason": f"Fake judge: the request reads as {tier}.",
                }
            )
        return f"Fake answer from {body['model']} to a {len(focus)}-character request."

    def _usage(self, body: dict[str, Any], output_tokens: int) -> dict[str, Any]:
        system = body.get("system")
        blocks = system if isinstance(system, list) else ([{"type": "text", "text": system}] if system else [])
        tools = json.dumps(body["tools"], sort_keys=True) if body.get("tools") else ""
        total = _tokens(tools + _blocks_text(blocks)) + sum(
            _tokens(_blocks_text(m.get("content"))) for m in body["messages"] if isinstance(m, dict)
        )
        marked = [i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")]
        write = read = 0
        if marked:
            prefix = tools + _blocks_text(blocks[: marked[-1] + 1])
            n = _tokens(prefix)
            if n >= self.min_cache_tokens:
                key = (body["model"], hashlib.sha256(prefix.encode()).hexdigest())
                with self._lock:
                    if key in self._cache:
                        read = n
                    else:
                        self._cache.add(key)
                        write = n
        return {
            "input_tokens": max(total - write - read, 0),
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
        }

    def message(self, body: Any, *, service_tier: str = "standard", text: str | None = None) -> dict[str, Any]:
        """A Message for a ``messages.create`` body (answering ``text`` if given), or ``ApiError``."""
        validate_params(body)
        text = self._answer(body) if text is None else text
        stop = "end_turn"
        if _tokens(text) > body["max_tokens"]:
            text, stop = text[: body["max_tokens"] * 4], "max_tokens"
        usage = self._usage(body, _tokens(text))
        usage["service_tier"] = service_tier
        digest = hashlib.sha256(
            json.dumps([body["model"], body.get("system"), body["messages"]], sort_keys=True).encode()
        ).hexdigest()
        with self._lock:
            self.paid[digest] += 1
        return {
            "id": self._next_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }

    def count_tokens(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise ApiError(400, "invalid_request_error", "messages: must be a list")
        text = _blocks_text(body.get("system")) + "".join(
            _blocks_text(m.get("content")) for m in body["messages"] if isinstance(m, dict)
        )
        return {"input_tokens": _tokens(text + (json.dumps(body["tools"]) if body.get("tools") else ""))}


def stream_events(message: dict[str, Any], *, words_per_delta: int = 3) -> list[tuple[str, dict[str, Any]]]:
    """A finished Message as the API streams it: ``(event name, data)`` pairs, text in small deltas."""
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": 1}  # the API reports the input side first
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            **message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
    ]
    words = re.findall(r"\S+\s*", message["content"][0]["text"]) or [""]
    for i in range(0, len(words), words_per_delta):
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "text_delta", "text": "".join(words[i : i + words_per_delta])}}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return events
