"""``Router``: what apps hold. The chain behind ``route()``:

1. the classifier, when it is confident (calibrated top probability >= ``confidence_threshold``),
   answers with the cheapest tier within the ``underroute_budget``;
2. otherwise the LLM router (Claude Haiku) is asked;
3. when that fails (timeout, API error, unparsable answer) or its circuit is open, the classifier's
   risk-averse choice is returned (``source="safe"``): one tier above its best guess.

With no trained model at all, the keyword rule router answers (``source="rules"``). ``route()``
raises only ``ValueError`` for malformed input: never for a network fault.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .breaker import CircuitBreaker
from .config import Settings, load_settings
from .decision import budget_tiers, safe_tier, safe_tiers
from .embedder import Embedder
from .errors import DecisionLogError, LLMAnswerError, LLMRouterError, LLMUnavailableError
from .normalize import NormalizedRequest, normalize
from .predictor import Predictor
from .registry import has_model
from .rules import RuleRouter
from .tiers import Tier, TierConfig

__all__ = ["Router", "RouteDecision"]

_API_ENV = ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN")
_TIERS = tuple(Tier)
_TIER_NAMES = tuple(t.name for t in Tier)


@dataclass(frozen=True)
class RouteDecision:
    """The answer to "which model should serve this request?"."""

    tier: Tier
    model: str
    confidence: float  # calibrated top probability of the classifier (1.0 for rules)
    probabilities: dict[str, float]
    source: str  # "classifier", "llm", "safe" or "rules"
    reason: str = ""
    cost_usd: float = 0.0  # what routing itself cost (the LLM fallback's call)
    latency_ms: float = 0.0
    decision_id: str | None = None  # the decision log's id, when a log is attached
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tier"] = self.tier.name
        return d


def _default_llm(settings: Settings):
    """An LLM router when the environment configures the API, else None (low confidence -> safe)."""
    if not any(os.environ.get(v) for v in _API_ENV):
        return None
    from .llm_router import LLMRouter

    return LLMRouter(settings=settings)


class Router:
    """Route requests to the cheapest adequate tier. Safe to share across threads.

    Parameters
    ----------
    predictor : Predictor, optional
        The trained classifier; without one the rule router answers.
    llm : LLMRouter, "auto" or None, default "auto"
        The fallback for unconfident requests. "auto" builds one when ``ANTHROPIC_API_KEY`` or
        ``ANTHROPIC_BASE_URL`` is set; None disables it (unconfident requests get the safe tier).
    underroute_budget, confidence_threshold : float, optional
        Override the values fitted into the model card (``router-ml calibrate``).
    breaker : CircuitBreaker, optional
        Default: opens after 3 consecutive failures for 30 s.
    log : DecisionLog, optional
        Where decisions are recorded; default the configured ``log_path``, if any.

    >>> router = Router.load()
    >>> router.route("Write a Python function that parses ISO 8601 dates").tier
    <Tier.MEDIUM: 1>
    """

    def __init__(
        self,
        predictor: Predictor | None = None,
        *,
        tiers: TierConfig | None = None,
        settings: Settings | None = None,
        llm: Any = "auto",
        underroute_budget: float | None = None,
        confidence_threshold: float | None = None,
        breaker: CircuitBreaker | None = None,
        log: Any = None,
        max_fallback_workers: int = 8,
    ):
        self.settings = settings or load_settings()
        self.tiers = tiers or self.settings.tiers
        self._models = tuple(self.tiers.model(t) for t in Tier)  # looked up once: route_batch's hot loop
        self.predictor = predictor
        self.rules = RuleRouter()
        serving = (getattr(predictor, "card_", None) or {}).get("serving", {})
        self.underroute_budget = _unit(
            "underroute_budget", underroute_budget if underroute_budget is not None else serving.get("underroute_budget")
        )
        self.confidence_threshold = _unit(
            "confidence_threshold",
            confidence_threshold if confidence_threshold is not None else serving.get("confidence_threshold", 0.0),
        )
        self.llm = _default_llm(self.settings) if llm == "auto" else llm
        self.breaker = breaker or CircuitBreaker()
        self.log = log if log is not None else _default_log(self.settings)
        self.max_fallback_workers = max_fallback_workers

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        embedder: Embedder | None = None,
        settings: Settings | None = None,
        **kwargs: Any,
    ) -> "Router":
        """Load the model in ``path`` (default: the configured ``models/``).

        An explicit path must hold a valid artifact. When the default directory has no model at
        all, the rule router serves, with a warning; a damaged artifact is always an error.
        """
        settings = settings or load_settings()
        if path is None and not has_model(settings.model_dir):  # flat or versioned (router_ml.registry)
            warnings.warn(
                f"no trained model in {settings.model_dir}; routing with the keyword rules (run `make train`)",
                stacklevel=2,
            )
            return cls(None, settings=settings, **kwargs)
        predictor = Predictor.load(path or settings.model_dir, embedder=embedder)
        return cls(predictor, settings=settings, **kwargs)

    # -- building decisions ----------------------------------------------------------------------
    def _decision(self, tier: Tier, probs: Any, source: str, reason: str, started: float, cost: float = 0.0, **extra: Any) -> RouteDecision:
        row = probs.tolist() if isinstance(probs, np.ndarray) else [float(p) for p in probs]
        return RouteDecision(
            tier=tier,
            model=self._models[tier],
            confidence=max(row),
            probabilities=dict(zip(_TIER_NAMES, row)),
            source=source,
            reason=reason,
            cost_usd=cost,
            latency_ms=(time.perf_counter() - started) * 1e3,
            extra=extra,
        )

    def _rules(self, req: NormalizedRequest, started: float) -> RouteDecision:
        tier, why = self.rules.decide(req)
        onehot = [float(t == tier) for t in Tier]
        return self._decision(tier, onehot, "rules", f"rule router: {why}", started)

    def _without_llm(self, probs: np.ndarray, started: float) -> list[RouteDecision | None]:
        """For each row of ``probs``, the decision when no LLM call is needed (or possible); None
        means "ask the LLM". Vectorized: ``route_batch`` spends its time here for the static model."""
        conf = probs.max(axis=1)
        if self.underroute_budget is None:
            tiers = probs.argmax(axis=1)
        else:
            tiers = budget_tiers(probs, self.underroute_budget)
        safe = safe_tiers(probs, self._safe_budget())
        out: list[RouteDecision | None] = []
        for row, c, t, s in zip(probs, conf.tolist(), tiers.tolist(), safe.tolist()):
            if c >= self.confidence_threshold:
                out.append(self._decision(_TIERS[t], row, "classifier", f"classifier: p={c:.2f}", started))
                continue
            why = f"low confidence ({c:.2f} < {self.confidence_threshold:.2f})"
            if self.llm is None:
                out.append(self._safe(row, started, f"{why}; no LLM router configured", tier=_TIERS[s]))
            elif not self.breaker.allow():
                out.append(self._safe(row, started, f"{why}; LLM router circuit open", tier=_TIERS[s]))
            else:
                out.append(None)
        return out

    def _safe_budget(self) -> float:
        return self.underroute_budget if self.underroute_budget is not None else 0.0

    def _safe(self, probs: np.ndarray, started: float, why: str, cost: float = 0.0, tier: Tier | None = None) -> RouteDecision:
        """The risk-averse decision; ``tier`` when the batch already computed it (``safe_tiers``)."""
        if tier is None:
            tier = safe_tier(probs, self._safe_budget())
        return self._decision(tier, probs, "safe", f"safe tier: {why}", started, cost)

    def _after_llm(self, probs: np.ndarray, started: float, verdict: Any = None, error: LLMRouterError | None = None) -> RouteDecision:
        # The LLM router fails toward the risk-averse tier, never toward a guess.
        if error is not None:
            if isinstance(error, LLMAnswerError):
                self.breaker.record_success()  # the API works; the answer did not parse
            else:
                self.breaker.record_failure(getattr(error, "retry_after", None) if isinstance(error, LLMUnavailableError) else None)
            return self._safe(probs, started, f"LLM router failed: {error}", cost=error.cost_usd)
        self.breaker.record_success()
        return self._decision(
            verdict.tier, probs, "llm", f"LLM router: {verdict.reason}", started, verdict.cost_usd, llm_model=verdict.model
        )

    def _ask_llm(self, req: NormalizedRequest, probs: np.ndarray, started: float) -> RouteDecision:
        try:
            verdict = self.llm.classify(req)
        except LLMRouterError as err:
            return self._after_llm(probs, started, error=err)
        return self._after_llm(probs, started, verdict)

    def _record(
        self, raw: Any, req: NormalizedRequest, decision: RouteDecision, conversation_id: str | None = None
    ) -> RouteDecision:
        if self.log is None:
            return decision
        try:
            decision_id = self.log.record(raw, decision, conversation_id=conversation_id, normalized=req)
        except (DecisionLogError, sqlite3.Error) as err:  # a full disk must not break routing; say so, go on
            warnings.warn(f"decision log write failed: {err}", RuntimeWarning, stacklevel=3)
            return decision
        return replace(decision, decision_id=decision_id)

    def _probs(self, reqs: Sequence[NormalizedRequest]) -> np.ndarray:
        return self.predictor.predict_proba(list(reqs))

    # -- public ----------------------------------------------------------------------------------
    def route(self, request: Any = None, /, *, conversation_id: str | None = None, **kwargs: Any) -> RouteDecision:
        """Route one request: a string, a messages list, or ``messages.create`` keyword arguments.

        Raises ``ValueError`` (``InvalidRequestError``) only for malformed input.
        """
        started = time.perf_counter()
        req = normalize(request, **kwargs)
        raw = request if request is not None else kwargs
        if self.predictor is None:
            return self._record(raw, req, self._rules(req, started), conversation_id)
        probs = self._probs([req])
        decision = self._without_llm(probs, started)[0] or self._ask_llm(req, probs[0], started)
        return self._record(raw, req, decision, conversation_id)

    async def aroute(self, request: Any = None, /, *, conversation_id: str | None = None, **kwargs: Any) -> RouteDecision:
        """``route`` for asyncio apps: the embedding runs in a worker thread, the LLM call is awaited."""
        started = time.perf_counter()
        req = normalize(request, **kwargs)
        if self.predictor is None:
            decision = self._rules(req, started)
        else:
            probs = await asyncio.to_thread(self._probs, [req])
            decision = self._without_llm(probs, started)[0]
            probs = probs[0]
            if decision is None:
                try:
                    verdict = await self.llm.aclassify(req)
                except LLMRouterError as err:
                    decision = self._after_llm(probs, started, error=err)
                else:
                    decision = self._after_llm(probs, started, verdict)
        if self.log is None:
            return decision
        raw = request if request is not None else kwargs
        return await asyncio.to_thread(self._record, raw, req, decision, conversation_id)

    def route_batch(self, requests: Sequence[Any]) -> list[RouteDecision]:
        """Route many requests: one batched embedding pass, LLM fallbacks in parallel."""
        started = time.perf_counter()
        normed = [normalize(r) for r in requests]
        if self.predictor is None:
            return [self._record(q, r, self._rules(r, started)) for q, r in zip(requests, normed)]
        probs = self._probs(normed) if normed else np.zeros((0, len(Tier)))
        out = self._without_llm(probs, started)
        pending = [i for i, d in enumerate(out) if d is None]
        if pending:
            with ThreadPoolExecutor(max_workers=min(self.max_fallback_workers, len(pending))) as pool:
                for i, d in zip(pending, pool.map(lambda i: self._ask_llm(normed[i], probs[i], started), pending)):
                    out[i] = d
        return [self._record(q, r, d) for q, r, d in zip(requests, normed, out)]  # type: ignore[arg-type]


def _unit(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return value


def _default_log(settings: Settings):
    path = getattr(settings, "log_path", None)
    if not path:
        return None
    from .decision_log import DecisionLog

    return DecisionLog(path, privacy=getattr(settings, "log_privacy", "full"))
