"""``DecisionLog``: every routing decision, its response's usage and cost, and user feedback, in SQLite.

It exists so a retraining job can read what was routed and what users said, and so someone can ask
"what did routing cost us this week" with plain ``sqlite3``. The schema, privacy modes and
concurrency rules are in ``docs/decision_log.md``; in short:

- one SQLite file in WAL mode (readers never block the writer; ``busy_timeout`` makes writers from
  other threads or processes wait instead of failing), created with its schema on first use;
- writes go through one connection behind a lock: measured as fast as a connection per thread
  (8-10k bare inserts/s, 2-3k ``record()`` calls/s either way on 2 vCPUs) and simpler to close;
  ``rows()`` reads on its own connection so a long scan never blocks writers; a forked child opens
  its own connection;
- each write is one autocommitted statement, so a row is either fully there or the call raised;
- privacy ``"full"`` keeps the text, ``"redact"`` (default) strips personal data, ``"hash"`` keeps
  only hashes; secrets are scrubbed in every mode (``router_ml.redact``).

Example::

    with DecisionLog("router-ml.db") as log:
        decision_id = log.record(request, router.route(request))
        log.feedback(decision_id, good=False, right_tier="COMPLEX")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

from .config import LOG_PRIVACY_MODES, Settings, load_settings
from .errors import ConfigError, DecisionLogError, DecisionNotFoundError
from .normalize import NormalizedRequest, normalize
from .redact import clean_text as _clean
from .redact import redact, scrub_obj, scrub_secrets, strip_base64
from .tiers import Tier

__all__ = ["DecisionLog", "DecisionLogError", "DecisionNotFoundError", "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
MAX_REQUEST_CHARS = 1_000_000  # longer request JSON is not stored (text and hash still are)

# Column meanings: docs/decision_log.md. Usage columns stay NULL until record_usage.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY, created_at TEXT NOT NULL, privacy TEXT NOT NULL,
    request_hash TEXT NOT NULL, request_text TEXT, request_json TEXT,
    est_tokens INTEGER NOT NULL, n_turns INTEGER NOT NULL, has_code INTEGER NOT NULL,
    has_tools INTEGER NOT NULL, has_images INTEGER NOT NULL, has_system INTEGER NOT NULL,
    tier TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL, confidence REAL,
    probabilities TEXT, reason TEXT, routing_cost_usd REAL NOT NULL DEFAULT 0, latency_ms REAL,
    conversation_id TEXT, extra TEXT,
    model_used TEXT, input_tokens INTEGER, output_tokens INTEGER, cache_write_tokens INTEGER,
    cache_read_tokens INTEGER, response_cost_usd REAL, responded_at TEXT
);
CREATE INDEX IF NOT EXISTS decisions_created_at ON decisions (created_at);
CREATE INDEX IF NOT EXISTS decisions_conversation ON decisions (conversation_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, decision_id TEXT NOT NULL REFERENCES decisions (id),
    created_at TEXT NOT NULL, good INTEGER, right_tier TEXT, note TEXT
);
CREATE INDEX IF NOT EXISTS feedback_decision ON feedback (decision_id);
"""
_COLUMNS = (
    "id, created_at, privacy, request_hash, request_text, request_json, est_tokens, n_turns, has_code, "
    "has_tools, has_images, has_system, tier, model, source, confidence, probabilities, reason, "
    "routing_cost_usd, latency_ms, conversation_id, extra"
)
_INSERT = f"INSERT INTO decisions ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(', ')))})"


def _now() -> str:
    """ISO 8601 UTC with microseconds: fixed width, so text order is time order."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso(when: dt.datetime | str) -> str:
    if isinstance(when, str):
        when = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"give an aware datetime (UTC), got naive {when!r}")
    return when.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sha256(text: str) -> str:
    return hashlib.sha256(_clean(text).encode("utf-8")).hexdigest()


def request_hash(req: NormalizedRequest, scrubbed_text: str | None = None) -> str:
    """sha256 of the normalized request (secrets scrubbed first), the same in every privacy mode."""
    text = scrubbed_text if scrubbed_text is not None else scrub_secrets(_clean(req.text))
    fields = [text, scrub_secrets(_clean(req.last_user)), req.est_tokens, req.n_turns,
              req.has_code, req.has_tools, req.has_images, req.has_system]
    return _sha256(json.dumps(fields, ensure_ascii=False))


def _request_payload(request: Any) -> dict[str, Any] | None:
    """The request as a data-file row (``messages``, ``system``, ``tools``), or None if unknown."""
    if isinstance(request, str):
        return {"messages": [{"role": "user", "content": request}]}
    if isinstance(request, (list, tuple)):
        return {"messages": list(request)}
    if isinstance(request, Mapping):
        out: dict[str, Any] = {}
        if "prompt" in request:
            out["messages"] = [{"role": "user", "content": request["prompt"]}]
        for key in ("messages", "system", "tools"):
            if request.get(key) is not None:
                out[key] = request[key]
        return out
    return None


def _usage_value(usage: Any, *names: str) -> int | None:
    for name in names:
        value = usage.get(name) if isinstance(usage, Mapping) else getattr(usage, name, None)
        if value is not None:
            return int(value)
    return None


class DecisionLog:
    """An append-only SQLite log of routing decisions, shareable across threads and processes.

    Parameters
    ----------
    path : str or Path
        The SQLite file, created (with parent directories) on first use.
    privacy : "full", "redact" or "hash", default "redact"
        What is kept of the request text; see the module docstring.
    durable : bool, default False
        ``synchronous=FULL`` (each commit survives power loss, ~3x slower) instead of ``NORMAL``
        (survives a crash of the process, which is what WAL guarantees at NORMAL).
    busy_timeout_s : float, default 30
        How long a write waits for another process's write lock before raising.
    """

    def __init__(self, path: str | Path, *, privacy: str = "redact", durable: bool = False,
                 busy_timeout_s: float = 30.0):
        if privacy not in LOG_PRIVACY_MODES:
            raise ConfigError(f"log_privacy must be one of {', '.join(LOG_PRIVACY_MODES)}, got {privacy!r}")
        if not isinstance(busy_timeout_s, (int, float)) or busy_timeout_s <= 0:
            raise ConfigError(f"busy_timeout_s must be a positive number, got {busy_timeout_s!r}")
        if str(path) in ("", ":memory:"):  # every read uses its own connection: it needs a file
            raise ConfigError(f"log_path must be a file path, got {str(path)!r}")
        self.path = Path(path)
        self.privacy = privacy
        self.durable = durable
        self.busy_timeout_s = float(busy_timeout_s)
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._pid = os.getpid()
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "DecisionLog | None":
        """The log configured by ``log_path`` / ``log_privacy`` (``ROUTER_ML_LOG``), or None."""
        settings = settings or load_settings()
        if settings.log_path is None:
            return None
        return cls(settings.log_path, privacy=settings.log_privacy)

    def __repr__(self) -> str:
        return f"DecisionLog({str(self.path)!r}, privacy={self.privacy!r})"

    # -- connections ---------------------------------------------------------------------------
    def _connect(self, *, read_only: bool = False) -> sqlite3.Connection:
        try:
            if read_only:
                uri = self.path.resolve().as_uri() + "?mode=ro"
                db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                     timeout=self.busy_timeout_s)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=self.busy_timeout_s)
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            if not read_only:
                self._init(db)
            return db
        except sqlite3.DatabaseError as err:
            raise DecisionLogError(f"cannot open the decision log: {err}", path=self.path) from err

    def _init(self, db: sqlite3.Connection) -> None:
        """WAL, sync level, and the schema, created once under a write lock (safe if raced)."""
        # Switching to WAL takes an exclusive lock that SQLite does not wait for (no busy handler),
        # so processes opening a new file together retry it until the busy timeout.
        deadline = time.monotonic() + self.busy_timeout_s
        while True:
            try:
                db.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        db.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise DecisionLogError(
                    f"schema version {version} is newer than this router-ml's {SCHEMA_VERSION}; upgrade router-ml",
                    path=self.path,
                )
            if version < SCHEMA_VERSION:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('created_at', ?)", (_now(),))
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _execute(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """Run one write statement (its own transaction); return what it returned (RETURNING)."""
        with self._lock:
            if self._closed:
                raise DecisionLogError("the decision log is closed", path=self.path)
            if self._db is None or self._pid != os.getpid():
                # A forked child must not touch its parent's connection: open its own.
                self._db, self._pid = self._connect(), os.getpid()
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.OperationalError as err:  # locked past busy_timeout, disk full, read-only
                raise DecisionLogError(f"write failed: {err}", path=self.path) from err

    def close(self) -> None:
        """Close the write connection; later writes raise ``DecisionLogError``."""
        with self._lock:
            self._closed = True
            if self._db is not None and self._pid == os.getpid():
                self._db.close()
            self._db = None

    def __enter__(self) -> "DecisionLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- privacy -------------------------------------------------------------------------------
    def _text(self, text: str | None) -> str | None:
        """Free text under this log's privacy mode: secrets always out, personal data unless "full"."""
        if text is None:
            return None
        text = _clean(text)
        return scrub_secrets(text) if self.privacy == "full" else redact(text)

    def _json(self, obj: Any) -> str | None:
        if obj is None:
            return None
        fn = scrub_secrets if self.privacy == "full" else redact
        return json.dumps(scrub_obj(obj, lambda s: fn(_clean(s))), ensure_ascii=False, default=str)

    # -- writing -------------------------------------------------------------------------------
    def record(self, request: Any, decision: Any, *, conversation_id: str | None = None,
               normalized: NormalizedRequest | None = None) -> str:
        """Log one decision; return its id (a UUID string).

        ``request`` is anything ``normalize`` accepts, or a ``NormalizedRequest`` (then only its
        normalized text is kept, not the messages a retraining job needs). ``decision`` is a
        ``RouteDecision``. ``normalized``: the request already normalized, to skip doing it twice.
        """
        if isinstance(request, NormalizedRequest):
            normalized = request
        req = normalized if normalized is not None else normalize(request)
        scrubbed = scrub_secrets(_clean(req.text))
        text: str | None = None
        payload: str | None = None
        if self.privacy != "hash":
            text = scrubbed if self.privacy == "full" else redact(scrubbed)
            raw = None if isinstance(request, NormalizedRequest) else _request_payload(request)
            payload = self._json(strip_base64(raw)) if raw is not None else None
            if payload is not None and len(payload) > MAX_REQUEST_CHARS:
                payload = None
        if conversation_id is not None:
            conversation_id = _clean(str(conversation_id))
            conversation_id = _sha256(conversation_id) if self.privacy == "hash" else scrub_secrets(conversation_id)
        probs = getattr(decision, "probabilities", None)
        extra = getattr(decision, "extra", None) or None
        decision_id = str(uuid.uuid4())
        params = (
            decision_id, _now(), self.privacy, request_hash(req, scrubbed), text, payload,
            req.est_tokens, req.n_turns, int(req.has_code), int(req.has_tools), int(req.has_images),
            int(req.has_system), Tier.parse(decision.tier).name, str(decision.model), str(decision.source),
            getattr(decision, "confidence", None), json.dumps(probs) if probs is not None else None,
            self._text(getattr(decision, "reason", None)), float(getattr(decision, "cost_usd", 0.0) or 0.0),
            getattr(decision, "latency_ms", None), conversation_id, self._json(extra),
        )
        self._execute(_INSERT, params)
        return decision_id

    def record_usage(self, decision_id: str, *, model: str, usage: Any, cost_usd: float | None) -> None:
        """Attach the response's model, token usage and dollar cost to a logged decision.

        ``usage`` is the SDK's ``Usage`` (or a mapping with the same names, or ``TokenUsage``).
        """
        params = (
            str(model),
            _usage_value(usage, "input_tokens"),
            _usage_value(usage, "output_tokens"),
            _usage_value(usage, "cache_creation_input_tokens", "cache_write_tokens"),
            _usage_value(usage, "cache_read_input_tokens", "cache_read_tokens"),
            cost_usd, _now(), decision_id,
        )
        changed = self._execute(
            "UPDATE decisions SET model_used = ?, input_tokens = ?, output_tokens = ?, cache_write_tokens = ?,"
            " cache_read_tokens = ?, response_cost_usd = ?, responded_at = ? WHERE id = ? RETURNING id",
            params,
        )
        if not changed:
            raise DecisionNotFoundError(decision_id, path=self.path)

    def feedback(self, decision_id: str, *, good: bool | None = None, right_tier: Tier | str | int | None = None,
                 note: str | None = None) -> int:
        """Attach feedback to a logged decision; return the feedback row's id.

        Feedback is appended, never overwritten: ``rows()`` lists every entry, oldest first.
        Raises ``DecisionNotFoundError`` for an unknown id and ``ValueError`` for bad values.
        """
        if good is None and right_tier is None and note is None:
            raise ValueError("feedback needs at least one of good, right_tier or note")
        if good is not None and not isinstance(good, bool):
            raise ValueError(f"good must be True, False or None, got {good!r}")
        tier = Tier.parse(right_tier).name if right_tier is not None else None
        inserted = self._execute(
            "INSERT INTO feedback (decision_id, created_at, good, right_tier, note)"
            " SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM decisions WHERE id = ?) RETURNING id",
            (decision_id, _now(), None if good is None else int(good), tier, self._text(note), decision_id),
        )
        if not inserted:
            raise DecisionNotFoundError(decision_id, path=self.path)
        return int(inserted[0][0])

    # -- reading -------------------------------------------------------------------------------
    def _reader(self) -> contextlib.closing[sqlite3.Connection]:
        """A fresh read connection (WAL readers do not block the writer); creates the file if new."""
        if not self.path.exists():
            with self._lock:
                if self._db is None:
                    self._db, self._pid = self._connect(), os.getpid()
        db = self._connect(read_only=True)
        db.row_factory = sqlite3.Row
        return contextlib.closing(db)

    @staticmethod
    def _decode(db: sqlite3.Connection, batch: list[sqlite3.Row]) -> list[dict[str, Any]]:
        """Rows as dicts: JSON columns decoded, flags as bools, feedback entries attached."""
        ids = [r["id"] for r in batch]
        fb: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        marks = ", ".join("?" * len(ids))
        for f in db.execute(f"SELECT * FROM feedback WHERE decision_id IN ({marks}) ORDER BY id", ids):
            good = None if f["good"] is None else bool(f["good"])
            fb[f["decision_id"]].append(
                {"created_at": f["created_at"], "good": good, "right_tier": f["right_tier"], "note": f["note"]}
            )
        out = []
        for r in batch:
            row = dict(r)
            for key in ("probabilities", "extra", "request_json"):
                row[key] = json.loads(row[key]) if row[key] is not None else None
            for key in ("has_code", "has_tools", "has_images", "has_system"):
                row[key] = bool(row[key])
            row["feedback"] = fb[row["id"]]
            out.append(row)
        return out

    def rows(self, since: dt.datetime | str | None = None, *, until: dt.datetime | str | None = None,
             limit: int | None = None) -> Iterator[dict[str, Any]]:
        """Logged decisions in time order, as dicts of the columns (JSON columns decoded).

        ``since`` / ``until`` (aware datetimes or ISO strings) bound ``created_at`` (since is
        exclusive, so pass the last row's ``created_at`` to resume). Each row has ``feedback``: a
        list of ``{"created_at", "good", "right_tier", "note"}``, oldest first.
        """
        where, params = [], []
        if since is not None:
            where.append("created_at > ?")
            params.append(_iso(since))
        if until is not None:
            where.append("created_at <= ?")
            params.append(_iso(until))
        sql = "SELECT * FROM decisions" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at, rowid" + (f" LIMIT {int(limit)}" if limit is not None else "")
        with self._reader() as db:
            cursor = db.execute(sql, params)
            while batch := cursor.fetchmany(500):
                yield from self._decode(db, batch)

    def get(self, decision_id: str) -> dict[str, Any]:
        """One decision as ``rows()`` gives it; ``DecisionNotFoundError`` if absent."""
        with self._reader() as db:
            found = db.execute("SELECT * FROM decisions WHERE id = ?", (decision_id,)).fetchall()
            if not found:
                raise DecisionNotFoundError(decision_id, path=self.path)
            return self._decode(db, found)[0]

    def count(self) -> int:
        """Number of logged decisions."""
        with self._reader() as db:
            return db.execute("SELECT count(*) FROM decisions").fetchone()[0]

    def training_rows(self, since: dt.datetime | str | None = None) -> Iterator[dict[str, Any]]:
        """Data-file rows (``messages``/``system``/``tools`` + ``tier``) for decisions whose feedback
        named the right tier (the latest such entry wins) and whose request was stored.

        "good"/"bad" alone is not a label: good on Opus does not say Haiku would have failed.
        """
        for row in self.rows(since):
            tiers = [f["right_tier"] for f in row["feedback"] if f["right_tier"]]
            if tiers and row["request_json"]:
                yield {"id": row["id"], **row["request_json"], "tier": tiers[-1], "label_source": "feedback",
                       "created_at": row["created_at"]}
