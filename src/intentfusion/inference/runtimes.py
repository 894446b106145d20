"""The runtimes an export can run on, their files, and `runtime="auto"`: the fastest one that keeps the accuracy.

The measurements it chooses by are made by the export (`intentfusion.inference.export.bundle.onnx_files`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

ONNX_FILES = {  # runtime -> the export file it runs (with onnxruntime)
    "onnx": "model.onnx",
    "onnx-int8": "model.int8.onnx",
    "onnx-fused": "model.fused.onnx",
    "onnx-int8-fused": "model.int8.fused.onnx",
}
RUNTIMES = ("torch", *ONNX_FILES)
CHOICES = (*RUNTIMES, "auto")  # what `runtime=` accepts
MAX_ACCURACY_DROP = 0.005  # runtime="auto" takes a runtime only if it loses at most half a point on any task
SERVING_BATCH = 32  # the batch size an export checks and times every runtime at
MIN_TEXTS = 50  # ... and only measurements on at least this many texts (not the export's few built-in samples)
EXPORT_FLAGS = {"onnx": "onnx=true", "onnx-int8": "quantize=true", "onnx-fused": "fuse=true",
                "onnx-int8-fused": "fuse=true quantize=true"}  # the export options that write each file


def fastest_runtime(directory: str | Path, config: dict[str, Any], max_accuracy_drop: float = MAX_ACCURACY_DROP
                    ) -> str:
    """The runtime `runtime="auto"` runs: of the export's runtimes whose file is present, whose accuracy drop
    against the PyTorch model on the export's evaluation split is at most `max_accuracy_drop` (without labels:
    whose share of differing labels is), the one with the most messages per second measured at export on at least
    `MIN_TEXTS` texts (`intentfusion.json` `runtimes`). `torch` when the export recorded none, or without
    onnxruntime."""
    measured = config.get("runtimes") or {}
    if not has_onnxruntime():
        return "torch"
    candidates = {"torch": float((measured.get("torch") or {}).get("msgs_per_s") or 0.0)}
    for runtime, record in measured.items():
        if (runtime not in ONNX_FILES or not isinstance(record, dict) or int(record.get("texts") or 0) < MIN_TEXTS
                or not (Path(directory) / ONNX_FILES[runtime]).is_file()):
            continue
        drop = record.get("accuracy_drop")
        loss = drop if drop is not None else 1.0 - float(record.get("label_agreement", 0.0))
        if loss <= max_accuracy_drop:
            candidates[runtime] = float(record.get("msgs_per_s") or 0.0)
    return max(candidates, key=candidates.__getitem__)


def has_onnxruntime() -> bool:
    """Whether onnxruntime can be imported (the `onnx` extra)."""
    return importlib.util.find_spec("onnxruntime") is not None
