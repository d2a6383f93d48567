"""The runtime backends side by side: sentence-transformers fp32, ONNX int8, static (alone and with the
lexical head, the default), and a cascade.

For each backend, one run: train the classifier with ``train_model`` on the data's train split (as
``router-ml train --backend ...`` does), score the dev split, then time ``Router.route()`` warm at four
prompt lengths and once on every dev request, batch throughput, and cold start + peak memory in fresh
interpreters. The cascade (the default model first; the ONNX classifier when its top probability is
under a threshold) is timed from the same per-request measurements: static time, plus ONNX time for
the requests it passes on. Prints one JSON object; quote medians; asserts no time.

    python -m train.bench_backends [--data data/] [--work /tmp/router-ml-bench] [--fresh]

Embeddings and built files are cached in ``--work`` (keyed by text), so a rerun skips the slow parts.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .bench import PROMPTS, _timings, cold_start, run_cli, throughput

# "static+lexical" is the default model: the static embedding with the stacked TF-IDF head
BACKENDS = ("st", "onnx", "static", "static+lexical")
CASCADE_THRESHOLDS = (0.5, 0.6, 0.7, 0.8)


class MemoEmbedder:
    """Wraps an embedder with a text -> vector cache saved to ``path`` (the bench's only shortcut)."""

    def __init__(self, inner: Any, path: Path):
        self.inner, self.path = inner, path
        self.id, self.dim = inner.id, int(inner.dim)
        self._memo: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                self._memo = dict(zip(z["keys"].tolist(), z["vectors"]))

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        keys = [self._key(t) for t in texts]
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self._memo}.items())
        if todo:
            vecs = self.inner.encode([t for _, t in todo], batch_size=batch_size, progress=progress)
            self._memo.update({k: v for (k, _), v in zip(todo, vecs)})
            np.savez(self.path, keys=np.array(list(self._memo)), vectors=np.stack(list(self._memo.values())))
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        return np.stack([self._memo[k] for k in keys]).astype(np.float32)

    def artifact_spec(self):
        from router_ml.predictor import _embedder_spec

        return _embedder_spec(self.inner)

    def __getattr__(self, name: str) -> Any:  # token_ids, vocab_size: what a lexical head reads
        if name in ("token_ids", "vocab_size"):
            return getattr(self.inner, name)
        raise AttributeError(name)


def _embedder(backend: str, work: Path, fresh: bool) -> Any:
    from router_ml.embedder import SentenceTransformerEmbedder
    from router_ml.onnx_embedder import OnnxEmbedder
    from router_ml.static_embedder import StaticEmbedder

    from .distill_static import build_static_files
    from .embedders import ONNX_ID, STATIC_ID
    from .export_onnx import build_onnx_files

    if backend == "st":
        return SentenceTransformerEmbedder()
    if backend == "onnx":
        d = work / "onnx"
        if fresh or not (d / "embedder.onnx").is_file():
            build_onnx_files(d)
        return OnnxEmbedder(d / "embedder.onnx", d / "tokenizer.json", id=ONNX_ID)
    d = work / "static"
    if fresh or not (d / "static.npy").is_file():
        build_static_files(d)
    return StaticEmbedder(d / "static.npy", d / "tokenizer.json", id=STATIC_ID)


def _report(y: Sequence[int], pred: Sequence[int]) -> dict[str, float]:
    y, pred = np.asarray(y), np.asarray(pred)
    return {
        "accuracy": round(float((y == pred).mean()), 4),
        "underroute": round(float((pred < y).mean()), 4),
        "overroute": round(float((pred > y).mean()), 4),
    }


def train_backends(data: Path, work: Path, fresh: bool) -> tuple[dict[str, Any], list[int]]:
    """Train each backend's classifier; return its dev figures and the dev labels."""
    from router_ml.data import load_rows

    from .splits import split_rows
    from .trainer import train_model

    rows = load_rows(data)
    _, dev_rows = split_rows(rows, data)
    y_dev = [int(r.tier) for r in dev_rows]
    out: dict[str, Any] = {}
    for backend in BACKENDS:
        t = time.perf_counter()
        base = backend.split("+")[0]
        inner = _embedder(base, work, fresh and base == backend)
        build_s = time.perf_counter() - t
        memo_path = work / f"vectors-{base}.npz"
        if fresh and base == backend:
            memo_path.unlink(missing_ok=True)
        emb = MemoEmbedder(inner, memo_path)
        t = time.perf_counter()
        res = train_model(data, work / "models" / backend, embedder=emb, seed=0, lexical=backend.endswith("+lexical"))
        train_s = time.perf_counter() - t
        p = res.predictor
        probs = p.predict_proba_vectors(p.featurize([r.request for r in dev_rows]))
        budget = res.dev_serving["classifier_budget"]
        out[backend] = {
            "model_dir": str(res.out),
            "artifact_mb": round(sum(f.stat().st_size for f in res.out.iterdir() if f.is_file()) / 1e6, 2),
            "build_s": round(build_s, 1),
            "train_s": round(train_s, 1),
            "dev_n": len(dev_rows),
            "dev_argmax": _report(y_dev, probs.argmax(axis=1)),
            "dev_with_budget": {
                k: round(float(budget[k]), 4)
                for k in ("accuracy", "underroute_rate", "overroute_rate")
            },
        }
    return out, y_dev


def per_request(model_dir: str, requests: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Route each dev request once (warm): its time in ms, probabilities and budget tier."""
    from router_ml import Router

    router = Router.load(model_dir, llm=None, confidence_threshold=0.0)  # the classifier always answers
    for r in requests[:5]:
        router.route(r)
    times, probs, tiers = [], [], []
    for r in requests:
        t = time.perf_counter()
        d = router.route(r)
        times.append((time.perf_counter() - t) * 1e3)
        probs.append([d.probabilities[k] for k in ("SIMPLE", "MEDIUM", "COMPLEX")])
        tiers.append(int(d.tier))
    return np.asarray(times), np.asarray(probs), tiers


def _pcts(ms: np.ndarray) -> dict[str, float]:
    return {"p50_ms": round(float(np.median(ms)), 3), "p99_ms": round(float(np.quantile(ms, 0.99)), 3), "n": len(ms)}


def cascade(
    measured: dict[str, tuple], y: Sequence[int], fast: str = "static+lexical", slow: str = "onnx"
) -> list[dict[str, Any]]:
    """Static first; under ``threshold`` top probability, the ONNX classifier decides (its own budget)."""
    y = np.asarray(y)
    t_fast, p_fast, tier_fast = measured[fast]
    t_slow, _, tier_slow = measured[slow]
    rows = []
    for threshold in CASCADE_THRESHOLDS:
        unsure = p_fast.max(axis=1) < threshold
        pred = np.where(unsure, tier_slow, tier_fast)
        rows.append({
            "threshold": threshold,
            "to_transformer": round(float(unsure.mean()), 3),
            "dev_route": _pcts(t_fast + np.where(unsure, t_slow, 0.0)),
            "dev_with_budget": _report(y, pred),
        })
    return rows


def latency(model_dir: str, n: int) -> dict[str, Any]:
    """Warm ``Router.route()`` at each length, and ``route_batch`` throughput, in this process."""
    from router_ml import Router

    router = Router.load(model_dir, llm=None)
    out: dict[str, Any] = {f"route_{size}_chars": _timings(lambda: router.route(p), n) for size, p in PROMPTS.items()}
    out["batch_512_200_chars_per_s"] = throughput(router.route_batch)
    return out


def main(
    data: Path = Path("data"), work: Path = Path("/tmp/router-ml-bench"), n: int = 200, fresh: bool = False
) -> dict[str, Any]:
    from router_ml.data import load_rows

    from .splits import split_rows

    work.mkdir(parents=True, exist_ok=True)
    accuracy, y_dev = train_backends(data, work, fresh)
    dev_requests = [r.raw for r in split_rows(load_rows(data), data)[1]]  # as apps send them
    report: dict[str, Any] = {"data": str(data), "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}
    measured = {}
    for backend in BACKENDS:
        model_dir = accuracy[backend]["model_dir"]
        measured[backend] = per_request(model_dir, dev_requests)
        report[backend] = {
            **accuracy[backend],
            **latency(model_dir, n),
            "dev_route": _pcts(measured[backend][0]),
            "cold_start": cold_start(model_dir),
        }
    report["cascade_static_then_onnx"] = cascade(measured, y_dev)
    report["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    return report


def _cells(r: dict[str, Any]) -> list[str]:
    cold, arg, bud = r["cold_start"], r["dev_argmax"], r["dev_with_budget"]
    lat = [f"{r[f'route_{k}_chars']['p50_ms']:.2f} / {r[f'route_{k}_chars']['p99_ms']:.2f}" for k in PROMPTS]
    return [
        *lat,
        f"{r['dev_route']['p50_ms']:.2f} / {r['dev_route']['p99_ms']:.2f}",
        f"{r['batch_512_200_chars_per_s']:,.0f}",
        f"{cold['total_s']:.2f} ({cold['import_s']:.2f} + {cold['load_s']:.2f} + {cold['first_call_s']:.2f})",
        f"{cold['peak_rss_mb']:.0f}",
        "yes" if cold["torch_imported"] else "no",
        f"{r['artifact_mb']:.1f}",
        f"{arg['accuracy']:.3f} / {arg['underroute']:.3f}",
        f"{bud['accuracy']:.3f} / {bud['underroute_rate']:.3f}",
    ]


def to_markdown(report: dict[str, Any]) -> str:
    """The side-by-side table for docs/benchmarks.md."""
    labels = [
        *(f"route() p50 / p99 at {int(k):,} chars (ms)" for k in PROMPTS),
        f"route() p50 / p99 over the {report['st']['dev_n']} dev requests (ms)",
        "route_batch, 512 x 200 chars (requests/s)",
        "cold start: import + load + first route (s)",
        "peak RSS after the first route (MB)",
        "torch imported while serving",
        "model directory (MB)",
        f"dev accuracy / underroute, argmax (n={report['st']['dev_n']})",
        "dev accuracy / underroute, fitted budget",
    ]
    names = {"st": "sentence-transformers fp32", "onnx": "ONNX int8", "static": "static (distilled)",
             "static+lexical": "static + lexical (default)"}
    columns = [_cells(report[b]) for b in BACKENDS]
    lines = ["| | " + " | ".join(names[b] for b in BACKENDS) + " |", "|---" * (len(BACKENDS) + 1) + "|"]
    lines += ["| " + " | ".join([label, *(c[i] for c in columns)]) + " |" for i, label in enumerate(labels)]
    lines += [
        "",
        "| cascade: static + lexical, then ONNX under threshold | to ONNX | route() p50 / p99 over dev (ms) "
        "| dev accuracy / underroute, fitted budgets |",
        "|---|---|---|---|",
    ]
    for c in report["cascade_static_then_onnx"]:
        lat, acc = c["dev_route"], c["dev_with_budget"]
        lines.append(
            f"| top probability < {c['threshold']:.1f} | {c['to_transformer']:.1%} | {lat['p50_ms']:.2f} / "
            f"{lat['p99_ms']:.2f} | {acc['accuracy']:.3f} / {acc['underroute']:.3f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/router-ml-bench"))
    ap.add_argument("-n", type=int, default=200, help="timed calls per length")
    ap.add_argument("--fresh", action="store_true", help="rebuild the onnx/static files and re-embed")
    run_cli(ap, lambda a: main(a.data, a.work, a.n, a.fresh), to_markdown)
