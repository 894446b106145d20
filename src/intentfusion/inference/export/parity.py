"""The numbers an export reports: the evaluation data, accuracy per task, and PyTorch-vs-ONNX logit agreement.

Logits are `Predictor.logits` output: (N, C) per sequence task, a list of N (T_i, C) tensors (each text's real
positions, no padding) per token task. Token tasks are compared over those real positions, and their decoded
entities text by text (`entity_agreement`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

# used for the parity check when the checkpoint's data cannot be rebuilt
SAMPLE_TEXTS = [
    "where is my order? it was due last week",
    "I was charged twice this month, please refund",
    "CANCEL MY SUBSCRIPTION NOW",
    "no puedo entrar en mi cuenta desde ayer",
    "Meine Lieferung ist immer noch nicht da!!",
    "le site plante quand je paie 😡",
    "hi",
]


EvalData = tuple[list[str], "dict[str, torch.Tensor] | None", str]  # (texts, labels per task or None, where from)
# (the checkpoint's stored run config, label names, task types) -> the data its runtimes are checked on
EvalSource = Callable[[dict | None, dict[str, list[str]], dict[str, str]], EvalData]


def sample_texts(config: dict | None, label_names: dict[str, list[str]], task_types: dict[str, str]) -> EvalData:
    """The built-in sample texts, unlabelled: the `EvalSource` of an export given no evaluation data."""
    return SAMPLE_TEXTS, None, "built-in sample texts (no evaluation data given)"


def accuracy(
    logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], heads: Mapping[str, torch.nn.Module]
) -> dict[str, float]:
    """Accuracy per task: the share of the examples labelled for it whose whole label its type decodes right
    (`TaskType.correct`: the class; every tag of a token task; the exact set of a multilabel task)."""
    out = {}
    for task, head in heads.items():
        gold, scores = labels[task], logits[task]
        if head.per_token:  # per-text (T_i, C): padded to the labels' width
            scores = _padded(scores, gold.shape[-1])
        keep = head.labelled(gold)
        if keep.any():
            out[task] = float(head.correct(scores, gold)[keep].float().mean())
    return out


def _padded(rows: Sequence[torch.Tensor], width: int) -> torch.Tensor:
    """Per-text (T_i, C) logits as one zero-padded (N, width, C) tensor (`width` >= every T_i)."""
    classes = rows[0].shape[-1] if len(rows) else 0
    out = torch.zeros(len(rows), width, classes)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _flat(logits: Any) -> torch.Tensor:
    """(N, C) as is; a token task's per-text (T_i, C) list as one (sum T_i, C) tensor of its real positions."""
    if isinstance(logits, list | tuple):  # a per-token task's per-text rows
        return torch.cat(list(logits)) if logits else torch.empty(0, 0)
    return logits


def _decoded(logits: torch.Tensor, task: str, heads: Mapping[str, torch.nn.Module] | None) -> torch.Tensor:
    head = heads[task] if heads is not None and task in heads else None
    return head.predict(logits) if head is not None and not head.per_token else logits.argmax(-1)


def compare(reference: dict[str, Any], other: dict[str, Any], entities: dict[str, float] | None = None,
            heads: Mapping[str, torch.nn.Module] | None = None) -> dict[str, Any]:
    """Max abs logit difference and share of equal decoded labels, per task and overall: the argmax (a token task:
    over the texts' real token positions), or with `heads` what an utterance-level head's `predict` decides (a
    multilabel task: the same label set at its thresholds); with `entities` (`entity_agreement`) also each token
    task's share of texts with the same entities, and their minimum as `entity_agreement`."""
    per_task = {}
    for task, ref_logits in reference.items():
        if isinstance(ref_logits, list | tuple):
            lengths, others = [len(r) for r in ref_logits], [len(r) for r in other[task]]
            if lengths != others:
                raise ValueError(f"task {task!r}: the runtimes' token counts differ")
        ref, oth = _flat(ref_logits), _flat(other[task])
        per_task[task] = {
            "max_abs_diff": float((ref - oth).abs().max()) if len(ref) else 0.0,
            "label_agreement": float(_decoded(ref, task, heads).eq(_decoded(oth, task, heads)).reshape(len(ref), -1)
                                     .all(-1).float().mean()) if len(ref) else 1.0,
        }
    for task, share in (entities or {}).items():
        per_task[task]["entity_agreement"] = share
    out = {
        "max_abs_diff": max((p["max_abs_diff"] for p in per_task.values()), default=0.0),
        "label_agreement": min((p["label_agreement"] for p in per_task.values()), default=1.0),
        "tasks": per_task,
    }
    if entities:
        out["entity_agreement"] = min(entities.values())
    return out


def entity_agreement(reference: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Per token task, the share of texts whose entities (label, start, end) are the same in two runtimes'
    `Predictor.predict` results ({} for a model without token tasks)."""
    if not reference or "entities" not in reference[0]:
        return {}
    pairs = list(zip(reference, other, strict=True))
    spans = lambda entities: [(e["label"], e["start"], e["end"]) for e in entities]  # noqa: E731
    return {task: sum(spans(a["entities"][task]) == spans(b["entities"][task]) for a, b in pairs) / len(pairs)
            for task in reference[0]["entities"]}
