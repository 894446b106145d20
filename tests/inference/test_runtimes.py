"""Serving runtimes as plugins: a runtime defined and registered here (the TorchScript-exported ONNX graph run with
onnxruntime's graph optimisations off) is built by the export, checked against PyTorch, served by the Predictor and
weighed by `runtime="auto"`, with no change to `src/`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from intentfusion.errors import CheckpointNotFoundError, ConfigError
from intentfusion.inference import Predictor
from intentfusion.inference.runtimes import RUNTIMES, BuildContext, Runtime, fastest_runtime, register_runtime
from tests.inference.test_predictor import ODD, best_checkpoint

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
pytestmark = pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime / onnxscript missing")


class UnoptimisedRunner:
    """onnxruntime with every graph optimisation off."""

    torch_threads = 1

    def __init__(self, path: Path, tasks: list[str], threads: int | None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tasks = list(tasks)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        return {t: torch.from_numpy(v).float() for t, v in zip(self.tasks, self.session.run(self.tasks, feeds),
                                                                strict=True)}


def build_legacy(context: BuildContext, runtime: Runtime) -> dict[str, Any]:
    from intentfusion.inference.export.onnx import export_onnx

    description, seconds = export_onnx(context.net, context.tokenizer, context.directory / runtime.file, "legacy")
    return {**description, "method": "TorchScript ONNX export, no graph optimisation", "export_seconds": seconds}


TOY = register_runtime(Runtime("toy-unoptimised", "model.toy.onnx", UnoptimisedRunner, build_legacy))


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory) -> tuple[Path, dict]:
    from intentfusion.export import export

    out = tmp_path_factory.mktemp("toy_runtime") / "model"
    return out, export(best_checkpoint(tiny_run), out, runtimes=["toy-unoptimised"], log=lambda *_: None)


def test_the_export_builds_and_checks_a_registered_runtime(exported) -> None:
    out, report = exported
    assert RUNTIMES["toy-unoptimised"] is TOY and (out / "model.toy.onnx").is_file()
    assert not (out / "model.onnx").exists()  # only what was asked for
    assert report["toy-unoptimised"]["parity"]["max_abs_diff"] < 1e-4
    assert report["toy-unoptimised"]["accuracy"]["delta"] == pytest.approx(
        {t: 0.0 for t in report["toy-unoptimised"]["accuracy"]["delta"]})
    config = json.loads((out / "intentfusion.json").read_text())
    assert config["runtimes"]["toy-unoptimised"]["description"]["method"].startswith("TorchScript")
    assert "model.toy.onnx" in (out / "README.md").read_text()


def test_the_predictor_serves_it_and_auto_weighs_it(exported, tmp_path) -> None:
    out, _ = exported
    toy, torch_predictor = Predictor.from_export(out, runtime="toy-unoptimised"), Predictor.from_export(out)
    a, b = toy.logits(ODD), torch_predictor.logits(ODD)
    assert all(torch.allclose(a[t], b[t], atol=1e-4) for t in a)
    assert toy.info["runtime"] == "toy-unoptimised"
    config = json.loads((out / "intentfusion.json").read_text())
    config["runtimes"]["toy-unoptimised"].update(msgs_per_s=1e9, texts=500)  # as if measured faster
    assert fastest_runtime(out, config) == "toy-unoptimised"
    (out / "model.toy.onnx").rename(tmp_path / "moved.onnx")
    try:
        assert fastest_runtime(out, config) == "torch"  # only a runtime whose file is there
        with pytest.raises(CheckpointNotFoundError, match="an export made with runtimes=\\[toy-unoptimised\\]"):
            Predictor.from_export(out, runtime="toy-unoptimised")
    finally:
        (tmp_path / "moved.onnx").rename(out / "model.toy.onnx")
    with pytest.raises(ConfigError, match="^runtime: unknown runtime 'toy-unoptimized'"):
        Predictor.from_export(out, runtime="toy-unoptimized")
