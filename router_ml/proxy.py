"""``router-ml serve``: an HTTP proxy that speaks the Messages API and routes ``model: "auto"``.

Any official SDK works by pointing its base URL at the proxy. ``POST /v1/messages`` with
``model: "auto"`` (or ``"auto:<cap>"``: ``auto:sonnet``, ``auto:MEDIUM``... never above that tier) is
routed by the ``Router`` and forwarded to the upstream with the chosen model through the official
SDK; any other model is forwarded untouched. The upstream's body comes back unchanged (streams are
relayed as their bytes arrive), with ``x-router-tier``, ``x-router-model``, ``x-router-source`` and
``x-router-confidence`` headers. ``/v1/messages/count_tokens`` is forwarded; ``GET /health`` and
``GET /metrics`` (Prometheus) are the proxy's own. Usage and cost go to the decision log.

Keys: the caller's (``x-api-key`` or ``Authorization: Bearer``) is passed to the upstream and never
logged or kept; the proxy's own (``ANTHROPIC_API_KEY``) serves callers that send none. When an access
token is set, callers present it in ``x-router-token``: a header of its own, because
``Authorization`` may already carry the Anthropic key. See ``docs/proxy.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import os
import time
from typing import Any, Mapping

import anthropic
import anyio
import httpx2  # the anthropic SDK's HTTP library
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from .errors import ConfigError, RouterMLError
from .proxy_metrics import CONTENT_TYPE_LATEST, ProxyMetrics, SSEUsageScanner
from .routed import StreamUsage
from .router import RouteDecision, Router
from .routing_core import RoutingCore, capped, parse_auto, request_view
from .tiers import Tier

__all__ = ["ProxyConfig", "create_app", "DEFAULT_UPSTREAM"]

log = logging.getLogger("router_ml.proxy")

DEFAULT_UPSTREAM = "https://api.anthropic.com"
TOKEN_HEADER = "x-router-token"
CONVERSATION_HEADER = "x-router-conversation-id"
# Upstream response headers worth keeping: the body's type, the request id support asks for, and
# what the caller's SDK reads to decide on a retry (retry-after, x-should-retry, rate-limit state).
_KEEP = ("content-type", "cache-control", "request-id", "retry-after", "x-should-retry")
# How the API itself reports a failure after the stream has started.
_STREAM_BROKE = (b'event: error\ndata: {"type": "error", "error": {"type": "api_error", '
                 b'"message": "the upstream stream broke off"}}\n\n')


@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    """How the proxy reaches the upstream and who may use it.

    Precedence: explicit argument (``resolve(...)``, the CLI's options), then the environment, then
    the default. ``upstream`` (``ROUTER_ML_UPSTREAM``, default the Anthropic API); ``token``
    (``ROUTER_ML_PROXY_TOKEN``, default none: no access control); ``api_key`` (``ANTHROPIC_API_KEY``,
    used for callers that send no key); ``timeout`` seconds per upstream call (600); ``max_connections``
    to the upstream (100). Secrets are left out of ``repr``.
    """

    upstream: str = DEFAULT_UPSTREAM
    token: str | None = dataclasses.field(default=None, repr=False)
    api_key: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 600.0
    max_connections: int = 100

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.upstream, str) or not self.upstream.startswith(("http://", "https://")):
            problems.append(f"upstream must be an http(s) URL, got {self.upstream!r}")
        if self.token is not None and not self.token.strip():
            problems.append("token must not be blank")
        if not isinstance(self.timeout, (int, float)) or self.timeout <= 0:
            problems.append(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if not isinstance(self.max_connections, int) or self.max_connections < 1:
            problems.append(f"max_connections must be a positive integer, got {self.max_connections!r}")
        if problems:
            raise ConfigError("proxy: " + "; ".join(problems))

    @classmethod
    def resolve(cls, *, upstream: str | None = None, token: str | None = None, api_key: str | None = None,
                timeout: float | None = None, max_connections: int | None = None,
                env: Mapping[str, str] | None = None) -> "ProxyConfig":
        """Arguments first, then ``ROUTER_ML_UPSTREAM``, ``ROUTER_ML_PROXY_TOKEN``, ``ANTHROPIC_API_KEY``."""
        env = os.environ if env is None else env
        given = {
            "upstream": upstream or env.get("ROUTER_ML_UPSTREAM") or None,
            "token": token or env.get("ROUTER_ML_PROXY_TOKEN") or None,
            "api_key": api_key or env.get("ANTHROPIC_API_KEY") or None,
            "timeout": timeout,
            "max_connections": max_connections,
        }
        return cls(**{k: v for k, v in given.items() if v is not None})


class _Reject(Exception):
    """A request the proxy answers itself, with an Anthropic-style error body."""

    def __init__(self, status: int, kind: str, message: str, reason: str):
        super().__init__(message)
        self.status, self.kind, self.message, self.reason = status, kind, message, reason


def _error(status: int, kind: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status, headers=headers)


@dataclasses.dataclass
class _Plan:
    """What to send upstream, and what was decided (None when the body names no model at all)."""

    params: dict[str, Any]
    decision: RouteDecision | None = None
    decision_id: str | None = None
    conversation_id: str | None = None

    def headers(self) -> dict[str, str]:
        d = self.decision
        if d is None:
            return {}
        out = {"x-router-tier": d.tier.name, "x-router-model": d.model, "x-router-source": d.source,
               "x-router-confidence": f"{d.confidence:.3f}"}
        if self.decision_id:
            out["x-router-decision-id"] = self.decision_id
        return out


class _Proxy:
    """The app's state: one Router (loaded before serving), one upstream connection pool, the metrics."""

    def __init__(self, router: Router, config: ProxyConfig, log_: Any = None):
        self.router, self.config = router, config
        self.core = RoutingCore(router, log_)
        self.metrics = ProxyMetrics()
        self._http: Any = None  # an httpx pool belongs to one event loop: made at startup

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette):
        n = self.config.max_connections  # one pool, with the SDK's other defaults (keep-alive probes, redirects)
        self._http = anthropic.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(max_connections=n, max_keepalive_connections=n))
        try:
            yield
        finally:
            await self._http.aclose()

    # -- guards --------------------------------------------------------------------------------
    def _check_token(self, request: Request, *, bearer_ok: bool = False) -> None:
        if self.config.token is None:
            return
        given = request.headers.get(TOKEN_HEADER, "")
        if not given and bearer_ok:
            given = _bearer(request.headers.get("authorization", ""))
        if not hmac.compare_digest(given.encode(), self.config.token.encode()):
            raise _Reject(401, "authentication_error", f"this proxy needs its access token in the {TOKEN_HEADER} "
                          "header", "token")

    def _key(self, request: Request) -> str:
        key = request.headers.get("x-api-key", "").strip() or _bearer(request.headers.get("authorization", ""))
        key = key or self.config.api_key
        if not key:
            raise _Reject(401, "authentication_error", "no API key: send x-api-key or Authorization: Bearer, or "
                          "start the proxy with ANTHROPIC_API_KEY set", "no_key")
        return key

    async def _body(self, request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise _Reject(400, "invalid_request_error", f"request body is not valid JSON: {err}", "bad_json") from None
        if not isinstance(body, dict):
            raise _Reject(400, "invalid_request_error",
                          f"request body must be a JSON object, got {type(body).__name__}", "bad_json")
        return body

    def _client(self, key: str) -> Any:
        """An SDK client bound to one request's key, on the shared pool (the key lives as long as the call)."""
        return anthropic.AsyncAnthropic(api_key=key, base_url=self.config.upstream, http_client=self._http,
                                        max_retries=0, timeout=self.config.timeout)  # the caller's SDK retries

    # -- deciding ------------------------------------------------------------------------------
    async def _plan(self, body: dict[str, Any], conversation_id: str | None) -> _Plan:
        tiers = self.core.tiers
        try:
            cap = parse_auto(body.get("model"), tiers)
        except ValueError as err:
            raise _Reject(400, "invalid_request_error", str(err), "bad_model") from None
        view = request_view(body)
        if cap is None:
            model = body.get("model")
            if not isinstance(model, str):
                return _Plan(body)  # no model: the upstream gives the verdict
            decision = self.core.explicit(model)
            decision_id = await self._record(view, decision, conversation_id)
            return _Plan(body, decision, decision_id, conversation_id)
        started = time.perf_counter()
        try:
            routed = await self.router.aroute(**self.core.route_kwargs(self.router, view, conversation_id))
        except ValueError as err:  # InvalidRequestError: nothing sensible to route, nor to send
            raise _Reject(400, "invalid_request_error", f"cannot route this request: {err}", "unroutable") from None
        except RouterMLError as err:  # the Router's contract says this does not happen: fail safe, say so
            log.warning("routing failed, serving the top tier: %s", err)
            routed = RouteDecision(tier=Tier.COMPLEX, model=tiers.model(Tier.COMPLEX), confidence=0.0,
                                   probabilities={}, source="safe", reason=f"routing failed ({err}); safe tier")
        finally:
            self.metrics.routing_seconds.observe(time.perf_counter() - started)
        decision_id = await self._record(view, routed, conversation_id)
        decision = capped(self.core.stick(routed, conversation_id), cap, tiers)
        return _Plan({**body, "model": decision.model}, decision, decision_id, conversation_id)

    async def _record(self, view: dict[str, Any], decision: RouteDecision, conversation_id: str | None) -> str | None:
        dl = self.core.decision_log
        if dl is None or (decision.decision_id is not None and dl is self.router.log):
            return None if dl is None else decision.decision_id  # nothing to write: skip the worker thread
        return await asyncio.to_thread(self.core.record, view, decision, conversation_id)

    async def _account(self, plan: _Plan, usage: Any) -> None:
        """Usage and dollars of a finished response: metrics, then the decision log (in a thread)."""
        model = plan.params.get("model")
        if usage is None or not isinstance(model, str):
            return
        cost = self.core.cost(model, usage)
        self.metrics.usage(model, usage, cost)
        if plan.decision_id is not None:
            await asyncio.to_thread(self.core.record_usage, plan.decision_id, model, usage)

    # -- forwarding ----------------------------------------------------------------------------
    async def _forward(self, request: Request, plan: _Plan, call: Any, typed: tuple[str, ...]) -> Response:
        """Send ``plan.params`` through ``call`` (an SDK method's streaming-response form) and relay the answer.

        The caller's JSON goes as ``extra_body``, so fields this SDK version does not know still reach
        the upstream unchanged; the method's required ``typed`` arguments are left out (``omit``), so
        that the SDK neither rewrites them nor refuses a body that lacks one (the upstream judges it).
        """
        headers = {k: v for k, v in request.headers.items() if k.startswith("anthropic-")}
        stack = contextlib.AsyncExitStack()
        started = time.perf_counter()
        try:
            upstream = await stack.enter_async_context(
                call(**dict.fromkeys(typed, anthropic.omit), extra_body=plan.params, extra_headers=headers))
        except anthropic.APIStatusError as err:  # 4xx/5xx: the upstream's status, body and retry hints
            self.metrics.upstream_errors.labels(str(err.status_code)).inc()
            return Response(err.response.content, err.status_code, headers={**_kept(err.response.headers),
                                                                             **plan.headers()})
        except anthropic.APITimeoutError:
            self.metrics.upstream_errors.labels("timeout").inc()
            return _error(504, "timeout_error", f"the upstream did not answer within {self.config.timeout:g} s",
                          plan.headers())
        except anthropic.APIConnectionError as err:
            self.metrics.upstream_errors.labels("connection").inc()
            log.warning("upstream unreachable: %s", err)
            return _error(502, "api_error", "the upstream could not be reached", plan.headers())
        finally:
            self.metrics.upstream_seconds.observe(time.perf_counter() - started)
        kept = {**_kept(upstream.headers), **plan.headers()}
        if not upstream.headers.get("content-type", "").startswith("text/event-stream"):
            content = await upstream.read()
            await stack.aclose()
            await self._account(plan, _json_usage(content))  # before answering: a reader of the log sees it
            return Response(content, upstream.status_code, headers=kept)
        return _Relay(self._relay(upstream, stack, plan), upstream.status_code, headers=kept)

    async def _relay(self, upstream: Any, stack: contextlib.AsyncExitStack, plan: _Plan):
        """Yield the upstream's bytes as they come, watching for usage on the way."""
        scanner, usage = SSEUsageScanner(), StreamUsage()
        try:
            async for chunk in upstream.iter_bytes():
                for event in scanner.feed(chunk):
                    usage.see(event)
                yield chunk
        except httpx2.TransportError as err:
            # The status line is sent: say it the way the API does mid-stream, so the caller's SDK raises
            # instead of taking a cut-off answer for a whole one.
            self.metrics.upstream_errors.labels("stream").inc()
            log.warning("upstream stream broke off: %s", type(err).__name__)
            yield _STREAM_BROKE
        finally:
            with anyio.CancelScope(shield=True):  # a caller that left still costs what it used: log it
                await stack.aclose()
                await self._account(plan, usage.result())

    # -- endpoints -----------------------------------------------------------------------------
    async def messages(self, request: Request) -> Response:
        self._check_token(request)
        body = await self._body(request)
        key = self._key(request)
        plan = await self._plan(body, request.headers.get(CONVERSATION_HEADER) or None)
        if plan.decision is not None:
            self.metrics.requests.labels(plan.decision.tier.name, plan.decision.source).inc()
        call = self._client(key).messages.with_streaming_response.create
        response = await self._forward(request, plan, call, ("model", "messages", "max_tokens"))
        if plan.decision is not None and response.status_code < 400:
            self.core.remember(plan.decision, plan.conversation_id)
        return response

    async def count_tokens(self, request: Request) -> Response:
        """Forwarded as is; ``auto`` counts with the cap's model, since routing a count would log a
        decision that is never served."""
        self._check_token(request)
        body = await self._body(request)
        key = self._key(request)
        plan = _Plan(body)
        try:
            cap = parse_auto(body.get("model"), self.core.tiers)
        except ValueError as err:
            raise _Reject(400, "invalid_request_error", str(err), "bad_model") from None
        if cap is not None:
            model = self.core.tiers.model(cap)
            plan = _Plan({**body, "model": model}, RouteDecision(
                tier=cap, model=model, confidence=1.0, probabilities={}, source="cap", reason="count_tokens"))
        call = self._client(key).messages.with_streaming_response.count_tokens
        return await self._forward(request, plan, call, ("model", "messages"))

    async def health(self, request: Request) -> Response:
        tiers = self.core.tiers
        return JSONResponse({"status": "ok", "router": "rules" if self.router.predictor is None else "classifier",
                             "models": {t.name: tiers.model(t) for t in Tier}})

    async def metrics_text(self, request: Request) -> Response:
        self._check_token(request, bearer_ok=True)  # scrapers send a bearer token; no Anthropic key here
        return Response(self.metrics.render(), headers={"content-type": CONTENT_TYPE_LATEST})

    async def rejected(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Reject)
        self.metrics.rejected.labels(exc.reason).inc()
        return _error(exc.status, exc.kind, exc.message)


class _Relay(StreamingResponse):
    """A StreamingResponse that always closes its iterator, so the upstream call ends with the caller's."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]


def _bearer(value: str) -> str:
    return value[7:].strip() if value[:7].lower() == "bearer " else ""


def _kept(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() in _KEEP or k.lower().startswith("anthropic-")}


def _json_usage(content: bytes) -> Any:
    try:
        body = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body.get("usage") if isinstance(body, dict) else None


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return _error(exc.status_code, kind, f"{request.method} {request.url.path}: {exc.detail}")


def create_app(router: Router, config: ProxyConfig | None = None, *, log: Any = None) -> Starlette:
    """The proxy as an ASGI app. ``router`` is used as given (load it before serving); ``config``
    default ``ProxyConfig.resolve()``; ``log`` a ``DecisionLog``, a path, None (the router's log) or False.

    >>> app = create_app(Router.load(), ProxyConfig(upstream="http://127.0.0.1:8765"))
    """
    proxy = _Proxy(router, config or ProxyConfig.resolve(), log)
    app = Starlette(
        routes=[
            Route("/v1/messages", proxy.messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", proxy.count_tokens, methods=["POST"]),
            Route("/health", proxy.health, methods=["GET"]),
            Route("/metrics", proxy.metrics_text, methods=["GET"]),
        ],
        exception_handlers={_Reject: proxy.rejected, HTTPException: _http_error},
        lifespan=proxy.lifespan,
    )
    app.state.proxy = proxy
    return app
