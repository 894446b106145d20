"""`TaskType`: everything about a task that differs by the kind of label it has, in one class.

A task type is an `nn.Module` (the task's head on the shared encoder) whose class methods also cover the data
side. Each verb is called by exactly one place, which loops over the tasks and never asks for a type's name:

| verb | who calls it | what it does |
|---|---|---|
| `parse` | file and hub loaders (`data/sources_files.py`) | a raw cell -> the record's label (or None) |
| `label_set` | the datamodule | the label names, from the splits' records |
| `encode` | the datamodule | a split's labels -> one tensor column (row i: example i) |
| `rows` | the collator | a batch's rows of that column |
| `label_counts` | the datamodule | examples per label (class weights, the data summary) |
| `forward` | `MultiTaskNet` | `Features` -> logits |
| `loss` | `MultiTaskModule` | (summed loss, labelled count) |
| `labelled`, `correct` | `MultiTaskModule` | per example: has a label / is entirely right (exact match) |
| `metrics`, `metric_inputs`, `calibrate` | `MultiTaskModule` | its torchmetrics, their input, validation choices |
| `partner_distribution`, `add_shift` | `LabelFusion` | what a fused partner sees of this task, how a shift is added |
| `predict` | suite, export parity | decoded label ids |
| `decode`, `empty` | `Predictor`, `evaluate.py` | per text: the JSON result (`output_key` says where it goes) |
| `gold` | `evaluate.py` | per text: the gold label in the same JSON form |
| `report`, `report_lines` | the evaluation suite, `report.md` | the task's section of the report |
| `onnx_axes` | the ONNX export | dynamic axes of the task's output |

A new task type is one module in `intentfusion/tasks/` with a `TaskType` subclass decorated with
`@register_task_type("name")` (or the same call from user code: nothing in `src/` changes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from torch import nn

from intentfusion.errors import DataError, DataSourceError
from intentfusion.evaluation.context import ReportContext
from intentfusion.types import IGNORE_INDEX, Records

if TYPE_CHECKING:  # torchmetrics is imported when metrics are asked for: serving never needs it
    from torchmetrics import MetricCollection


@dataclass
class Features:
    """What the encoder hands the heads: the pooled vector (N, H) and, unless cached, token states (N, T, H)."""

    pooled: torch.Tensor
    states: torch.Tensor | None = None
    mask: torch.Tensor | None = None


@dataclass
class EncodeContext:
    """What a split's label encoding may need besides the records: the split's name (for errors), its texts,
    each text's subword character offsets (when some task type `needs_offsets`) and token counts, the data
    options (``label_all_subwords``), and a place for figures the summary reports (``stats``)."""

    split: str
    texts: list[str]
    lengths: np.ndarray
    offsets: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class TextContext:
    """One text as a token-level decoder needs it: the text (cleaned), its words' character spans, the word of
    each subword position (None: special / marker pieces)."""

    text: str
    spans: Sequence[tuple[int, int]] = ()
    words: Sequence[int | None] = ()


class TaskType(nn.Module):
    """Base of every task type: the head module (subclasses define `forward`) and the data-side class methods.

    Defaults are those of an utterance-level task with one target per example; a type overrides what differs.
    """

    name: ClassVar[str] = ""  # set by `register_task_type`
    reads_token_states: ClassVar[bool] = False  # True: cannot train on cached pooled features
    needs_offsets: ClassVar[bool] = False  # True: the data is tokenized with character offsets (word alignment)
    per_token: ClassVar[bool] = False  # logits (N, T, C) instead of (N, C)
    exact_match: ClassVar[bool] = False  # True: the module logs `<split>/exact_match` (joint SLU)
    samples_by_class: ClassVar[bool] = False  # one class per example: usable for `data.weighted_sampling`
    label_sets: ClassVar[bool] = False  # a record's label is a set of labels (loaders keep multi-label data whole)
    score_metric: ClassVar[str] = ""  # the metric that enters `<split>/score`
    headline_metric: ClassVar[str] = ""  # the metric of the per-group tables
    output_key: ClassVar[str] = "predictions"  # where `Predictor.predict` puts its result
    report_section: ClassVar[str] = "tasks"  # the suite's key for its report sections
    options_key: ClassVar[str | None] = None  # the network option block it takes (e.g. `token_head`)

    def __init__(self, labels: Sequence[str], hidden_size: int, dropout: float = 0.1) -> None:
        """The default head: dropout + a linear layer, one output per label (`forward` reads the pooled vector)."""
        super().__init__()
        self.labels = list(labels)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, len(self.labels))
        self.register_buffer("class_weight", None, persistent=False)

    def forward(self, features: Features) -> torch.Tensor:
        """Logits (N, C) from the pooled vector."""
        return self.linear(self.dropout(features.pooled))

    # ------------------------------------------------------------------------------------- data side
    @classmethod
    def parse(cls, value: Any, text: str, where: str, options: Mapping[str, Any]) -> Any:
        """A file or hub cell -> the record's label; None (an empty cell / null / absent key) is a missing label."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, (list, dict)):
            raise DataSourceError(where, f"holds a JSON {type(value).__name__}",
                                  "a label (or the task's type in tasks.types, e.g. multilabel for a list)")
        return str(value).strip()

    @classmethod
    def label_set(cls, task: str, records: Mapping[str, Records]) -> list[str]:
        """The label names: the training split's, sorted."""
        labels = [r[task] for r in records["train"] if r.get(task) is not None]
        sets = [label for label in labels[:1000] if isinstance(label, (list, tuple))]
        if sets:
            raise DataError(f"tasks.types.{task}", f"{cls.name or 'this type'}, but the data gives label sets "
                            f"(e.g. {list(sets[0])})", "a type of label sets for it (multilabel)")
        return sorted({str(label) for label in labels})

    @classmethod
    def encode(cls, task: str, labels: Sequence[str], records: Records, context: EncodeContext) -> torch.Tensor:
        """The split's label column: (N,) label ids, `IGNORE_INDEX` where a record has no label."""
        index = {label: k for k, label in enumerate(labels)}
        unseen = sorted({r[task] for r in records if r.get(task) is not None and r[task] not in index})
        if unseen:
            raise DataError(
                f"split '{context.split}', task '{task}'", f"label(s) {unseen[:10]} do not occur in the training split"
                f" (known: {len(index)} labels)", "labels seen in 'train', or the source's unknown_labels set to "
                "mask or drop")
        return torch.as_tensor([index[r[task]] if r.get(task) is not None else IGNORE_INDEX for r in records],
                               dtype=torch.long)

    @staticmethod
    def rows(column: torch.Tensor, idx: torch.Tensor, length: int) -> torch.Tensor:
        """A batch's rows of the column (`length`: the batch's padded token count)."""
        return column[idx]

    @classmethod
    def label_counts(cls, column: torch.Tensor, num_labels: int) -> list[int]:
        """How often each label occurs in a label column (its labelled entries)."""
        return torch.bincount(column[column != IGNORE_INDEX].long(), minlength=num_labels).tolist()

    # ------------------------------------------------------------------------------------- training side
    def set_class_weight(self, weight: Sequence[float] | None) -> None:
        """Per-class loss weights (None: unweighted)."""
        self.class_weight = None if weight is None else torch.as_tensor([float(w) for w in weight])

    @staticmethod
    def labelled(target: torch.Tensor) -> torch.Tensor:
        """Which examples (N,) carry a label for this task."""
        return target != IGNORE_INDEX

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of the labelled examples' losses, the number of labelled units it is averaged over)."""
        raise NotImplementedError

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Per example (N,): whether the whole label is right (for the exact match)."""
        return self.predict(logits) == target

    def metrics(self) -> MetricCollection:
        """A fresh metric collection (keys are the metric names logged as `<split>/<task>/<name>`)."""
        raise NotImplementedError

    def metric_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """What `metrics().update` takes."""
        return logits.float(), target

    def calibrate(self, collection: MetricCollection) -> None:
        """Choices made on the validation split (thresholds, ...), called with its filled collection before
        `compute` at the end of every validation epoch. Default: nothing to choose."""

    # ------------------------------------------------------------------------------------- fusion
    def partner_distribution(self, logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(N, C): what a fused partner task sees of this one."""
        return logits.softmax(-1)

    @staticmethod
    def add_shift(logits: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """This task's logits plus a partner's (N, C) shift."""
        return logits + shift

    # ------------------------------------------------------------------------------------- predictions
    def predict(self, logits: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Decoded label ids (`positions`: the labelled positions, for per-token types)."""
        return logits.argmax(-1)

    def decode(self, logits: Any, contexts: Sequence[TextContext], temperature: float = 1.0,
               distribution: bool = False) -> list[Any]:
        """Per text, the JSON result. `logits`: (N, C) for an utterance-level type, a list of N (T_i, C) tensors
        (each text's real positions) for a `per_token` one."""
        raise NotImplementedError

    @classmethod
    def empty(cls, distribution: bool = False) -> Any:
        """The result for a text that was not run (empty)."""
        return {"label": None, "confidence": 0.0, **({"distribution": None} if distribution else {})}

    def gold(self, target: torch.Tensor, context: TextContext) -> Any:
        """One example's gold label in the form `decode` gives (None: unlabelled)."""
        return self.labels[int(target)] if int(target) != IGNORE_INDEX else None

    # ------------------------------------------------------------------------------------- evaluation
    def report(self, task: str, outputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
               context: ReportContext) -> dict[str, Any]:
        """The task's report section from `{split: (logits, gold)}` of every split."""
        raise NotImplementedError

    @staticmethod
    def report_lines(task: str, section: Mapping[str, Any]) -> list[str]:
        """`report.md` lines of the section `report` returned."""
        return []

    @classmethod
    def onnx_axes(cls) -> dict[int, str]:
        """Dynamic axes of the task's ONNX output."""
        return {0: "batch", 1: "sequence"} if cls.per_token else {0: "batch"}
