"""``StaticEmbedder``: one precomputed vector per vocabulary token, averaged; about 0.1 ms a request.

Why: a transformer costs milliseconds per request on a 2-core CPU; a lookup table distilled from it
(``train/distill_static.py``, model2vec's method) costs a tokenizer call and a mean. Its space is not
the transformer's, so the classifier head is trained on its own vectors.
"""

from __future__ import annotations

import re
import threading
from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np

from .onnx_embedder import load_tokenizer

__all__ = ["StaticEmbedder"]

# Split only where the BERT pre-tokenizer splits too (ASCII whitespace), so tokenizing each chunk on
# its own gives exactly the ids of tokenizing the whole text.
_CHUNKS = re.compile(r"[^ \t\n\r]+")


class StaticEmbedder:
    """Mean of token vectors (special tokens left out), L2-normalized (so a sum serves as well).

    Parameters
    ----------
    vectors_path : path to ``static.npy``, a ``(vocab, dim)`` float16/float32 array.
    tokenizer_path : path to the ``tokenizer.json`` whose ids index the rows.
    id : str, the embedder id the card records.
    max_length : int, default 512 tokens read per text (the normalizer already bounds the text).

    The table is read on first use (``np.load`` without pickle) and widened to float32 in memory:
    float16 arithmetic in numpy is several times slower, and the widening costs ~0.1 s once.
    Token ids are memoized per whitespace-separated chunk (up to ``cache_size`` chunks): words repeat,
    and a dict lookup is ~20x cheaper than a call into the tokenizer. The ids are the tokenizer's own.

    Example
    -------
    >>> e = StaticEmbedder("models/static.npy", "models/tokenizer.json", id="...")
    >>> e.encode(["hello"]).shape
    (1, 256)
    """

    backend = "static"

    def __init__(
        self,
        vectors_path: str | Path,
        tokenizer_path: str | Path,
        *,
        id: str,
        max_length: int = 512,
        cache_size: int = 200_000,
    ):
        self.vectors_path = Path(vectors_path)
        self.tokenizer_path = Path(tokenizer_path)
        self.id = id
        self.max_length = int(max_length)
        self.cache_size = int(cache_size)
        self._table: np.ndarray | None = None
        self._tokenizer = None
        self._chunk_ids: dict[str, list[int]] = {}
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._table is None:
                table = np.load(self.vectors_path, allow_pickle=False)
                if table.ndim != 2:
                    raise ValueError(f"{self.vectors_path}: expected a (vocab, dim) array, got shape {table.shape}")
                tok = load_tokenizer(self.tokenizer_path, max_length=None)
                if tok.get_vocab_size() > len(table):
                    raise ValueError(
                        f"{self.vectors_path}: {len(table)} rows for a {tok.get_vocab_size()}-token vocabulary"
                    )
                self._tokenizer = tok
                self._table = np.ascontiguousarray(table, dtype=np.float32)
        return self._table, self._tokenizer

    @property
    def dim(self) -> int:
        return int(self._load()[0].shape[1])

    @property
    def vocab_size(self) -> int:
        """Rows of the table: every token id is below it."""
        return int(self._load()[0].shape[0])

    def token_ids(self, text: str) -> list[int]:
        """The tokenizer's ids for ``text`` (no special tokens), cut at ``max_length``."""
        return self.token_ids_many([text])[0]

    def token_ids_many(self, texts: Sequence[str]) -> list[list[int]]:
        """``token_ids`` of each text; the loop that ``route_batch`` spends its time in."""
        _, tok = self._load()
        cache, limit, findall = self._chunk_ids, self.max_length, _CHUNKS.findall
        out = []
        for text in texts:
            chunks = findall(text)
            parts = list(map(cache.get, chunks))  # the lookups run in C; misses go to the tokenizer
            if None in parts:
                missing = set(chunks).difference(cache)
                if len(missing) > self.cache_size:  # one huge text: tokenize it whole, cache nothing
                    out.append(tok.encode(text, add_special_tokens=False).ids[:limit])
                    continue
                fresh = {c: tok.encode(c, add_special_tokens=False).ids for c in missing}
                if len(cache) + len(fresh) > self.cache_size:
                    cache.clear()  # crude but bounded; refills with the words that matter
                cache.update(fresh)
                parts = [fresh[c] if c in fresh else cache.get(c) for c in chunks]
                if None in parts:  # the cache was just emptied (here or by another thread): no lookups
                    out.append(tok.encode(text, add_special_tokens=False).ids[:limit])
                    continue
            ids = list(chain.from_iterable(parts))
            out.append(ids[:limit] if len(ids) > limit else ids)
        return out

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """``(n, dim)`` float32; a text with no tokens gives a zero row. ``batch_size`` is unused."""
        return self.encode_ids(self.token_ids_many(texts))

    def encode_ids(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """``encode`` from token ids already computed (the lexical head reads the same ids)."""
        table, _ = self._load()
        out = np.zeros((len(id_lists), table.shape[1]), dtype=np.float32)
        # A row at a time: faster here than one np.add.reduceat over the batch's gathered rows. Sums,
        # not means: the L2 norm that follows removes the length.
        for i, ids in enumerate(id_lists):
            if ids:
                np.take(table, ids, axis=0).sum(axis=0, out=out[i])
        return _normalize(out)

    def artifact_spec(self) -> tuple[dict, dict[str, Path]]:
        """The card's ``embedder`` entry and the files the runtime needs (copied into the model dir)."""
        spec = {"backend": self.backend, "id": self.id, "dim": self.dim, "max_length": self.max_length,
                "files": {"vectors": "static.npy", "tokenizer": "tokenizer.json"}}
        return spec, {"static.npy": self.vectors_path, "tokenizer.json": self.tokenizer_path}


def _normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
