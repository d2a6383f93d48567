"""Read the prompts of the shared external benchmarks (``../shared/benchmarks``).

They are evaluation data only: this module reads them where they lie and never copies them.
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path
from typing import Iterator

__all__ = ["DEFAULT_BENCHMARKS", "find_benchmarks", "iter_benchmark_prompts"]

DEFAULT_BENCHMARKS = Path(__file__).resolve().parent.parent.parent / "shared" / "benchmarks"
_TEXT_KEYS = ("prompt", "instruction", "Instruction", "question", "train_prompt", "turns")


def find_benchmarks(path: str | Path | None = None) -> Path | None:
    """The benchmark folder if it exists (argument, else ``../shared/benchmarks``), else None."""
    p = Path(path) if path is not None else DEFAULT_BENCHMARKS
    return p if p.is_dir() else None


def _texts(obj: dict) -> Iterator[str]:
    for key in _TEXT_KEYS:
        v = obj.get(key)
        if isinstance(v, str) and v.strip():
            yield v
        elif isinstance(v, list):
            yield from (t for t in v if isinstance(t, str) and t.strip())


def iter_benchmark_prompts(root: str | Path) -> Iterator[tuple[str, str]]:
    """Yield ``(file, prompt)`` for every prompt-like field in the benchmark folder."""
    csv.field_size_limit(sys.maxsize)
    root = Path(root)
    for path in sorted(root.rglob("*")):
        name = path.name
        if name.endswith((".jsonl", ".jsonl.gz")):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        try:
                            obj = json.loads(line)
                        except json.JSONDecodeError:
                            continue
                        if isinstance(obj, dict):
                            for t in _texts(obj):
                                yield str(path.relative_to(root)), t
        elif name.endswith(".csv"):
            with open(path, newline="", encoding="utf-8") as f:
                for obj in csv.DictReader(f):
                    for t in _texts(obj):
                        yield str(path.relative_to(root)), t
