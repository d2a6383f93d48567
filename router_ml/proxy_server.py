"""Running the proxy: ``serve`` in the foreground (``router-ml serve``), ``ProxyServer`` in a thread.

The Router is loaded, and its embedder warmed up, before the port opens, so the first request does
not pay for loading a model.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from .config import load_settings
from .errors import ConfigError
from .normalize import normalize
from .proxy import ProxyConfig, create_app
from .router import Router

__all__ = ["serve", "ProxyServer", "load_router"]

log = logging.getLogger("router_ml.proxy")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def load_router(model_dir: str | Path | None = None, config_file: str | Path | None = None) -> Router:
    """``Router.load`` (the rule router when the default directory has no model), warmed up.

    The warm-up embeds one text without routing it, so nothing is written to the decision log.
    """
    router = Router.load(model_dir, settings=load_settings(config_file, model_dir=model_dir))
    if router.predictor is not None:
        router.predictor.predict_proba([normalize("warm-up")])
    return router


class ProxyServer:
    """The proxy on uvicorn in a background thread: ``with ProxyServer(app) as url: ...``.

    ``port`` 0 picks a free port; ``url`` is ``http://host:port``. For tests, benchmarks and apps that
    embed the proxy; ``serve`` is the foreground form.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning"):
        # log_config=None: the embedding app (or pytest) owns logging; uvicorn's records propagate to it
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                                     log_config=None, lifespan="on"))
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "ProxyServer":
        self._thread = threading.Thread(target=self._server.run, name="router-ml-proxy", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the proxy did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "ProxyServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(*, host: str = "127.0.0.1", port: int = 8080, upstream: str | None = None,
          config_file: str | Path | None = None, model_dir: str | Path | None = None,
          token: str | None = None, log_level: str = "info") -> None:
    """Load the router, then serve the proxy until Ctrl-C (what ``router-ml serve`` does)."""
    config = ProxyConfig.resolve(upstream=upstream, token=token)
    router = load_router(model_dir, config_file)
    if config.api_key and config.token is None and host not in _LOOPBACK:
        log.warning("the proxy holds an API key, listens on %s and has no access token: anyone who reaches it "
                    "spends that key (set ROUTER_ML_PROXY_TOKEN)", host)
    app = create_app(router, config)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
