"""``make bench``: routing latency, cold start and batch throughput, printed as one JSON object.

Everything is measured in one run, side by side, so ratios are meaningful on a noisy shared machine.
Quote medians; this never asserts a time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PROMPT_200 = (
    "Our nightly export job writes a 2 GB CSV and then uploads it to object storage; since Tuesday it "
    "fails halfway with a broken pipe. What should I check first, and how do I make the upload resumable?"
)
PROMPTS = {
    "20": "Capital of Peru, pls",
    "200": PROMPT_200[:200],
    "2000": (PROMPT_200 + " Here is the log excerpt: " + "ERROR upload part 17 failed: connection reset; retrying " * 40)[:2000],
}

COLD = (
    "import time; t0 = time.perf_counter(); from router_ml import Router; t1 = time.perf_counter(); "
    "r = Router.load({path!r}); t2 = time.perf_counter(); r.route('hello there'); t3 = time.perf_counter(); "
    "print(t1 - t0, t2 - t1, t3 - t2)"
)


def _timings(fn, n: int, warmup: int = 5) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        xs.append((time.perf_counter() - t) * 1e3)
    xs.sort()
    return {
        "p50_ms": round(statistics.median(xs), 3),
        "p99_ms": round(xs[min(len(xs) - 1, int(0.99 * len(xs)))], 3),
        "n": n,
    }


def cold_start(model_dir: Path, runs: int = 3) -> dict[str, float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    rows = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", COLD.format(path=str(model_dir))], capture_output=True, text=True, env=env, check=True
        )
        rows.append([float(x) for x in out.stdout.split()])
    imp, load, first = (statistics.median(c) for c in zip(*rows))
    return {
        "import_s": round(imp, 3),
        "load_s": round(load, 3),
        "first_route_s": round(first, 3),
        "total_s": round(imp + load + first, 3),
        "runs": runs,
    }


def main(n: int = 200) -> dict:
    from router_ml import Router, RuleRouter
    from router_ml.config import load_settings

    model_dir = load_settings().model_dir
    router = Router.load(model_dir)
    embedder = router.predictor.embedder
    rules = RuleRouter()
    report: dict = {"model_dir": str(model_dir), "threads": _threads()}
    for size, prompt in PROMPTS.items():
        report[f"route_{size}_chars"] = {
            "classifier": _timings(lambda: router.route(prompt), n),
            "rules": _timings(lambda: rules.decide(prompt), n),
            "embedder_only": _timings(lambda: embedder.encode([prompt]), n),
        }
    batch = [PROMPTS["200"] + f" (variant {i})" for i in range(256)]
    t = time.perf_counter()
    router.route_batch(batch)
    dt = time.perf_counter() - t
    t = time.perf_counter()
    rules.predict(batch)
    dt_rules = time.perf_counter() - t
    report["batch_256_200_chars"] = {
        "classifier_per_s": round(len(batch) / dt, 1),
        "rules_per_s": round(len(batch) / dt_rules, 1),
    }
    report["cold_start"] = cold_start(model_dir)
    return report


def _threads() -> int:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return int(np.nan)


if __name__ == "__main__":
    print(json.dumps(main(), indent=2))
