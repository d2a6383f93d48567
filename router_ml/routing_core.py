"""Choosing the model for one call and logging it: what ``RoutedAnthropic`` and the proxy share.

No I/O to the API here. ``RoutingCore`` holds the router, the tiers, the decision log and the
conversations' high-water tiers; the Python client (``router_ml.client``) and the HTTP proxy
(``router_ml.proxy``) each add their own way of calling the API around it.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any, Mapping

from .config import load_settings
from .decision_log import DecisionLog
from .errors import ArtifactNotFoundError, ConfigError, InvalidRequestError, RouterMLError
from .router import RouteDecision, Router
from .tiers import Tier, TierConfig

__all__ = ["RoutingCore", "AUTO", "USAGE_FIELDS", "plain", "request_view", "tier_of_model", "parse_auto", "capped"]

AUTO = "auto"
USAGE_FIELDS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
log = logging.getLogger("router_ml.client")  # the client's logger: its users already watch this name
_FAMILIES = (("haiku", Tier.SIMPLE), ("sonnet", Tier.MEDIUM), ("opus", Tier.COMPLEX))


def plain(obj: Any) -> Any:
    """SDK objects (a previous reply's content blocks) as plain dicts, for the router's eyes only."""
    if isinstance(obj, Mapping):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    dump = getattr(obj, "model_dump", None)
    return plain(dump(exclude_none=True)) if callable(dump) else obj


def request_view(params: Mapping[str, Any]) -> dict[str, Any]:
    """What the router reads of ``messages.create`` parameters: messages, system and tools."""
    return {k: plain(params[k]) for k in ("messages", "system", "tools") if params.get(k) is not None}


def tier_of_model(model: str, tiers: TierConfig) -> Tier | None:
    """The tier a model name belongs to: one of the tiers' models, else its family (haiku, sonnet,
    opus) in the name, else None."""
    tier = next((t for t, name in tiers.models.items() if name == model), None)
    return tier if tier is not None else next((t for fam, t in _FAMILIES if fam in model.lower()), None)


def parse_auto(model: Any, tiers: TierConfig) -> Tier | None:
    """The tier cap of ``"auto"`` (``COMPLEX``: no cap) or ``"auto:<cap>"``; None for any other model.

    The cap is a tier name (``auto:MEDIUM``), a family (``auto:sonnet``) or one of the tiers' models.
    Raises ``ValueError`` for an unknown cap.

    >>> parse_auto("auto:sonnet", TierConfig())
    <Tier.MEDIUM: 1>
    """
    if not isinstance(model, str) or not (model == AUTO or model.startswith(AUTO + ":")):
        return None
    cap = model[len(AUTO) + 1:].strip()
    if not cap:
        return Tier.COMPLEX
    if cap.upper() in Tier.__members__:
        return Tier[cap.upper()]
    tier = tier_of_model(cap, tiers)
    if tier is None:
        raise ValueError(f"model {model!r}: unknown tier cap {cap!r}; use auto, auto:haiku, auto:sonnet, "
                         "auto:opus or auto:SIMPLE / MEDIUM / COMPLEX")
    return tier


def capped(decision: RouteDecision, cap: Tier, tiers: TierConfig) -> RouteDecision:
    """``decision``, lowered to ``cap`` when above it (the router's own tier kept in ``extra``)."""
    if decision.tier <= cap:
        return decision
    return dataclasses.replace(decision, tier=cap, model=tiers.model(cap),
                               reason=f"{decision.reason}; capped at {cap.name}",
                               extra={**decision.extra, "capped_from": decision.tier.name})


def _usage_value(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)
    return int(value or 0)


def _same_log(a: Any, b: Any) -> bool:
    return a is b or (a is not None and b is not None and Path(a.path).resolve() == Path(b.path).resolve())


class RoutingCore:
    """Router, tiers, decision log and stickiness, built on first use. Safe to share across threads.

    ``router`` default the trained model in the configured ``models/`` (the rule router when there
    is none); ``log`` a ``DecisionLog``, a path, None (the router's log) or False; ``sticky`` honour
    conversation ids; ``max_conversations`` remembered for stickiness (LRU).
    """

    def __init__(self, router: Any = None, log_: Any = None, sticky: bool = True, max_conversations: int = 10_000):
        if not isinstance(max_conversations, int) or max_conversations < 1:
            raise ConfigError(f"max_conversations must be a positive integer, got {max_conversations!r}")
        self._router, self._log_arg = router, log_
        self.sticky, self.max_conversations = sticky, max_conversations
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

    # -- deciding -----------------------------------------------------------------------------
    def route_kwargs(self, router: Any, view: dict[str, Any], conversation_id: str | None) -> dict[str, Any]:
        """Keyword arguments for ``router.route``: a Router with a log records the decision itself
        (and returns its decision_id); that row wants the conversation id."""
        if conversation_id is not None and getattr(router, "log", None) is not None:
            return {**view, "conversation_id": conversation_id}
        return view

    def explicit(self, model: str) -> RouteDecision:
        """The decision logged for a model the caller named (its tier inferred from the name)."""
        tier = tier_of_model(model, self.tiers)
        return RouteDecision(tier=tier if tier is not None else Tier.COMPLEX, model=model, confidence=1.0,
                             probabilities={}, source="explicit", reason=f"caller asked for {model}"
                             + ("" if tier is not None else "; tier unknown, logged as COMPLEX"))

    def unroutable(self, err: InvalidRequestError) -> RouteDecision:
        """The top tier for a request the normalizer cannot read."""
        # The API may accept what our normalizer cannot read; overrouting is the safe error.
        return RouteDecision(tier=Tier.COMPLEX, model=self.tiers.model(Tier.COMPLEX), confidence=0.0,
                             probabilities={}, source="safe", reason=f"unroutable ({err}); safe tier")

    def stick(self, decision: RouteDecision, conversation_id: str | None) -> RouteDecision:
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

    def remember(self, decision: RouteDecision, conversation_id: str | None) -> None:
        """Raise the conversation's high-water tier (after the call went out; LRU-bounded)."""
        if not (self.sticky and conversation_id is not None) or self.tiers.models.get(decision.tier) != decision.model:
            return  # an explicit model outside our tiers says nothing about them
        with self._lock:
            high = self._conversations.pop(conversation_id, decision.tier)
            self._conversations[conversation_id] = max(high, decision.tier)
            while len(self._conversations) > self.max_conversations:
                self._conversations.popitem(last=False)

    # -- logging (never raises: the log must not break the app's call) --------------------------
    def record(self, view: dict[str, Any], decision: RouteDecision, conversation_id: str | None) -> str | None:
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

    def cost(self, model: str, usage: Any) -> float | None:
        """The response's dollars at the configured prices (None for an unpriced model or no usage).
        ``usage`` is the SDK's ``Usage`` or a mapping with the same names."""
        price = self.tiers.prices.get(model)
        if price is None or usage is None:
            return None
        return price.cost(*(_usage_value(usage, n) for n in USAGE_FIELDS))

    def record_usage(self, decision_id: str | None, model: str, usage: Any) -> float | None:
        """Attach usage and cost to a logged decision; return the cost."""
        cost = self.cost(model, usage)
        dl = self.decision_log
        if decision_id is not None and dl is not None and usage is not None:
            try:
                dl.record_usage(decision_id, model=model, usage=usage, cost_usd=cost)
            except (RouterMLError, sqlite3.Error) as err:
                log.warning("decision log: could not record usage of %s: %s", decision_id, err)
        return cost

    def close_log(self) -> None:
        if self._owned_log is not None:
            self._owned_log.close()  # only a log we opened
