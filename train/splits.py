"""The fixed, stratified dev split.

For the shipped seed set the split is a committed file (``data/splits.json``: the dev ids), so that
model selection always looks at the same rows as the data grows. Data without such a file is split
by tier with a fixed seed.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Sequence

from router_ml.data import Row
from router_ml.errors import DataError
from router_ml.fileio import atomic_write_text

__all__ = ["SPLIT_FILE", "stratified_dev_ids", "load_split", "write_split", "split_rows"]

SPLIT_FILE = "splits.json"


def stratified_dev_ids(rows: Sequence[Row], *, dev_fraction: float = 0.2, seed: int = 0) -> list[str]:
    """Pick ``dev_fraction`` of each tier, reproducibly."""
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    by_tier: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        by_tier[str(r.tier)].append(r.id)
    rng = random.Random(seed)
    dev: list[str] = []
    for tier in sorted(by_tier):
        ids = sorted(by_tier[tier])
        rng.shuffle(ids)
        dev.extend(ids[: max(1, round(len(ids) * dev_fraction))])
    return sorted(dev)


def load_split(data_dir: Path) -> set[str] | None:
    path = data_dir / SPLIT_FILE
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        return set(obj["dev"])
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataError(f"not a valid split file ({err}); expected {{\"dev\": [ids]}}", path=path) from err


def write_split(data_dir: Path, dev_ids: Sequence[str], *, note: str = "") -> Path:
    path = data_dir / SPLIT_FILE
    text = json.dumps({"note": note, "dev": sorted(dev_ids)}, indent=1, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def split_rows(
    rows: Sequence[Row], data_path: str | Path, *, dev_fraction: float = 0.2, seed: int = 0
) -> tuple[list[Row], list[Row]]:
    """``(train, dev)``: by the committed split file when the data directory has one."""
    data_path = Path(data_path)
    dev_ids = load_split(data_path) if data_path.is_dir() else None
    if dev_ids is None:
        dev_ids = set(stratified_dev_ids(rows, dev_fraction=dev_fraction, seed=seed))
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise DataError(f"duplicate row id {dup!r}: ids must be unique to split", path=data_path)
    train = [r for r in rows if r.id not in dev_ids]
    dev = [r for r in rows if r.id in dev_ids]
    if not dev or not train:
        raise DataError(f"split left {len(train)} training and {len(dev)} dev rows", path=data_path)
    return train, dev
