"""Serving runtimes as plugins: what an export can run on, how each one's file is written and run, and
`runtime="auto"`: the fastest one that keeps the accuracy.

A `Runtime` names its export file, the step that writes it (`build`: from the network, or from the file of the
runtime it `requires`), and how to run it (`runner`: a callable `(input_ids, mask) -> {task: logits}`). The export
builds each runtime asked for (`intentfusion-export ... runtimes=[name]`, or the flags `onnx` / `quantize` /
`fuse`) in registration order, checks it against PyTorch and times it; `Predictor.from_export(runtime=name)` runs it;
`runtime="auto"` weighs every registered runtime whose file the export holds. A new runtime is one module that
calls `register_runtime(Runtime(...))`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intentfusion.utils.registry import Registry

MAX_ACCURACY_DROP = 0.005  # runtime="auto" takes a runtime only if it loses at most half a point on any task
SERVING_BATCH = 32  # the batch size an export checks and times every runtime at
MIN_TEXTS = 50  # ... and only measurements on at least this many texts (not the export's few built-in samples)


@dataclass
class BuildContext:
    """What a runtime's `build` step gets: the (merged) network, its tokenizer, the export directory being
    written, the exporter options (``exporter``, ``opset``) and a log function."""

    net: Any
    tokenizer: Any
    directory: Path
    options: dict[str, Any]
    log: Callable[[str], None]


@dataclass(frozen=True)
class Runtime:
    """One way to serve an export.

    Attributes:
        name: what `runtime=` takes.
        file: the export file it runs (None: the PyTorch weights every export has).
        runner: ``(path of file, tasks, threads) -> runner`` (None: the torch runner, built from the network).
        build: writes `file` into the export (`BuildContext`), returns its description (``intentfusion.json``).
        export_flags: the export options that write it (for the error when it is missing).
        requires: a runtime whose file `build` reads (built before it).
    """

    name: str
    file: str | None = None
    runner: Callable[[Path, Sequence[str], int | None], Any] | None = None
    build: Callable[[BuildContext, Runtime], dict[str, Any]] | None = None
    export_flags: str = ""
    requires: str | None = None


RUNTIMES = Registry("runtime", "runtime")


def register_runtime(runtime: Runtime) -> Runtime:
    """Register `runtime` under its name (a later registration replaces it)."""
    RUNTIMES[runtime.name] = runtime
    return runtime


def runtime_choices() -> tuple[str, ...]:
    """What `runtime=` accepts: every registered runtime and `auto`."""
    return (*RUNTIMES, "auto")


def get_runtime(name: str) -> Runtime:
    """The runtime registered under `name`; a `ConfigError` naming `runtime` otherwise."""
    return RUNTIMES.lookup(name)


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
    for name, record in measured.items():
        runtime = RUNTIMES.get(name)
        if (runtime is None or runtime.file is None or not isinstance(record, dict)
                or int(record.get("texts") or 0) < MIN_TEXTS or not (Path(directory) / runtime.file).is_file()):
            continue
        drop = record.get("accuracy_drop")
        loss = drop if drop is not None else 1.0 - float(record.get("label_agreement", 0.0))
        if loss <= max_accuracy_drop:
            candidates[name] = float(record.get("msgs_per_s") or 0.0)
    return max(candidates, key=candidates.__getitem__)


def has_onnxruntime() -> bool:
    """Whether onnxruntime can be imported (the `onnx` extra)."""
    return importlib.util.find_spec("onnxruntime") is not None


# --------------------------------------------------------------------------------------------- built in
def _onnx_runner(path: Path, tasks: Sequence[str], threads: int | None) -> Any:
    from intentfusion.inference.runners import OnnxRunner

    return OnnxRunner(path, tasks, threads)


def _export_plain(context: BuildContext, runtime: Runtime) -> dict[str, Any]:
    from intentfusion.inference.export.onnx import export_onnx

    context.log(f"[export] ONNX ({context.options.get('exporter', 'dynamo')}) ...")
    description, seconds = export_onnx(context.net, context.tokenizer, context.directory / runtime.file,
                                       context.options.get("exporter", "dynamo"), context.options.get("opset"))
    return {**description, "export_seconds": seconds}


def _export_fused(context: BuildContext, runtime: Runtime) -> dict[str, Any]:
    from intentfusion.inference.export.onnx import fuse_onnx

    context.log("[export] ONNX with transformer fusions ...")
    description, seconds = fuse_onnx(context.net, context.tokenizer, context.directory / runtime.file,
                                     context.options.get("opset"))
    return {**description, "export_seconds": seconds}


def _quantized(context: BuildContext, runtime: Runtime) -> dict[str, Any]:
    from intentfusion.inference.export.onnx import quantize_onnx

    source = RUNTIMES[runtime.requires].file
    context.log(f"[export] int8 quantization of {source} ...")
    return quantize_onnx(context.directory / source, context.directory / runtime.file)


register_runtime(Runtime("torch"))
register_runtime(Runtime("onnx", "model.onnx", _onnx_runner, _export_plain, "onnx=true"))
register_runtime(Runtime("onnx-int8", "model.int8.onnx", _onnx_runner, _quantized, "quantize=true", requires="onnx"))
register_runtime(Runtime("onnx-fused", "model.fused.onnx", _onnx_runner, _export_fused, "fuse=true"))
register_runtime(Runtime("onnx-int8-fused", "model.int8.fused.onnx", _onnx_runner, _quantized,
                         "fuse=true quantize=true", requires="onnx-fused"))
EXPORT_FLAG_RUNTIMES = {"onnx": ("onnx",), "quantize": ("onnx", "onnx-int8"), "fuse": ("onnx", "onnx-fused")}
