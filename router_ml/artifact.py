"""The model artifact: one directory with ``card.json`` (what it is) and ``head.joblib`` (the head).

This module is the only place that writes or reads the format. The embedder is never pickled; the
card names it and its dimension. The head's checksum is in the card, so a truncated or swapped file
is refused before joblib (which can run code) opens it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import joblib

from .errors import ArtifactCorruptError, ArtifactNotFoundError
from .fileio import atomic_write, atomic_write_text

__all__ = ["FORMAT", "CARD_FILE", "HEAD_FILE", "save_artifact", "load_card", "load_artifact", "sha256_file"]

FORMAT = "router-ml/1"
CARD_FILE = "card.json"
HEAD_FILE = "head.joblib"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_artifact(directory: str | Path, head: Any, card: dict[str, Any]) -> Path:
    """Write the head, then the card that vouches for it; each file atomically."""
    directory = Path(directory)
    head_path = directory / HEAD_FILE
    atomic_write(head_path, lambda f: joblib.dump(head, f, compress=3))
    card = dict(card, format=FORMAT, head={"file": HEAD_FILE, "sha256": sha256_file(head_path)})
    text = json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(directory / CARD_FILE, text)
    return directory


def load_card(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    if not directory.is_dir():
        raise ArtifactNotFoundError("model directory does not exist (run `make train`)", path=directory)
    path = directory / CARD_FILE
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactNotFoundError("model card is missing", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtifactCorruptError(f"model card is not valid JSON ({err})", path=path) from err
    if not isinstance(card, dict) or card.get("format") != FORMAT:
        got = card.get("format") if isinstance(card, dict) else type(card).__name__
        raise ArtifactCorruptError(f"not a {FORMAT} model card (format: {got!r})", path=path)
    for key in ("embedder", "tiers", "head", "numeric_features"):
        if key not in card:
            raise ArtifactCorruptError(f"model card lacks {key!r}", path=path)
    return card


def load_artifact(directory: str | Path) -> tuple[Any, dict[str, Any]]:
    """Return ``(head, card)`` after checking the head against the card's checksum."""
    directory = Path(directory)
    card = load_card(directory)
    head_path = directory / card["head"].get("file", HEAD_FILE)
    if not head_path.is_file():
        raise ArtifactNotFoundError("classifier head is missing", path=head_path)
    digest = sha256_file(head_path)
    if digest != card["head"].get("sha256"):
        raise ArtifactCorruptError(
            "classifier head does not match the checksum in card.json (truncated or replaced)",
            path=head_path,
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            head = joblib.load(head_path)
        except Exception as err:  # joblib raises many types for a damaged pickle
            raise ArtifactCorruptError(f"cannot unpickle the classifier head ({err})", path=head_path) from err
    for w in caught:  # e.g. scikit-learn version mismatch: surface it, naming the file
        warnings.warn(f"{head_path}: {w.message}", w.category, stacklevel=2)
    return head, card
