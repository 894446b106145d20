"""Metrics of label sets (multilabel tasks): micro / macro F1, subset accuracy and Hamming loss at per-label
thresholds, the thresholds' choice on validation, and the torchmetric that accumulates a split."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torchmetrics import Metric

THRESHOLD_GRID = tuple(round(0.05 * k, 2) for k in range(1, 20))  # 0.05 ... 0.95


def set_metrics(probs: torch.Tensor, target: torch.Tensor, thresholds: torch.Tensor) -> dict[str, torch.Tensor]:
    """`f1_micro`, `f1_macro`, `subset_acc` (the exact set) and `hamming` (the share of wrong label decisions)
    of probabilities (N, C) decided at per-label `thresholds` (C,), against 0/1 targets (N, C)."""
    from torchmetrics.functional.classification import (
        multilabel_exact_match,
        multilabel_f1_score,
        multilabel_hamming_distance,
    )

    n = target.shape[-1]
    preds = (probs >= thresholds.to(probs.device)).long()
    target = target.long()
    return {
        "f1_micro": multilabel_f1_score(preds, target, n, average="micro"),
        "f1_macro": multilabel_f1_score(preds, target, n, average="macro"),
        "subset_acc": multilabel_exact_match(preds, target, n),
        "hamming": multilabel_hamming_distance(preds, target, n, average="micro"),
    }


def choose_thresholds(probs: torch.Tensor, target: torch.Tensor, grid: Sequence[float] = THRESHOLD_GRID,
                      default: float = 0.5) -> torch.Tensor:
    """Per label, the threshold of `grid` with the highest F1 on (probs, target) (ties: the one closest to
    `default`); `default` for a label with no positive example."""
    out = torch.full((target.shape[-1],), default)
    candidates = torch.as_tensor(sorted(grid, key=lambda t: (abs(t - default), t)), dtype=probs.dtype)
    positive = target.bool()
    for label in range(target.shape[-1]):
        gold = positive[:, label]
        if not bool(gold.any()):
            continue
        decided = probs[:, label].unsqueeze(0) >= candidates.unsqueeze(1)  # (G, N)
        tp = (decided & gold).sum(-1).float()
        f1 = 2 * tp / (decided.sum(-1) + gold.sum()).clamp(min=1)
        out[label] = candidates[int(f1.argmax())]  # argmax takes the first best: the one closest to default
    return out


class LabelSetMetrics(Metric):
    """`set_metrics` over a split at the thresholds `thresholds()` gives when computed (a multilabel head's
    current ones); keeps the probabilities so that the thresholds can be chosen on them (`MultiLabelTask.calibrate`)."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, thresholds: Callable[[], torch.Tensor]) -> None:
        super().__init__()
        self.thresholds = thresholds
        self.add_state("probs", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")

    def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
        self.probs.append(probs.float())
        self.target.append(target.float())

    def values(self) -> tuple[torch.Tensor, torch.Tensor]:
        cat = lambda xs: torch.cat(xs) if isinstance(xs, list) else xs  # noqa: E731  (synced states are tensors)
        return cat(self.probs), cat(self.target)

    def compute(self) -> dict[str, torch.Tensor]:
        return set_metrics(*self.values(), self.thresholds())
