"""The model artifact: one directory with ``card.json`` (what it is) and ``head.joblib`` (the head).

This module is the only place that writes or reads the format. The embedder is never pickled; the
card names it and its dimension. The head's checksum is in the card, so a truncated or swapped file
is refused before joblib (which can run code) opens it.

A torch-free backend also needs data files (``embedder.onnx``, ``static.npy``, ``tokenizer.json``):
they are copied into the directory and listed under the card's ``files`` with their checksums, and
loading refuses a missing or altered one, naming it. Their head is saved as plain arrays
(``head.npz``, a ``LinearHead``) instead of a pickle, so serving them imports neither scikit-learn
nor anything a pickle could name.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ArtifactCorruptError, ArtifactError, ArtifactNotFoundError
from .fileio import atomic_write, atomic_write_text
from .linear_head import LinearHead

__all__ = [
    "FORMAT",
    "CARD_FILE",
    "HEAD_FILE",
    "save_artifact",
    "load_card",
    "load_artifact",
    "artifact_file",
    "sha256_file",
]

FORMAT = "router-ml/1"
CARD_FILE = "card.json"
HEAD_FILE = "head.joblib"
NUMPY_HEAD_FILE = "head.npz"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _copy_in(directory: Path, name: str, source: str | Path) -> dict[str, Any]:
    """Copy ``source`` to ``directory/name`` atomically (skipped when it is that file already)."""
    if not name or Path(name).name != name or name in (CARD_FILE, HEAD_FILE, NUMPY_HEAD_FILE):
        raise ValueError(f"artifact file name must be a plain file name, not the card or head: {name!r}")
    source, target = Path(source), directory / name
    if not source.is_file():
        raise FileNotFoundError(f"{source}: file to put in the artifact does not exist")
    if not (target.exists() and target.samefile(source)):
        atomic_write(target, lambda f: f.write(source.read_bytes()))
    return {"sha256": sha256_file(target), "bytes": target.stat().st_size}


def _previous_files(directory: Path) -> set[str]:
    try:
        old = json.loads((directory / CARD_FILE).read_text(encoding="utf-8"))
        return {n for n in old.get("files", {}) if Path(n).name == n}
    except (OSError, ValueError, AttributeError):
        return set()


def save_artifact(
    directory: str | Path, head: Any, card: dict[str, Any], *, files: dict[str, str | Path] | None = None
) -> Path:
    """Write the extra ``files`` ({name in the directory: source path}), the head, then the card that
    vouches for them all; each file atomically. A ``LinearHead`` goes to ``head.npz``, anything else
    through joblib. Files a previous card listed and this one does not are removed, so a retrain with
    another backend leaves no stale weights behind."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stale = _previous_files(directory)
    listed = {name: _copy_in(directory, name, src) for name, src in sorted((files or {}).items())}
    if isinstance(head, LinearHead):
        head_path = directory / NUMPY_HEAD_FILE
        atomic_write(head_path, lambda f: np.savez(f, allow_pickle=False, **head.to_arrays()))
    else:
        head_path = directory / HEAD_FILE
        import joblib  # here, not at import: a numpy-head artifact never needs it

        atomic_write(head_path, lambda f: joblib.dump(head, f, compress=3))
    stale |= {HEAD_FILE, NUMPY_HEAD_FILE} - {head_path.name}
    card = dict(card, format=FORMAT, head={"file": head_path.name, "sha256": sha256_file(head_path)})
    card.pop("files", None)
    if listed:
        card["files"] = listed
    text = json.dumps(card, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(directory / CARD_FILE, text)
    for name in stale - set(listed):
        (directory / name).unlink(missing_ok=True)
    return directory


def artifact_file(directory: str | Path, card: dict[str, Any], name: Any) -> Path:
    """The path of a data file the card lists (and ``load_artifact`` verified); refuse any other."""
    listed = card.get("files")
    if not isinstance(name, str) or not isinstance(listed, dict) or name not in listed:
        raise ArtifactCorruptError(
            f"embedder file {name!r} is not listed in the card's 'files'", path=Path(directory) / CARD_FILE
        )
    return Path(directory) / name


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
    _check_files(directory, card)
    if head_path.suffix == ".npz":
        try:
            with np.load(head_path, allow_pickle=False) as arrays:
                return LinearHead.from_arrays(arrays), card
        except (ValueError, OSError, KeyError) as err:
            raise ArtifactCorruptError(f"cannot read the linear head ({err})", path=head_path) from err
    import joblib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            head = joblib.load(head_path)
        except ModuleNotFoundError as err:  # a scikit-learn head in the runtime install
            raise ArtifactError(
                f"this model's head needs {err.name!r}: pip install 'router-ml[train]' "
                "(models trained with --backend onnx or static need only the runtime install)",
                path=head_path,
            ) from err
        except Exception as err:  # joblib raises many types for a damaged pickle
            raise ArtifactCorruptError(f"cannot unpickle the classifier head ({err})", path=head_path) from err
    for w in caught:  # e.g. scikit-learn version mismatch: surface it, naming the file
        warnings.warn(f"{head_path}: {w.message}", w.category, stacklevel=2)
    return head, card


def _check_files(directory: Path, card: dict[str, Any]) -> None:
    """Every listed data file exists and matches its checksum (a wrong or half-copied file is named)."""
    listed = card.get("files", {})
    if not isinstance(listed, dict):
        raise ArtifactCorruptError("the card's 'files' must be an object", path=directory / CARD_FILE)
    for name, meta in sorted(listed.items()):
        path = directory / name
        if Path(name).name != name or not isinstance(meta, dict):
            raise ArtifactCorruptError(f"bad entry {name!r} in the card's 'files'", path=directory / CARD_FILE)
        if not path.is_file():
            raise ArtifactNotFoundError(f"embedder file {name} is missing", path=path)
        if sha256_file(path) != meta.get("sha256"):
            raise ArtifactCorruptError(
                f"embedder file {name} does not match the checksum in card.json (truncated or replaced)", path=path
            )
