"""``RoutedAnthropic``: the ``anthropic`` client, with routing, prompt caching and a decision log.

Apps change one line::

    client = anthropic.Anthropic()          # before
    client = RoutedAnthropic()              # after; the same keyword arguments
    reply = client.messages.create(max_tokens=512, messages=[...])   # no model, or model="auto"
    reply.content[0].text, reply.routing.tier, reply.cost_usd

- No ``model`` (or ``"auto"``): the router picks one. An explicit model always wins (still logged,
  source "explicit").
- ``cache_control`` breakpoints are added where they pay (``router_ml.caching``); the caller's objects
  are never changed.
- ``conversation_id="..."`` (consumed here, never sent): within a conversation the tier never goes
  down (a cheaper model would start a cold prompt cache and lose quality mid-way) but still goes up.
- ``stream=True`` is passed through (routing happens first); usage is logged when the stream ends.
- The SDK's errors propagate unchanged, and routing adds no failure mode: a request our normalizer
  cannot read goes to the top tier and the API gives its own verdict; a log that fails to write is
  reported through ``logging``, never raised.

Replies are ``RoutedMessage`` / ``RoutedStream`` (``router_ml.routed``): the SDK object, untouched,
plus ``.routing``, ``.decision_id`` and ``.cost_usd``. Choosing the model and logging it is
``router_ml.routing_core``, shared with the HTTP proxy (``router_ml.proxy``).
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Mapping

from .caching import add_cache_control, min_cache_tokens
from .errors import ConfigError, InvalidRequestError
from .routed import AsyncRoutedStream, RoutedMessage, RoutedStream
from .router import RouteDecision
from .routing_core import AUTO, RoutingCore, request_view

__all__ = ["RoutedAnthropic", "AsyncRoutedAnthropic", "AUTO"]


@dataclasses.dataclass
class _Call:
    """One planned call: what to send, what was decided, and where it was logged."""

    params: dict[str, Any]
    decision: RouteDecision
    placed: list[str]
    decision_id: str | None
    conversation_id: str | None
    view: dict[str, Any]


class _Core(RoutingCore):
    """``RoutingCore`` plus the SDK client and prompt caching, shared by the sync and async clients."""

    def __init__(self, router: Any, client: Any, log_: Any, sticky: bool, cache: bool,
                 max_conversations: int, min_tokens: Mapping[str, int] | None, sdk_kwargs: dict[str, Any]):
        if client is not None and sdk_kwargs:
            raise ConfigError("pass either client= or anthropic keyword arguments, not both: "
                              + ", ".join(sorted(sdk_kwargs)))
        super().__init__(router, log_, sticky, max_conversations)
        self._client, self._sdk_kwargs, self._owns_client = client, sdk_kwargs, client is None
        self.cache, self._min_tokens = cache, min_tokens

    def _new_client(self) -> Any:
        raise NotImplementedError

    @property
    def client(self) -> Any:
        """The underlying SDK client (created on first use from the keyword arguments)."""
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _start(self, kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any], bool]:
        conversation_id = kwargs.pop("conversation_id", None)
        routed = kwargs.get("model") is None or kwargs.get("model") == AUTO
        return conversation_id, request_view(kwargs), routed

    def _finish_plan(self, kwargs: dict[str, Any], routed: RouteDecision, decision_id: str | None,
                     conversation_id: str | None, view: dict[str, Any]) -> _Call:
        if decision_id is not None and getattr(routed, "decision_id", decision_id) != decision_id:
            routed = dataclasses.replace(routed, decision_id=decision_id)
        decision = self.stick(routed, conversation_id)
        params, placed = {**kwargs, "model": decision.model}, []
        if self.cache:
            minimum = min_cache_tokens(decision.model, self._min_tokens)
            params, placed = add_cache_control(params, min_tokens=minimum, conversation=conversation_id is not None)
            if placed:
                decision = dataclasses.replace(decision, extra={**decision.extra, "cache_breakpoints": placed})
        return _Call(params, decision, placed, decision_id, conversation_id, view)


class _Messages:
    def __init__(self, core: "RoutedAnthropic"):
        self._core = core

    def _plan(self, kwargs: dict[str, Any]) -> _Call:
        core = self._core
        conversation_id, view, routed = core._start(kwargs)
        if routed:
            router = core.router
            try:
                decision = router.route(**core.route_kwargs(router, view, conversation_id))
            except InvalidRequestError as err:
                decision = core.unroutable(err)
        else:
            decision = core.explicit(kwargs["model"])
        decision_id = core.record(view, decision, conversation_id)
        return core._finish_plan(kwargs, decision, decision_id, conversation_id, view)

    def create(self, **kwargs: Any) -> Any:
        """``messages.create`` with routing; returns a ``RoutedMessage`` (or a ``RoutedStream``)."""
        core, call = self._core, self._plan(kwargs)
        reply = core.client.messages.create(**call.params)  # the SDK's errors propagate unchanged
        core.remember(call.decision, call.conversation_id)
        model = call.decision.model
        if call.params.get("stream"):
            return RoutedStream(reply, call.decision, call.decision_id,
                                lambda usage: core.record_usage(call.decision_id, model, usage))
        cost = core.record_usage(call.decision_id, model, getattr(reply, "usage", None))
        return RoutedMessage(reply, call.decision, call.decision_id, cost, call.placed)

    def stream(self, **kwargs: Any) -> Any:
        """The SDK's ``messages.stream`` helper after routing. Its usage is not logged: use
        ``create(stream=True)`` for that."""
        core, call = self._core, self._plan(kwargs)
        manager = core.client.messages.stream(**call.params)
        core.remember(call.decision, call.conversation_id)
        return manager

    def __getattr__(self, name: str) -> Any:  # count_tokens, batches, ...: the SDK's own
        return getattr(self._core.client.messages, name)


class _AsyncMessages(_Messages):
    async def _aplan(self, kwargs: dict[str, Any]) -> _Call:
        core = self._core
        conversation_id, view, routed = core._start(kwargs)
        if routed:
            router = await asyncio.to_thread(lambda: core.router)  # may load a model the first time
            rkw = core.route_kwargs(router, view, conversation_id)
            aroute = getattr(router, "aroute", None)
            try:
                decision = await aroute(**rkw) if aroute else await asyncio.to_thread(lambda: router.route(**rkw))
            except InvalidRequestError as err:
                decision = core.unroutable(err)
        else:
            decision = core.explicit(kwargs["model"])
        decision_id = await asyncio.to_thread(core.record, view, decision, conversation_id)
        return core._finish_plan(kwargs, decision, decision_id, conversation_id, view)

    async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
        """Async ``messages.create`` with routing (the router's ``aroute`` when it has one)."""
        core, call = self._core, await self._aplan(kwargs)
        reply = await core.client.messages.create(**call.params)  # the SDK's errors propagate unchanged
        core.remember(call.decision, call.conversation_id)
        model = call.decision.model
        if call.params.get("stream"):
            async def on_usage(usage: Any) -> None:
                await asyncio.to_thread(core.record_usage, call.decision_id, model, usage)

            return AsyncRoutedStream(reply, call.decision, call.decision_id, on_usage)
        cost = await asyncio.to_thread(core.record_usage, call.decision_id, model, getattr(reply, "usage", None))
        return RoutedMessage(reply, call.decision, call.decision_id, cost, call.placed)

    def stream(self, **kwargs: Any) -> Any:
        """The SDK's async ``messages.stream`` helper; routing happens on ``async with`` entry."""
        return _AsyncStreamManager(self, kwargs)


class _AsyncStreamManager:
    """``async with client.messages.stream(...)``, as with the SDK: route, then enter its manager."""

    def __init__(self, messages: _AsyncMessages, kwargs: dict[str, Any]):
        self._messages, self._kwargs, self._manager = messages, kwargs, None

    async def __aenter__(self) -> Any:
        core, call = self._messages._core, await self._messages._aplan(dict(self._kwargs))
        self._manager = core.client.messages.stream(**call.params)
        stream = await self._manager.__aenter__()
        core.remember(call.decision, call.conversation_id)
        return stream

    async def __aexit__(self, *exc: Any) -> Any:
        return await self._manager.__aexit__(*exc)


_PARAMS = """
    Parameters: ``router`` (default: the trained model, else the rule router, built on first use);
    ``client`` an existing SDK client, else one is made from ``**anthropic_kwargs`` (``api_key``,
    ``base_url``, ``timeout``, ``max_retries``...); ``log`` a ``DecisionLog``, a path, None (the
    router's log, i.e. the configured ``log_path``) or False; ``sticky`` honour ``conversation_id``
    (default True); ``cache`` add ``cache_control`` where it pays (default True);
    ``max_conversations`` remembered for stickiness (LRU, default 10,000); ``min_cache_tokens``
    overrides ``router_ml.caching.MIN_CACHE_TOKENS``.
"""


class RoutedAnthropic(_Core):
    __doc__ = "A drop-in for ``anthropic.Anthropic`` whose ``messages.create`` routes when no model is given.\n" + _PARAMS

    def __init__(self, router: Any = None, *, client: Any = None, log: Any = None, sticky: bool = True,
                 cache: bool = True, max_conversations: int = 10_000,
                 min_cache_tokens: Mapping[str, int] | None = None, **anthropic_kwargs: Any):
        super().__init__(router, client, log, sticky, cache, max_conversations, min_cache_tokens, anthropic_kwargs)
        self.messages = _Messages(self)

    def _new_client(self) -> Any:
        import anthropic  # about 3 s to import: on first use, not with this module

        return anthropic.Anthropic(**self._sdk_kwargs)

    def close(self) -> None:
        """Close the SDK client and the log, if this object created them."""
        if self._owns_client and self._client is not None:
            self._client.close()
        self.close_log()

    def __enter__(self) -> "RoutedAnthropic":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRoutedAnthropic(_Core):
    __doc__ = ("``RoutedAnthropic`` for ``anthropic.AsyncAnthropic``: ``await client.messages.create(...)``;"
               " log writes run in a worker thread so the event loop never waits on SQLite.\n" + _PARAMS)

    def __init__(self, router: Any = None, *, client: Any = None, log: Any = None, sticky: bool = True,
                 cache: bool = True, max_conversations: int = 10_000,
                 min_cache_tokens: Mapping[str, int] | None = None, **anthropic_kwargs: Any):
        super().__init__(router, client, log, sticky, cache, max_conversations, min_cache_tokens, anthropic_kwargs)
        self.messages = _AsyncMessages(self)  # type: ignore[arg-type]

    def _new_client(self) -> Any:
        import anthropic

        return anthropic.AsyncAnthropic(**self._sdk_kwargs)

    async def close(self) -> None:
        """Close the SDK client and the log, if this object created them."""
        if self._owns_client and self._client is not None:
            await self._client.close()
        self.close_log()

    async def __aenter__(self) -> "AsyncRoutedAnthropic":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
