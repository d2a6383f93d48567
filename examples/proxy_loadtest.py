"""A bounded load test of the routing proxy on loopback: what the proxy adds to each call's latency.

Starts the fake Messages API (fixed latency) and ``router-ml serve`` in front of it, each in its own
process, then sends requests with the official SDK at a fixed rate for a fixed time, alternating
between the upstream directly and the proxy with ``model: "auto"``. Prints one JSON object: latency
percentiles of both paths, the proxy's added latency (proxied minus direct, per percentile), the
error count, and the proxy's own mean routing time and time to the upstream's headers (its /metrics).
Traffic goes to 127.0.0.1 only; the run stops by itself after ``--seconds`` (and at most
``--rate * --seconds`` requests).

    .venv/bin/python examples/proxy_loadtest.py --seconds 30 --rate 20 --router classifier
    .venv/bin/python examples/proxy_loadtest.py --router rules --stream
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anthropic
import httpx2

KEY = "sk-loadtest-not-a-real-key"
PROMPTS = [
    "Translate 'good night' into Spanish.",
    "Is 'machine learning' a type of AI? Answer yes or no.",
    "Write a Python function that parses ISO 8601 dates and handles time zones.",
    "Summarize the trade-offs between optimistic and pessimistic locking for an inventory service.",
    "Refactor this module so the billing logic no longer depends on the HTTP layer:\n" + "def f(x):\n    return x\n" * 40,
    "Classify the sentiment of: 'The delivery was late but the support team was wonderful.'",
    "Design a multi-region architecture for a payments ledger that must never lose a write. " * 6,
    "Extract every email address from this text: alice@example.com wrote to bob@example.org.",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str, proc: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the process exited with {proc.returncode}")
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return
        except httpx2.TransportError:
            pass  # not listening yet
        time.sleep(0.2)
    raise SystemExit(f"{url}: not up after {seconds:.0f} s")


def _means(exposition: str) -> dict:
    """Mean routing time and time to the upstream's headers, from the proxy's own histograms."""
    samples = dict(line.rsplit(" ", 1) for line in exposition.splitlines() if line and not line.startswith("#"))
    out = {}
    for name in ("routing", "upstream"):
        count = float(samples.get(f"router_ml_proxy_{name}_seconds_count", 0))
        total = float(samples.get(f"router_ml_proxy_{name}_seconds_sum", 0))
        out[f"{name}_mean_ms"] = round(total / count * 1e3, 2) if count else None
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _one(client: anthropic.AsyncAnthropic, model: str, prompt: str, stream: bool) -> tuple[float, str | None]:
    """Latency in ms (to the whole answer, or to the first event of a stream) and the error, if any."""
    started = time.perf_counter()
    messages = [{"role": "user", "content": prompt}]
    try:
        if not stream:
            await client.messages.create(model=model, max_tokens=256, messages=messages)
            return (time.perf_counter() - started) * 1e3, None
        took = None
        async for _ in await client.messages.create(model=model, max_tokens=256, messages=messages, stream=True):
            took = took or (time.perf_counter() - started)
        return (took or 0.0) * 1e3, None
    except anthropic.APIError as err:
        return (time.perf_counter() - started) * 1e3, f"{type(err).__name__}: {err}"


async def _load(upstream: str, proxy: str, rate: float, seconds: float, stream: bool) -> dict:
    """Alternate direct and proxied calls on a fixed schedule (open loop) and summarize both."""
    results: dict[str, list[tuple[float, str | None]]] = {"direct": [], "proxied": []}
    clients = {path: anthropic.AsyncAnthropic(base_url=url, api_key=KEY, max_retries=0, timeout=30)
               for path, url in (("direct", upstream), ("proxied", proxy))}

    async def fire(i: int) -> None:
        path = "direct" if i % 2 == 0 else "proxied"
        model = "claude-sonnet-4-6" if path == "direct" else "auto"
        results[path].append(await _one(clients[path], model, PROMPTS[(i // 2) % len(PROMPTS)], stream))

    for i in range(20):  # warm connections and the router; not measured
        await _one(clients["direct" if i % 2 == 0 else "proxied"], "claude-haiku-4-5" if i % 2 == 0 else "auto",
                   PROMPTS[i % len(PROMPTS)], False)
    tasks, start, n = [], time.perf_counter(), int(rate * seconds)
    for i in range(n):  # open loop: send on schedule whether or not earlier calls are done
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    for c in clients.values():
        await c.close()
    out: dict = {"requests": n, "seconds": round(elapsed, 1), "rate_per_s": rate, "stream": stream}
    for path, rows in results.items():
        ms = [t for t, err in rows if err is None]
        errors = [err for _, err in rows if err is not None]
        out[path] = {"n": len(rows), "errors": len(errors), "first_errors": errors[:3],
                     **{f"p{int(q * 100)}_ms": round(_pct(ms, q), 2) for q in (0.5, 0.9, 0.99)},
                     "mean_ms": round(statistics.fmean(ms), 2) if ms else None}
    out["added_ms"] = {k: round(out["proxied"][k] - out["direct"][k], 2) for k in ("p50_ms", "p90_ms", "p99_ms")}
    out["errors"] = out["direct"]["errors"] + out["proxied"]["errors"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=30.0, help="how long to send (default 30)")
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second, both paths together (default 20)")
    ap.add_argument("--latency-ms", type=float, default=50.0, help="the fake upstream's fixed latency (default 50)")
    ap.add_argument("--router", choices=("classifier", "rules"), default="classifier",
                    help="the shipped model in models/, or the keyword rules (the proxy's own cost alone)")
    ap.add_argument("--stream", action="store_true", help="stream, and time the first byte instead of the body")
    args = ap.parse_args()
    if args.seconds <= 0 or args.rate <= 0 or args.seconds * args.rate > 10_000:
        ap.error("--seconds and --rate must be positive, at most 10,000 requests in all")

    exe = Path(sys.executable).with_name("router-ml")
    fake_port, proxy_port = _free_port(), _free_port()
    upstream, proxy = f"http://127.0.0.1:{fake_port}", f"http://127.0.0.1:{proxy_port}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("ANTHROPIC_API_KEY", None)  # no LLM fallback, no key of the proxy's own
    env.pop("ANTHROPIC_BASE_URL", None)
    env.pop("ROUTER_ML_LOG", None)
    if args.router == "rules":
        env["ROUTER_ML_MODEL_DIR"] = tempfile.mkdtemp(prefix="no-model-")  # empty: the rule router serves
    procs = []
    with tempfile.TemporaryFile() as logs:
        try:
            procs.append(subprocess.Popen([str(exe), "fake-api", "--port", str(fake_port), "--latency-ms",
                                           str(args.latency_ms)], stdout=logs, stderr=logs, env=env))
            procs.append(subprocess.Popen([str(exe), "serve", "--port", str(proxy_port), "--upstream", upstream],
                                          stdout=logs, stderr=logs, env=env))
            _wait(upstream + "/_admin/stats", procs[0])
            _wait(proxy + "/health", procs[1])
            router = httpx2.get(proxy + "/health").json()["router"]
            result = asyncio.run(_load(upstream, proxy, args.rate, args.seconds, args.stream))
            result["proxy_metrics"] = _means(httpx2.get(proxy + "/metrics").text)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=10)
    print(json.dumps({"router": router, "upstream_latency_ms": args.latency_ms, "cpus": os.cpu_count(),
                      "load_average_1m": round(os.getloadavg()[0], 2), **result}, indent=2))
    sys.exit(1 if result["errors"] else 0)


if __name__ == "__main__":
    main()
