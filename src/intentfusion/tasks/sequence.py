"""`sequence`: one label per utterance (intent, sentiment, urgency, ...), a softmax classifier on the pooled vector."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from intentfusion.errors import DataError
from intentfusion.tasks.base import ReportContext, TaskType, TextContext
from intentfusion.tasks.registry import register_task_type
from intentfusion.types import IGNORE_INDEX, Records

if TYPE_CHECKING:
    from torchmetrics import MetricCollection


@register_task_type("sequence")
class SequenceTask(TaskType):
    """Utterance-level classification: dropout + linear on the pooled vector -> logits (N, C).

    Loss: cross-entropy summed over the labelled examples (label != -100), class-weighted when weights are set.
    Metrics: accuracy and macro-F1 (+ the confusion matrix, drawn per phase). Decoding: the argmax label and
    softmax(logits / T) as its confidence. Report: per-class report, baselines, calibration before and after a
    temperature fitted on validation, reliability diagram, confusion matrix, clean-vs-noisy gap.
    """

    samples_by_class: ClassVar[bool] = True
    score_metric: ClassVar[str] = "f1_macro"
    headline_metric: ClassVar[str] = "acc"

    @classmethod
    def label_set(cls, task: str, records: Mapping[str, Records]) -> list[str]:
        if any(isinstance(r.get(task), list) for r in records["train"][:1000]):
            raise DataError(f"tasks.types.{task}", "the labels are lists",
                            f"tasks.types: {{{task}: token}} (one tag per word) or {{{task}: multilabel}}")
        return super().label_set(task, records)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weight = None if self.class_weight is None else self.class_weight.to(logits.device)
        summed = nn.functional.cross_entropy(
            logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum"
        )
        return summed, self.labelled(target).sum()

    def metrics(self) -> MetricCollection:
        """`acc`, `f1_macro` (what enters `<split>/score`) and `confusion` (not logged: drawn per phase)."""
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

        n = len(self.labels)
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(n, average="micro", ignore_index=IGNORE_INDEX),
                "f1_macro": MulticlassF1Score(n, average="macro", ignore_index=IGNORE_INDEX),
                "confusion": MulticlassConfusionMatrix(n, ignore_index=IGNORE_INDEX),
            }
        )

    def decode(self, logits: torch.Tensor, contexts: Sequence[TextContext], temperature: float = 1.0,
               distribution: bool = False) -> list[dict[str, Any]]:
        """Per example `{"label", "confidence"[, "distribution"]}`, confidence = softmax(logits / T) of the label."""
        probs = (logits.float() / temperature).softmax(-1)
        out = []
        for index, row in zip(logits.argmax(-1).tolist(), probs.tolist(), strict=True):
            result: dict[str, Any] = {"label": self.labels[index], "confidence": row[index]}
            if distribution:
                result["distribution"] = dict(zip(self.labels, row, strict=True))
            out.append(result)
        return out

    def report(self, task: str, outputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
               context: ReportContext) -> dict[str, Any]:
        from intentfusion.evaluation.calibration import (
            apply_temperature,
            calibration_metrics,
            fit_temperature,
            reliability_diagram,
        )
        from intentfusion.evaluation.metrics import task_report
        from intentfusion.evaluation.plots import save_confusion_matrices

        section: dict[str, Any] = {"splits": {}}
        if "val" in outputs and bool(self.labelled(outputs["val"][1]).any()):
            context.temperatures[task] = fit_temperature(*outputs["val"])
        temperature = context.temperatures.get(task, 1.0)
        for split, (logits, gold) in outputs.items():
            if split.endswith("_oos") or split == "val" or not bool(self.labelled(gold).any()):
                continue
            report = task_report(logits, gold, self.labels, train_targets=context.train_labels)
            report["calibration"] = calibration_metrics(logits, gold)
            report["calibration_scaled"] = calibration_metrics(apply_temperature(logits, temperature), gold)
            section["splits"][split] = report
            if split == "test":
                reliability_diagram(logits, gold, context.out_dir / f"reliability_{task}.png",
                                    title=f"{task} (test)", temperature=temperature)
                keep = self.labelled(gold)
                save_confusion_matrices({task: (logits.argmax(-1)[keep], gold[keep])}, {task: self.labels},
                                        context.out_dir)
        splits = section["splits"]
        if "test" in splits and "test_noisy" in splits:
            clean, noisy = splits["test"], splits["test_noisy"]
            section["robustness"] = {
                metric: {"clean": clean[metric], "noisy": noisy[metric], "gap": clean[metric] - noisy[metric]}
                for metric in ("accuracy", "macro_f1")
            }
        return section

    @staticmethod
    def report_lines(task: str, section: Mapping[str, Any]) -> list[str]:
        from intentfusion.evaluation.report_md import headline_table

        return headline_table(task, section["splits"]) if section["splits"] else []
