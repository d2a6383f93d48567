"""``LLMRouter``: ask a small Claude model which tier a request needs.

It is the serving fallback when the classifier is unsure and, in ``train/``, the ``haiku`` teacher.
The contract is deliberately small:

- ``classify(request)`` / ``await aclassify(request)`` return an ``LLMClassification`` (tier, one-
  sentence reason, dollars, latency, model);
- a malformed request raises ``InvalidRequestError`` (a ``ValueError``) before any call;
- every other failure raises an ``LLMRouterError``: ``LLMUnavailableError`` (timeout, connection,
  429/529/5xx; may work later, ``retry_after`` set when the API sent it), ``LLMRequestError`` (the API
  refused the call) or ``LLMAnswerError`` (no usable tier in the answer). It never guesses a tier:
  the caller decides the safe answer (routing) or skips the row (labeling).

No retries happen here (``max_retries=0``): a router on the request path cannot afford them, and the
labeling pipeline runs its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .config import Settings, load_settings
from .errors import ConfigError, LLMAnswerError
from .llm_api import BATCH_PRICE_FACTOR, CallResult, ClientFactory, TokenUsage, message_text
from .normalize import NormalizedRequest, normalize
from .prompts import PROMPT_VERSION, ROUTER_SYSTEM, fence_request
from .tiers import Price, Tier

__all__ = ["LLMRouter", "LLMClassification", "parse_tier_answer", "find_json_objects"]

_FENCE = re.compile(r"^```[a-zA-Z0-9_-]*\s*\n?(.*?)\n?```$", re.DOTALL)
_MAX_REASON = 300


@dataclass(frozen=True)
class LLMClassification:
    """One answer of the LLM router.

    ``cost_usd`` is what the call was billed (input, output, cache write and cache read tokens at
    the model's price); ``latency_ms`` the wall time of the HTTP call.
    """

    tier: Tier
    reason: str
    cost_usd: float
    latency_ms: float
    model: str
    prompt_version: str = PROMPT_VERSION
    usage: TokenUsage = field(default_factory=TokenUsage)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier.name,
            "reason": self.reason,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "usage": self.usage.__dict__,
        }


def find_json_objects(text: str):
    """Yield every JSON object that starts somewhere in ``text`` (models wrap JSON in prose)."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            yield obj


def parse_tier_answer(text: str) -> tuple[Tier, str]:
    """Read ``{"tier": ..., "reason": ...}`` from a model's answer; return ``(tier, reason)``.

    Tolerant of what models add (code fences, whitespace, prose around the object, extra keys, a
    lower-case tier); strict about the tier itself: missing, empty or not one of SIMPLE, MEDIUM,
    COMPLEX raises ``LLMAnswerError``. A missing reason is allowed (empty string).

    >>> parse_tier_answer('```json\\n{"tier": "medium", "reason": "Short code."}\\n```')
    (<Tier.MEDIUM: 1>, 'Short code.')
    """
    if not isinstance(text, str) or not text.strip():
        raise LLMAnswerError("the model gave an empty answer", answer=text or "")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    candidates = list(find_json_objects(body))
    with_tier = [o for o in candidates if any(str(k).strip().lower() == "tier" for k in o)]
    if not with_tier:
        what = "no JSON object" if not candidates else "a JSON object without a 'tier' key"
        raise LLMAnswerError(f"the model's answer has {what}", answer=text)
    obj = {str(k).strip().lower(): v for k, v in with_tier[0].items()}
    raw_tier = obj["tier"]
    if not isinstance(raw_tier, str):
        raise LLMAnswerError(f"the model's tier {raw_tier!r} is not a tier name", answer=text)
    try:
        tier = Tier[raw_tier.strip().upper()]
    except KeyError:
        raise LLMAnswerError(
            f"the model answered unknown tier {raw_tier!r}; expected SIMPLE, MEDIUM or COMPLEX", answer=text
        ) from None
    reason = obj.get("reason", "")
    reason = " ".join(str(reason).split())[:_MAX_REASON] if reason is not None else ""
    return tier, reason


class LLMRouter:
    """Classify requests into tiers with a Claude model (default the settings' ``llm_model``).

    Parameters
    ----------
    model : str, optional
        Model to ask; default ``settings.llm_model`` (``claude-haiku-4-5``). Must have a price in
        ``settings.tiers.prices``.
    settings : Settings, optional
        Default ``load_settings()``.
    base_url, api_key : str, optional
        Default: what the SDK reads, ``ANTHROPIC_BASE_URL`` and ``ANTHROPIC_API_KEY``.
    timeout : float, default 4.0
        Seconds for the whole HTTP call; past it, ``LLMUnavailableError``.
    max_tokens : int, default 120
        Room for the JSON answer and its one-sentence reason.
    excerpt_chars : int, default 500
        How much of the last user turn the model sees (the size line covers the rest).

    Example
    -------
    >>> router = LLMRouter(base_url="http://127.0.0.1:8765", api_key="local")
    >>> router.classify("Translate 'good morning' into Spanish").tier
    <Tier.SIMPLE: 0>
    """

    prompt_version = PROMPT_VERSION

    def __init__(
        self,
        *,
        model: str | None = None,
        settings: Settings | None = None,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 4.0,
        max_tokens: int = 120,
        excerpt_chars: int = 500,
    ):
        self.settings = settings or load_settings()
        self.model = model or self.settings.llm_model
        self.price: Price = self.settings.tiers.price(self.model)  # ConfigError if unpriced
        if not isinstance(max_tokens, int) or max_tokens < 16:
            raise ConfigError(f"max_tokens must be an integer >= 16, got {max_tokens!r}")
        if not isinstance(excerpt_chars, int) or excerpt_chars < 1:
            raise ConfigError(f"excerpt_chars must be a positive integer, got {excerpt_chars!r}")
        self.max_tokens = max_tokens
        self.excerpt_chars = excerpt_chars
        self.clients = ClientFactory(base_url=base_url, api_key=api_key, timeout=timeout)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, {self.clients!r})"

    # -- what is sent ----------------------------------------------------------------------------
    def render_request(self, request: Any) -> str:
        """The user message: a size line, then the start of the last user turn inside tags."""
        req = request if isinstance(request, NormalizedRequest) else normalize(request)
        last = req.last_user.strip()
        shown = last[: self.excerpt_chars]
        flags = [
            name
            for name, on in (
                ("a system prompt", req.has_system),
                ("tool use", req.has_tools),
                ("images", req.has_images),
                ("code", req.has_code),
            )
            if on
        ]
        cut = (
            f"the first {len(shown):,} of its {len(last):,} characters are shown"
            if len(shown) < len(last)
            else "shown in full"
        )
        size = (
            f"Size: about {req.est_tokens:,} tokens in {req.n_turns} message(s)"
            + (f", with {', '.join(flags)}" if flags else "")
            + f". Last user turn: {cut}."
        )
        return f"Classify this request.\n{size}\n{fence_request(shown)}"

    def build_params(self, request: Any) -> dict[str, Any]:
        """The ``messages.create`` arguments for one request (also what a batch item carries)."""
        return {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": [{"type": "text", "text": ROUTER_SYSTEM, "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": self.render_request(request)}],
        }

    # -- reading the answer ----------------------------------------------------------------------
    def _classification(self, text: str, usage: TokenUsage, latency_ms: float, factor: float) -> LLMClassification:
        cost = usage.cost(self.price, factor)
        try:
            tier, reason = parse_tier_answer(text)
        except LLMAnswerError as err:
            raise LLMAnswerError(f"{self.model}: {err}", model=self.model, cost_usd=cost, answer=err.answer) from None
        return LLMClassification(
            tier=tier,
            reason=reason,
            cost_usd=cost,
            latency_ms=latency_ms,
            model=self.model,
            prompt_version=self.prompt_version,
            usage=usage,
        )

    def _from_call(self, result: CallResult) -> LLMClassification:
        return self._classification(result.text, result.usage, result.latency_ms, 1.0)

    def read_message(self, message: Any, *, batch: bool = False) -> LLMClassification:
        """Classification from a ``Message`` obtained elsewhere (a batch result: ``batch=True``
        bills it at the batch price)."""
        factor = BATCH_PRICE_FACTOR if batch else 1.0
        return self._classification(message_text(message), TokenUsage.from_message(message), 0.0, factor)

    # -- calls -----------------------------------------------------------------------------------
    def classify(self, request: Any) -> LLMClassification:
        """Classify one request (any shape ``normalize`` accepts). Raises ``LLMRouterError``."""
        return self._from_call(self.clients.create(self.build_params(request), self.price))

    async def aclassify(self, request: Any) -> LLMClassification:
        """Async ``classify``, on ``anthropic.AsyncAnthropic``."""
        return self._from_call(await self.clients.acreate(self.build_params(request), self.price))

    def close(self) -> None:
        self.clients.close()

    def __enter__(self) -> "LLMRouter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
