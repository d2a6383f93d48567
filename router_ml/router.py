"""``Router``: what apps hold. Wraps a trained ``Predictor`` and answers with a ``RouteDecision``.

With no trained model it falls back to the rule router, and says so in ``source``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .config import Settings, load_settings
from .embedder import Embedder
from .normalize import NormalizedRequest, normalize
from .predictor import Predictor
from .rules import RuleRouter
from .tiers import Tier, TierConfig

__all__ = ["Router", "RouteDecision"]


@dataclass(frozen=True)
class RouteDecision:
    """The answer to "which model should serve this request?"."""

    tier: Tier
    model: str
    confidence: float  # probability of the chosen tier (1.0 for rules, which have no scores)
    probabilities: dict[str, float]
    source: str  # "classifier", "llm", "safe" or "rules"
    reason: str = ""
    cost_usd: float = 0.0  # what routing itself cost (LLM fallback calls)
    latency_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tier"] = self.tier.name
        return d


class Router:
    """Route requests to the cheapest adequate tier.

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
    ):
        self.settings = settings or load_settings()
        self.tiers = tiers or self.settings.tiers
        self.predictor = predictor
        self.rules = RuleRouter()

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        embedder: Embedder | None = None,
        settings: Settings | None = None,
        tiers: TierConfig | None = None,
    ) -> "Router":
        """Load the model in ``path`` (default: the configured ``models/``)."""
        settings = settings or load_settings()
        predictor = Predictor.load(path or settings.model_dir, embedder=embedder)
        return cls(predictor, tiers=tiers, settings=settings)

    # -- deciding ----------------------------------------------------------------------------
    def _rules_decision(self, req: NormalizedRequest, started: float) -> RouteDecision:
        tier, why = self.rules.decide(req)
        return RouteDecision(
            tier=tier,
            model=self.tiers.model(tier),
            confidence=1.0,
            probabilities={t.name: float(t == tier) for t in Tier},
            source="rules",
            reason=f"rule router: {why}",
            latency_ms=(time.perf_counter() - started) * 1e3,
        )

    def _classifier_decision(self, probs: np.ndarray, started: float) -> RouteDecision:
        tier = Tier(int(np.argmax(probs)))
        return RouteDecision(
            tier=tier,
            model=self.tiers.model(tier),
            confidence=float(probs[tier]),
            probabilities={t.name: float(probs[t]) for t in Tier},
            source="classifier",
            reason=f"classifier: {tier.name} with p={probs[tier]:.2f}",
            latency_ms=(time.perf_counter() - started) * 1e3,
        )

    def route(self, request: Any = None, /, **kwargs: Any) -> RouteDecision:
        """Route one request: a string, a messages list, or ``messages.create`` keyword arguments.

        Raises ``ValueError`` (``InvalidRequestError``) only for malformed input.
        """
        started = time.perf_counter()
        req = normalize(request, **kwargs)
        if self.predictor is None:
            return self._rules_decision(req, started)
        probs = self.predictor.predict_proba([req])[0]
        return self._classifier_decision(probs, started)

    def route_batch(self, requests: Sequence[Any]) -> list[RouteDecision]:
        """Route many requests with one batched embedding pass."""
        started = time.perf_counter()
        normed = [normalize(r) for r in requests]
        if self.predictor is None:
            return [self._rules_decision(r, started) for r in normed]
        probs = self.predictor.predict_proba(normed) if normed else np.zeros((0, 3))
        return [self._classifier_decision(p, started) for p in probs]
