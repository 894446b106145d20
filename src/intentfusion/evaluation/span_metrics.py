"""`SpanF1`: span-level precision / recall / F1 of BIO tag sequences (seqeval, strict IOB2), as a torchmetric."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric

from intentfusion.types import IGNORE_INDEX


class SpanF1(Metric):
    """Micro span precision, recall and F1 over entity spans (exact label and boundaries), plus token accuracy.

    `update(logits (N, T, C) or predicted ids (N, T), target (N, T))`: the positions whose target is
    `IGNORE_INDEX` (special tokens, continuation subwords, padding) are dropped, so each utterance contributes its
    word-level tag sequence. `compute()` decodes with seqeval in strict IOB2 mode: an `I-x` without a `B-x` before
    it is no span. States are tensors (ids and sequence lengths), so it syncs across processes.

    Example:
        >>> metric = SpanF1(["O", "B-time", "I-time"])
        >>> metric.update(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2]]))
        >>> metric.compute()["f1"]
        tensor(1.)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, labels: Sequence[str]) -> None:
        super().__init__()
        self.labels = list(labels)
        self.add_state("preds", default=[], dist_reduce_fx="cat")
        self.add_state("target", default=[], dist_reduce_fx="cat")
        self.add_state("lengths", default=[], dist_reduce_fx="cat")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(-1)
        keep = target != IGNORE_INDEX
        self.preds.append(preds[keep].long())
        self.target.append(target[keep].long())
        self.lengths.append(keep.sum(-1).long())

    def compute(self) -> dict[str, torch.Tensor]:
        from seqeval.metrics import f1_score, precision_score, recall_score
        from seqeval.scheme import IOB2

        cat = lambda xs: torch.cat(xs) if isinstance(xs, list) else xs  # noqa: E731  (synced states are tensors)
        preds, target, lengths = cat(self.preds), cat(self.target), cat(self.lengths)
        gold_tags, pred_tags, start = [], [], 0
        for n in lengths.tolist():
            if n:
                gold_tags.append([self.labels[i] for i in target[start : start + n].tolist()])
                pred_tags.append([self.labels[i] for i in preds[start : start + n].tolist()])
            start += n
        kwargs = {"mode": "strict", "scheme": IOB2, "zero_division": 0}
        scores = {
            "precision": precision_score(gold_tags, pred_tags, **kwargs),
            "recall": recall_score(gold_tags, pred_tags, **kwargs),
            "f1": f1_score(gold_tags, pred_tags, **kwargs),
            "token_acc": float((preds == target).float().mean()) if len(target) else 0.0,
        }
        return {k: torch.tensor(float(v)) for k, v in scores.items()}


def span_report(preds: torch.Tensor, target: torch.Tensor, labels: Sequence[str]) -> dict[str, object]:
    """Span precision / recall / F1, token accuracy and a per-slot-type table (seqeval, strict IOB2) for decoded
    tag ids `preds` (N, T) against `target` (N, T); positions whose target is `IGNORE_INDEX` are dropped."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2

    metric = SpanF1(labels)
    metric.update(preds, target)
    overall = {k: float(v) for k, v in metric.compute().items()}
    keep = target != IGNORE_INDEX
    gold_tags = [[labels[i] for i in t[k].tolist()] for t, k in zip(target, keep, strict=True) if k.any()]
    pred_tags = [[labels[i] for i in p[k].tolist()] for p, k in zip(preds, keep, strict=True) if k.any()]
    table = classification_report(gold_tags, pred_tags, mode="strict", scheme=IOB2, output_dict=True,
                                  zero_division=0)
    per_type = {
        name: {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1-score"]),
               "support": int(row["support"])}
        for name, row in table.items() if not name.endswith(" avg")
    }
    return {**overall, "utterances": len(gold_tags), "per_type": per_type}
