"""Shared fixtures: a fast deterministic embedder and small labeled data."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

# The fake Messages-API server's fixtures (``fake``, ``settings``, ``router``) for every test module.
pytest_plugins = ["fake_server"]

FIXTURES = Path(__file__).parent / "fixtures"
_WORD = re.compile(r"\w+")


class HashEmbedder:
    """Bag of hashed words, L2-normalized: fixed vectors without loading a language model."""

    def __init__(self, dim: int = 64, id: str = "test:hash-64"):
        self.dim = dim
        self.id = id
        self.calls = 0

    def encode(self, texts, *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in _WORD.findall(t.lower()):
                h = int.from_bytes(hashlib.md5(w.encode()).digest()[:4], "little")
                out[i, h % self.dim] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out


@pytest.fixture
def hash_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def make_embedder():
    """The ``HashEmbedder`` class, for tests that need another id or dimension."""
    return HashEmbedder


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A copy of the 48-row fixture set (prompts and messages lists) in its own directory."""
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(FIXTURES / "tiny.jsonl", d / "tiny.jsonl")
    return d


@pytest.fixture(scope="session")
def shipped_model_dir() -> Path:
    """The committed default artifact."""
    from router_ml.registry import has_model, resolve_model_dir

    path = Path(__file__).resolve().parent.parent / "models"
    if not has_model(path):
        pytest.fail("models/ holds no model: run `make train` and commit models/")
    return resolve_model_dir(path)  # flat layout or the registry's active version
