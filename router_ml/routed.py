"""What ``RoutedAnthropic`` returns: the SDK's objects, untouched, with the routing decision beside them.

The SDK's ``Message`` is a pydantic model; setting an attribute on it would leak into ``model_dump``
and JSON, so we wrap instead: attribute access falls through to the wrapped object.
"""

from __future__ import annotations

import types
from typing import Any, Callable, Iterator

from .router import RouteDecision

__all__ = ["RoutedMessage", "RoutedStream", "AsyncRoutedStream", "StreamUsage"]

_USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class RoutedMessage:
    """An SDK ``Message`` with its routing.

    ``reply.content``, ``reply.usage``... are the Message's; ``reply.message`` is the Message itself
    (for ``isinstance``, ``model_dump``, ``to_json``); ``reply.routing`` the ``RouteDecision`` that was
    served (after stickiness); ``reply.decision_id`` its row in the decision log (None without a log);
    ``reply.cost_usd`` the response's dollars (None for an unpriced model; routing's own cost is
    ``reply.routing.cost_usd``); ``reply.cache_breakpoints`` where ``cache_control`` was added.
    """

    __slots__ = ("message", "routing", "decision_id", "cost_usd", "cache_breakpoints")

    def __init__(self, message: Any, routing: RouteDecision, decision_id: str | None, cost_usd: float | None,
                 cache_breakpoints: list[str]):
        self.message = message
        self.routing = routing
        self.decision_id = decision_id
        self.cost_usd = cost_usd
        self.cache_breakpoints = cache_breakpoints

    def __getattr__(self, name: str) -> Any:
        if name in RoutedMessage.__slots__ or name.startswith("__"):  # not set yet (copy, pickle)
            raise AttributeError(name)
        return getattr(self.message, name)

    def __repr__(self) -> str:
        return f"RoutedMessage(tier={self.routing.tier.name}, model={self.routing.model!r}, message={self.message!r})"


class StreamUsage:
    """Usage from stream events: ``message_start`` carries the input side, ``message_delta`` the output."""

    def __init__(self) -> None:
        self.usage: dict[str, int] = {}

    def see(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            usage = getattr(getattr(event, "message", None), "usage", None)
        elif kind == "message_delta":
            usage = getattr(event, "usage", None)
        else:
            return
        for name in _USAGE_FIELDS:
            value = getattr(usage, name, None)
            if value is not None:
                self.usage[name] = int(value)

    def result(self) -> Any:
        return types.SimpleNamespace(**{n: self.usage.get(n, 0) for n in _USAGE_FIELDS}) if self.usage else None


class RoutedStream:
    """The SDK's ``Stream``, events unchanged, with ``.routing`` and ``.decision_id``.

    Usage is reported to ``on_usage`` once, when the stream ends or is closed (what was seen so far).
    """

    def __init__(self, stream: Any, routing: RouteDecision, decision_id: str | None,
                 on_usage: Callable[[Any], Any]):
        self.stream, self.routing, self.decision_id = stream, routing, decision_id
        self._on_usage, self._usage, self._done = on_usage, StreamUsage(), False

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._on_usage(self._usage.result())

    def __iter__(self) -> Iterator[Any]:
        for event in self.stream:
            self._usage.see(event)
            yield event
        self._finish()

    def close(self) -> None:
        self.stream.close()
        self._finish()

    def __getattr__(self, name: str) -> Any:
        if name in ("stream", "_done") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.stream, name)

    def __enter__(self) -> "RoutedStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRoutedStream(RoutedStream):
    """The SDK's ``AsyncStream``, the same way (``on_usage`` must be a coroutine function)."""

    async def _afinish(self) -> None:
        if not self._done:
            self._done = True
            await self._on_usage(self._usage.result())

    async def __aiter__(self) -> Any:  # type: ignore[override]
        async for event in self.stream:
            self._usage.see(event)
            yield event
        await self._afinish()

    async def close(self) -> None:  # type: ignore[override]
        await self.stream.close()
        await self._afinish()

    async def __aenter__(self) -> "AsyncRoutedStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
