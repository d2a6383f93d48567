"""The keyword-and-length rule router: zero cost, the baseline every model must beat.

Kept deliberately as the common heuristic it is (not tuned to our data), and used for serving only
when no trained model exists.
"""

from __future__ import annotations

import re
from typing import Any

from .normalize import NormalizedRequest, normalize
from .tiers import Tier

__all__ = ["RuleRouter"]

COMPLEX_TOKENS = 100_000
MEDIUM_TOKENS = 20_000

DEPTH_WORDS = (
    "refactor", "architecture", "architect", "security audit", "audit", "migrate", "migration",
    "synthesize", "design system", "system design", "explain why", "review the entire",
    "prove", "optimize", "threat model", "distributed", "concurrency", "trade-off", "tradeoff",
)
LIGHT_WORDS = (
    "classify", "categorize", "extract", "translate", "yes or no", "true or false", "define",
    "list the", "what is the", "summarize in one", "spell", "convert", "format", "tag",
)


def _pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.IGNORECASE)


_DEPTH = _pattern(DEPTH_WORDS)
_LIGHT = _pattern(LIGHT_WORDS)


class RuleRouter:
    """Length first, then depth words, then light words, else MEDIUM."""

    name = "rules"

    def decide(self, request: Any) -> tuple[Tier, str]:
        """Return the tier and the rule that fired."""
        req = request if isinstance(request, NormalizedRequest) else normalize(request)
        if req.est_tokens > COMPLEX_TOKENS:
            return Tier.COMPLEX, f"about {req.est_tokens:,} tokens (> {COMPLEX_TOKENS:,})"
        if req.est_tokens > MEDIUM_TOKENS:
            return Tier.MEDIUM, f"about {req.est_tokens:,} tokens (> {MEDIUM_TOKENS:,})"
        text = req.last_user
        m = _DEPTH.search(text)
        if m:
            return Tier.MEDIUM, f"depth word {m.group(0).lower()!r}"
        m = _LIGHT.search(text)
        if m:
            return Tier.SIMPLE, f"light-task word {m.group(0).lower()!r}"
        return Tier.MEDIUM, "no rule matched"

    def predict(self, requests: list[Any]) -> list[Tier]:
        return [self.decide(r)[0] for r in requests]
