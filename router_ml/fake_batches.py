"""Message Batches of the fake API: created "in_progress", ended once ``batch_delay_s`` has passed.

Every item is answered by the backend's message logic when the batch ends (scripted errors become
"errored" items), billed at ``service_tier`` "batch"; results come back as JSONL in no fixed order.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping

from .fake_backend import ApiError, Backend, validate_params

__all__ = ["BatchStore"]

_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _now_iso(t: float | None = None) -> str:
    when = dt.datetime.fromtimestamp(time.time() if t is None else t, dt.timezone.utc)
    return when.isoformat().replace("+00:00", "Z")


@dataclass
class _Batch:
    id: str
    created: float
    requests: list[tuple[str, dict[str, Any]]]
    results: list[dict[str, Any]] | None = None
    canceled_at: float | None = None
    ended_at: float | None = None


class BatchStore:
    """The batches of one ``Backend`` (sharing its lock, counters and answers)."""

    def __init__(self, backend: Backend):
        self._backend = backend
        self._lock = backend._lock
        self._batches: dict[str, _Batch] = {}

    def __len__(self) -> int:
        return len(self._batches)

    def create(self, body: Any, base_url: str) -> dict[str, Any]:
        reqs = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(reqs, list) or not reqs:
            raise ApiError(400, "invalid_request_error", "requests: must be a non-empty list")
        seen: set[str] = set()
        items = []
        for i, r in enumerate(reqs):
            cid = r.get("custom_id") if isinstance(r, dict) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                raise ApiError(400, "invalid_request_error", f"requests.{i}.custom_id: 1-64 of [a-zA-Z0-9_-]")
            if cid in seen:
                raise ApiError(400, "invalid_request_error", f"requests.{i}.custom_id: duplicate {cid!r}")
            seen.add(cid)
            validate_params(r.get("params"))
            items.append((cid, r["params"]))
        batch = _Batch(id=self._backend._next_id("msgbatch"), created=time.time(), requests=items)
        with self._lock:
            self._batches[batch.id] = batch
        return self._batch_json(batch, base_url, settle=False)  # "in_progress" at first, as for real

    def _get(self, batch_id: str) -> _Batch:
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            raise ApiError(404, "not_found_error", f"no batch {batch_id!r}")
        return batch

    def _settle(self, batch: _Batch) -> None:
        """End the batch once its delay has passed (or it was canceled), computing every result."""
        with self._lock:
            if batch.ended_at is not None:
                return
            if batch.canceled_at is None and time.time() < batch.created + self._backend.batch_delay_s:
                return
            results = []
            for cid, params in batch.requests:
                if batch.canceled_at is not None:
                    result: dict[str, Any] = {"type": "canceled"}
                else:
                    self._backend.calls["batch_items"] += 1
                    try:
                        result = {"type": "succeeded", "message": self._backend.message(params, service_tier="batch")}
                    except ApiError as err:
                        result = {"type": "errored", "error": err.body()}
                results.append({"custom_id": cid, "result": result})
            batch.results, batch.ended_at = results, time.time()

    def _batch_json(self, batch: _Batch, base_url: str, *, settle: bool = True) -> dict[str, Any]:
        if settle:
            self._settle(batch)
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if batch.results is None:
            counts["processing"] = len(batch.requests)
        else:
            for r in batch.results:
                counts[r["result"]["type"]] += 1
        ended = batch.ended_at is not None
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": "ended" if ended else "canceling" if batch.canceled_at else "in_progress",
            "request_counts": counts,
            "created_at": _now_iso(batch.created),
            "expires_at": _now_iso(batch.created + 86_400),
            "ended_at": _now_iso(batch.ended_at) if ended else None,
            "cancel_initiated_at": _now_iso(batch.canceled_at) if batch.canceled_at else None,
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{batch.id}/results" if ended else None,
        }

    def retrieve(self, batch_id: str, base_url: str) -> dict[str, Any]:
        return self._batch_json(self._get(batch_id), base_url)

    def list(self, query: Mapping[str, str], base_url: str) -> dict[str, Any]:
        with self._lock:
            ids = sorted(self._batches, key=lambda i: self._batches[i].created, reverse=True)
        try:
            limit = int(query.get("limit", 20))
        except ValueError:
            raise ApiError(400, "invalid_request_error", "limit: must be an integer") from None
        if "after_id" in query and query["after_id"] in ids:
            ids = ids[ids.index(query["after_id"]) + 1 :]
        elif "before_id" in query and query["before_id"] in ids:
            ids = ids[: ids.index(query["before_id"])][-limit:]
        page = ids[:limit]
        data = [self.retrieve(i, base_url) for i in page]
        return {
            "data": data,
            "has_more": len(ids) > len(page),
            "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None,
        }

    def cancel(self, batch_id: str, base_url: str) -> dict[str, Any]:
        """Cancel: requests not yet processed end as "canceled" (here: all, unless already ended)."""
        batch = self._get(batch_id)
        with self._lock:
            if batch.ended_at is None and batch.canceled_at is None:
                batch.canceled_at = time.time()
        return self._batch_json(batch, base_url)

    def delete(self, batch_id: str) -> dict[str, Any]:
        batch = self._get(batch_id)
        self._settle(batch)
        if batch.ended_at is None:
            raise ApiError(400, "invalid_request_error", "batch is still processing; cancel it first")
        with self._lock:
            del self._batches[batch_id]
        return {"id": batch_id, "type": "message_batch_deleted"}

    def results(self, batch_id: str) -> bytes:
        batch = self._get(batch_id)
        self._settle(batch)
        if batch.results is None:
            raise ApiError(400, "invalid_request_error", "batch has not ended; results are not ready")
        shuffled = list(batch.results)
        random.Random(batch_id).shuffle(shuffled)  # the real API gives no order either
        return "".join(json.dumps(r) + "\n" for r in shuffled).encode()
