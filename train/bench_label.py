"""Labeling throughput against the local fake API: ``python -m train.bench_label``.

Labels ``--rows`` distinct requests with the ``haiku`` labeler at ``--concurrency`` against a fake
server that takes ``--latency-ms`` per call, with a fresh cache each run, and prints one JSON object
with the median labels per second of ``--runs`` runs. The floor the issue sets: 40 labels/s at
concurrency 8 and 100 ms latency (the ideal is concurrency / latency = 80/s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from router_ml.config import Settings
from router_ml.fake_api import FakeAPI

from .labelers import make_labeler
from .labeling import label_file

FLOOR = 40.0


def _rows(n: int) -> list[dict]:
    return [{"id": f"b{i:05d}", "prompt": f"benchmark request {i}: " + "word " * (i % 120)} for i in range(n)]


def bench(rows: int = 200, concurrency: int = 8, latency_ms: float = 100.0, runs: int = 3) -> dict:
    rates = []
    with tempfile.TemporaryDirectory() as tmp, FakeAPI(latency_ms=latency_ms) as fake:
        src = Path(tmp) / "in.jsonl"
        src.write_text("".join(json.dumps(r) + "\n" for r in _rows(rows)))
        labeler = make_labeler("haiku", settings=Settings(), base_url=fake.base_url, api_key="bench")
        labeler.check()  # import the SDK and build the client outside the timed part
        for run in range(runs):
            started = time.perf_counter()
            report = label_file(src, Path(tmp) / "out.jsonl", labeler, cache=Path(tmp) / f"cache{run}.sqlite",
                                concurrency=concurrency, progress=False)
            elapsed = time.perf_counter() - started
            if report.labeled != rows:
                raise RuntimeError(f"run {run}: labeled {report.labeled} of {rows}: {report.summary()}")
            rates.append(rows / elapsed)
        labeler.close()
    median = statistics.median(rates)
    return {
        "benchmark": "label throughput, haiku labeler, fake API",
        "rows": rows,
        "concurrency": concurrency,
        "latency_ms": latency_ms,
        "runs": runs,
        "labels_per_s_runs": [round(r, 1) for r in rates],
        "labels_per_s_median": round(median, 1),
        "ideal_labels_per_s": round(concurrency / (latency_ms / 1e3), 1) if latency_ms else None,
        "floor_labels_per_s": FLOOR,
        "meets_floor": median >= FLOOR,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    print(json.dumps(bench(a.rows, a.concurrency, a.latency_ms, a.runs), indent=2))


if __name__ == "__main__":
    main()
