"""A local HTTP server that speaks the Messages API, for tests and offline development.

Point the real ``anthropic`` SDK at it through ``base_url`` (or ``ANTHROPIC_BASE_URL``); any
non-empty key is accepted (``Authorization: Bearer`` or ``x-api-key``) unless ``api_key`` is set, and
keys are never logged or recorded. What it answers, and how it fails, is described in
``router_ml.fake_backend``.

Endpoints: ``POST /v1/messages`` (server-sent events with ``"stream": true``),
``POST /v1/messages/count_tokens``, ``POST|GET /v1/messages/batches``, ``GET|DELETE /v1/messages/batches/{id}``,
``POST .../{id}/cancel``, ``GET .../{id}/results`` (JSONL).
Control endpoints for a server run from the CLI (no key needed): ``GET /_admin/stats``,
``POST /_admin/faults`` ``{"faults": ["rate_limit", {"kind": "timeout", "seconds": 2}]}``,
``POST /_admin/script`` ``{"match": "...", "answer": "..."}`` (or ``"error": kind``),
``POST /_admin/config`` ``{"latency_ms": 100, "fail_rate": 0.1, "batch_delay_s": 5, "stream_interval_ms": 50}``,
``POST /_admin/reset``.

In tests::

    with FakeAPI(latency_ms=5) as fake:
        fake.push_faults({"kind": "rate_limit", "retry_after": 0.01})
        router = LLMRouter(base_url=fake.base_url, api_key="test")
        ...
        assert fake.calls("messages") == 2

From a shell: ``router-ml fake-api --port 8765 --latency-ms 100 --fail-rate 0.05``.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Mapping
from urllib.parse import parse_qsl, urlsplit

from .errors import ConfigError
from .fake_backend import ApiError, Backend, Fault, stream_events

__all__ = ["FakeAPI", "serve"]

log = logging.getLogger("router_ml.fake_api")

_BATCH = re.compile(r"^/v1/messages/batches/([A-Za-z0-9_-]+)(/cancel|/results)?$")
_HTML = b"<html><body><h1>502 Bad Gateway</h1><p>upstream hiccup</p></body></html>"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stalled "timeout" handlers must not hold up shutdown

    def __init__(self, address: tuple[str, int], fake: "FakeAPI"):
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDK reuses connections
    disable_nagle_algorithm = True  # else small answers wait ~40 ms for a delayed ACK
    server: _Server

    # -- plumbing --------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # request line and status only
        log.info("%s %s", self.address_string(), format % args)

    def _send(self, status: int, payload: Any = None, *, raw: bytes | None = None,
              content_type: str = "application/json", headers: Mapping[str, str] | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_fake_{uuid.uuid4().hex[:16]}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_stream(self, message: dict[str, Any]) -> None:
        """The message as server-sent events, chunked, one event a chunk, flushed as it goes."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.send_header("request-id", f"req_fake_{uuid.uuid4().hex[:16]}")
        self.end_headers()
        interval = self.server.fake.backend.stream_interval_ms / 1e3
        for i, (name, data) in enumerate(stream_events(message)):
            if i and interval and self.server.fake.stopping.wait(interval):
                self.close_connection = True
                return
            chunk = f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _error(self, err: ApiError) -> None:
        self._send(err.status, {**err.body(), "request_id": None}, headers=err.headers)

    def _body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "invalid_request_error", "body is not valid JSON") from None

    def _authorized(self) -> bool:
        bearer = self.headers.get("authorization", "")
        key = bearer[7:].strip() if bearer.lower().startswith("bearer ") else ""
        key = key or (self.headers.get("x-api-key") or "").strip()
        expected = self.server.fake.api_key
        if expected is None:
            return bool(key)
        return hmac.compare_digest(key.encode(), expected.encode())

    def _base_url(self) -> str:
        return f"http://{self.headers.get('host') or self.server.fake.address}"

    # -- dispatch --------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            body = self._body() if method == "POST" else {}
            if url.path.startswith("/_admin/"):
                return self._admin(method, url.path, body)
            if not self._authorized():
                raise ApiError(401, "authentication_error", "invalid x-api-key")
            self._api(method, url.path, dict(parse_qsl(url.query)), body)
        except ApiError as err:
            self._error(err)
        except ConfigError as err:  # a bad admin request
            self._error(ApiError(400, "invalid_request_error", str(err)))
        except (BrokenPipeError, ConnectionResetError):
            log.info("client went away before the answer (it timed out)")

    def _route(self, method: str, path: str) -> tuple[str, str | None]:
        if method == "POST" and path == "/v1/messages":
            return "messages", None
        if method == "POST" and path == "/v1/messages/count_tokens":
            return "count_tokens", None
        if path == "/v1/messages/batches":
            return {"POST": "batches.create", "GET": "batches.list"}.get(method, "?"), None
        m = _BATCH.match(path)
        if m:
            op = {
                ("GET", None): "batches.retrieve",
                ("DELETE", None): "batches.delete",
                ("POST", "/cancel"): "batches.cancel",
                ("GET", "/results"): "batches.results",
            }.get((method, m.group(2)), "?")
            return op, m.group(1)
        return "?", None

    def _api(self, method: str, path: str, query: dict[str, str], body: Any) -> None:
        fake = self.server.fake
        backend = fake.backend
        endpoint, batch_id = self._route(method, path)
        if endpoint == "?":
            raise ApiError(404, "not_found_error", f"{method} {path} is not an endpoint of this fake API")
        backend.record(endpoint, body, dict(self.headers))
        if fake.stopping.wait(backend.latency_ms / 1e3):
            return
        fault = backend.next_fault(endpoint)
        if fault is not None and self._serve_fault(fault, body):
            return
        base = self._base_url()
        if endpoint == "messages" and isinstance(body, dict) and body.get("stream") is True:
            self._send_stream(backend.message(body))
        elif endpoint == "messages":
            self._send(200, backend.message(body))
        elif endpoint == "count_tokens":
            self._send(200, backend.count_tokens(body))
        elif endpoint == "batches.create":
            self._send(200, backend.batches.create(body, base))
        elif endpoint == "batches.list":
            self._send(200, backend.batches.list(query, base))
        elif endpoint == "batches.retrieve":
            self._send(200, backend.batches.retrieve(batch_id, base))
        elif endpoint == "batches.cancel":
            self._send(200, backend.batches.cancel(batch_id, base))
        elif endpoint == "batches.delete":
            self._send(200, backend.batches.delete(batch_id))
        elif endpoint == "batches.results":
            self._send(200, raw=backend.batches.results(batch_id), content_type="application/binary")

    def _serve_fault(self, fault: Fault, body: Any) -> bool:
        """Act out a fault; return True when the response is already sent (or never will be)."""
        if fault.kind == "timeout":
            self.server.fake.stopping.wait(fault.seconds)
            return False  # then answer normally, to a client that has given up
        if fault.kind == "disconnect":
            self.close_connection = True
            self.connection.shutdown(2)
            return True
        if fault.kind == "non_json":
            self._send(200, raw=b"<html><body>OK</body></html>", content_type="text/html")
            return True
        if fault.kind == "non_json_error":
            self._send(502, raw=_HTML, content_type="text/html")
            return True
        if fault.kind == "answer":
            message = self.server.fake.backend.message(body, text=fault.text)
            if body.get("stream") is True:
                self._send_stream(message)
            else:
                self._send(200, message)
            return True
        self._error(fault.error())
        return True

    def _admin(self, method: str, path: str, body: Any) -> None:
        fake = self.server.fake
        if method == "GET" and path == "/_admin/stats":
            return self._send(200, fake.stats())
        if method != "POST" or not isinstance(body, dict):
            raise ApiError(400, "invalid_request_error", "admin calls are POST with a JSON object")
        if path == "/_admin/faults":
            fake.push_faults(*body.get("faults", []))
        elif path == "/_admin/script":
            fake.script(body.get("match", ""), body.get("answer"), error=body.get("error"))
        elif path == "/_admin/config":
            fake.configure(**body)
        elif path == "/_admin/reset":
            fake.reset()
        else:
            raise ApiError(404, "not_found_error", f"no admin endpoint {path}")
        self._send(200, {"ok": True})


class FakeAPI:
    """The fake Messages API, run in a background thread (``start``/``stop`` or ``with``).

    Parameters (all but host/port can be changed while running with ``configure``):
    ``host`` default 127.0.0.1; ``port`` 0 picks a free one; ``latency_ms`` added to every API call;
    ``fail_rate`` share of ``/v1/messages`` calls answered 429/529/500 at random (``seed``);
    ``api_key`` the only key accepted (default: any non-empty key); ``min_cache_tokens`` the
    smallest cacheable prefix; ``batch_delay_s`` how long a batch stays "in_progress";
    ``stream_interval_ms`` the pause between the events of a streamed answer.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, latency_ms: float = 0.0,
                 fail_rate: float = 0.0, seed: int = 0, api_key: str | None = None,
                 min_cache_tokens: int = 0, batch_delay_s: float = 0.0, stream_interval_ms: float = 0.0):
        self.backend = Backend(latency_ms=latency_ms, fail_rate=fail_rate, seed=seed,
                               min_cache_tokens=min_cache_tokens, batch_delay_s=batch_delay_s,
                               stream_interval_ms=stream_interval_ms)
        self.host, self.port, self.api_key = host, port, api_key
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"FakeAPI({self.address if self._server else 'not started'})"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://host:port``, to pass as ``base_url`` or ``ANTHROPIC_BASE_URL``."""
        if self._server is None:
            raise RuntimeError("FakeAPI is not started")
        return f"http://{self.address}"

    def start(self) -> "FakeAPI":
        """Bind (``ConfigError`` if the port is taken) and serve in a daemon thread."""
        try:
            self._server = _Server((self.host, self.port), self)
        except OSError as err:
            raise ConfigError(f"cannot listen on {self.host}:{self.port}: {err.strerror}") from err
        self.port = self._server.server_address[1]
        self.stopping.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-api", daemon=True
        )  # a short poll interval makes ``stop`` quick
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake stalled handlers and free the port."""
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeAPI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control (the same as the admin endpoints) ----------------------------------------------
    def script(self, match: str, answer: str | None = None, *, error: str | None = None) -> None:
        """Answer ``answer`` (or fail with ``error``) whenever ``match`` occurs in the messages."""
        self.backend.script(match, answer, error=error)

    def clear_script(self) -> None:
        self.backend.clear_script()

    def push_faults(self, *faults: Fault | str | Mapping[str, Any]) -> None:
        """Queue faults, each served once to the next call of its endpoint (default "messages")."""
        self.backend.push_faults(*faults)

    def configure(self, *, latency_ms: float | None = None, fail_rate: float | None = None,
                  batch_delay_s: float | None = None, min_cache_tokens: int | None = None,
                  stream_interval_ms: float | None = None) -> None:
        b = self.backend
        if fail_rate is not None and not 0.0 <= fail_rate <= 1.0:
            raise ConfigError(f"fail_rate must be between 0 and 1, got {fail_rate!r}")
        if latency_ms is not None and latency_ms < 0:
            raise ConfigError(f"latency_ms must be >= 0, got {latency_ms!r}")
        if stream_interval_ms is not None and stream_interval_ms < 0:
            raise ConfigError(f"stream_interval_ms must be >= 0, got {stream_interval_ms!r}")
        for name, value in (("latency_ms", latency_ms), ("fail_rate", fail_rate),
                            ("batch_delay_s", batch_delay_s), ("min_cache_tokens", min_cache_tokens),
                            ("stream_interval_ms", stream_interval_ms)):
            if value is not None:
                setattr(b, name, value)

    def reset(self) -> None:
        self.backend.reset()

    def stats(self) -> dict[str, Any]:
        """Calls per endpoint and per model, billed calls, requests billed twice, faults served."""
        return self.backend.stats()

    def calls(self, endpoint: str = "messages", model: str | None = None) -> int:
        """How many calls an endpoint received (all models, or ``model`` for "messages")."""
        if model is not None:
            return sum(1 for r in self.received(endpoint) if r["body"].get("model") == model)
        return self.backend.calls[endpoint]

    def received(self, endpoint: str = "messages") -> list[dict[str, Any]]:
        """What the server received on ``endpoint``: ``{"endpoint", "body", "headers"}`` (no keys)."""
        return [r for r in list(self.backend.received) if r["endpoint"] == endpoint]


def serve(*, host: str = "127.0.0.1", port: int = 8765, latency_ms: float = 0.0, fail_rate: float = 0.0,
          seed: int = 0, api_key: str | None = None, batch_delay_s: float = 0.0) -> None:
    """Run the fake API in the foreground until Ctrl-C (what ``router-ml fake-api`` does)."""
    fake = FakeAPI(host=host, port=port, latency_ms=latency_ms, fail_rate=fail_rate, seed=seed,
                   api_key=api_key, batch_delay_s=batch_delay_s).start()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    print(f"fake Messages API on {fake.base_url}  (export ANTHROPIC_BASE_URL={fake.base_url}); Ctrl-C stops",
          flush=True)
    try:
        fake.stopping.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
