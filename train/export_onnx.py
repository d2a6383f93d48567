"""Export the packaged MiniLM to ONNX and quantize it to int8, for the torch-free runtime.

Why the wrapper: with transformers 5.x, ``torch.onnx.export(model, (ids, mask, types))`` passes the
inputs positionally and collides with ``use_cache``; a module whose ``forward`` calls the model with
keyword arguments and returns ``last_hidden_state`` exports cleanly with the legacy (TorchScript)
exporter. Pooling stays outside the graph, in ``OnnxEmbedder``, so the graph is the plain encoder.

Why ``per_channel=True``: default dynamic quantization gave a mean-pooled cosine of only 0.91-0.97
against fp32 here; per-channel weights give >= 0.99 (see /work/shared/FINDINGS.md).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings
from pathlib import Path

__all__ = ["OPSET", "export_onnx", "quantize_int8", "build_onnx_files"]

OPSET = 17


def _require(module: str, extra: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"exporting to ONNX needs {extra}: pip install 'router-ml[train]'") from err


def export_onnx(model_dir: str | Path, out: str | Path) -> Path:
    """Write the fp32 encoder of the Hugging Face model in ``model_dir`` to ``out`` (an .onnx file).

    Inputs ``input_ids``, ``attention_mask``, ``token_type_ids`` (int64, ``(batch, seq)``); output
    ``last_hidden_state`` ``(batch, seq, hidden)``; batch and sequence axes are dynamic.
    """
    torch = _require("torch", "torch")
    transformers = _require("transformers", "transformers")
    _require("onnx", "onnx")

    from router_ml.embedder import _quietly

    model = _quietly(transformers.AutoModel.from_pretrained, str(model_dir)).eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    ids = torch.tensor([[101, 7592, 2088, 102]], dtype=torch.long)
    dummy = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    axes = {0: "batch", 1: "sequence"}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow in the HF code
        torch.onnx.export(
            Encoder(model),
            dummy,
            str(out),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "last_hidden_state": axes},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    return out


def quantize_int8(fp32: str | Path, out: str | Path) -> Path:
    """Dynamic int8 quantization of the weights (activations stay float), per output channel."""
    _require("onnx", "onnx")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()  # the quantizer logs a pre-processing hint on the root logger
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(str(fp32), str(out), per_channel=True, weight_type=QuantType.QInt8)
    finally:
        quiet.setLevel(level)
    return Path(out)


def build_onnx_files(out_dir: str | Path, model_dir: str | Path | None = None) -> dict[str, Path]:
    """Export + quantize the (packaged) MiniLM into ``out_dir``: ``embedder.onnx`` and ``tokenizer.json``."""
    from router_ml.embedder import _packaged_minilm_path

    model_dir = Path(model_dir or _packaged_minilm_path())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model_dir, Path(tmp) / "fp32.onnx")
        model = quantize_int8(fp32, out_dir / "embedder.onnx")
    tok = out_dir / "tokenizer.json"
    shutil.copyfile(model_dir / "tokenizer.json", tok)
    return {"model": model, "tokenizer": tok}
