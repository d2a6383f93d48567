"""One disciplined edge to the Messages API, shared by the LLM router and the teacher labelers.

Clients are made lazily with an explicit timeout and ``max_retries=0`` (the caller decides whether
to retry); every SDK error is caught by name and turned into one of ours:

========================================  =====================================================
SDK error                                 router-ml error
========================================  =====================================================
``APITimeoutError``, ``APIConnectionError``  ``LLMUnavailableError`` (status None)
429, 408, 409, 529, any 5xx                ``LLMUnavailableError`` (``retry_after`` when sent)
other 4xx (bad key, bad request, ...)      ``LLMRequestError``
a 200 whose body is not a Message          ``LLMUnavailableError`` (a proxy in the way?)
========================================  =====================================================

``anthropic`` takes about 3 s to import here, so it is imported on first use, not with this module.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError, LLMRequestError, LLMUnavailableError
from .tiers import Price

__all__ = ["TokenUsage", "CallResult", "ClientFactory", "message_text", "BATCH_PRICE_FACTOR"]

BATCH_PRICE_FACTOR = 0.5  # the Message Batches API bills half the list price
_RETRYABLE_STATUS = {408, 409, 429}


@dataclass(frozen=True)
class TokenUsage:
    """Billed tokens of one call, in the four classes that have different prices."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0

    @classmethod
    def from_message(cls, message: Any) -> "TokenUsage":
        u = message.usage
        return cls(
            input_tokens=int(u.input_tokens or 0),
            output_tokens=int(u.output_tokens or 0),
            cache_write_tokens=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
            cache_read_tokens=int(getattr(u, "cache_read_input_tokens", 0) or 0),
        )

    def cost(self, price: Price, factor: float = 1.0) -> float:
        """Dollars at ``price``; ``factor`` 0.5 for batch results."""
        return factor * price.cost(
            self.input_tokens, self.output_tokens, self.cache_write_tokens, self.cache_read_tokens
        )


@dataclass(frozen=True)
class CallResult:
    """A successful call: the SDK ``Message``, its text, usage, dollars and wall time."""

    message: Any
    text: str
    usage: TokenUsage
    cost_usd: float
    latency_ms: float
    model: str


def message_text(message: Any) -> str:
    """The concatenated text blocks of a Message (tool calls rendered briefly, others skipped)."""
    parts = []
    for block in getattr(message, "content", None) or []:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(block.text)
        elif kind == "tool_use":
            parts.append(f"[tool call {block.name}] {json.dumps(block.input, ensure_ascii=False, default=str)}")
    return "\n".join(parts)


def _retry_after(response: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (numeric forms only), else None."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: rare from this API; the caller's own backoff applies
        if seconds >= 0:
            return seconds
    return None


def _sdk_errors() -> tuple[type[Exception], ...]:
    """The SDK errors we translate, by name; anything else propagates (a bug to see, not hide)."""
    import anthropic

    return (
        anthropic.APITimeoutError,
        anthropic.APIConnectionError,
        anthropic.APIStatusError,
        anthropic.APIResponseValidationError,
    )


def _require_credentials(client: Any) -> None:
    """Fail at client creation, not with the SDK's TypeError at the first request."""
    if client.api_key is None and client.auth_token is None and getattr(client, "credentials", None) is None:
        raise LLMRequestError(
            "no Anthropic credentials: set ANTHROPIC_API_KEY (or pass api_key=...)", status_code=None
        )


class ClientFactory:
    """Holds connection settings and builds the SDK clients on first use (thread-safe).

    ``base_url`` and ``api_key`` default to what the SDK reads (``ANTHROPIC_BASE_URL``,
    ``ANTHROPIC_API_KEY``). The key is never shown in ``repr`` or in error messages.
    """

    def __init__(self, *, base_url: str | None = None, api_key: str | None = None, timeout: float = 4.0):
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.base_url = base_url
        self.timeout = float(timeout)
        self._api_key = api_key
        self._lock = threading.Lock()
        self._sync: Any = None
        self._async: Any = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"ClientFactory(base_url={self.base_url!r}, timeout={self.timeout})"

    def _kwargs(self) -> dict[str, Any]:
        kw: dict[str, Any] = {"timeout": self.timeout, "max_retries": 0}
        if self.base_url is not None:
            kw["base_url"] = self.base_url
        if self._api_key is not None:
            kw["api_key"] = self._api_key
        return kw

    def sync(self) -> Any:
        """The ``anthropic.Anthropic`` client, created once."""
        with self._lock:
            if self._sync is None:
                import anthropic

                client = anthropic.Anthropic(**self._kwargs())
                _require_credentials(client)
                self._sync = client
            return self._sync

    def async_(self) -> Any:
        """The ``anthropic.AsyncAnthropic`` client of the running event loop.

        Its connections belong to one loop, so a new loop (each ``asyncio.run``) gets a new client.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None or self._async_loop is not loop:
                import anthropic

                client = anthropic.AsyncAnthropic(**self._kwargs())
                _require_credentials(client)
                self._async, self._async_loop = client, loop
            return self._async

    def close(self) -> None:
        """Close the sync client's connections (the async one closes with its event loop)."""
        with self._lock:
            if self._sync is not None:
                self._sync.close()
                self._sync = None

    # -- calls ---------------------------------------------------------------------------------
    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one SDK call (e.g. ``client.messages.batches.retrieve``) with our error translation;
        messages name the ``model`` keyword argument when there is one."""
        model = kwargs.get("model")
        try:
            return fn(*args, **kwargs)
        except _sdk_errors() as err:
            raise self._translate(err, model) from err
        except json.JSONDecodeError as err:  # "application/json" with a body that is not JSON
            raise LLMUnavailableError(f"{model or 'API'}: the answer's body is not JSON", model=model) from err

    def create(self, params: dict[str, Any], price: Price) -> CallResult:
        """``messages.create(**params)``; raises ``LLMUnavailableError`` or ``LLMRequestError``."""
        client = self.sync()
        started = time.perf_counter()
        message = self.call(client.messages.create, **params)
        return self._result(message, params, price, started)

    async def acreate(self, params: dict[str, Any], price: Price) -> CallResult:
        """Async ``create``; same errors."""
        client = self.async_()
        started = time.perf_counter()
        try:
            message = await client.messages.create(**params)
        except _sdk_errors() as err:
            raise self._translate(err, params.get("model")) from err
        except json.JSONDecodeError as err:
            raise LLMUnavailableError(f"{params.get('model')}: the answer's body is not JSON",
                                      model=params.get("model")) from err
        return self._result(message, params, price, started)

    def _result(self, message: Any, params: dict[str, Any], price: Price, started: float) -> CallResult:
        latency = (time.perf_counter() - started) * 1e3
        model = params.get("model", "")
        if isinstance(message, str) or not hasattr(message, "usage"):
            # The SDK hands back raw text when the content type is not JSON (an HTML error page).
            raise LLMUnavailableError(
                f"{model}: the API answered 200 with a non-JSON body ({str(message)[:60]!r}); "
                "is a proxy in the way of base_url?",
                model=model,
            )
        usage = TokenUsage.from_message(message)
        return CallResult(
            message=message,
            text=message_text(message),
            usage=usage,
            cost_usd=usage.cost(price),
            latency_ms=latency,
            model=model,
        )

    def _translate(self, err: Exception, model: str | None) -> Exception:
        """Map one of ``_sdk_errors()`` to ours."""
        import anthropic

        where = self.base_url or "the Anthropic API"
        who = f"{model}: " if model else ""
        if isinstance(err, anthropic.APITimeoutError):
            return LLMUnavailableError(f"{who}no answer within {self.timeout:g} s from {where}", model=model)
        if isinstance(err, anthropic.APIConnectionError):
            return LLMUnavailableError(f"{who}cannot connect to {where}: {err}", model=model)
        if isinstance(err, anthropic.APIStatusError):
            status = err.status_code
            detail = err.api_message or (str(err.body)[:120] if err.body else "")
            if status in _RETRYABLE_STATUS or status >= 500:
                kind = {429: "rate limited", 529: "overloaded"}.get(status, f"HTTP {status}")
                return LLMUnavailableError(
                    f"{who}{kind}: {detail}".rstrip(": "),
                    model=model,
                    status_code=status,
                    retry_after=_retry_after(err.response),
                )
            hint = " (check ANTHROPIC_API_KEY)" if status in (401, 403) else ""
            return LLMRequestError(f"{who}HTTP {status}: {detail}{hint}", model=model, status_code=status)
        if isinstance(err, anthropic.APIResponseValidationError):
            return LLMUnavailableError(f"{who}the API answered with an unexpected body: {err}", model=model)
        raise TypeError(f"unexpected SDK error {type(err).__name__}") from err  # not in _sdk_errors
