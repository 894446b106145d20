"""The ONNX side of an export: the whole multi-task model as one ONNX graph (plain, or with onnxruntime's
transformer fusions), and int8 quantization."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
    output per task (named after it), with its type's dynamic axes (`onnx_axes`: (batch, C) for a sequence
    task, (batch, sequence, C) for a token task). Returns (its description for `intentfusion.json`, seconds taken)."""
    graph = OnnxGraph(net).eval()
    sample = tokenizer(["where is my order, it is late", "refund"], padding=True, return_tensors="pt")
    args = (sample["input_ids"], sample["attention_mask"])
    names = {"input_names": ["input_ids", "attention_mask"], "output_names": list(net.tasks)}
    started = time.perf_counter()
    # "torchvision is not installed" and the like
    with _quiet(logging.getLogger("torch.onnx")), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1)
            axes = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
            program = torch.onnx.export(graph, args, dynamo=True, dynamic_shapes=axes, opset_version=opset,
                                        external_data=False, verbose=False, **names)
            program.save(str(path))
        elif exporter == "legacy":
            axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
            axes.update({t: head.onnx_axes() for t, head in net.heads.items()})  # a token task's (N, T, C)
            torch.onnx.export(graph, args, str(path), dynamo=False, dynamic_axes=axes,
                              opset_version=opset or 17, **names)
        else:
            raise ExportError(f"exporter={exporter!r}", "unknown exporter", "'dynamo' or 'legacy'")
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


def fuse_onnx(net: MultiTaskNet, tokenizer: Any, path: Path, opset: int | None = None) -> tuple[dict[str, Any], float]:
    """Write `net` as an ONNX graph with onnxruntime's transformer fusions (`onnxruntime.transformers` optimizer:
    one `Attention` op per layer, `EmbedLayerNormalization`, `SkipLayerNormalization`, `BiasGelu`). Its
    patterns match the TorchScript export of the eager attention (transformers' SDPA path exports as a
    decomposition they do not recognise), so the encoder is exported that way, then optimized. Returns (its
    description, with the fused operator counts, and the seconds taken)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    encoder, started = net.encoder, time.perf_counter()
    attention = encoder.config._attn_implementation
    unfused = path.with_name(f"{path.stem}.unfused.onnx")
    encoder.set_attn_implementation("eager")
    try:
        description, _ = export_onnx(net, tokenizer, unfused, exporter="legacy", opset=opset)
    finally:
        encoder.set_attn_implementation(attention)
    options = FusionOptions("bert")
    options.use_raw_attention_mask(True)  # the (batch, sequence) mask as given, not lengths: any padding side
    with _quiet(logging.getLogger()):
        model = optimize_model(str(unfused), model_type="bert", num_heads=encoder.config.num_attention_heads,
                               hidden_size=encoder.config.hidden_size, opt_level=0, optimization_options=options)
    model.save_model_to_file(str(path))
    unfused.unlink()
    fused = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
    method = "onnxruntime.transformers.optimizer (model_type bert) on the TorchScript export with eager attention"
    return ({**description, "file": path.name, "method": method, "fused_operators": fused},
            round(time.perf_counter() - started, 1))


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """`logger` at ERROR inside the block (the exporters and onnxruntime's tools log hints at INFO / WARNING)."""
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def quantize_onnx(src: Path, dst: Path) -> dict[str, Any]:
    """onnxruntime dynamic quantization: int8 weights (MatMul/Gemm/Attention), activations quantized on the fly.

    Per-channel weight scales: one scale per output channel instead of per tensor. On a CLINC150 intent model the
    fused int8 graph lost 0.6-0.9 points of test accuracy with per-tensor scales and 0.05 with per-channel ones.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # its "consider pre-processing" hint: tried, it changes nothing for this model. DefaultTensorType: shape
    # inference cannot type the outputs of fused (com.microsoft) ops, which are float here
    with _quiet(logging.getLogger()):
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return {"file": dst.name, "method": "onnxruntime.quantization.quantize_dynamic (QInt8 weights, per channel)",
            "size_mb": round(dst.stat().st_size / 2**20, 2), "fp32_size_mb": round(src.stat().st_size / 2**20, 2)}
