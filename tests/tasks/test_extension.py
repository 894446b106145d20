"""A new task type is one class: a toy regression type defined and registered here, in the test, trains end to end
(file loader, datamodule, module, a phase plan, `evaluate.py`'s suite and report, Predictor, ONNX parity) with no
change to `src/`."""

from __future__ import annotations

import importlib.util
import json
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from torch import nn

from intentfusion.inference import Predictor
from intentfusion.tasks import (
    TASK_TYPES,
    EncodeContext,
    Features,
    ReportContext,
    TaskType,
    TextContext,
    register_task_type,
)
from intentfusion.types import IGNORE_INDEX, Records

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))


@register_task_type("toy_regression")
class ToyRegression(TaskType):
    """One number per utterance: a linear output on the pooled vector, MSE loss, MAE / MSE metrics."""

    score_metric: ClassVar[str] = "neg_mae"
    headline_metric: ClassVar[str] = "mae"
    report_section: ClassVar[str] = "regression_tasks"

    def __init__(self, labels: Sequence[str], hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__(labels, hidden_size, dropout)
        self.linear = nn.Linear(hidden_size, 1)

    @classmethod
    def parse(cls, value: Any, text: str, where: str, options: Mapping[str, Any]) -> float | None:
        return None if value in (None, "") else float(value)

    @classmethod
    def label_set(cls, task: str, records: Mapping[str, Records]) -> list[str]:
        return ["value"]

    @classmethod
    def encode(cls, task: str, labels: Sequence[str], records: Records, context: EncodeContext) -> torch.Tensor:
        return torch.tensor([IGNORE_INDEX if r.get(task) is None else float(r[task]) for r in records])

    @classmethod
    def label_counts(cls, column: torch.Tensor, num_labels: int) -> list[int]:
        return [int(cls.labelled(column).sum())]

    def forward(self, features: Features) -> torch.Tensor:
        return self.linear(features.pooled)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = self.labelled(target)
        return ((logits[keep, 0].float() - target[keep]) ** 2).sum(), keep.sum()

    def predict(self, logits: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        return logits[..., 0]

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.predict(logits) - target).abs() < 0.5

    def metrics(self):
        from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

        class NegMAE(MeanAbsoluteError):
            def compute(self) -> torch.Tensor:
                return -super().compute()

        return MetricCollection({"mae": MeanAbsoluteError(), "mse": MeanSquaredError(), "neg_mae": NegMAE()})

    def metric_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return logits[:, 0].float(), target

    def decode(self, logits: Any, contexts: Sequence[TextContext], temperature: float = 1.0,
               distribution: bool = False) -> list[Any]:
        return [{"value": float(v)} for v in logits[:, 0].tolist()]

    @classmethod
    def empty(cls, distribution: bool = False) -> dict[str, Any]:
        return {"value": None}

    def gold(self, target: torch.Tensor, context: TextContext) -> dict[str, Any] | None:
        return {"value": float(target)} if float(target) != IGNORE_INDEX else None

    def report(self, task: str, outputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
               context: ReportContext) -> dict[str, Any]:
        out = {}
        for split, (logits, gold) in outputs.items():
            keep = self.labelled(gold)
            out[split] = {"mae": float((logits[keep, 0] - gold[keep]).abs().mean())}
        return {"splits": out}

    @staticmethod
    def report_lines(task: str, section: Mapping[str, Any]) -> list[str]:
        return [f"### {task} (regression)", "", *[f"- {s}: MAE {r['mae']:.3f}" for s, r in section["splits"].items()]]


def lengths_csv(path: Path, n: int = 240) -> Path:
    """Messages whose `words` column is their number of words (1-6), next to an intent."""
    rng = random.Random(0)
    lines = ["text,intent,words"]
    for i in range(n):
        k = rng.randint(1, 6)
        intent = "refund" if i % 2 else "track"
        lines.append(f"{' '.join([intent] * k)},{intent},{k}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, dict]:
    from intentfusion.train import train
    from tests.conftest import make_cfg

    root = tmp_path_factory.mktemp("toy_regression")
    data = lengths_csv(root / "lengths.csv")
    cfg = make_cfg(root / "run", cache_dir, "data=csv", f"data.source.train={data}", "tasks=intent_only",
                   "tasks.names=[intent,words]",
                   "tasks.types={words: toy_regression}", "phases=ulmfit", "hparams.epochs=4", "hparams.lr=3e-3",
                   "hparams.batch_size=16", "trainer.precision=32", "data.test_splits=[test]", "evaluate=true")
    return Path(cfg.paths.output_dir), train(cfg)


def test_the_toy_type_is_registered_from_the_test_file() -> None:
    import intentfusion

    assert TASK_TYPES["toy_regression"] is ToyRegression and ToyRegression.name == "toy_regression"
    src = Path(intentfusion.__file__).resolve().parent
    assert not [p for p in src.rglob("*.py") if "toy_regression" in p.read_text(encoding="utf-8")]  # src unchanged


def test_a_task_type_defined_in_a_test_trains_end_to_end(trained) -> None:
    out, metrics = trained
    assert {"val/words/mae", "test/words/mse", "test/intent/acc"} <= set(metrics)
    assert metrics["test/words/mae"] < 1.0  # the number of repeated words, learnt (a constant guess: ~1.5)
    assert metrics["val/score"] == pytest.approx((metrics["val/intent/f1_macro"] - metrics["val/words/mae"]) / 2)
    suite = json.loads((out / "eval" / "metrics.json").read_text())["suite"]
    assert suite["regression_tasks"]["words"]["splits"]["test"]["mae"] == pytest.approx(metrics["test/words/mae"],
                                                                                       abs=1e-4)
    assert "### words (regression)" in (out / "eval" / "report.md").read_text()
    row = json.loads((out / "eval" / "predictions.jsonl").read_text().splitlines()[0])
    assert set(row["predictions"]) == {"intent", "words"} and "value" in row["predictions"]["words"]["predicted"]


def test_the_predictor_and_the_onnx_export_serve_it(trained, tmp_path: Path) -> None:
    out, _ = trained
    ckpt = json.loads((out / "metrics.json").read_text())["checkpoint"]
    predictor = Predictor.from_checkpoint(ckpt)
    results = predictor.predict(["refund refund refund refund refund", "track", ""])
    assert results[0]["predictions"]["words"]["value"] > results[1]["predictions"]["words"]["value"]
    assert results[2]["predictions"]["words"] == {"value": None}
    if not HAS_ONNX:
        pytest.skip("onnx / onnxruntime / onnxscript missing")
    from intentfusion.export import export

    report = export(ckpt, tmp_path / "export", onnx=True, log=lambda *_: None)
    assert report["onnx"]["parity"]["tasks"]["words"]["max_abs_diff"] < 1e-3
    onnx = Predictor.from_export(tmp_path / "export", runtime="onnx").predict(["refund refund refund"])
    assert onnx[0]["predictions"]["words"]["value"] == pytest.approx(
        predictor.predict(["refund refund refund"])[0]["predictions"]["words"]["value"], abs=1e-3)
