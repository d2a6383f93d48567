"""Build the embedder a model card names: one place that maps the card's ``embedder.backend`` to code.

Backends, registered by name:

- ``"sentence-transformers"`` (also a card without ``backend``, the first format): the packaged
  MiniLM, or a local model directory; needs the training install (torch).
- ``"onnx"``: ``OnnxEmbedder`` over ``embedder.onnx`` + ``tokenizer.json`` in the model directory.
- ``"static"``: ``StaticEmbedder`` over ``static.npy`` + ``tokenizer.json`` in the model directory.

The onnx and static backends import neither torch nor sentence-transformers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from .artifact import CARD_FILE, artifact_file
from .embedder import DEFAULT_EMBEDDER_ID, Embedder
from .errors import ArtifactCorruptError, EmbedderMismatchError

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "embedder_from_card"]

DEFAULT_BACKEND = "sentence-transformers"


def _sentence_transformers(spec: dict[str, Any], directory: Path, card: dict[str, Any]) -> Embedder:
    from .embedder import SentenceTransformerEmbedder, default_embedder

    if spec.get("id") == DEFAULT_EMBEDDER_ID:
        return default_embedder()
    if spec.get("path"):
        return SentenceTransformerEmbedder(spec["path"], id=spec["id"])
    raise EmbedderMismatchError(
        f"artifact was trained with embedder {spec.get('id')!r}; pass that embedder to load()",
        path=directory / CARD_FILE,
    )


def _files(spec: dict[str, Any], directory: Path, card: dict[str, Any], *roles: str) -> list[Path]:
    files = spec.get("files")
    if not isinstance(files, dict):
        raise ArtifactCorruptError(f"the {spec.get('backend')} embedder lists no 'files'", path=directory / CARD_FILE)
    return [artifact_file(directory, card, files.get(role)) for role in roles]


def _onnx(spec: dict[str, Any], directory: Path, card: dict[str, Any]) -> Embedder:
    from .onnx_embedder import OnnxEmbedder

    model, tokenizer = _files(spec, directory, card, "model", "tokenizer")
    max_length = int(spec.get("max_length", 256))
    return OnnxEmbedder(model, tokenizer, id=spec["id"], dim=int(spec["dim"]), max_length=max_length)


def _static(spec: dict[str, Any], directory: Path, card: dict[str, Any]) -> Embedder:
    from .static_embedder import StaticEmbedder

    vectors, tokenizer = _files(spec, directory, card, "vectors", "tokenizer")
    return StaticEmbedder(vectors, tokenizer, id=spec["id"], max_length=int(spec.get("max_length", 512)))


BACKENDS: dict[str, Callable[[dict[str, Any], Path, dict[str, Any]], Embedder]] = {
    "sentence-transformers": _sentence_transformers,
    "onnx": _onnx,
    "static": _static,
}


def embedder_from_card(card: dict[str, Any], directory: str | Path) -> Embedder:
    """The embedder for a loaded (and checksum-verified) artifact in ``directory``."""
    directory = Path(directory)
    spec = card.get("embedder")
    if not isinstance(spec, dict) or "id" not in spec:
        raise ArtifactCorruptError("the card's 'embedder' must be an object with an 'id'", path=directory / CARD_FILE)
    backend = spec.get("backend", DEFAULT_BACKEND)
    build = BACKENDS.get(backend)
    if build is None:
        raise EmbedderMismatchError(
            f"unknown embedder backend {backend!r} (this version knows {', '.join(BACKENDS)}); upgrade router-ml",
            path=directory / CARD_FILE,
        )
    try:
        return build(spec, directory, card)
    except (KeyError, TypeError, ValueError) as err:
        raise ArtifactCorruptError(
            f"bad {backend} embedder entry in the card ({err!r})", path=directory / CARD_FILE
        ) from err
