"""The labeling pipeline: rows in, the same rows out with ``tier``, ``label_source``, ``label_reason``.

    report = label_file("requests.jsonl", "labeled.jsonl", make_labeler("haiku"), budget_usd=5.0)

- Every row is validated first (a bad row stops the run before anything is paid).
- Requests already in the cache (same labeler, model, prompt version and request) cost nothing;
  duplicates within the file are labeled once.
- The rest are labeled with ``concurrency`` threads. 429 and 529 pause every worker for the
  ``retry-after`` the API sent (else exponential backoff); timeouts and 5xx retry too, up to
  ``max_attempts`` calls a row. Other failures (a refused call, an answer with no valid tier) are
  reported with the row and skipped: a failure is never turned into a default label.
- Each label is committed to the cache as it arrives; the output file is written atomically at the
  end from the cache, so a killed run resumes with nothing lost and nothing labeled twice.
- ``budget_usd`` stops dispatching before the next call could exceed it: every in-flight call holds a
  reservation of its worst-case cost (``Labeler.max_cost``), released when its real cost is known.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from router_ml.data import Row, load_rows
from router_ml.errors import ConfigError, LLMRouterError, LLMUnavailableError
from router_ml.fileio import atomic_write_jsonl

from .label_cache import CachedLabel, LabelCache, LabelKey
from .labelers import Label, Labeler
from .transcript import request_hash

__all__ = ["label_file", "LabelReport", "LabelFailure", "RetryPolicy"]


@dataclass(frozen=True)
class LabelFailure:
    """A row that got no label, and why."""

    where: str
    id: str
    error: str

    def __str__(self) -> str:
        return f"{self.where} ({self.id}): {self.error}"


@dataclass
class LabelReport:
    """What a run did. ``complete`` is False when rows were left unlabeled (failures, budget, or a
    batch still in progress); re-running continues where it stopped."""

    rows: int = 0
    written: int = 0  # rows in the output file
    cached: int = 0  # distinct requests found in the cache
    labeled: int = 0  # distinct requests labeled by this run
    failures: list[LabelFailure] = field(default_factory=list)
    budget_left_out: int = 0  # distinct requests not sent because of the budget
    pending_batches: list[str] = field(default_factory=list)
    cost_usd: float = 0.0
    out: str = ""

    @property
    def complete(self) -> bool:
        return not self.failures and not self.budget_left_out and not self.pending_batches

    def summary(self) -> str:
        parts = [
            f"{self.written}/{self.rows} rows written to {self.out}",
            f"{self.labeled} labeled now, {self.cached} from cache",
            f"${self.cost_usd:.4f} spent",
        ]
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        if self.budget_left_out:
            parts.append(f"{self.budget_left_out} left for lack of budget")
        if self.pending_batches:
            parts.append(f"batch(es) still running: {', '.join(self.pending_batches)}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "failures"}
        d["failures"] = [f.__dict__ for f in self.failures]
        d["complete"] = self.complete
        return d


@dataclass(frozen=True)
class RetryPolicy:
    """``max_attempts`` calls per row for unavailability errors; backoff doubles from ``base_s``
    to ``max_s`` (with jitter) when the API gave no ``retry-after``."""

    max_attempts: int = 5
    base_s: float = 1.0
    max_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {self.max_attempts}")

    def delay(self, attempt: int, err: LLMUnavailableError) -> float:
        if err.retry_after is not None:
            return min(err.retry_after, self.max_s)
        return min(self.max_s, self.base_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


class _Gate:
    """A shared "not before" time: one 429 slows every worker down, not only the one that got it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self) -> None:
        while True:
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return
            time.sleep(left)


@dataclass
class _Outcome:
    label: Label | None
    error: LLMRouterError | None
    cost_usd: float


def _label_one(labeler: Labeler, row: Mapping[str, Any], policy: RetryPolicy, gate: _Gate) -> _Outcome:
    """Label one request with retries; runs in a worker thread. Dollars billed by failed attempts
    (an outcome row failing after its answers were paid) are counted too."""
    spent = 0.0
    attempt = 0
    while True:
        attempt += 1
        gate.wait()
        try:
            label = labeler.label(row)
            return _Outcome(label, None, spent + label.cost_usd)
        except LLMUnavailableError as err:
            spent += err.cost_usd
            if attempt >= policy.max_attempts:
                return _Outcome(None, err, spent)
            delay = policy.delay(attempt, err)
            if err.status_code in (429, 529):
                gate.pause(delay)
            else:
                time.sleep(delay)
        except LLMRouterError as err:  # refused call or unusable answer: permanent
            return _Outcome(None, err, spent + err.cost_usd)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="row", desc="labeling", disable=not enabled or total == 0, dynamic_ncols=True)


def _run_threads(
    todo: dict[LabelKey, Row],
    labeler: Labeler,
    cache: LabelCache,
    report: LabelReport,
    *,
    concurrency: int,
    budget_usd: float | None,
    policy: RetryPolicy,
    progress: bool,
) -> None:
    gate = _Gate()
    queue = collections.deque(todo.items())
    reserved = 0.0
    pending: dict[Future[_Outcome], tuple[LabelKey, Row, float]] = {}
    bar = _progress(len(queue), progress)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="label")
    try:
        while queue or pending:
            while queue and len(pending) < concurrency:
                key, row = queue[0]
                est = labeler.max_cost(row.raw)
                if budget_usd is not None and report.cost_usd + reserved + est > budget_usd:
                    report.budget_left_out = len(queue)
                    queue.clear()  # stop cleanly: let in-flight calls finish, send nothing new
                    break
                queue.popleft()
                reserved += est
                pending[pool.submit(_label_one, labeler, row.raw, policy, gate)] = (key, row, est)
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                key, row, est = pending.pop(fut)
                reserved -= est
                outcome = fut.result()
                report.cost_usd += outcome.cost_usd
                if outcome.label is not None:
                    lab = outcome.label
                    cache.put(key, lab.tier, lab.reason, lab.cost_usd, lab.model)
                    report.labeled += 1
                else:
                    report.failures.append(LabelFailure(row.where, row.id, str(outcome.error)))
                bar.update(1)
                bar.set_postfix(failed=len(report.failures), usd=f"{report.cost_usd:.4f}", refresh=False)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()


def label_file(
    in_path: str | Path,
    out_path: str | Path,
    labeler: Labeler,
    *,
    cache: LabelCache | str | Path = ".cache/labels.sqlite",
    concurrency: int = 8,
    budget_usd: float | None = None,
    batch: bool = False,
    policy: RetryPolicy | None = None,
    poll_s: float = 30.0,
    max_wait_s: float | None = None,
    progress: bool = True,
) -> LabelReport:
    """Label every row of ``in_path`` (a JSONL file or directory) and write ``out_path``.

    Returns a ``LabelReport``. Raises ``DataError`` for an invalid input row and ``ConfigError`` for
    bad arguments, before any call. ``batch=True`` goes through the Message Batches API (half
    price, results within 24 h); ``poll_s`` / ``max_wait_s`` control how it waits.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigError(f"concurrency must be a positive integer, got {concurrency!r}")
    if budget_usd is not None and budget_usd < 0:
        raise ConfigError(f"budget_usd must be >= 0, got {budget_usd!r}")
    if batch and not labeler.batchable:
        raise ConfigError(f"--batch works with the haiku and opus labelers, not {labeler.source!r} "
                          "(it needs several dependent calls per row)")
    out_path = Path(out_path)
    rows = load_rows(in_path, require_tier=False)
    own_cache = not isinstance(cache, LabelCache)
    store = LabelCache(cache) if own_cache else cache
    report = LabelReport(rows=len(rows), out=str(out_path))
    try:
        keys = [LabelKey(labeler.source, labeler.model, labeler.prompt_version, request_hash(r.raw)) for r in rows]
        first: dict[LabelKey, Row] = {}
        for k, r in zip(keys, rows):
            first.setdefault(k, r)
        known = store.get_many(first)
        report.cached = len(known)
        todo = {k: r for k, r in first.items() if k not in known}
        if todo:
            labeler.check()
            labeler.attach_cache(store)
            if batch:
                from .label_batch import run_batches

                run_batches(todo, labeler, store, report, budget_usd=budget_usd, poll_s=poll_s,
                            max_wait_s=max_wait_s, progress=progress)
            else:
                _run_threads(todo, labeler, store, report, concurrency=concurrency, budget_usd=budget_usd,
                             policy=policy or RetryPolicy(), progress=progress)
        labels: dict[LabelKey, CachedLabel] = store.get_many(first)
        out_rows = []
        for k, r in zip(keys, rows):
            lab = labels.get(k)
            if lab is not None:
                out_rows.append({**r.raw, "tier": lab.tier.name, "label_source": labeler.source,
                                 "label_reason": lab.reason})
        atomic_write_jsonl(out_path, out_rows)  # a reader never sees half an output file
        report.written = len(out_rows)
        return report
    finally:
        if own_cache:
            store.close()
