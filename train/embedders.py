"""Build the embedder for a training run by backend name: ``st``, ``onnx`` or ``static``.

The onnx and static embedders are made from the packaged MiniLM here, at training time (export +
int8 quantization, or distillation), into a work directory; ``Predictor.save`` then copies their
files into the model directory, where the runtime finds them without torch.
"""

from __future__ import annotations

from pathlib import Path

from router_ml.embedder import DEFAULT_EMBEDDER_ID, Embedder, SentenceTransformerEmbedder

__all__ = ["BACKEND_CHOICES", "ONNX_ID", "STATIC_ID", "build_embedder"]

BACKEND_CHOICES = ("st", "onnx", "static")
ONNX_ID = DEFAULT_EMBEDDER_ID + "#onnx-int8"
STATIC_ID = DEFAULT_EMBEDDER_ID + "#static-256"


def build_embedder(backend: str, workdir: str | Path, *, model_dir: str | Path | None = None) -> Embedder:
    """An embedder of ``backend``; ``model_dir`` is a sentence-transformers model (default: packaged MiniLM).

    ``workdir`` receives the exported files and must outlive the training run's ``save``.
    """
    workdir = Path(workdir)
    if backend == "st":
        return SentenceTransformerEmbedder(model_dir) if model_dir else SentenceTransformerEmbedder()
    if backend == "onnx":
        from router_ml.onnx_embedder import OnnxEmbedder

        from .export_onnx import build_onnx_files

        files = build_onnx_files(workdir / "onnx", model_dir)
        ident = ONNX_ID if model_dir is None else f"local:{Path(model_dir).name}#onnx-int8"
        return OnnxEmbedder(files["model"], files["tokenizer"], id=ident)
    if backend == "static":
        from router_ml.static_embedder import StaticEmbedder

        from .distill_static import build_static_files

        files = build_static_files(workdir / "static", model_dir)
        ident = STATIC_ID if model_dir is None else f"local:{Path(model_dir).name}#static-256"
        return StaticEmbedder(files["vectors"], files["tokenizer"], id=ident)
    raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKEND_CHOICES)}")
