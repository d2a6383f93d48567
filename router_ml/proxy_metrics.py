"""What the proxy counts, in the Prometheus text format, and the usage read from a relayed stream.

Each proxy has its own ``CollectorRegistry``, so two apps in one process (tests) never share counts.
"""

from __future__ import annotations

import json
import types
from typing import Any, Iterator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from .routing_core import USAGE_FIELDS

__all__ = ["ProxyMetrics", "SSEUsageScanner", "CONTENT_TYPE_LATEST"]

# Routing is a rule lookup (microseconds), an embedding (milliseconds) or an LLM call (up to seconds).
_ROUTING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_UPSTREAM_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_TOKEN_KINDS = {"input_tokens": "input", "output_tokens": "output",
                "cache_creation_input_tokens": "cache_write", "cache_read_input_tokens": "cache_read"}


class ProxyMetrics:
    """Counters and histograms of one proxy; ``render()`` gives the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("router_ml_proxy_requests", "Messages requests forwarded, by tier and routing source "
                                "(classifier, llm, safe, rules, or explicit for a named model).",
                                ["tier", "source"], registry=r)
        self.routing_seconds = Histogram("router_ml_proxy_routing_seconds", "Time spent choosing the model.",
                                         buckets=_ROUTING_BUCKETS, registry=r)
        self.upstream_seconds = Histogram("router_ml_proxy_upstream_seconds",
                                          "Time until the upstream's response headers.",
                                          buckets=_UPSTREAM_BUCKETS, registry=r)
        self.upstream_errors = Counter("router_ml_proxy_upstream_errors", "Upstream failures, by HTTP status "
                                       "(or 'timeout', 'connection').", ["status"], registry=r)
        self.rejected = Counter("router_ml_proxy_rejected", "Requests the proxy answered itself with an error, "
                                "by reason.", ["reason"], registry=r)
        self.dollars = Counter("router_ml_proxy_cost_dollars", "Dollars of the upstream's reported usage at the "
                               "configured prices, by model.", ["model"], registry=r)
        self.tokens = Counter("router_ml_proxy_tokens", "Tokens of the upstream's reported usage, by model and "
                              "kind (input, output, cache_write, cache_read).", ["model", "kind"], registry=r)

    def usage(self, model: str, usage: Any, cost: float | None) -> None:
        """Count a response's tokens and dollars (``usage``: an object or mapping with the API's names)."""
        for name in USAGE_FIELDS:
            value = usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)
            if value:
                self.tokens.labels(model, _TOKEN_KINDS[name]).inc(int(value))
        if cost is not None:
            self.dollars.labels(model).inc(cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class SSEUsageScanner:
    """Finds the events that carry usage (``message_start``, ``message_delta``) in a relayed byte stream.

    Only those two events are decoded; every other event is dropped as soon as its end is seen, so
    the buffer holds at most one unfinished event. Decoded events are ``SimpleNamespace`` trees, the
    shape ``router_ml.routed.StreamUsage`` reads from the SDK's events.
    """

    _WANTED = (b"event: message_start", b"event: message_delta")
    _MAX_EVENT = 1 << 20  # an "event" this long is not SSE: stop looking rather than grow

    def __init__(self) -> None:
        self._buffer = b""
        self._gave_up = False

    def feed(self, chunk: bytes) -> Iterator[Any]:
        if self._gave_up:
            return
        *done, self._buffer = (self._buffer + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
        if len(self._buffer) > self._MAX_EVENT:
            self._gave_up, self._buffer = True, b""
        for block in done:
            if not block.startswith(self._WANTED):
                continue
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    try:
                        yield json.loads(line[5:], object_hook=lambda d: types.SimpleNamespace(**d))
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        pass  # not ours to judge: the client gets the bytes unchanged either way
