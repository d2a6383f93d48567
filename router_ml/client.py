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
plus ``.routing``, ``.decision_id`` and ``.cost_usd``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping

from .caching import add_cache_control, min_cache_tokens
from .config import load_settings
from .decision_log import DecisionLog
from .errors import ArtifactNotFoundError, ConfigError, InvalidRequestError, RouterMLError
from .routed import AsyncRoutedStream, RoutedMessage, RoutedStream
from .router import RouteDecision, Router
from .tiers import Tier, TierConfig

__all__ = ["RoutedAnthropic", "AsyncRoutedAnthropic", "AUTO"]

AUTO = "auto"
log = logging.getLogger("router_ml.client")
_FAMILIES = (("haiku", Tier.SIMPLE), ("sonnet", Tier.MEDIUM), ("opus", Tier.COMPLEX))


def _plain(obj: Any) -> Any:
    """SDK objects (a previous reply's content blocks) as plain dicts, for the router's eyes only."""
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    dump = getattr(obj, "model_dump", None)
    return _plain(dump(exclude_none=True)) if callable(dump) else obj


def _same_log(a: Any, b: Any) -> bool:
    return a is b or (a is not None and b is not None and Path(a.path).resolve() == Path(b.path).resolve())


@dataclasses.dataclass
class _Call:
    """One planned call: what to send, what was decided, and where it was logged."""

    params: dict[str, Any]
    decision: RouteDecision
    placed: list[str]
    decision_id: str | None
    conversation_id: str | None
    view: dict[str, Any]


class _Core:
    """Everything but the I/O, shared by the sync and async clients. Safe to share across threads."""

    def __init__(self, router: Any, client: Any, log_: Any, sticky: bool, cache: bool,
                 max_conversations: int, min_tokens: Mapping[str, int] | None, sdk_kwargs: dict[str, Any]):
        if client is not None and sdk_kwargs:
            raise ConfigError("pass either client= or anthropic keyword arguments, not both: "
                              + ", ".join(sorted(sdk_kwargs)))
        if not isinstance(max_conversations, int) or max_conversations < 1:
            raise ConfigError(f"max_conversations must be a positive integer, got {max_conversations!r}")
        self._router, self._client, self._log_arg = router, client, log_
        self._sdk_kwargs, self._owns_client = sdk_kwargs, client is None
        self.sticky, self.cache, self.max_conversations = sticky, cache, max_conversations
        self._min_tokens = min_tokens
        self._log: DecisionLog | None = None
        self._owned_log: DecisionLog | None = None
        self._log_ready = False
        self._tiers: TierConfig | None = None
        self._lock = threading.Lock()
        self._conversations: collections.OrderedDict[str, Tier] = collections.OrderedDict()

    # -- parts built on first use -------------------------------------------------------------
    @property
    def router(self) -> Any:
        """The router; by default the trained model in the configured ``models/``, else the rules."""
        with self._lock:
            if self._router is None:
                try:
                    self._router = Router.load()
                except ArtifactNotFoundError:
                    self._router = Router()
            return self._router

    @property
    def tiers(self) -> TierConfig:
        """Models and prices: the router's, or the configured ones (without loading a model)."""
        if self._router is not None and getattr(self._router, "tiers", None) is not None:
            return self._router.tiers
        if self._tiers is None:
            self._tiers = load_settings().tiers
        return self._tiers

    @property
    def decision_log(self) -> DecisionLog | None:
        """``log=`` as given (a path opens one), else the router's log (the configured ``log_path``),
        else None. ``log=False`` turns logging off."""
        with self._lock:
            if not self._log_ready:
                arg, router = self._log_arg, self._router
                settings = getattr(router, "settings", None)
                if isinstance(arg, DecisionLog):
                    self._log = arg
                elif isinstance(arg, (str, Path)):
                    privacy = getattr(settings, "log_privacy", "redact")
                    self._log = self._owned_log = DecisionLog(arg, privacy=privacy)
                elif arg is None and router is not None and hasattr(router, "log"):
                    self._log = router.log
                elif arg is None:  # no router yet: do not load a model just to find the log
                    self._log = self._owned_log = DecisionLog.from_settings(settings)
                self._log_ready = True
            return self._log

    def _new_client(self) -> Any:
        raise NotImplementedError

    @property
    def client(self) -> Any:
        """The underlying SDK client (created on first use from the keyword arguments)."""
        with self._lock:
            if self._client is None:
                self._client = self._new_client()
            return self._client

    # -- deciding -----------------------------------------------------------------------------
    def _start(self, kwargs: dict[str, Any]) -> tuple[str | None, dict[str, Any], bool]:
        conversation_id = kwargs.pop("conversation_id", None)
        view = {k: _plain(kwargs[k]) for k in ("messages", "system", "tools") if kwargs.get(k) is not None}
        routed = kwargs.get("model") is None or kwargs.get("model") == AUTO
        return conversation_id, view, routed

    def _route_kwargs(self, router: Any, view: dict[str, Any], conversation_id: str | None) -> dict[str, Any]:
        # A Router with a log records the decision itself (and returns its decision_id); that row
        # wants the conversation id.
        if conversation_id is not None and getattr(router, "log", None) is not None:
            return {**view, "conversation_id": conversation_id}
        return view

    def _explicit(self, model: str) -> RouteDecision:
        tier = next((t for t, name in self.tiers.models.items() if name == model), None)
        tier = tier or next((t for fam, t in _FAMILIES if fam in model), None)
        return RouteDecision(tier=tier or Tier.COMPLEX, model=model, confidence=1.0, probabilities={},
                             source="explicit", reason=f"caller asked for {model}"
                             + ("" if tier else "; tier unknown, logged as COMPLEX"))

    def _unroutable(self, err: InvalidRequestError) -> RouteDecision:
        # The API may accept what our normalizer cannot read; overrouting is the safe error.
        return RouteDecision(tier=Tier.COMPLEX, model=self.tiers.model(Tier.COMPLEX), confidence=0.0,
                             probabilities={}, source="safe", reason=f"unroutable ({err}); safe tier")

    def _stick(self, decision: RouteDecision, conversation_id: str | None) -> RouteDecision:
        """Never below the conversation's highest tier so far."""
        if not (self.sticky and conversation_id is not None and decision.source != "explicit"):
            return decision
        with self._lock:
            high = self._conversations.get(conversation_id)
        if high is None or decision.tier >= high:
            return decision
        return dataclasses.replace(
            decision, tier=high, model=self.tiers.model(high),
            reason=f"{decision.reason}; sticky: conversation already at {high.name}",
            extra={**decision.extra, "routed_tier": decision.tier.name, "sticky": True},
        )

    def _remember(self, decision: RouteDecision, conversation_id: str | None) -> None:
        """Raise the conversation's high-water tier (after the call went out; LRU-bounded)."""
        if not (self.sticky and conversation_id is not None) or self.tiers.models.get(decision.tier) != decision.model:
            return  # an explicit model outside our tiers says nothing about them
        with self._lock:
            high = self._conversations.pop(conversation_id, decision.tier)
            self._conversations[conversation_id] = max(high, decision.tier)
            while len(self._conversations) > self.max_conversations:
                self._conversations.popitem(last=False)

    def _finish_plan(self, kwargs: dict[str, Any], routed: RouteDecision, decision_id: str | None,
                     conversation_id: str | None, view: dict[str, Any]) -> _Call:
        if decision_id is not None and getattr(routed, "decision_id", decision_id) != decision_id:
            routed = dataclasses.replace(routed, decision_id=decision_id)
        decision = self._stick(routed, conversation_id)
        params, placed = {**kwargs, "model": decision.model}, []
        if self.cache:
            minimum = min_cache_tokens(decision.model, self._min_tokens)
            params, placed = add_cache_control(params, min_tokens=minimum, conversation=conversation_id is not None)
            if placed:
                decision = dataclasses.replace(decision, extra={**decision.extra, "cache_breakpoints": placed})
        return _Call(params, decision, placed, decision_id, conversation_id, view)

    # -- logging (never raises: the log must not break the app's call) --------------------------
    def _record(self, view: dict[str, Any], decision: RouteDecision, conversation_id: str | None) -> str | None:
        """Log the router's own decision (before stickiness), unless the router already did."""
        dl = self.decision_log
        existing = getattr(decision, "decision_id", None)
        if existing is not None and _same_log(dl, getattr(self._router, "log", None)):
            return existing
        if dl is None:
            return None
        try:
            return dl.record(view, decision, conversation_id=conversation_id)
        except (RouterMLError, sqlite3.Error) as err:
            log.warning("decision log: could not record a decision: %s", err)
            return None

    def _cost(self, model: str, usage: Any) -> float | None:
        price = self.tiers.prices.get(model)
        if price is None or usage is None:
            return None
        return price.cost(*(getattr(usage, n, 0) or 0 for n in (
            "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")))

    def _record_usage(self, decision_id: str | None, model: str, usage: Any) -> float | None:
        cost = self._cost(model, usage)
        dl = self.decision_log
        if decision_id is not None and dl is not None and usage is not None:
            try:
                dl.record_usage(decision_id, model=model, usage=usage, cost_usd=cost)
            except (RouterMLError, sqlite3.Error) as err:
                log.warning("decision log: could not record usage of %s: %s", decision_id, err)
        return cost

    def _close_log(self) -> None:
        if self._owned_log is not None:
            self._owned_log.close()  # only a log we opened


class _Messages:
    def __init__(self, core: "RoutedAnthropic"):
        self._core = core

    def _plan(self, kwargs: dict[str, Any]) -> _Call:
        core = self._core
        conversation_id, view, routed = core._start(kwargs)
        if routed:
            router = core.router
            try:
                decision = router.route(**core._route_kwargs(router, view, conversation_id))
            except InvalidRequestError as err:
                decision = core._unroutable(err)
        else:
            decision = core._explicit(kwargs["model"])
        decision_id = core._record(view, decision, conversation_id)
        return core._finish_plan(kwargs, decision, decision_id, conversation_id, view)

    def create(self, **kwargs: Any) -> Any:
        """``messages.create`` with routing; returns a ``RoutedMessage`` (or a ``RoutedStream``)."""
        core, call = self._core, self._plan(kwargs)
        reply = core.client.messages.create(**call.params)  # the SDK's errors propagate unchanged
        core._remember(call.decision, call.conversation_id)
        model = call.decision.model
        if call.params.get("stream"):
            return RoutedStream(reply, call.decision, call.decision_id,
                                lambda usage: core._record_usage(call.decision_id, model, usage))
        cost = core._record_usage(call.decision_id, model, getattr(reply, "usage", None))
        return RoutedMessage(reply, call.decision, call.decision_id, cost, call.placed)

    def stream(self, **kwargs: Any) -> Any:
        """The SDK's ``messages.stream`` helper after routing. Its usage is not logged: use
        ``create(stream=True)`` for that."""
        core, call = self._core, self._plan(kwargs)
        manager = core.client.messages.stream(**call.params)
        core._remember(call.decision, call.conversation_id)
        return manager

    def __getattr__(self, name: str) -> Any:  # count_tokens, batches, ...: the SDK's own
        return getattr(self._core.client.messages, name)


class _AsyncMessages(_Messages):
    async def _aplan(self, kwargs: dict[str, Any]) -> _Call:
        core = self._core
        conversation_id, view, routed = core._start(kwargs)
        if routed:
            router = await asyncio.to_thread(lambda: core.router)  # may load a model the first time
            rkw = core._route_kwargs(router, view, conversation_id)
            aroute = getattr(router, "aroute", None)
            try:
                decision = await aroute(**rkw) if aroute else await asyncio.to_thread(lambda: router.route(**rkw))
            except InvalidRequestError as err:
                decision = core._unroutable(err)
        else:
            decision = core._explicit(kwargs["model"])
        decision_id = await asyncio.to_thread(core._record, view, decision, conversation_id)
        return core._finish_plan(kwargs, decision, decision_id, conversation_id, view)

    async def create(self, **kwargs: Any) -> Any:  # type: ignore[override]
        """Async ``messages.create`` with routing (the router's ``aroute`` when it has one)."""
        core, call = self._core, await self._aplan(kwargs)
        reply = await core.client.messages.create(**call.params)  # the SDK's errors propagate unchanged
        core._remember(call.decision, call.conversation_id)
        model = call.decision.model
        if call.params.get("stream"):
            async def on_usage(usage: Any) -> None:
                await asyncio.to_thread(core._record_usage, call.decision_id, model, usage)

            return AsyncRoutedStream(reply, call.decision, call.decision_id, on_usage)
        cost = await asyncio.to_thread(core._record_usage, call.decision_id, model, getattr(reply, "usage", None))
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
        core._remember(call.decision, call.conversation_id)
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
        self._close_log()

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
        self._close_log()

    async def __aenter__(self) -> "AsyncRoutedAnthropic":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
