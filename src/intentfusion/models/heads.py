"""One head per task type: the head owns its module, loss, metrics and decoding to labels and confidences.

A task declares its type (`tasks.types`, default `sequence`); the network builds `HEAD_TYPES[type]` for it, and
the training module, the evaluation suite, the Predictor and the export loop over heads instead of assuming
`(N, C)` logits. A new task type is one class here with the same verbs (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from intentfusion.errors import ConfigError
from intentfusion.types import IGNORE_INDEX

if TYPE_CHECKING:  # torchmetrics is imported when metrics are asked for: serving never needs it
    from torchmetrics import MetricCollection


@dataclass
class Features:
    """What the encoder hands the heads: the pooled vector (N, H) and, unless cached, token states (N, T, H)."""

    pooled: torch.Tensor
    states: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class SequenceHead(nn.Module):
    """Utterance-level classification: dropout + linear on the pooled vector -> logits (N, C).

    Loss: cross-entropy summed over the labelled examples (label != -100), class-weighted when weights are set.
    Metrics: accuracy and macro-F1. Decoding: the argmax label and softmax(logits / T) as its confidence.
    """

    task_type: ClassVar[str] = "sequence"
    reads_token_states: ClassVar[bool] = False  # trains on cached pooled features too

    def __init__(self, labels: Sequence[str], hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.labels = list(labels)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, len(self.labels))
        self.register_buffer("class_weight", None, persistent=False)

    def forward(self, features: Features) -> torch.Tensor:
        return self.linear(self.dropout(features.pooled))

    def set_class_weight(self, weight: Sequence[float] | None) -> None:
        """Per-class loss weights (None: unweighted)."""
        self.class_weight = None if weight is None else torch.as_tensor([float(w) for w in weight])

    @staticmethod
    def labelled(target: torch.Tensor) -> torch.Tensor:
        """Which targets count (N,): not `IGNORE_INDEX`."""
        return target != IGNORE_INDEX

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of the labelled examples' losses, their number)."""
        weight = None if self.class_weight is None else self.class_weight.to(logits.device)
        summed = nn.functional.cross_entropy(
            logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum"
        )
        return summed, self.labelled(target).sum()

    def metrics(self) -> MetricCollection:
        """A fresh `acc` / `f1_macro` collection; `f1_macro` is what enters `<split>/score`."""
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        n = len(self.labels)
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(n, average="micro", ignore_index=IGNORE_INDEX),
                "f1_macro": MulticlassF1Score(n, average="macro", ignore_index=IGNORE_INDEX),
            }
        )

    @staticmethod
    def predict(logits: torch.Tensor) -> torch.Tensor:
        """Label indices (N,)."""
        return logits.argmax(-1)

    @staticmethod
    def decode(
        logits: torch.Tensor, labels: Sequence[str], temperature: float = 1.0, distribution: bool = False
    ) -> list[dict[str, Any]]:
        """Per example `{"label", "confidence"[, "distribution"]}`, confidence = softmax(logits / T) of the label."""
        probs = (logits.float() / temperature).softmax(-1)
        out = []
        for index, row in zip(logits.argmax(-1).tolist(), probs.tolist(), strict=True):
            result: dict[str, Any] = {"label": labels[index], "confidence": row[index]}
            if distribution:
                result["distribution"] = dict(zip(labels, row, strict=True))
            out.append(result)
        return out


HEAD_TYPES: dict[str, type[SequenceHead]] = {"sequence": SequenceHead}


def head_type(task: str, name: str) -> type[SequenceHead]:
    """The head class of a task type; a `ConfigError` naming the task for an unknown type."""
    if name not in HEAD_TYPES:
        raise ConfigError(f"tasks.types.{task}", f"unknown task type {name!r}", f"one of {sorted(HEAD_TYPES)}")
    return HEAD_TYPES[name]
