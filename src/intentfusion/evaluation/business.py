"""Business cost of the ``action`` task's routing decisions, and a confidence-threshold fallback sweep.

Cost matrix format: ``{gold_label: {predicted_label: cost}}``; pairs left out cost 0 and so does every correct
prediction unless given. The default (the customer-support seed) charges only wrong routings into the two
expensive queues::

    predicting escalate_to_human when the gold action is something else (a false escalation)   10
    predicting auto_resolve when the gold action is something else (a false auto-resolve)       5
    everything else                                                                              0

Labels are validated against the task's label set: an unknown label name (in the cost matrix or in the
predictions / gold) raises ValueError naming it. Costs must be finite and >= 0.

:func:`threshold_fallback_sweep` replaces predictions whose max probability is below a threshold by a fallback
action (``request_more_info``) and reports cost, coverage and accuracy per threshold. Under the default matrix
the fallback itself is free, so the cost can only fall as the threshold rises; give the fallback a cost
(e.g. ``{gold: {"request_more_info": 1} for gold in labels if gold != "request_more_info"}``) to see the
trade-off with coverage.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from intentfusion.evaluation.metrics import IGNORE_INDEX

ESCALATE = "escalate_to_human"
AUTO_RESOLVE = "auto_resolve"
FALLBACK = "request_more_info"
ACTION_LABELS: tuple[str, ...] = (AUTO_RESOLVE, FALLBACK, ESCALATE)  # the support seed's `action` labels
FALSE_ESCALATION_COST = 10.0
FALSE_AUTO_RESOLVE_COST = 5.0
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)

CostMatrix = Mapping[str, Mapping[str, float]]


def default_cost_matrix(labels: Sequence[str] = ACTION_LABELS) -> dict[str, dict[str, float]]:
    """The seed's cost matrix over `labels`: 10 per false escalation, 5 per false auto-resolve, else 0."""
    unit = {ESCALATE: FALSE_ESCALATION_COST, AUTO_RESOLVE: FALSE_AUTO_RESOLVE_COST}
    return {gold: {pred: unit.get(pred, 0.0) if pred != gold else 0.0 for pred in labels} for gold in labels}


def _unknown(names: Sequence[Any] | set[Any], labels: Sequence[str]) -> list[str]:
    return sorted({str(name) for name in names if name not in set(labels)})


def cost_tensor(cost_matrix: CostMatrix | None, labels: Sequence[str]) -> Tensor:
    """Validated (C, C) float64 tensor, [gold, pred] in `labels` order, of a cost matrix (None = default)."""
    labels = list(labels)
    if cost_matrix is None:
        cost_matrix = default_cost_matrix(labels)
    if not isinstance(cost_matrix, Mapping) or not all(isinstance(row, Mapping) for row in cost_matrix.values()):
        raise ValueError("cost_matrix must be a mapping {gold_label: {predicted_label: cost}}")
    unknown = _unknown(set(cost_matrix) | {pred for row in cost_matrix.values() for pred in row}, labels)
    if unknown:
        raise ValueError(f"cost_matrix has unknown label names {unknown}; known labels: {labels}")
    index = {name: i for i, name in enumerate(labels)}
    costs = torch.zeros(len(labels), len(labels), dtype=torch.float64)
    for gold, row in cost_matrix.items():
        for pred, cost in row.items():
            if isinstance(cost, bool) or not isinstance(cost, numbers.Real) or not math.isfinite(cost) or cost < 0:
                raise ValueError(f"cost_matrix[{gold!r}][{pred!r}] must be a finite number >= 0, got {cost!r}")
            costs[index[gold], index[pred]] = float(cost)
    return costs


def _routing_cost_idx(pred: Tensor, gold: Tensor, costs: Tensor, labels: Sequence[str]) -> dict[str, Any]:
    n = int(gold.numel())
    total = float(costs[gold, pred].sum()) if n else 0.0
    wrong = pred != gold
    counts = {}
    for key, name in (("false_escalations", ESCALATE), ("false_auto_resolves", AUTO_RESOLVE)):
        counts[key] = int((wrong & (pred == list(labels).index(name))).sum()) if name in labels else 0
    return {
        "n": n,
        "total_cost": total,
        "cost_per_message": total / n if n else 0.0,
        **counts,
        "accuracy": float((~wrong).float().mean()) if n else 0.0,
    }


def routing_cost(
    pred_labels: Sequence[str],
    gold_labels: Sequence[str],
    cost_matrix: CostMatrix | None = None,
    labels: Sequence[str] = ACTION_LABELS,
) -> dict[str, Any]:
    """Cost of routing decisions (label names) under `cost_matrix` (None = the seed default; see module doc).

    Returns ``{"n", "total_cost", "cost_per_message", "false_escalations", "false_auto_resolves",
    "accuracy"}``; a false escalation is a prediction of escalate_to_human whose gold is another action, a
    false auto-resolve likewise for auto_resolve (counted whatever the cost matrix says).
    """
    pred_labels, gold_labels = [str(p) for p in pred_labels], [str(g) for g in gold_labels]
    if len(pred_labels) != len(gold_labels):
        raise ValueError(f"pred_labels and gold_labels differ in length: {len(pred_labels)} vs {len(gold_labels)}")
    labels = list(labels)
    unknown = _unknown(set(pred_labels) | set(gold_labels), labels)
    if unknown:
        raise ValueError(f"unknown label names {unknown} in predictions/gold; known labels: {labels}")
    costs = cost_tensor(cost_matrix, labels)
    index = {name: i for i, name in enumerate(labels)}
    pred = torch.tensor([index[p] for p in pred_labels], dtype=torch.long)
    gold = torch.tensor([index[g] for g in gold_labels], dtype=torch.long)
    return _routing_cost_idx(pred, gold, costs, labels)


def threshold_fallback_sweep(
    probs: Tensor,
    gold: Tensor,
    label_names: Sequence[str],
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    fallback: str = FALLBACK,
    cost_matrix: CostMatrix | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> list[dict[str, Any]]:
    """Per threshold t: predictions with max probability < t become `fallback`; cost, coverage, accuracy.

    `probs` are softmax probabilities (N, C) in `label_names` order, `gold` integer indices (N,)
    (`ignore_index` skipped). Each row: ``{"threshold", "coverage" (share of messages not deferred),
    "n_deferred", "accuracy_covered" (accuracy of the model on the messages it kept; None when none is kept),
    "accuracy" (all messages, deferred ones scored as the fallback), "cost_per_message", "total_cost",
    "false_escalations", "false_auto_resolves"}``. Coverage can only fall as t rises.
    """
    labels = [str(name) for name in label_names]
    if fallback not in labels:
        raise ValueError(f"fallback {fallback!r} is not one of the label names {labels}")
    probs = torch.as_tensor(probs).detach().cpu().double()
    gold = torch.as_tensor(gold).detach().cpu().long().reshape(-1)
    if probs.ndim != 2 or probs.shape != (gold.numel(), len(labels)):
        raise ValueError(
            f"expected probs (N, {len(labels)}) and gold (N,), got {tuple(probs.shape)}, {tuple(gold.shape)}"
        )
    if probs.numel() and (
        probs.min() < 0 or probs.max() > 1 or not torch.allclose(probs.sum(1), torch.ones(1).double(), atol=1e-3)
    ):
        raise ValueError("probs must be probabilities (rows in [0, 1] summing to 1); apply softmax to logits first")
    keep = gold != ignore_index
    probs, gold = probs[keep], gold[keep]
    bad = sorted(set(gold[(gold < 0) | (gold >= len(labels))].tolist()))
    if bad:
        raise ValueError(f"gold indices {bad} out of range for {len(labels)} label names")
    costs = cost_tensor(cost_matrix, labels)
    confidence, model_pred = probs.max(dim=1)
    n = int(gold.numel())
    rows = []
    for threshold in thresholds:
        deferred = confidence < threshold
        pred = torch.where(deferred, labels.index(fallback), model_pred)
        covered = ~deferred
        n_covered = int(covered.sum())
        row = {
            "threshold": float(threshold),
            "coverage": n_covered / n if n else 0.0,
            "n_deferred": n - n_covered,
            "accuracy_covered": float((model_pred[covered] == gold[covered]).double().mean()) if n_covered else None,
        }
        row.update(_routing_cost_idx(pred, gold, costs, labels))
        rows.append(row)
    return rows
