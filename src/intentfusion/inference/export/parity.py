"""The numbers an export reports: the evaluation data, accuracy per task, and PyTorch-vs-ONNX logit agreement."""

from __future__ import annotations

from typing import Any

import torch

from intentfusion.models.heads import head_type

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


def eval_split(config: dict | None, label_names: dict[str, list[str]], split: str
               ) -> tuple[list[str], dict[str, torch.Tensor] | None, str]:
    """(texts, labels per task or None, where from) of the checkpoint's `split`; sample texts when the data
    cannot be rebuilt (no stored config, data files missing, ...)."""
    if not config or "data" not in config:
        return SAMPLE_TEXTS, None, "built-in sample texts (the checkpoint stores no data config)"
    try:
        import hydra

        datamodule = hydra.utils.instantiate(config["data"], label_names=label_names)
        datamodule.setup("test")
        data = datamodule.splits[split]
    except Exception as e:  # any failure to rebuild the data only costs the accuracy numbers
        return SAMPLE_TEXTS, None, f"built-in sample texts ({split!r} split unavailable: {' '.join(str(e).split())})"
    return data.texts, data.labels, f"the checkpoint's {split!r} split ({len(data.texts)} texts)"


def accuracy(
    logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], task_types: dict[str, str]
) -> dict[str, float]:
    """Accuracy per task over the labelled targets, each task decoded by its head type."""
    out = {}
    for task, kind in task_types.items():
        head, gold = head_type(task, kind), labels[task]
        keep = head.labelled(gold)
        if keep.any():
            out[task] = float((head.predict(logits[task])[keep] == gold[keep]).float().mean())
    return out


def compare(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Max abs logit difference and share of equal argmax labels, per task and overall."""
    per_task = {}
    for task, ref in reference.items():
        per_task[task] = {
            "max_abs_diff": float((ref - other[task]).abs().max()) if len(ref) else 0.0,
            "label_agreement": float((ref.argmax(-1) == other[task].argmax(-1)).float().mean()) if len(ref) else 1.0,
        }
    return {
        "max_abs_diff": max((p["max_abs_diff"] for p in per_task.values()), default=0.0),
        "label_agreement": min((p["label_agreement"] for p in per_task.values()), default=1.0),
        "tasks": per_task,
    }
