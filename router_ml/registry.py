"""Model versions under one directory, and which one is active.

Layout::

    models/
      ACTIVE              {"active": "<id>", "previous": ["<id>", ...], "updated_at": ..., "reason": ...}
      history.jsonl       one line per switch, append-only: for people, never read to resolve
      versions/<id>/      one artifact each (card.json, head.joblib, whatever else the format adds)
      .staging/           artifacts being written; a version appears by one rename

Why a pointer file and not a symlink: a reader resolves ``ACTIVE`` once and then reads every file of
one immutable version directory, so a switch between its reading ``card.json`` and ``head.joblib``
cannot hand it half of each model (with a swapped ``models/current`` symlink it could). Both steps
are atomic: a version directory appears by renaming a finished staging directory, and ``ACTIVE`` is
replaced with ``os.replace`` after an fsync.

The flat layout (``card.json`` directly in ``models/``) keeps working everywhere: ``resolve_model_dir``
returns such a directory as it is. ``ModelRegistry.migrate`` moves it into ``versions/``.

>>> reg = ModelRegistry("models")
>>> reg.promote("20261128T052201Z-3fa9c2d1")   # or a unique prefix of it
>>> reg.rollback()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .artifact import CARD_FILE, HEAD_FILE, load_card, sha256_file
from .errors import ArtifactCorruptError, ArtifactError, ArtifactNotFoundError
from .fileio import atomic_write_text

__all__ = [
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "resolve_model_dir",
    "has_model",
    "ACTIVE_FILE",
    "VERSIONS_DIR",
]

ACTIVE_FILE = "ACTIVE"
VERSIONS_DIR = "versions"
STAGING_DIR = ".staging"
HISTORY_FILE = "history.jsonl"
LOCK_FILE = ".lock"
_REGISTRY_NAMES = {ACTIVE_FILE, VERSIONS_DIR, STAGING_DIR, HISTORY_FILE, LOCK_FILE}
_MAX_PREVIOUS = 100


class RegistryError(ArtifactError):
    """A registry operation cannot be done (unknown version, nothing to roll back to, flat layout)."""


def _read_active(root: Path) -> dict[str, Any]:
    path = root / ACTIVE_FILE
    text = path.read_text(encoding="utf-8").strip()
    if not text.startswith("{"):  # a bare id, as someone may write by hand
        state: Any = {"active": text, "previous": []}
    else:
        try:
            state = json.loads(text)
        except json.JSONDecodeError as err:
            raise ArtifactCorruptError(f"not valid JSON ({err})", path=path) from err
    if not isinstance(state, dict) or not isinstance(state.get("active"), str) or not state["active"]:
        raise ArtifactCorruptError("expected {\"active\": \"<version id>\", ...}", path=path)
    state.setdefault("previous", [])
    return state


def resolve_model_dir(path: str | Path) -> Path:
    """The directory holding the model to load from ``path``.

    A registry root gives its active version's directory; any other directory (the flat layout, or
    a version directory itself) is returned as it is.
    """
    path = Path(path)
    if (path / ACTIVE_FILE).is_file():
        vid = _read_active(path)["active"]
        version = path / VERSIONS_DIR / vid
        if not (version / CARD_FILE).is_file():
            raise ArtifactNotFoundError(f"ACTIVE names version {vid!r}, which has no {CARD_FILE}", path=version)
        return version
    if not (path / CARD_FILE).exists() and (path / VERSIONS_DIR).is_dir():
        raise RegistryError("model versions exist but none is active (router-ml models promote ID)", path=path)
    return path


def has_model(path: str | Path) -> bool:
    """Whether ``path`` holds a loadable model in either layout (without loading it)."""
    path = Path(path)
    return (path / ACTIVE_FILE).is_file() or (path / CARD_FILE).is_file()


def _version_id(card: dict[str, Any]) -> str:
    """``<created UTC>-<head sha256[:8]>``: sorts by time, and the same artifact gets the same id."""
    try:
        created = dt.datetime.fromisoformat(str(card.get("created_at")).replace("Z", "+00:00"))
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        created = dt.datetime.now(dt.timezone.utc)
    stamp = created.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{str(card.get('head', {}).get('sha256', 'unknown'))[:8]}"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class ModelVersion:
    """One stored model: ``id``, its directory, its card, whether it is the active one."""

    id: str
    path: Path
    card: dict[str, Any]
    active: bool

    def summary(self) -> dict[str, Any]:
        """The few card facts ``models list`` shows."""
        dev = self.card.get("dev_metrics", {})
        gate = self.card.get("gate") or {}
        return {
            "id": self.id,
            "active": self.active,
            "created_at": self.card.get("created_at"),
            "n_rows": self.card.get("training", {}).get("n_rows"),
            "dev_accuracy": dev.get("accuracy"),
            "dev_underroute": dev.get("underroute_rate"),
            "origin": "retrain" if "retrain" in self.card else "train",
            "gate": gate.get("verdict"),
        }


class ModelRegistry:
    """The versions under ``root`` and the active pointer. Safe for concurrent readers; writers
    (add, promote, rollback, migrate) take an exclusive lock on ``root/.lock``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r})"

    # -- reading ---------------------------------------------------------------------------------
    @property
    def layout(self) -> str:
        """"versioned" (ACTIVE or versions/), "flat" (card.json at the root) or "empty"."""
        if (self.root / ACTIVE_FILE).is_file() or (self.root / VERSIONS_DIR).is_dir():
            return "versioned"
        return "flat" if (self.root / CARD_FILE).is_file() else "empty"

    def state(self) -> dict[str, Any] | None:
        """The parsed ``ACTIVE`` file, or None when nothing is active."""
        return _read_active(self.root) if (self.root / ACTIVE_FILE).is_file() else None

    def active_id(self) -> str | None:
        state = self.state()
        return state["active"] if state else None

    def active_dir(self) -> Path | None:
        """The directory of the model that serves (either layout), or None when there is none."""
        return resolve_model_dir(self.root) if has_model(self.root) else None

    def ids(self) -> list[str]:
        vdir = self.root / VERSIONS_DIR
        if not vdir.is_dir():
            return []
        return sorted(p.name for p in vdir.iterdir() if p.is_dir() and (p / CARD_FILE).is_file())

    def versions(self) -> list[ModelVersion]:
        """Every stored version, oldest first."""
        active = self.active_id()
        return [ModelVersion(i, self.root / VERSIONS_DIR / i, load_card(self.root / VERSIONS_DIR / i), i == active)
                for i in self.ids()]

    def resolve_id(self, ref: str) -> str:
        """A version id from its full id or a unique prefix."""
        ids = self.ids()
        if ref in ids:
            return ref
        matches = [i for i in ids if i.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise RegistryError(f"no model version {ref!r} (router-ml models list)", path=self.root / VERSIONS_DIR)
        raise RegistryError(f"{ref!r} matches {len(matches)} versions: {', '.join(matches)}", path=self.root)

    def version_dir(self, ref: str) -> Path:
        return self.root / VERSIONS_DIR / self.resolve_id(ref)

    # -- writing ---------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK_FILE, "a+b") as f:
            try:
                import fcntl
            except ImportError:  # no POSIX locks (Windows): writers must not run concurrently
                yield
                return
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh directory to write a new artifact into, on the registry's file system (so that
        ``add`` is a rename). Removed if the block raises; a killed process leaves it in ``.staging``."""
        path = self.root / STAGING_DIR / uuid.uuid4().hex
        path.mkdir(parents=True)
        try:
            yield path
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise

    def _check_artifact(self, directory: Path) -> dict[str, Any]:
        card = load_card(directory)
        head = directory / card["head"].get("file", HEAD_FILE)
        if not head.is_file() or sha256_file(head) != card["head"].get("sha256"):
            raise ArtifactCorruptError("head is missing or does not match the card's checksum", path=head)
        return card

    def add(self, directory: str | Path) -> str:
        """Store the artifact in ``directory`` as a new version (not active); return its id.

        A directory from ``staging()`` is moved, anything else copied. The version directory appears
        whole, by one rename. Adding the same artifact twice returns the existing id.
        """
        directory = Path(directory)
        card = self._check_artifact(directory)
        vid = _version_id(card)
        staged = directory.resolve().parent == (self.root / STAGING_DIR).resolve()
        if not staged:
            with self.staging() as tmp:
                shutil.copytree(directory, tmp, dirs_exist_ok=True)
            directory = tmp
        with self._lock():
            (self.root / VERSIONS_DIR).mkdir(exist_ok=True)
            target = self.root / VERSIONS_DIR / vid
            if target.exists():
                shutil.rmtree(directory, ignore_errors=True)
                if load_card(target).get("head", {}).get("sha256") == card["head"]["sha256"]:
                    return vid
                raise RegistryError(f"version {vid} exists with another head", path=target)
            os.rename(directory, target)
            _fsync_dir(target.parent)
        return vid

    def _switch(self, new: str, previous: list[str], action: str, reason: str) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        state = {"active": new, "previous": previous[-_MAX_PREVIOUS:], "updated_at": now, "reason": reason}
        atomic_write_text(self.root / ACTIVE_FILE, json.dumps(state, indent=1) + "\n")
        _fsync_dir(self.root)
        event = {"at": now, "action": action, "active": new, "reason": reason}
        with open(self.root / HISTORY_FILE, "a", encoding="utf-8") as f:
            f.write(json.dumps(event) + "\n")

    def promote(self, ref: str, *, reason: str = "") -> str:
        """Make a version active (full id or unique prefix); return its id. The one it replaces is
        remembered for ``rollback``. The version's head is checked against its card first."""
        with self._lock():
            vid = self.resolve_id(ref)
            self._check_artifact(self.root / VERSIONS_DIR / vid)
            state = self.state() or {"active": None, "previous": []}
            if state["active"] == vid:
                return vid
            previous = list(state["previous"]) + ([state["active"]] if state["active"] else [])
            self._switch(vid, previous, "promote", reason or "promoted")
        return vid

    def rollback(self, *, reason: str = "") -> str:
        """Make the previously active version active again; return its id. Repeating it walks
        further back."""
        with self._lock():
            state = self.state()
            previous = list(state["previous"]) if state else []
            while previous and previous[-1] not in self.ids():
                previous.pop()  # a version deleted by hand cannot be returned to
            if not previous:
                raise RegistryError("no earlier active version to roll back to", path=self.root / ACTIVE_FILE)
            vid = previous.pop()
            self._check_artifact(self.root / VERSIONS_DIR / vid)
            self._switch(vid, previous, "rollback", reason or f"rolled back from {state['active']}")
        return vid

    def migrate(self) -> str:
        """Move a flat-layout model (``card.json`` at the root) into ``versions/<id>`` and make it
        active; return its id. Readers keep working throughout: the flat files are removed only after
        ``ACTIVE`` points at the copy. Idempotent."""
        if self.layout == "empty":
            raise RegistryError("no model here to migrate", path=self.root)
        flat = [p for p in self.root.iterdir() if p.name not in _REGISTRY_NAMES and not p.name.startswith(".")]
        if (self.root / CARD_FILE).is_file():
            card = self._check_artifact(self.root)
            vid = _version_id(card)
            if vid not in self.ids():
                with self.staging() as tmp:
                    for p in flat:
                        (shutil.copytree if p.is_dir() else shutil.copy2)(p, tmp / p.name)
                self.add(tmp)
            if self.active_id() is None:
                self.promote(vid, reason="migrated from the flat layout")
        with self._lock():
            active = self.active_id()
            if active is None:
                raise RegistryError("model versions exist but none is active (router-ml models promote ID)",
                                    path=self.root)
            if (self.root / CARD_FILE).is_file():
                for p in flat:
                    if p.is_dir():
                        shutil.rmtree(p)
                    else:
                        p.unlink()
        return active
