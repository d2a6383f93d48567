"""Read routed traffic for retraining and drift: a decision log (SQLite) or a JSONL file.

Both become ``LogRecord``s. A JSONL line is either a decision as ``DecisionLog.rows()`` yields it
(``request_json``, ``tier``, ``source``, ``confidence``, ``probabilities``, ``feedback``, ...) or a bare
request in the data format (``prompt`` or ``messages``, optional ``system``/``tools``/``id``/
``created_at``; routing facts as ``routed_tier``, ``source``, ``confidence``, ``probabilities``; a label as
``tier`` *with* ``label_source``; ``right_tier`` as feedback).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from router_ml.data import read_jsonl
from router_ml.errors import DataError
from router_ml.tiers import Tier

__all__ = ["LogRecord", "read_log", "is_sqlite", "parse_since"]

_SQLITE_MAGIC = b"SQLite format 3\x00"
_REQUEST_KEYS = ("messages", "system", "tools")


@dataclass
class LogRecord:
    """One logged request and what was decided and said about it.

    ``request`` is a data row (``messages``/``system``/``tools``), None when the log kept no request
    (privacy "hash", or only the normalized text was stored). ``feedback_tier`` is the latest right
    tier a user gave. ``label`` is a label carried by a JSONL row: ``(source, tier)``.
    """

    id: str
    created_at: str | None
    request: dict[str, Any] | None
    privacy: str | None = None
    text: str | None = None  # the normalized text the classifier read, when stored
    routed_tier: Tier | None = None
    source: str | None = None  # classifier, llm, safe, rules, explicit
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    feedback_tier: Tier | None = None
    feedback_at: str | None = None
    llm_model: str | None = None
    est_tokens: int | None = None
    label: tuple[str, Tier] | None = None

    @property
    def classifier_tier(self) -> Tier | None:
        """The classifier's best guess (argmax), when its probabilities were logged."""
        probs = self.probabilities or {}
        known = {t: float(probs[t.name]) for t in Tier if isinstance(probs.get(t.name), (int, float))}
        return max(known, key=known.get) if len(known) == len(Tier) else None  # type: ignore[arg-type]


def parse_since(value: str | dt.datetime | None, *, now: dt.datetime | None = None) -> str | None:
    """An ISO time, or a duration back from now ("7d", "12h", "30m"), as the log's UTC text."""
    if value is None or value == "":
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    if isinstance(value, str) and value[:-1].isdigit() and value[-1:] in ("d", "h", "m"):
        unit = {"d": "days", "h": "hours", "m": "minutes"}[value[-1]]
        value = now - dt.timedelta(**{unit: int(value[:-1])})
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise DataError(f"since must be an ISO time or a duration like 7d, got {value!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(16) == _SQLITE_MAGIC
    except OSError:
        return False


def _tier(value: Any) -> Tier | None:
    if value in (None, ""):
        return None
    try:
        return Tier.parse(value)
    except ValueError:
        return None


def _from_decision(row: dict[str, Any]) -> LogRecord:
    """A ``DecisionLog.rows()`` dict (or a JSONL dump of one)."""
    feedback = [f for f in row.get("feedback") or [] if f.get("right_tier")]
    request = row.get("request_json")
    if isinstance(request, dict):
        request = {k: request[k] for k in _REQUEST_KEYS if request.get(k) is not None} or None
    extra = row.get("extra") or {}
    return LogRecord(
        id=str(row.get("id")),
        created_at=row.get("created_at"),
        request=request if isinstance(request, dict) and request.get("messages") else None,
        privacy=row.get("privacy"),
        text=row.get("request_text"),
        routed_tier=_tier(row.get("tier")),
        source=row.get("source"),
        confidence=row.get("confidence"),
        probabilities=row.get("probabilities") or None,
        feedback_tier=_tier(feedback[-1]["right_tier"]) if feedback else None,
        feedback_at=feedback[-1].get("created_at") if feedback else None,
        llm_model=extra.get("llm_model") if isinstance(extra, dict) else None,
        est_tokens=row.get("est_tokens"),
    )


def _from_request(obj: dict[str, Any], where: str) -> LogRecord:
    """A bare request line of a requests.jsonl."""
    from router_ml.normalize import normalize

    request = {"messages": [{"role": "user", "content": obj["prompt"]}]} if "prompt" in obj else {}
    request.update({k: obj[k] for k in _REQUEST_KEYS if obj.get(k) is not None})
    try:
        norm = normalize(request)
    except ValueError as err:
        raise DataError(str(err), path=where) from None
    label = None
    if obj.get("tier") is not None and obj.get("label_source"):
        label = (str(obj["label_source"]), Tier.parse(obj["tier"]))
    return LogRecord(
        id=str(obj.get("id", where)),
        created_at=parse_since(obj.get("created_at")),  # the log's fixed-width UTC text, so it sorts
        request=request,
        text=norm.text,
        routed_tier=_tier(obj.get("routed_tier")),
        source=obj.get("source"),
        confidence=obj.get("confidence"),
        probabilities=obj.get("probabilities") or None,
        feedback_tier=_tier(obj.get("right_tier")),
        est_tokens=norm.est_tokens,
        label=label,
    )


def _read_jsonl(path: Path) -> Iterable[LogRecord]:
    for n, obj in read_jsonl(path):
        if "request_hash" in obj or "request_json" in obj:
            yield _from_decision(obj)
        elif "prompt" in obj or "messages" in obj:
            yield _from_request(obj, f"{path}:{n}")
        else:
            raise DataError("expected a decision (request_json) or a request (prompt/messages)", path=path, line=n)


def read_log(path: str | Path, since: str | None = None, *, with_feedback_before: bool = False) -> list[LogRecord]:
    """Records created after ``since`` (log UTC text, exclusive), in time order.

    ``with_feedback_before`` also returns older records that carry a feedback tier: feedback often
    arrives after the decision, and it is the most trusted label there is.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("no such log file", path=path)
    if is_sqlite(path):
        from router_ml.decision_log import DecisionLog

        log = DecisionLog(path)
        try:
            rows = log.rows() if with_feedback_before or since is None else log.rows(since)
            records = [_from_decision(r) for r in rows]
        finally:
            log.close()
    else:
        records = list(_read_jsonl(path))
    if since is None:
        return records
    return [r for r in records
            if (r.created_at or "") > since or (with_feedback_before and r.feedback_tier is not None)]
