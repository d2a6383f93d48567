"""``OnnxEmbedder``: the MiniLM encoder as an (int8) ONNX graph, served by onnxruntime + tokenizers.

Why: the same sentence vectors as sentence-transformers (mean pooling over the attention mask, then
L2 norm) without importing torch, which costs seconds at start-up and a gigabyte on disk. The graph
is built at training time by ``train/export_onnx.py`` and travels inside the model directory.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["OnnxEmbedder", "load_tokenizer"]


def load_tokenizer(path: str | Path, *, max_length: int | None):
    """A ``tokenizers.Tokenizer`` from ``tokenizer.json`` with our own truncation and no padding.

    The packaged file has padding and truncation at 128 baked in; we pad ourselves, per batch.
    """
    try:
        from tokenizers import Tokenizer
    except ImportError as err:  # pragma: no cover - a runtime dependency
        raise ImportError("the onnx and static embedders need tokenizers: pip install tokenizers") from err
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    if max_length is None:
        tok.no_truncation()
    else:
        tok.enable_truncation(max_length)
    return tok


class OnnxEmbedder:
    """Sentence vectors from an ONNX encoder with inputs ``input_ids``, ``attention_mask``
    (``token_type_ids`` when the graph has it) and output ``(batch, seq, hidden)``.

    Parameters
    ----------
    model_path, tokenizer_path : paths to ``embedder.onnx`` and ``tokenizer.json``.
    id : str, the embedder id the card records.
    dim : int, default 384 (the hidden size; checked against the graph on load).
    max_length : int, default 256 (MiniLM's ``max_seq_length``; longer inputs are truncated).
    threads : int or None, default None (onnxruntime's choice: the physical cores).

    The session is created on first use; ``encode`` is safe to call from several threads.

    Example
    -------
    >>> e = OnnxEmbedder("models/embedder.onnx", "models/tokenizer.json", id="...")
    >>> e.encode(["hello"]).shape
    (1, 384)
    """

    backend = "onnx"

    def __init__(
        self,
        model_path: str | Path,
        tokenizer_path: str | Path,
        *,
        id: str,
        dim: int = 384,
        max_length: int = 256,
        threads: int | None = None,
    ):
        self.model_path = Path(model_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.id = id
        self.dim = int(dim)
        self.max_length = int(max_length)
        self.threads = threads
        self._session = None
        self._tokenizer = None
        self._inputs: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime as ort
                except ImportError as err:
                    raise ImportError("the onnx embedder needs onnxruntime: pip install onnxruntime") from err
                opts = ort.SessionOptions()
                opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                opts.inter_op_num_threads = 1
                if self.threads:
                    opts.intra_op_num_threads = int(self.threads)
                opts.log_severity_level = 3  # errors only: an app's stderr is not ours
                session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
                self._inputs = tuple(i.name for i in session.get_inputs())
                self._tokenizer = load_tokenizer(self.tokenizer_path, max_length=self.max_length)
                self._session = session
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """``(n, dim)`` float32, L2-normalized. Batches hold texts of similar length (less padding)."""
        session, tok = self._load()
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        encodings = tok.encode_batch(list(texts))
        order = np.argsort([len(e.ids) for e in encodings], kind="stable")
        for start in range(0, n, max(1, batch_size)):
            idx = order[start : start + batch_size]
            out[idx] = self._run(session, [encodings[i] for i in idx])
        return out

    def _run(self, session, encodings) -> np.ndarray:
        width = max(1, max(len(e.ids) for e in encodings))
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, e in enumerate(encodings):
            k = len(e.ids)
            ids[row, :k] = e.ids
            mask[row, :k] = 1
            types[row, :k] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        if hidden.shape[-1] != self.dim:
            raise ValueError(f"{self.model_path}: graph gives {hidden.shape[-1]}-dim vectors, expected {self.dim}")
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def artifact_spec(self) -> tuple[dict, dict[str, Path]]:
        """The card's ``embedder`` entry and the files the runtime needs (copied into the model dir)."""
        spec = {"backend": self.backend, "id": self.id, "dim": self.dim, "max_length": self.max_length,
                "files": {"model": "embedder.onnx", "tokenizer": "tokenizer.json"}}
        return spec, {"embedder.onnx": self.model_path, "tokenizer.json": self.tokenizer_path}
