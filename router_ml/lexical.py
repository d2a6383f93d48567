"""``LexicalHead``: tier log-probabilities from TF-IDF of a request's WordPiece unigrams and bigrams.

Why: an averaged embedding blurs the few words that make a request hard ("prove", "across services",
a statute number); a linear model over the word pieces themselves keeps them. Its out-of-fold
log-probabilities join the embedding as three more features of the main head (stacking). On the dev
split it lifted the static model from 0.619 to 0.659 argmax accuracy, and with the fitted underroute
budget from 0.420 to 0.488 at 3.2% underroute: past the MiniLM transformer (0.440 at 3.9%), for
about 0.2 ms a request, since the token ids are the static embedder's own.

Fitted by ``train/lexical.py``; applied here with numpy alone, so serving needs no scikit-learn.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["LexicalHead", "ngram_keys"]

_KEY_BITS = 31  # bigram keys reach V + V * V: under 2**31 while V < 46,340 (BERT WordPiece: 30,522)


def ngram_keys(ids: Sequence[int], vocab_size: int) -> np.ndarray:
    """One int64 key per unigram (the id) and per adjacent pair (``V + a * V + b``), in text order."""
    a = np.asarray(ids, dtype=np.int64)
    if a.size < 2:
        return a
    return np.concatenate([a, vocab_size + a[:-1] * vocab_size + a[1:]])


class LexicalHead:
    """A multinomial logistic regression over L2-normalized, sublinear TF-IDF n-gram weights.

    Parameters
    ----------
    keys : sorted int64 array of the n-gram keys kept (``ngram_keys``), one per feature.
    idf : float array, the inverse document frequency of each key.
    coef : ``(len(keys), n_classes)`` weights; intercept : ``(n_classes,)``.
    vocab_size : int, the tokenizer's vocabulary size (it defines the bigram keys).
    """

    def __init__(self, keys: np.ndarray, idf: np.ndarray, coef: np.ndarray, intercept: np.ndarray, vocab_size: int):
        self.keys = np.asarray(keys, dtype=np.int64)
        self.idf = np.asarray(idf, dtype=np.float64)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.vocab_size = int(vocab_size)
        if self.vocab_size * (self.vocab_size + 1) >= 1 << _KEY_BITS:
            raise ValueError(f"lexical head: a vocabulary of {self.vocab_size} tokens is too large for its n-gram keys")
        n = len(self.keys)
        if self.idf.shape != (n,) or self.coef.ndim != 2 or self.coef.shape[0] != n:
            raise ValueError(f"lexical head: {n} keys, idf {self.idf.shape}, coef {self.coef.shape} do not agree")
        if self.intercept.shape != (self.coef.shape[1],):
            raise ValueError(f"lexical head: intercept {self.intercept.shape} for {self.coef.shape[1]} classes")
        if n and np.any(np.diff(self.keys) <= 0):
            raise ValueError("lexical head: keys must be sorted and unique")

    def tfidf(self, id_lists: Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The texts' weights as sparse triples ``(row, feature index, weight)``: (1 + log count) x idf,
        each row L2-normalized. One numpy pass over the whole batch (a row at a time is 4x slower)."""
        n, v = len(id_lists), self.vocab_size
        if n == 1:  # route(): one text, no rows to pack
            keys, counts = np.unique(ngram_keys(id_lists[0], v), return_counts=True)
            row = np.zeros(len(keys), dtype=np.int64)
        else:
            lengths = np.fromiter((len(ids) for ids in id_lists), dtype=np.int64, count=n)
            flat = np.fromiter(chain.from_iterable(id_lists), dtype=np.int64, count=int(lengths.sum()))
            rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
            same = rows[:-1] == rows[1:]  # adjacent ids of one text make a bigram (ngram_keys, batched)
            keys = np.concatenate([flat, v + flat[:-1][same] * v + flat[1:][same]])
            row = np.concatenate([rows, rows[:-1][same]])
            # (row, key) pairs packed in one int64: keys stay under 2**_KEY_BITS (checked in __init__)
            pairs, counts = np.unique((row << _KEY_BITS) | keys, return_counts=True)
            row, keys = pairs >> _KEY_BITS, pairs & ((1 << _KEY_BITS) - 1)
        if not len(self.keys):
            return row[:0], row[:0], np.zeros(0)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        hit = self.keys[pos] == keys
        row, idx = row[hit], pos[hit]
        w = (1.0 + np.log(counts[hit])) * self.idf[idx]
        norms = np.sqrt(np.bincount(row, weights=w * w, minlength=n))
        return row, idx, w / norms[row]

    def log_proba(self, id_lists: Sequence[Sequence[int]]) -> np.ndarray:
        """``(n, n_classes)`` log-probabilities, one row per token-id list."""
        row, idx, w = self.tfidf(id_lists)
        out = np.tile(self.intercept, (len(id_lists), 1))
        if len(id_lists) == 1:
            out[0] += w @ self.coef[idx]
        elif len(row):  # rows come sorted: sum each row's run (3x faster than np.add.at)
            starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
            out[row[starts]] += np.add.reduceat(self.coef[idx] * w[:, None], starts, axis=0)
        out -= out.max(axis=1, keepdims=True)
        return out - np.log(np.exp(out).sum(axis=1, keepdims=True))

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as f:
            np.savez(f, keys=self.keys, idf=self.idf, coef=self.coef, intercept=self.intercept,
                     vocab_size=np.int64(self.vocab_size))

    @classmethod
    def load(cls, path: str | Path) -> "LexicalHead":
        """Read ``save``'s arrays; raises ``ValueError`` or ``OSError`` for a damaged file."""
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(z["keys"], z["idf"], z["coef"], z["intercept"], int(z["vocab_size"]))
        except KeyError as err:
            raise ValueError(f"{path}: missing array {err}") from err
