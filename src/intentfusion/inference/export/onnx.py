"""The ONNX side of an export: the whole multi-task model as one ONNX graph, and its int8 quantization."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from intentfusion.errors import ConfigError
from intentfusion.models.net import MultiTaskNet, OnnxGraph


class ExportError(ConfigError):
    """A bad export request (missing option, existing directory, unknown exporter, ...)."""


def export_onnx(net: MultiTaskNet, tokenizer: Any, path: Path, exporter: str = "dynamo", opset: int | None = None
                ) -> tuple[dict[str, Any], float]:
    """Write `net` as ONNX: inputs `input_ids`, `attention_mask` (int64, dynamic batch x sequence), one logits
    output per task (named after it): (batch, C) for a sequence task, (batch, sequence, C) for a token task
    (both axes dynamic). Returns (its description for `intentfusion.json`, seconds taken)."""
    graph = OnnxGraph(net).eval()
    sample = tokenizer(["where is my order, it is late", "refund"], padding=True, return_tensors="pt")
    args = (sample["input_ids"], sample["attention_mask"])
    names = {"input_names": ["input_ids", "attention_mask"], "output_names": list(net.tasks)}
    started = time.perf_counter()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" and the like
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1)
                axes = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
                program = torch.onnx.export(graph, args, dynamo=True, dynamic_shapes=axes, opset_version=opset,
                                            external_data=False, verbose=False, **names)
                program.save(str(path))
            elif exporter == "legacy":
                axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
                token = {0: "batch", 1: "sequence"}  # a token task's logits (N, T, C)
                axes.update({t: token if net.task_types[t] == "token" else {0: "batch"} for t in net.tasks})
                torch.onnx.export(graph, args, str(path), dynamo=False, dynamic_axes=axes,
                                  opset_version=opset or 17, **names)
            else:
                raise ExportError(f"exporter={exporter!r}", "unknown exporter", "'dynamo' or 'legacy'")
    finally:
        quiet.setLevel(level)
    import onnx

    model = onnx.load(str(path))
    fixed = [i.name for i in model.graph.input if any(d.dim_value for d in i.type.tensor_type.shape.dim)]
    if fixed:  # torch 2.13: a second dynamo export of an LSTM in one process specializes the sequence axis
        raise ExportError(f"exporter={exporter}", f"the ONNX graph came out with fixed input sizes ({fixed}); "
                          "torch.export specializes a BiLSTM's sequence axis when another export ran in this "
                          "process", "one dynamo export per process, or exporter=legacy")
    return {
        "file": path.name,
        "exporter": exporter,
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "inputs": ["input_ids", "attention_mask"],
        "outputs": list(net.tasks),
    }, round(time.perf_counter() - started, 1)


def quantize_onnx(src: Path, dst: Path) -> dict[str, Any]:
    """onnxruntime dynamic quantization: int8 weights (MatMul/Gemm/...), activations quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" hint: tried, it changes nothing for this model
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return {"file": dst.name, "method": "onnxruntime.quantization.quantize_dynamic (QInt8 weights)",
            "size_mb": round(dst.stat().st_size / 2**20, 2), "fp32_size_mb": round(src.stat().st_size / 2**20, 2)}
