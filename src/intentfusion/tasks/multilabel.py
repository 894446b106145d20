"""`multilabel`: a set of labels per utterance (several intents in one message), one sigmoid per label."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from intentfusion.errors import DataError, DataSourceError
from intentfusion.tasks.base import EncodeContext, ReportContext, TaskType, TextContext
from intentfusion.tasks.registry import register_task_type
from intentfusion.types import IGNORE_INDEX, Records

if TYPE_CHECKING:  # torchmetrics is imported when metrics are asked for: serving never needs it
    from torchmetrics import MetricCollection

DEFAULT_SEPARATOR = "#"  # ATIS writes `atis_flight#atis_airfare`
LABELS_CELL = "labels joined by the separator (`a#b`, option label_separator) or a JSON list of labels"


@register_task_type("multilabel")
class MultiLabelTask(TaskType):
    """A set of labels per utterance: dropout + linear on the pooled vector -> one logit per label (N, C).

    Data: a record's label is a tuple of label names (empty: labelled, no label); a file cell holds them
    joined by ``label_separator`` (default `#`, the ATIS convention) or as a JSON list, hub data as
    `Sequence(ClassLabel)`. Targets are multi-hot (N, C) floats, a row of -100 where a record has no label.
    Loss: binary cross-entropy, mean over labels, summed over the labelled examples (class weights, when set,
    weight each label's positive term). Decision: a threshold per label (`thresholds`, a buffer saved with the
    weights; 0.5 until chosen), chosen at the end of every validation epoch as the F1-best of 0.05 ... 0.95 on
    the validation split (`calibrate`), so validation metrics are at tuned thresholds and test reads them
    once. Metrics: `f1_micro` (enters `<split>/score`), `f1_macro`, `subset_acc`, `hamming`. Decoding:
    `{"labels": [{"label", "confidence"}, ...]}` (sigmoid(logit / T), labels at or over their threshold, most
    confident first).
    """

    exact_match: ClassVar[bool] = True
    label_sets: ClassVar[bool] = True
    score_metric: ClassVar[str] = "f1_micro"
    headline_metric: ClassVar[str] = "subset_acc"
    report_section: ClassVar[str] = "multilabel_tasks"

    def __init__(self, labels: Sequence[str], hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__(labels, hidden_size, dropout)
        self.register_buffer("thresholds", torch.full((len(self.labels),), 0.5))

    # ------------------------------------------------------------------------------------- data side
    @classmethod
    def parse(cls, value: Any, text: str, where: str, options: Mapping[str, Any]) -> tuple[str, ...] | None:
        """The label set (a sorted tuple: records keep lists for word-aligned fields only, which the noise
        transforms realign) from `a#b` (``label_separator``), a JSON list (also as a string), or a list."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as e:
                raise DataSourceError(where, f"invalid JSON ({e.msg}) {value[:60]!r}", LABELS_CELL) from None
        if isinstance(value, str):
            separator = str(options.get("label_separator") or DEFAULT_SEPARATOR)
            return tuple(sorted({part.strip() for part in value.split(separator) if part.strip()}))
        if isinstance(value, list | tuple) and all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
            return tuple(sorted({str(v).strip() for v in value if str(v).strip()}))
        raise DataSourceError(where, f"a JSON {type(value).__name__} {str(value)[:60]}", LABELS_CELL)

    @classmethod
    def label_set(cls, task: str, records: Mapping[str, Records]) -> list[str]:
        labels = set()
        for r in records["train"]:
            value = r.get(task)
            if value is None:
                continue
            if not isinstance(value, (list, tuple)):
                raise DataError(f"split 'train', task '{task}'", f"label {value!r}",
                                "a list of labels per example (a multilabel task)")
            labels.update(map(str, value))
        return sorted(labels)

    @classmethod
    def encode(cls, task: str, labels: Sequence[str], records: Records, context: EncodeContext) -> torch.Tensor:
        """(N, C) multi-hot floats; a row of -100 for a record without the task's labels."""
        index = {label: k for k, label in enumerate(labels)}
        out = torch.zeros(len(records), len(labels))
        for i, record in enumerate(records):
            value = record.get(task)
            if value is None:
                out[i] = IGNORE_INDEX
                continue
            unseen = sorted({str(v) for v in value if str(v) not in index})
            if unseen:
                raise DataError(f"split '{context.split}', example {i}, task '{task}'",
                                f"label(s) {unseen[:10]} unseen in 'train'", f"labels among {len(index)}")
            out[i, [index[str(v)] for v in value]] = 1.0
        return out

    @classmethod
    def label_counts(cls, column: torch.Tensor, num_labels: int) -> list[int]:
        rows = column[(column != IGNORE_INDEX).all(-1)] if column.ndim == 2 else column[:0]
        return rows.sum(0).long().tolist() if len(rows) else [0] * num_labels

    # ------------------------------------------------------------------------------------- training side
    @staticmethod
    def labelled(target: torch.Tensor) -> torch.Tensor:
        return (target != IGNORE_INDEX).all(-1)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = self.labelled(target)
        weight = None if self.class_weight is None else self.class_weight.to(logits.device)
        losses = nn.functional.binary_cross_entropy_with_logits(
            logits[keep].float(), target[keep].float(), pos_weight=weight, reduction="none")
        return losses.mean(-1).sum(), keep.sum()

    def predict(self, logits: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """(N, C) 0/1 decisions at the per-label thresholds."""
        return (logits.float().sigmoid() >= self.thresholds.to(logits.device)).long()

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (self.predict(logits) == target.long()).all(-1)

    def metrics(self) -> MetricCollection:
        """`f1_micro`, `f1_macro`, `subset_acc`, `hamming` at the current thresholds (`LabelSetMetrics`)."""
        from torchmetrics import MetricCollection

        from intentfusion.evaluation.multilabel import LabelSetMetrics

        return MetricCollection({"sets": LabelSetMetrics(lambda: self.thresholds)}, compute_groups=False)

    def metric_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        keep = self.labelled(target)
        return logits[keep].float().sigmoid(), target[keep]

    def calibrate(self, collection: MetricCollection) -> None:
        """The per-label thresholds, chosen on the validation split's probabilities."""
        from intentfusion.evaluation.multilabel import choose_thresholds

        metric = collection["sets"]
        with metric.sync_context():  # under DDP: every rank chooses on the whole split
            probs, target = metric.values()
        if len(probs):
            self.thresholds.copy_(choose_thresholds(probs.cpu(), target.cpu()).to(self.thresholds.device))

    def partner_distribution(self, logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return logits.sigmoid()

    # ------------------------------------------------------------------------------------- predictions
    def decode(self, logits: torch.Tensor, contexts: Sequence[TextContext], temperature: float = 1.0,
               distribution: bool = False) -> list[dict[str, Any]]:
        chosen = logits.float().sigmoid() >= self.thresholds.to(logits.device)  # thresholds: chosen at T = 1
        probs = (logits.float() / temperature).sigmoid()
        out = []
        for row, keep in zip(probs.tolist(), chosen.tolist(), strict=True):
            labels = sorted(((self.labels[k], p) for k, p in enumerate(row) if keep[k]), key=lambda lp: -lp[1])
            result: dict[str, Any] = {"labels": [{"label": label, "confidence": p} for label, p in labels]}
            if distribution:
                result["distribution"] = dict(zip(self.labels, row, strict=True))
            out.append(result)
        return out

    @classmethod
    def empty(cls, distribution: bool = False) -> dict[str, Any]:
        return {"labels": [], **({"distribution": None} if distribution else {})}

    def gold(self, target: torch.Tensor, context: TextContext) -> dict[str, Any] | None:
        if not bool(self.labelled(target[None])[0]):
            return None
        return {"labels": [{"label": self.labels[k]} for k in target.nonzero().flatten().tolist()]}

    # ------------------------------------------------------------------------------------- evaluation
    def report(self, task: str, outputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
               context: ReportContext) -> dict[str, Any]:
        """Per split: the set metrics at the chosen thresholds and at 0.5, and the number of examples."""
        from intentfusion.evaluation.multilabel import set_metrics

        splits = {}
        half = torch.full_like(self.thresholds, 0.5)
        for split, (logits, gold) in outputs.items():
            keep = self.labelled(gold)
            if not bool(keep.any()):
                continue
            probs, target = logits[keep].float().sigmoid(), gold[keep]
            splits[split] = {
                **{k: float(v) for k, v in set_metrics(probs, target, self.thresholds.cpu()).items()},
                "at_0.5": {k: float(v) for k, v in set_metrics(probs, target, half.cpu()).items()},
                "examples": int(keep.sum()),
                "with_several_labels": int((target.sum(-1) > 1).sum()),
            }
        return {"splits": splits, "thresholds": dict(zip(self.labels, self.thresholds.tolist(), strict=True))}

    @staticmethod
    def report_lines(task: str, section: Mapping[str, Any]) -> list[str]:
        from intentfusion.evaluation.report_md import table

        rows = [[s, r["subset_acc"], r["f1_micro"], r["f1_macro"], r["hamming"], r["at_0.5"]["subset_acc"],
                 r["examples"], r["with_several_labels"]] for s, r in section["splits"].items()]
        header = ["split", "subset acc", "micro-F1", "macro-F1", "hamming", "subset acc @0.5", "examples",
                  "with several labels"]
        return [f"### {task} (multilabel; thresholds chosen on validation)", "", *table(header, rows)]
