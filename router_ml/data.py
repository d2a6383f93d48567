"""The data format: JSONL, one request per line, read with line-numbered validation.

A row is ``{"prompt": "..."}`` or ``{"messages": [...]}`` (optional ``"system"``, ``"tools"``),
plus ``"tier"`` for labeled data. Other keys (``id``, ``tags``, ``label_source``, ...) are kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .errors import DataError, InvalidRequestError
from .normalize import NormalizedRequest, normalize
from .tiers import Tier

__all__ = ["Row", "read_jsonl", "load_rows", "data_files", "rows_sha256"]


@dataclass
class Row:
    """One request of a data file, validated; ``raw`` keeps every original key."""

    raw: dict[str, Any]
    request: NormalizedRequest
    tier: Tier | None
    where: str  # "file:line"

    @property
    def id(self) -> str:
        return str(self.raw.get("id", self.where))

    @property
    def tags(self) -> list[str]:
        tags = self.raw.get("tags", [])
        return [str(t) for t in tags] if isinstance(tags, list) else [str(tags)]


def data_files(path: str | Path) -> list[Path]:
    """A file, or every ``*.jsonl`` below a directory in sorted order."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.jsonl") if not any(s.startswith(".") for s in p.parts))
        if not files:
            raise DataError("no *.jsonl files in this directory", path=path)
        return files
    if not path.exists():
        raise DataError("no such file or directory", path=path)
    return [path]


def read_jsonl(path: str | Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)``; blank lines are skipped, anything else must be an object."""
    path = Path(path)
    try:
        f = path.open(encoding="utf-8")
    except OSError as err:
        raise DataError(f"cannot open: {err.strerror}", path=path) from err
    with f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"invalid JSON: {err.msg} (column {err.colno})", path=path, line=n) from None
            if not isinstance(obj, dict):
                raise DataError(f"expected a JSON object, got {type(obj).__name__}", path=path, line=n)
            yield n, obj


def load_rows(path: str | Path, *, require_tier: bool = True) -> list[Row]:
    """Read and validate every row of a file or directory."""
    rows: list[Row] = []
    for file in data_files(path):
        for n, obj in read_jsonl(file):
            if "prompt" not in obj and "messages" not in obj:
                raise DataError("row needs 'prompt' or 'messages'", path=file, line=n)
            try:
                req = normalize(obj)
            except InvalidRequestError as err:
                raise DataError(str(err), path=file, line=n) from None
            tier = None
            if "tier" in obj and obj["tier"] is not None:
                try:
                    tier = Tier.parse(obj["tier"])
                except ValueError as err:
                    raise DataError(str(err), path=file, line=n) from None
            elif require_tier:
                raise DataError("row has no 'tier' label", path=file, line=n)
            rows.append(Row(raw=obj, request=req, tier=tier, where=f"{file}:{n}"))
    return rows


def rows_sha256(rows: Iterable[Row]) -> str:
    """A stable hash of the labeled content (order-independent), for the model card."""
    digests = sorted(
        hashlib.sha256(
            json.dumps(
                {k: r.raw.get(k) for k in ("prompt", "messages", "system", "tools")} | {"tier": str(r.tier)},
                sort_keys=True,
                ensure_ascii=False,
            ).encode("utf-8")
        ).hexdigest()
        for r in rows
    )
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()
