"""``make bench``: the rule router, the bare embedder and the full router, side by side in one run.

For each: warm latency p50 / p99 at four prompt lengths, batch throughput, and cold start (import +
load + first call) with peak memory, in fresh interpreters. Everything runs in one process tree so
ratios are meaningful on a noisy shared machine. Quote medians; this never asserts a time.

    python -m train.bench [--model models/] [-n 200] [--out FILE]
    python -m train.bench --markdown FILE      # a saved report as the table in docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

PROMPT_200 = (
    "Our nightly export job writes a 2 GB CSV and then uploads it to object storage; since Tuesday it "
    "fails halfway with a broken pipe. What should I check first, and how do I make the upload resumable?"
)
LOG_LINE = " ERROR upload part 17 failed: connection reset; retrying"
PROMPTS = {
    "20": "Capital of Peru, pls",
    "200": PROMPT_200[:200],
    "2000": (PROMPT_200 + " Here is the log excerpt:" + LOG_LINE * 40)[:2000],
    "20000": (PROMPT_200 + " Here is the log excerpt:" + LOG_LINE * 400)[:20000],
}

# One fresh interpreter: import, build what `what` names, call it once, report the times and the peak
# resident memory (VmHWM: ru_maxrss would keep the forking parent's peak across exec).
COLD = """
import json, re, sys, time
t0 = time.perf_counter()
import router_ml
t1 = time.perf_counter()
what, path, prompt = {what!r}, {path!r}, {prompt!r}
if what == "rules":
    r = router_ml.RuleRouter(); call = lambda: r.decide(prompt)
elif what == "embedder":
    from router_ml.artifact import load_card
    from router_ml.backends import embedder_from_card
    e = embedder_from_card(load_card(path), path); call = lambda: e.encode([prompt])
else:
    r = router_ml.Router.load(path, llm=None); call = lambda: r.route(prompt)
t2 = time.perf_counter()
call()
t3 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2,
    "peak_rss_mb": int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) / 1024,
    "torch_imported": "torch" in sys.modules}}))
"""


def _timings(fn: Callable[[], Any], n: int, warmup: int = 5) -> dict[str, float]:
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


def throughput(fn: Callable[[list[str]], Any], size: int = 512, runs: int = 5) -> float:
    """Median requests/s of ``fn`` over a batch of distinct 200-character-ish prompts."""
    batch = [PROMPTS["200"] + f" (variant {i})" for i in range(size)]
    fn(batch[:8])
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        fn(batch)
        rates.append(len(batch) / (time.perf_counter() - t))
    return round(statistics.median(rates), 1)


def cold_start(model_dir: str | Path, what: str = "router", runs: int = 3) -> dict[str, Any]:
    """Medians over ``runs`` fresh interpreters of import, load and first call; peak RSS; torch or not."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    code = COLD.format(what=what, path=str(model_dir), prompt=PROMPTS["200"])
    results = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    med = {k: statistics.median(r[k] for r in results) for k in ("import_s", "load_s", "first_call_s", "peak_rss_mb")}
    return {
        **{k: round(v, 3) for k, v in med.items()},
        "total_s": round(med["import_s"] + med["load_s"] + med["first_call_s"], 3),
        "torch_imported": any(r["torch_imported"] for r in results),
        "runs": runs,
    }


def main(model_dir: str | Path | None = None, n: int = 200) -> dict[str, Any]:
    from router_ml import Router, RuleRouter
    from router_ml.config import load_settings

    model_dir = Path(model_dir or load_settings().model_dir)
    router = Router.load(model_dir, llm=None)
    embedder = router.predictor.embedder
    rules = RuleRouter()
    subjects = {
        "rules": (lambda p: rules.decide(p), rules.predict),
        "embedder_only": (lambda p: embedder.encode([p]), embedder.encode),
        "router": (router.route, router.route_batch),
    }
    report: dict[str, Any] = {
        "model_dir": str(model_dir),
        "backend": router.predictor.card_["embedder"].get("backend", "st"),
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    for name, (one, many) in subjects.items():
        report[name] = {
            **{f"route_{size}_chars": _timings(lambda: one(p), n) for size, p in PROMPTS.items()},
            "batch_512_per_s": throughput(many),
            "cold_start": cold_start(model_dir, "embedder" if name == "embedder_only" else name),
        }
    report["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    return report


def to_markdown(report: dict[str, Any]) -> str:
    """The side-by-side table for docs/benchmarks.md."""
    names = {"rules": "rule router", "embedder_only": "embedder alone", "router": "Router (classifier)"}
    def pcts(r: dict[str, Any], k: str) -> str:
        t = r[f"route_{k}_chars"]
        return f"{t['p50_ms']:.3f} / {t['p99_ms']:.3f}"

    rows = [
        *((f"p50 / p99 at {int(k):,} chars (ms)", lambda r, k=k: pcts(r, k)) for k in PROMPTS),
        ("batch of 512, 200 chars (per s)", lambda r: f"{r['batch_512_per_s']:,.0f}"),
        ("cold start: import + load + first call (s)", lambda r: f"{r['cold_start']['total_s']:.2f}"),
        ("peak RSS after the first call (MB)", lambda r: f"{r['cold_start']['peak_rss_mb']:.0f}"),
    ]
    lines = ["| | " + " | ".join(names.values()) + " |", "|---" * (len(names) + 1) + "|"]
    lines += ["| " + " | ".join([label, *(cell(report[n]) for n in names)]) + " |" for label, cell in rows]
    return "\n".join(lines)


def run_cli(ap: argparse.ArgumentParser, run: Callable[[argparse.Namespace], dict], render: Callable[[dict], str]) -> None:
    """The bench scripts' shared command line: ``--out FILE`` keeps the JSON, ``--markdown FILE``
    renders a saved one as the docs table instead of measuring."""
    from router_ml.fileio import atomic_write_text

    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--markdown", type=Path, help="render a saved JSON report as the docs table, and stop")
    a = ap.parse_args()
    if a.markdown:
        try:
            report = json.loads(a.markdown.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"error: {a.markdown}: not a saved report ({err})") from None
        print(render(report))
        return
    text = json.dumps(run(a), indent=2)
    if a.out:
        atomic_write_text(a.out, text + "\n")
    print(text)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="model directory (default: the configured models/)")
    ap.add_argument("-n", type=int, default=200, help="timed calls per length")
    run_cli(ap, lambda a: main(a.model, a.n), to_markdown)
