"""Runners: a network's logits per task for padded token ids (`torch` eager, or onnxruntime on the CPU)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

import torch

from intentfusion.models.net import MultiTaskNet

Runner = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def autocast_dtype(precision: str, device: str | torch.device = "cpu") -> torch.dtype | None:
    """The autocast dtype for a Lightning-style precision string (None: plain float32)."""
    p, kind = str(precision), torch.device(device).type
    if p.startswith("bf16"):
        return torch.bfloat16
    if p.startswith("16") and kind == "cuda":
        return torch.float16
    if p in ("32", "32-true", "64", "64-true", "16", "16-mixed", "16-true", "transformer-engine"):
        return None
    raise ValueError(f"precision={precision!r}: expected 'auto', '32', 'bf16' (or a Lightning precision string)")


class TorchRunner:
    """Runs a `MultiTaskNet` under `torch.inference_mode` (and bf16/fp16 autocast when asked).

    `compile=True`: through `torch.compile` with dynamic shapes (one graph for every batch size > 1 and length,
    one more for batches of one) and Inductor's weight freezing (constant-folded, prepacked weights), which
    needs the weights to stay as they are: the runner owns its network.
    """

    torch_threads: int | None = None  # the network runs on torch's intra-op threads as they are set

    def __init__(self, net: MultiTaskNet, device: str | torch.device = "cpu", autocast: torch.dtype | None = None,
                 compile: bool = False) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.autocast = autocast
        self.forward = torch.compile(self.net, dynamic=True, options={"freezing": True}) if compile else self.net

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        context = torch.autocast(self.device.type, dtype=self.autocast) if self.autocast else nullcontext()
        with torch.inference_mode(), context:
            out = self.forward(input_ids.to(self.device), attention_mask.to(self.device))
        return {task: value.float().cpu() for task, value in out.items()}


class OnnxRunner:
    """Runs an exported `model.onnx` / `model.int8.onnx` with onnxruntime on the CPU."""

    # the predictor's own torch work (padding, gathering, softmax) around the session runs on one thread:
    # torch's OpenMP pool and onnxruntime's spinning pool on the same cores wait on each other (BENCHMARKS.md:
    # 10-15 % more msgs/s at batch 32 on 2 cores)
    torch_threads: int | None = 1

    def __init__(self, path: str | Path, tasks: Sequence[str], threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as e:  # pragma: no cover - depends on the installed extras
            raise ImportError("the ONNX runtime needs onnxruntime: pip install -e '.[onnx]'") from e
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tasks = list(tasks)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        outputs = self.session.run(self.tasks, feeds)
        return {task: torch.from_numpy(value).float() for task, value in zip(self.tasks, outputs, strict=True)}
