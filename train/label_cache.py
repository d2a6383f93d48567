"""The persistent label cache: SQLite, one committed row per label as soon as it arrives.

A label is keyed by (labeler, model, prompt version, request hash), so a re-run never pays for the
same label twice, and a run killed at any moment (even ``kill -9``) loses at most the calls that were
in flight. WAL journaling keeps each commit cheap and the file consistent after a crash.

It also holds what resuming needs beyond labels: the answers the ``outcome`` labeler already paid
for (``steps``) and the Message Batches submitted and not yet collected (``batches``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from router_ml.errors import DataError
from router_ml.tiers import Tier

__all__ = ["LabelCache", "LabelKey", "CachedLabel"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (
    labeler TEXT NOT NULL, model TEXT NOT NULL, prompt_version TEXT NOT NULL, request_hash TEXT NOT NULL,
    tier TEXT NOT NULL, reason TEXT NOT NULL, cost_usd REAL NOT NULL, label_model TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (labeler, model, prompt_version, request_hash)
);
CREATE TABLE IF NOT EXISTS steps (
    key TEXT PRIMARY KEY, value TEXT NOT NULL, cost_usd REAL NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    batch_id TEXT PRIMARY KEY, labeler TEXT NOT NULL, model TEXT NOT NULL, prompt_version TEXT NOT NULL,
    items TEXT NOT NULL, created_at REAL NOT NULL, collected_at REAL
);
"""


@dataclass(frozen=True)
class LabelKey:
    labeler: str
    model: str
    prompt_version: str
    request_hash: str


@dataclass(frozen=True)
class CachedLabel:
    tier: Tier
    reason: str
    cost_usd: float
    model: str


class LabelCache:
    """SQLite-backed cache, safe to share between threads (one connection behind a lock).

    >>> cache = LabelCache(".cache/labels.sqlite")
    >>> cache.get_many([key])  # -> {key: CachedLabel(...)} for the keys already labeled
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # durable across process kills
            self._db.executescript(_SCHEMA)
        except (sqlite3.DatabaseError, OSError) as err:
            raise DataError(f"cannot open the label cache: {err}", path=self.path) from err
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> "LabelCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- labels ----------------------------------------------------------------------------------
    def get_many(self, keys: Iterable[LabelKey]) -> dict[LabelKey, CachedLabel]:
        out: dict[LabelKey, CachedLabel] = {}
        with self._lock:
            for k in keys:
                row = self._db.execute(
                    "SELECT tier, reason, cost_usd, label_model FROM labels "
                    "WHERE labeler=? AND model=? AND prompt_version=? AND request_hash=?",
                    (k.labeler, k.model, k.prompt_version, k.request_hash),
                ).fetchone()
                if row is not None:
                    out[k] = CachedLabel(Tier[row[0]], row[1], row[2], row[3])
        return out

    def put(self, key: LabelKey, tier: Tier, reason: str, cost_usd: float, model: str) -> bool:
        """Commit one label; an existing label for the key is kept (returns False)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO labels VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key.labeler, key.model, key.prompt_version, key.request_hash, tier.name, reason, cost_usd, model,
                 time.time()),
            )
            return cur.rowcount == 1

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM labels").fetchone()[0]

    # -- outcome steps ---------------------------------------------------------------------------
    def get_step(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM steps WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put_step(self, key: str, value: str, cost_usd: float) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO steps VALUES (?, ?, ?, ?)", (key, value, cost_usd, time.time()))

    # -- batches ---------------------------------------------------------------------------------
    def add_batch(self, batch_id: str, labeler: str, model: str, prompt_version: str,
                  items: dict[str, str]) -> None:
        """Remember a submitted batch: ``items`` maps custom_id -> request hash."""
        with self._lock:
            self._db.execute(
                "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (batch_id, labeler, model, prompt_version, json.dumps(items), time.time()),
            )

    def pending_batches(self, labeler: str, model: str, prompt_version: str) -> dict[str, dict[str, str]]:
        """Batches submitted and not yet collected: batch id -> {custom_id: request hash}."""
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id, items FROM batches WHERE labeler=? AND model=? AND prompt_version=? "
                "AND collected_at IS NULL ORDER BY created_at",
                (labeler, model, prompt_version),
            ).fetchall()
        return {bid: json.loads(items) for bid, items in rows}

    def mark_collected(self, batch_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE batches SET collected_at=? WHERE batch_id=?", (time.time(), batch_id))
