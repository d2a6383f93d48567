"""``router-ml retrain``: fresh traffic in, a gated model out, production never worse.

    report = retrain("routes.db", data="data", models="models", labeler="opus", budget_usd=10)

1. Select new requests from the log since the active model's training (``retrain_select``).
2. Reuse the labels already paid for: LLM-fallback answers and user feedback.
3. Buy labels for the most useful rest through the labeling pipeline (cache, budget, resume).
4. Merge with the data by precedence, counting conflicts (``retrain_merge``).
5. Train a challenger (``train_model``) with the champion's embedder.
6. Gate it against the champion on the frozen evaluation set and a fresh holdout of the new labels
   (``retrain_gate``).
7. Store it as a new version in the registry either way; if it passed, write its new rows to
   ``data/retrain/run-<time>.jsonl`` and make it active.

Killed at any point, the active model is untouched (only the last step switches it, atomically),
and the same command resumes: labels already bought come from the label cache. The frozen evaluation
set is ``--frozen-eval``, else the data's ``splits.json`` dev rows, else a stratified 20% of the rows
not written by retrain (seed 0; stable as long as the authored rows are). It never enters training.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from router_ml.artifact import load_card
from router_ml.config import Settings, load_settings
from router_ml.data import Row, load_rows, read_jsonl
from router_ml.embedder import Embedder
from router_ml.errors import ConfigError, DataError
from router_ml.fileio import atomic_write_jsonl, atomic_write_text
from router_ml.normalize import normalize
from router_ml.predictor import Predictor
from router_ml.registry import VERSIONS_DIR, ModelRegistry, RegistryError
from router_ml.tiers import Tier

from .labelers import LABELERS
from .retrain_gate import GatePolicy, GateResult, gate
from .retrain_log import parse_since, read_log
from .retrain_merge import LabelVote, NewRequest, Precedence, merge_labels
from .retrain_select import SelectionConfig, select
from .splits import SPLIT_FILE, load_split, stratified_dev_ids
from .trainer import TrainResult, train_model
from .transcript import request_hash

__all__ = ["retrain", "RetrainReport", "train_new_version", "RETRAIN_DIR"]

RETRAIN_DIR = "retrain"  # under the data directory: the rows each promoted retrain added


@dataclass
class RetrainReport:
    """What a retrain did; ``summary()`` is what the CLI prints."""

    run_id: str
    since: str | None = None
    log_until: str | None = None
    selection: dict[str, Any] = field(default_factory=dict)
    labeling: dict[str, Any] | None = None
    merge: dict[str, Any] = field(default_factory=dict)
    evaluation: dict[str, Any] = field(default_factory=dict)
    champion: str | None = None
    challenger: str | None = None
    gate: GateResult | None = None
    promoted: bool = False
    data_file: str | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "gate"}
        d["gate"] = self.gate.to_dict() if self.gate else None
        return d

    def summary(self) -> str:
        s = self.selection
        lines = [
            f"log: {s.get('records', 0)} records since {self.since or 'the beginning'}; "
            f"{s.get('hash_only', 0)} hash-only and {s.get('no_request_stored', 0)} without a stored request "
            f"(not relabelable); {s.get('exact_duplicates', 0)} exact and {s.get('near_duplicates', 0)} near "
            f"duplicates; {s.get('already_in_data', 0)} already in the data; {s.get('new_requests', 0)} new requests",
            "reused labels: " + (", ".join(f"{k[7:]} {v}" for k, v in s.items() if k.startswith("reused_")) or "none"),
        ]
        if self.labeling:
            lab = self.labeling
            buckets = ", ".join(f"{k[9:]} {v}" for k, v in s.items() if k.startswith("to_label_"))
            lines.append(f"labeling ({lab['labeler']}): {lab['labeled']} bought, {lab['cached']} from cache, "
                         f"${lab['cost_usd']:.4f}; asked for {lab['rows']} [{buckets}]; "
                         f"{lab['budget_left_out']} left for lack of budget, {len(lab['failures'])} failed")
        if self.merge:
            m = self.merge
            pairs = ", ".join(f"{k} {v}" for k, v in m["conflicts_by_winner"].items())
            lines.append(f"merge: {m['existing']} existing + {m['new']} new rows; {m['relabeled_existing']} existing "
                         f"relabeled; {m['conflicts']} conflicts" + (f" ({pairs})" if pairs else "")
                         + f"; precedence {' > '.join(m['precedence'])}")
        if self.evaluation:
            e = self.evaluation
            lines.append(f"evaluation: frozen {e['frozen']['n']} rows ({e['frozen']['source']}); "
                         f"new holdout {e['holdout']['n']} rows")
        if self.gate:
            lines.append(f"gate: challenger {self.challenger} vs champion {self.champion or '(none)'}")
            lines.append(self.gate.format())
        if self.promoted:
            lines.append(f"promoted: {self.challenger} is active; new rows in {self.data_file}")
        elif self.challenger:
            lines.append(f"refused: {self.champion} stays active; the challenger is kept as {self.challenger}")
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


@contextlib.contextmanager
def _exclusive(work: Path) -> Iterator[None]:
    """One retrain per work directory at a time."""
    work.mkdir(parents=True, exist_ok=True)
    with open(work / ".lock", "a+b") as f:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - no POSIX locks
            yield
            return
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another retrain is running with the work directory {work}") from None
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _in_holdout(row: dict[str, Any], fraction: float) -> bool:
    """Deterministic by request, so a resumed run holds out the same rows."""
    return int(hashlib.sha256(request_hash(row).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def _frozen_eval(data: Path, existing: list[Row], frozen: str | Path | None, seed: int) -> tuple[list[Row], str]:
    if frozen is not None:
        return load_rows(frozen), str(frozen)
    dev = load_split(data)
    if dev is not None:
        return [r for r in existing if r.id in dev], str(data / SPLIT_FILE)
    retrain_dir = (data / RETRAIN_DIR).resolve()
    authored = [r for r in existing if retrain_dir not in Path(r.where.rsplit(":", 1)[0]).resolve().parents]
    ids = set(stratified_dev_ids(authored, seed=seed))
    return [r for r in authored if r.id in ids], f"stratified 20% of the authored rows of {data} (seed {seed})"


def _load_champion(directory: Path | None, embedder: Embedder | None) -> Predictor | None:
    if directory is None:
        return None
    same = embedder is not None and load_card(directory)["embedder"].get("id") == embedder.id
    return Predictor.load(directory, embedder=embedder if same else None)


def _as_rows(dicts: list[dict[str, Any]]) -> list[Row]:
    return [Row(raw=d, request=normalize(d), tier=Tier.parse(d["tier"]), where=d["id"]) for d in dicts]


def train_new_version(data: str | Path, models: str | Path, *, activate: bool = True,
                      **train_kwargs: Any) -> tuple[str, TrainResult]:
    """``train_model`` into a new registry version (what ``router-ml train --out models/`` does
    once models/ is versioned); made active unless ``activate=False``. Returns ``(id, result)``."""
    registry = ModelRegistry(models)
    with registry.staging() as staging:
        result = train_model(data, staging, **train_kwargs)
        vid = registry.add(staging)
    if activate:
        registry.promote(vid, reason=f"trained on {data}")
    result.out = registry.root / VERSIONS_DIR / vid
    return vid, result


def retrain(
    logs: str | Path,
    *,
    data: str | Path = "data",
    models: str | Path | None = None,
    labeler: str = "haiku",
    budget_usd: float | None = 10.0,
    max_new: int = 2000,
    embedder: Embedder | None = None,
    settings: Settings | None = None,
    precedence: Precedence | str | None = None,
    policy: GatePolicy | None = None,
    selection: SelectionConfig | None = None,
    holdout_fraction: float = 0.25,
    frozen_eval: str | Path | None = None,
    since: str | dt.datetime | None = None,
    work: str | Path = ".cache/retrain",
    cache: str | Path = ".cache/labels.sqlite",
    concurrency: int = 8,
    base_url: str | None = None,
    api_key: str | None = None,
    labeler_model: str | None = None,
    timeout: float | None = None,
    seed: int = 0,
    promote: bool = True,
    progress: bool = False,
) -> RetrainReport:
    """Run the seven steps (module docstring); return the report. ``promote=False`` gates and stores
    the challenger but never switches the active model. Raises ``RegistryError`` for a flat models/
    (migrate it first), ``DataError`` / ``ConfigError`` for bad input, before anything is paid."""
    settings = settings or load_settings()
    data, work = Path(data), Path(work)
    registry = ModelRegistry(models if models is not None else settings.model_dir)
    if not data.is_dir():
        raise DataError("retrain needs a data directory (it adds its rows under retrain/)", path=data)
    if registry.layout == "flat":
        raise RegistryError(f"holds an unversioned model; run `router-ml models migrate --models {registry.root}` "
                            "first", path=registry.root)
    if labeler not in LABELERS:
        raise ConfigError(f"unknown labeler {labeler!r}; expected one of {', '.join(LABELERS)}")
    if not 0.0 <= holdout_fraction < 1.0:
        raise ConfigError(f"holdout_fraction must be in [0, 1), got {holdout_fraction!r}")
    precedence = Precedence.parse(precedence)
    policy = policy or GatePolicy()
    config = replace(selection or SelectionConfig(seed=seed), max_new=max_new)
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = RetrainReport(run_id)

    with _exclusive(work):
        champion_dir = registry.active_dir()
        champion = _load_champion(champion_dir, embedder)  # fails here, before paying, if it is broken
        report.champion = registry.active_id()
        since = parse_since(since) if since is not None else (
            (champion.card_.get("retrain") or {}).get("log_until") if champion else None)
        report.since = since
        existing = load_rows(data)
        frozen, frozen_source = _frozen_eval(data, existing, frozen_eval, seed)
        if not frozen:
            raise DataError("the frozen evaluation set is empty", path=frozen_source)
        records = read_log(logs, since, with_feedback_before=True)
        fresh = [r.created_at for r in records if r.created_at and (since is None or r.created_at > since)]
        report.log_until = max(fresh, default=since)
        sel = select(records, existing, labeler=labeler, precedence=precedence, config=config)
        report.selection = sel.counts

        if sel.to_label:  # step 3: buy labels, cached and within the budget
            from .labelers import make_labeler
            from .labeling import label_file

            for c in sel.to_label:
                c.row["provenance"]["selection"] = c.bucket
            atomic_write_jsonl(work / "selected.jsonl", [c.row for c in sel.to_label])
            teacher = make_labeler(labeler, settings=settings, model=labeler_model, base_url=base_url,
                                   api_key=api_key, timeout=timeout)
            try:
                lab = label_file(work / "selected.jsonl", work / "labeled.jsonl", teacher, cache=cache,
                                 concurrency=concurrency, budget_usd=budget_usd, progress=progress)
            finally:
                teacher.close()
            report.labeling = {"labeler": labeler, **lab.to_dict()}
            got = {o["id"]: o for _, o in read_jsonl(work / "labeled.jsonl")}
            now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            for c in sel.to_label:
                if c.row["id"] in got:
                    o = got[c.row["id"]]
                    c.votes.append(LabelVote(labeler, Tier.parse(o["tier"]), now,
                                             {"reason": o.get("label_reason", ""), "model": teacher.model}))

        merged = merge_labels(existing, sel.existing_votes, [NewRequest(c.row, c.votes) for c in sel.candidates],
                              precedence)
        report.merge = merged.stats
        if not merged.new_rows and not merged.stats["relabeled_existing"]:
            report.note = "nothing new to learn from: no model trained"
            atomic_write_text(work / "report.json", json.dumps(report.to_dict(), indent=1, default=str))
            return report

        # the fresh holdout of new labels, and the frozen evaluation set: neither is trained on
        hold = len(merged.new_rows) * holdout_fraction >= policy.min_rows
        holdout = [r for r in merged.new_rows if hold and _in_holdout(r, holdout_fraction)]
        report.evaluation = {"frozen": {"n": len(frozen), "source": frozen_source},
                             "holdout": {"n": len(holdout), "fraction": holdout_fraction if hold else 0.0}}
        held = {request_hash(r.raw) for r in frozen} | {request_hash(r) for r in holdout}
        dev = [{**r.raw, "id": f"frozen-{r.id}" if frozen_eval is not None else r.id} for r in frozen]
        train_dir = work / "train"
        atomic_write_jsonl(train_dir / "data.jsonl", [r for r in merged.rows if request_hash(r) not in held] + dev)
        split = {"note": "frozen evaluation set", "dev": [d["id"] for d in dev]}
        atomic_write_text(train_dir / SPLIT_FILE, json.dumps(split))

        with registry.staging() as staging:  # step 5, 6 and 7
            result = train_model(train_dir, staging, embedder=embedder or (champion.embedder if champion else None),
                                 tiers=settings.tiers, seed=seed, progress=progress)
            sets = {"frozen eval": frozen, "new holdout": _as_rows(holdout)}
            report.gate = gate(champion, result.predictor, sets, policy)
            data_file = data / RETRAIN_DIR / f"run-{run_id}.jsonl"
            card = {**result.card, "gate": report.gate.to_dict(), "retrain": {
                "run": run_id, "log": str(logs), "since": since, "log_until": report.log_until, "labeler": labeler,
                "champion": report.champion, "selection": sel.counts, "merge": merged.stats,
                "evaluation": report.evaluation, "data_file": str(data_file),
                "cost_usd": round((report.labeling or {}).get("cost_usd", 0.0), 6)}}
            result.predictor.save(staging, card=card)
            report.challenger = registry.add(staging)

        if report.gate.promote and promote:
            held_ids = {r["id"] for r in holdout}
            for r in merged.new_rows:
                r["provenance"] = {**r["provenance"], "run": run_id, "holdout": r["id"] in held_ids}
            atomic_write_jsonl(data_file, merged.new_rows)
            registry.promote(report.challenger, reason=f"retrain {run_id}: {report.gate.verdict}")
            report.promoted, report.data_file = True, str(data_file)
        elif report.gate.promote:
            report.note = "passed the gate; not promoted (promote=False)"
        atomic_write_text(work / "report.json", json.dumps(report.to_dict(), indent=1, default=str))
    return report

