"""Distill a static token-embedding table from the packaged MiniLM (model2vec's recipe, our code).

1. Every vocabulary token, alone between ``[CLS]`` and ``[SEP]``, goes through the model; its vector is
   the model's output at the token's own position (``pooling="token"``) or the mean over all three
   positions (``"mean"``, what the sentence embedder gives for that one-token text). The two tie in
   5-fold cross-validation on the training split (0.58); on the dev split "token" did better (0.62-0.63
   against 0.59-0.61 accuracy), so it is the default.
2. PCA to ``dims`` (256): smaller, and decorrelated dimensions average better.
3. Zipf / SIF weighting: WordPiece ids run roughly from frequent to rare, so a token's probability is
   taken as proportional to ``1 / (rank + 2)`` and its vector scaled by ``a / (a + p)``; frequent
   tokens ("the", ",") then weigh little in the mean.

Why our own: ``model2vec[distill]`` pins transformers < 5.4, which conflicts with our pins. The result
is a ``(vocab, dims)`` float16 array served by ``router_ml.static_embedder.StaticEmbedder``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from router_ml.embedder import _quietly

__all__ = ["token_vectors", "pca_sif", "distill_static", "build_static_files"]

SIF_COEFFICIENT = 1e-4


def token_vectors(model_dir: str | Path, *, pooling: str = "token", batch_size: int = 1024) -> np.ndarray:
    """``(vocab, hidden)`` float32: each token's output in ``[CLS] token [SEP]`` (see ``pooling``)."""
    if pooling not in ("token", "mean"):
        raise ValueError(f"pooling must be 'token' or 'mean', got {pooling!r}")
    try:
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel
    except ImportError as err:
        raise ImportError("distilling needs torch and transformers: pip install 'router-ml[train]'") from err
    model_dir = Path(model_dir)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ValueError(f"{model_dir}/tokenizer.json has no [CLS]/[SEP] tokens (not a BERT WordPiece vocabulary)")
    vocab = tok.get_vocab_size()
    model = _quietly(AutoModel.from_pretrained, str(model_dir)).eval()
    out = np.zeros((vocab, model.config.hidden_size), dtype=np.float32)
    with torch.no_grad():
        for start in range(0, vocab, batch_size):
            ids = torch.arange(start, min(vocab, start + batch_size), dtype=torch.long)[:, None]
            batch = torch.cat([torch.full_like(ids, cls_id), ids, torch.full_like(ids, sep_id)], dim=1)
            hidden = model(input_ids=batch, attention_mask=torch.ones_like(batch)).last_hidden_state
            pooled = hidden[:, 1] if pooling == "token" else hidden.mean(dim=1)
            out[start : start + len(ids)] = pooled.numpy()
    return out


def pca_sif(vectors: np.ndarray, *, dims: int = 256, sif_coefficient: float = SIF_COEFFICIENT) -> np.ndarray:
    """Centre, project on the top ``dims`` principal axes, then weight rows by Zipf rank (SIF)."""
    x = np.asarray(vectors, dtype=np.float64)
    if not 0 < dims <= x.shape[1]:
        raise ValueError(f"dims must be in 1..{x.shape[1]}, got {dims}")
    x = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:dims]
    # Fix each axis's sign (largest loading positive) so a rebuild gives the same table.
    axes *= np.sign(axes[np.arange(dims), np.abs(axes).argmax(axis=1)])[:, None]
    reduced = x @ axes.T
    inv_rank = 1.0 / np.arange(2, len(x) + 2)
    proba = inv_rank / inv_rank.sum()
    return (reduced * (sif_coefficient / (sif_coefficient + proba))[:, None]).astype(np.float32)


def distill_static(model_dir: str | Path, *, dims: int = 256) -> np.ndarray:
    """The ``(vocab, dims)`` float32 table for the model in ``model_dir``."""
    return pca_sif(token_vectors(model_dir), dims=dims)


def build_static_files(out_dir: str | Path, model_dir: str | Path | None = None, *, dims: int = 256) -> dict[str, Path]:
    """Distill the (packaged) MiniLM into ``out_dir``: ``static.npy`` (float16) and ``tokenizer.json``."""
    from router_ml.embedder import _packaged_minilm_path

    model_dir = Path(model_dir or _packaged_minilm_path())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vectors = out_dir / "static.npy"
    np.save(vectors, distill_static(model_dir, dims=dims).astype(np.float16), allow_pickle=False)
    tok = out_dir / "tokenizer.json"
    shutil.copyfile(model_dir / "tokenizer.json", tok)
    return {"vectors": vectors, "tokenizer": tok}
