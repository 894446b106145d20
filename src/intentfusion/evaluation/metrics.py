"""Per-task classification report with two reference baselines.

:func:`task_report` turns the logits (N, C) and integer targets (N,) of one task into accuracy, macro-F1 and
weighted-F1 (torchmetrics), per-class precision / recall / F1 / support (sklearn ``classification_report``),
the confusion matrix, and the same headline numbers for two baselines scored on the same targets:

* ``majority``: always predict one class: the most frequent class of ``train_targets`` when given (the honest
  baseline: it uses no test labels), otherwise the most frequent class of the evaluated targets (an optimistic
  baseline). ``baselines["majority"]["source"]`` says which ("train" or "eval"). Ties go to the lowest index.
* ``uniform_random``: guess each class with probability 1/C, independently of the input. Computed
  analytically on the evaluated prevalences p_k: accuracy = 1/C; for class k precision = p_k and
  recall = 1/C, so F1_k = 2 p_k (1/C) / (p_k + 1/C); macro-F1 = mean_k F1_k (all C classes, since every class
  gets predicted) and weighted-F1 = sum_k p_k F1_k. These are the F1 of the expected precision / recall (the
  large-N limit), not the expectation of a finite-sample F1.

Targets equal to ``ignore_index`` (-100) are dropped before anything is computed (also from
``train_targets``). Macro-F1 follows torchmetrics: it averages over the classes that occur in the targets or
in the predictions (a class absent from both is left out rather than counted as F1 = 0); the per-class rows
list every class, absent ones with support 0 and zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from sklearn.metrics import classification_report, confusion_matrix
from torch import Tensor
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

IGNORE_INDEX = -100


def drop_ignored(logits: Tensor, targets: Tensor, ignore_index: int = IGNORE_INDEX) -> tuple[Tensor, Tensor]:
    """`(logits, targets)` as float (N, C) / long (N,) tensors, rows whose target is `ignore_index` dropped.

    Raises ValueError on mismatched shapes, on targets outside [0, C) and when no row is left.
    """
    logits = torch.as_tensor(logits).detach().cpu()
    targets = torch.as_tensor(targets).detach().cpu().long().reshape(-1)
    if logits.ndim != 2 or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"expected logits (N, C) and targets (N,), got {tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    keep = targets != ignore_index
    logits, targets = logits[keep].float(), targets[keep]
    if targets.numel() == 0:
        raise ValueError(f"no targets left after dropping ignore_index={ignore_index}")
    n_classes = logits.shape[1]
    bad = targets[(targets < 0) | (targets >= n_classes)]
    if bad.numel():
        raise ValueError(f"targets must be in [0, {n_classes}) or {ignore_index}, got {sorted(set(bad.tolist()))}")
    return logits, targets


def _headline(preds: Tensor, targets: Tensor, n_classes: int) -> dict[str, float]:
    return {
        "accuracy": float(multiclass_accuracy(preds, targets, num_classes=n_classes, average="micro")),
        "macro_f1": float(multiclass_f1_score(preds, targets, num_classes=n_classes, average="macro")),
        "weighted_f1": float(multiclass_f1_score(preds, targets, num_classes=n_classes, average="weighted")),
    }


def uniform_random_baseline(targets: Tensor, n_classes: int) -> dict[str, float]:
    """Expected accuracy / macro-F1 / weighted-F1 of uniform random guessing (analytic; module docstring)."""
    prevalence = torch.bincount(targets, minlength=n_classes).double() / targets.numel()
    recall = 1.0 / n_classes
    f1 = 2 * prevalence * recall / (prevalence + recall)
    return {
        "accuracy": recall,
        "macro_f1": float(f1.mean()),
        "weighted_f1": float((prevalence * f1).sum()),
    }


def majority_baseline(
    targets: Tensor, n_classes: int, train_targets: Tensor | None = None, ignore_index: int = IGNORE_INDEX
) -> dict[str, Any]:
    """Scores of always predicting the most frequent class of `train_targets` (or of `targets` if None)."""
    source = "eval"
    counts_from = targets
    if train_targets is not None:
        train = torch.as_tensor(train_targets).detach().cpu().long().reshape(-1)
        train = train[train != ignore_index]
        if train.numel():
            source, counts_from = "train", train
    majority = int(torch.bincount(counts_from, minlength=n_classes).argmax())
    preds = torch.full_like(targets, majority)
    return {"class_index": majority, "source": source, **_headline(preds, targets, n_classes)}


def task_report(
    logits: Tensor,
    targets: Tensor,
    label_names: Sequence[str],
    train_targets: Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> dict[str, Any]:
    """Classification report of one task (see the module docstring for the baselines and conventions).

    Returns ``{"n", "accuracy", "macro_f1", "weighted_f1", "per_class": {name: {"precision", "recall", "f1",
    "support"}}, "confusion_matrix": [[...]] (rows = gold, columns = predicted, in label order), "labels",
    "baselines": {"majority": {"class", "class_index", "source", "accuracy", "macro_f1", "weighted_f1"},
    "uniform_random": {"accuracy", "macro_f1", "weighted_f1"}}}``.
    """
    logits, targets = drop_ignored(logits, targets, ignore_index)
    label_names = [str(name) for name in label_names]
    n_classes = logits.shape[1]
    if len(label_names) != n_classes:
        raise ValueError(f"{len(label_names)} label names for logits with {n_classes} classes")
    if len(set(label_names)) != n_classes:
        raise ValueError(f"label names must be distinct, got {label_names}")
    preds = logits.argmax(dim=1)
    y_true, y_pred = targets.numpy(), preds.numpy()
    labels = list(range(n_classes))
    sk_report = classification_report(
        y_true, y_pred, labels=labels, target_names=label_names, output_dict=True, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(sk_report[name]["precision"]),
            "recall": float(sk_report[name]["recall"]),
            "f1": float(sk_report[name]["f1-score"]),
            "support": int(sk_report[name]["support"]),
        }
        for name in label_names
    }
    majority = majority_baseline(targets, n_classes, train_targets, ignore_index)
    return {
        "n": int(targets.numel()),
        **_headline(preds, targets, n_classes),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "labels": label_names,
        "baselines": {
            "majority": {"class": label_names[majority["class_index"]], **majority},
            "uniform_random": uniform_random_baseline(targets, n_classes),
        },
    }
