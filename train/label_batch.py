"""``--batch``: label through the Message Batches API, at half the list price, resumable.

Create -> poll -> collect. Each batch id is written to the label cache the moment the API returns it,
with the custom_id -> request map, so a re-run (after Ctrl-C, a crash, or ``max_wait_s``) polls the
batches it already paid for instead of submitting the requests again. Results come back in any order
and are matched by ``custom_id`` (the request hash). Errored, canceled or expired items are reported
and left unlabeled; the next run submits them again.

The one gap: a kill between the API accepting a batch and the id being committed (a few
milliseconds) loses track of that batch, and the next run submits its requests again.
"""

from __future__ import annotations

import time
from typing import Any

from router_ml.data import Row
from router_ml.errors import LLMRequestError, LLMRouterError, LLMUnavailableError

from .label_cache import LabelCache, LabelKey
from .labeling import LabelFailure, LabelReport, _progress

__all__ = ["run_batches", "MAX_BATCH_REQUESTS"]

MAX_BATCH_REQUESTS = 10_000  # well under the API's per-batch limits on count and size


def _submit(todo: dict[LabelKey, Row], labeler: Any, cache: LabelCache, report: LabelReport,
            pending: dict[str, dict[str, str]], budget_usd: float | None) -> None:
    """Create batches for the requests no pending batch covers, within the budget."""
    covered = {h for items in pending.values() for h in items.values()}
    new = [(k, r) for k, r in todo.items() if k.request_hash not in covered]
    chosen, reserved = [], 0.0
    for i, (key, row) in enumerate(new):
        est = labeler.max_cost(row.raw, batch=True)
        if budget_usd is not None and reserved + est > budget_usd:
            report.budget_left_out = len(new) - i
            break
        reserved += est
        chosen.append((key, row))
    clients = labeler.batch_client()
    client = clients.sync()
    for start in range(0, len(chosen), MAX_BATCH_REQUESTS):
        part = chosen[start : start + MAX_BATCH_REQUESTS]
        requests = [{"custom_id": k.request_hash, "params": labeler.batch_params(r.raw)} for k, r in part]
        batch = clients.call(client.messages.batches.create, requests=requests)
        items = {k.request_hash: k.request_hash for k, _ in part}
        cache.add_batch(batch.id, labeler.source, labeler.model, labeler.prompt_version, items)
        pending[batch.id] = items


def _collect(batch_id: str, items: dict[str, str], todo: dict[LabelKey, Row], labeler: Any,
             cache: LabelCache, report: LabelReport, bar: Any) -> None:
    """Read an ended batch's results into the cache, then mark it collected."""
    clients = labeler.batch_client()
    client = clients.sync()
    results = clients.call(lambda: list(client.messages.batches.results(batch_id)))
    rows = {k.request_hash: r for k, r in todo.items()}
    for res in results:
        digest = items.get(res.custom_id)
        row = rows.get(digest or "")
        where, rid = (row.where, row.id) if row else (f"batch {batch_id}", res.custom_id)
        if digest is None:
            report.failures.append(LabelFailure(where, rid, f"unexpected custom_id {res.custom_id!r}"))
            continue
        key = LabelKey(labeler.source, labeler.model, labeler.prompt_version, digest)
        result = res.result
        if result.type == "succeeded":
            try:
                lab = labeler.read_batch_message(result.message)
            except LLMRouterError as err:
                report.cost_usd += err.cost_usd
                report.failures.append(LabelFailure(where, rid, str(err)))
            else:
                report.cost_usd += lab.cost_usd
                if cache.put(key, lab.tier, lab.reason, lab.cost_usd, lab.model) and row is not None:
                    report.labeled += 1
        else:
            detail = ""
            if result.type == "errored":
                detail = f": {result.error.error.type}: {getattr(result.error.error, 'message', '')}"
            report.failures.append(LabelFailure(where, rid, f"batch item {result.type}{detail}"))
        bar.update(1)
        bar.set_postfix(failed=len(report.failures), usd=f"{report.cost_usd:.4f}", refresh=False)
    cache.mark_collected(batch_id)


def run_batches(todo: dict[LabelKey, Row], labeler: Any, cache: LabelCache, report: LabelReport, *,
                budget_usd: float | None, poll_s: float, max_wait_s: float | None, progress: bool) -> None:
    """Submit what is not yet submitted, then poll every pending batch until ended or ``max_wait_s``."""
    pending = cache.pending_batches(labeler.source, labeler.model, labeler.prompt_version)
    _submit(todo, labeler, cache, report, pending, budget_usd)
    clients = labeler.batch_client()
    client = clients.sync()
    deadline = None if max_wait_s is None else time.monotonic() + max_wait_s
    bar = _progress(sum(len(v) for v in pending.values()), progress)
    try:
        while pending:
            for batch_id in list(pending):
                try:
                    batch = clients.call(client.messages.batches.retrieve, batch_id)
                except LLMUnavailableError:
                    continue  # poll again next round
                except LLMRequestError as err:  # 404: expired or deleted; its requests go again next run
                    report.failures.append(LabelFailure(f"batch {batch_id}", batch_id, str(err)))
                    cache.mark_collected(batch_id)
                    del pending[batch_id]
                    continue
                bar.set_description(f"batch {batch.processing_status}")
                if batch.processing_status == "ended":
                    _collect(batch_id, pending.pop(batch_id), todo, labeler, cache, report, bar)
            if not pending:
                break
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                report.pending_batches = sorted(pending)
                break
            time.sleep(poll_s if deadline is None else max(0.0, min(poll_s, deadline - now)))
    finally:
        bar.close()
