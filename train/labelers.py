"""Teachers that give a request its tier: ``haiku``, ``opus`` and ``outcome`` (see ``train.outcome``).

Every labeler has the same small surface, used by the pipeline in ``train.labeling``:

- ``source`` (written as ``label_source``), ``model`` and ``prompt_version`` (part of the cache key);
- ``label(row) -> Label``, raising ``LLMRouterError`` and never guessing;
- ``max_cost(row)``: a dollar bound on one ``label`` call, used to stop before the budget is exceeded;
- ``batchable``, and for those ``batch_params(row)`` / ``read_batch_message(message)``.

``row`` is a data row (``prompt`` or ``messages``, optional ``system`` and ``tools``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol

from router_ml.config import Settings, load_settings
from router_ml.errors import ConfigError
from router_ml.llm_router import LLMRouter
from router_ml.prompts import PROMPT_VERSION, ROUTER_SYSTEM, fence_request
from router_ml.tiers import Price, Tier

from .transcript import DEFAULT_MAX_CHARS, render_transcript

__all__ = ["Label", "Labeler", "HaikuLabeler", "OpusLabeler", "make_labeler", "upper_tokens", "LABELERS"]

LABELERS = ("haiku", "opus", "outcome")


@dataclass(frozen=True)
class Label:
    """A teacher's answer for one request; ``cost_usd`` covers every call it took."""

    tier: Tier
    reason: str
    cost_usd: float
    model: str


class Labeler(Protocol):
    source: str
    model: str
    prompt_version: str
    batchable: bool

    def label(self, row: Mapping[str, Any]) -> Label: ...

    def max_cost(self, row: Mapping[str, Any], *, batch: bool = False) -> float: ...

    def check(self) -> None: ...

    def attach_cache(self, cache: Any) -> None: ...

    def close(self) -> None: ...


def upper_tokens(text: str) -> int:
    """A deliberate over-estimate of tokens: UTF-8 bytes / 2 (English runs ~4 characters a token;
    dense code, digits and CJK run closer to 1-2), plus a little framing."""
    return math.ceil(len(text.encode("utf-8")) / 2) + 16


def upper_call_cost(price: Price, system: str, user: str, max_tokens: int, factor: float = 1.0) -> float:
    """Worst case of one call: the system prompt at the cache-write price (the dearest input rate),
    the user message at the input price, and every allowed output token."""
    cw = price.cache_write if price.cache_write is not None else 1.25 * price.input
    return factor * (
        upper_tokens(system) * max(cw, price.input) + upper_tokens(user) * price.input + max_tokens * price.output
    ) / 1e6


class _RouterLabeler:
    """Shared by haiku and opus: one classification call with the rubric prompt."""

    source = "?"
    batchable = True

    def __init__(self, router: LLMRouter):
        self.router = router
        self.model = router.model
        self.prompt_version = router.prompt_version

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.router!r})"

    def label(self, row: Mapping[str, Any]) -> Label:
        c = self.router.classify(dict(row))
        return Label(tier=c.tier, reason=c.reason, cost_usd=c.cost_usd, model=c.model)

    def max_cost(self, row: Mapping[str, Any], *, batch: bool = False) -> float:
        user = self.router.render_request(dict(row))
        return upper_call_cost(self.router.price, ROUTER_SYSTEM, user, self.router.max_tokens, 0.5 if batch else 1.0)

    def batch_params(self, row: Mapping[str, Any]) -> dict[str, Any]:
        return self.router.build_params(dict(row))

    def read_batch_message(self, message: Any) -> Label:
        c = self.router.read_message(message, batch=True)
        return Label(tier=c.tier, reason=c.reason, cost_usd=c.cost_usd, model=c.model)

    def batch_client(self) -> Any:
        return self.router.clients

    def check(self) -> None:
        """Create the client now, so a missing key fails once, not once per row."""
        self.router.clients.sync()

    def attach_cache(self, cache: Any) -> None:
        """One call per label: nothing to keep beyond the label itself."""

    def close(self) -> None:
        self.router.close()


class HaikuLabeler(_RouterLabeler):
    """The LLM router itself as a teacher: cheap, sees the same bounded view as at serving time."""

    source = "haiku"


class _FullViewRouter(LLMRouter):
    """The rubric prompt with the whole request (``render_transcript``) instead of an excerpt."""

    prompt_version = PROMPT_VERSION + "+transcript-v1"

    def __init__(self, *, max_chars: int = DEFAULT_MAX_CHARS, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_chars = max_chars

    def render_request(self, request: Any) -> str:
        body = render_transcript(request, self.max_chars)
        size, _, rest = body.partition("\n\n")
        return f"Classify this request.\n{size} The whole conversation is shown, long parts cut.\n{fence_request(rest)}"


class OpusLabeler(_RouterLabeler):
    """Claude Opus (the COMPLEX tier's model) reading the whole request up to ``max_chars``."""

    source = "opus"


def make_labeler(
    name: str,
    *,
    settings: Settings | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float | None = None,
    memo: Any = None,
) -> Labeler:
    """Build a labeler by name ("haiku", "opus", "outcome"). ``memo`` (a ``LabelCache``) lets the
    outcome labeler keep the answers it paid for when a later step fails."""
    settings = settings or load_settings()
    common = {"settings": settings, "base_url": base_url, "api_key": api_key}
    if name == "haiku":
        return HaikuLabeler(LLMRouter(model=model, timeout=timeout or 30.0, **common))
    if name == "opus":
        router = _FullViewRouter(
            model=model or settings.tiers.model(Tier.COMPLEX), timeout=timeout or 120.0, max_tokens=200, **common
        )
        return OpusLabeler(router)
    if name == "outcome":
        from .outcome import OutcomeLabeler

        return OutcomeLabeler(judge_model=model, timeout=timeout or 300.0, memo=memo, **common)
    raise ConfigError(f"unknown labeler {name!r}; expected one of {', '.join(LABELERS)}")
