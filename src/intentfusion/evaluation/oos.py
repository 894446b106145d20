"""Out-of-scope (OOS) detection for CLINC150-style data: metrics, max-softmax threshold choice, curve.

Detector: predict OOS when the max softmax probability is below a threshold t (:func:`apply_threshold`; a
model that has an OOS class of its own also predicts OOS when that class wins the argmax).

* :func:`oos_metrics`: in-scope accuracy (accuracy over the examples whose gold label is in scope; flagging
  one as OOS counts as wrong), OOS recall / precision / F1 (OOS as the positive class; 0 where undefined).
* :func:`choose_oos_threshold`: the t maximising a criterion on VALIDATION data over candidate thresholds. By
  default the candidates are 0, every midpoint between consecutive distinct validation max-probabilities, and
  a value just above the largest (so every distinct split of the validation set is tried, and a chosen t never
  sits exactly on a validation probability). Criteria:

  - ``"f1"``: OOS F1;
  - ``"youden"``: OOS recall + share of in-scope examples kept - 1 (Youden's J; ignores class balance);
  - ``"accuracy"``: accuracy with OOS as one more class, i.e. (OOS examples flagged + in-scope examples kept
    and classified correctly) / N; needs ``in_scope_correct``.

  Ties go to the smallest threshold (fewest in-scope messages rejected).
* :func:`oos_threshold_curve`: PNG of OOS recall, in-scope accuracy (and OOS F1) against t, chosen t marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import precision_recall_fscore_support
from torch import Tensor

from intentfusion.evaluation.plots import draw_oos_threshold_curve, new_figure, save_figure

CRITERIA = ("f1", "youden", "accuracy")


def _as_list(values: Any) -> list[Any]:
    if isinstance(values, Tensor | np.ndarray):
        return values.tolist()
    return list(values)


def oos_metrics(pred_labels: Sequence[Any], gold_labels: Sequence[Any], oos_label: Any = "oos") -> dict[str, Any]:
    """``{"in_scope_accuracy", "oos_recall", "oos_precision", "oos_f1", "n_in_scope", "n_oos"}``.

    Labels may be names or indices (tensors are accepted); `oos_label` is the OOS label in the same form.
    """
    pred, gold = _as_list(pred_labels), _as_list(gold_labels)
    if len(pred) != len(gold):
        raise ValueError(f"pred_labels and gold_labels differ in length: {len(pred)} vs {len(gold)}")
    if not gold:
        raise ValueError("no examples")
    gold_oos = np.array([g == oos_label for g in gold])
    pred_oos = np.array([p == oos_label for p in pred])
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold_oos, pred_oos, average="binary", pos_label=True, zero_division=0
    )
    in_scope = ~gold_oos
    correct = np.array([p == g for p, g in zip(pred, gold, strict=True)])
    return {
        "in_scope_accuracy": float(correct[in_scope].mean()) if in_scope.any() else 0.0,
        "oos_recall": float(recall),
        "oos_precision": float(precision),
        "oos_f1": float(f1),
        "n_in_scope": int(in_scope.sum()),
        "n_oos": int(gold_oos.sum()),
    }


def apply_threshold(probs: Tensor, t: float, oos_index: int) -> Tensor:
    """Predicted indices (N,): the argmax of `probs` (N, C), replaced by `oos_index` where the max prob < t.

    `oos_index` is the OOS class's column, or C when the model has no OOS column (OOS is then an extra index).
    """
    probs = torch.as_tensor(probs)
    if probs.ndim != 2:
        raise ValueError(f"expected probs (N, C), got {tuple(probs.shape)}")
    if not 0 <= oos_index <= probs.shape[1]:
        raise ValueError(f"oos_index must be in [0, {probs.shape[1]}], got {oos_index}")
    confidence, pred = probs.max(dim=1)
    return torch.where(confidence < t, torch.full_like(pred, oos_index), pred)


def _arrays(max_prob: Any, is_oos: Any, in_scope_correct: Any | None) -> tuple[np.ndarray, ...]:
    prob = np.asarray(_as_list(max_prob), dtype=np.float64).reshape(-1)
    oos = np.asarray(_as_list(is_oos), dtype=bool).reshape(-1)
    if prob.shape != oos.shape:
        raise ValueError(f"max_prob and is_oos differ in length: {prob.size} vs {oos.size}")
    if oos.all() or not oos.any():
        raise ValueError("need both OOS and in-scope examples to score a threshold")
    correct = None
    if in_scope_correct is not None:
        correct = np.asarray(_as_list(in_scope_correct), dtype=bool).reshape(-1)
        if correct.shape != prob.shape:
            raise ValueError(f"in_scope_correct has {correct.size} entries for {prob.size} examples")
    return prob, oos, correct


def candidate_thresholds(max_prob: Any) -> np.ndarray:
    """0, the midpoints between consecutive distinct values of `max_prob`, and a value just above the max."""
    values = np.unique(np.asarray(_as_list(max_prob), dtype=np.float64))
    above = np.nextafter(values[-1], np.inf) if values[-1] >= 1.0 else (values[-1] + 1.0) / 2
    return np.unique(np.concatenate([[0.0], (values[:-1] + values[1:]) / 2, [above]]))


def oos_threshold_scores(
    max_prob: Any, is_oos: Any, thresholds: Any, in_scope_correct: Any | None = None
) -> dict[str, np.ndarray]:
    """Detector scores at each threshold (flag OOS when max_prob < t), one array entry per threshold.

    Keys: ``thresholds``, ``oos_recall``, ``oos_precision``, ``oos_f1``, ``in_scope_kept`` (share of in-scope
    examples not flagged), ``youden``; with `in_scope_correct` (per example: the argmax is the right in-scope
    intent; ignored on OOS examples) also ``in_scope_accuracy`` and ``accuracy`` (OOS as one more class).
    """
    prob, oos, correct = _arrays(max_prob, is_oos, in_scope_correct)
    t = np.asarray(thresholds, dtype=np.float64)
    n_oos, n_in = int(oos.sum()), int((~oos).sum())
    flagged_oos = np.searchsorted(np.sort(prob[oos]), t, side="left")
    flagged_in = np.searchsorted(np.sort(prob[~oos]), t, side="left")
    recall = flagged_oos / n_oos
    flagged = flagged_oos + flagged_in
    precision = np.divide(flagged_oos, flagged, out=np.zeros_like(recall), where=flagged > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(recall), where=denom > 0)
    kept = 1.0 - flagged_in / n_in
    scores = {
        "thresholds": t,
        "oos_recall": recall,
        "oos_precision": precision,
        "oos_f1": f1,
        "in_scope_kept": kept,
        "youden": recall + kept - 1.0,
    }
    if correct is not None:
        correct_probs = np.sort(prob[~oos & correct])
        kept_correct = correct_probs.size - np.searchsorted(correct_probs, t, side="left")
        scores["in_scope_accuracy"] = kept_correct / n_in
        scores["accuracy"] = (flagged_oos + kept_correct) / prob.size
    return scores


def choose_oos_threshold(
    val_max_prob: Any,
    val_is_oos: Any,
    criterion: str = "f1",
    in_scope_correct: Any | None = None,
    candidates: Sequence[float] | None = None,
) -> float:
    """The threshold maximising `criterion` ("f1", "youden" or "accuracy"; see module doc) on validation data.

    `candidates` overrides the default candidate set (e.g. a fine grid); ties go to the smallest threshold.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if criterion == "accuracy" and in_scope_correct is None:
        raise ValueError('criterion="accuracy" needs in_scope_correct (is the argmax right, per example)')
    grid = np.sort(np.asarray(candidates, dtype=np.float64)) if candidates is not None else None
    if grid is None:
        grid = candidate_thresholds(val_max_prob)
    if grid.size == 0:
        raise ValueError("no candidate thresholds")
    key = {"f1": "oos_f1", "youden": "youden", "accuracy": "accuracy"}[criterion]
    scores = oos_threshold_scores(val_max_prob, val_is_oos, grid, in_scope_correct)[key]
    return float(grid[int(np.argmax(scores))])


def oos_threshold_curve(
    val_max_prob: Any,
    val_is_oos: Any,
    in_scope_correct: Any,
    path: str | Path,
    chosen_threshold: float | None = None,
    criterion: str = "f1",
    title: str = "OOS threshold",
) -> Path:
    """PNG of OOS recall, in-scope accuracy and OOS F1 against t in [0, 1], the chosen t marked.

    The curves are evaluated on a 0.005-step grid plus every candidate threshold, so narrow optima show.

    `chosen_threshold` None: chosen here with :func:`choose_oos_threshold` and `criterion`.
    """
    if chosen_threshold is None:
        chosen_threshold = choose_oos_threshold(val_max_prob, val_is_oos, criterion, in_scope_correct)
    grid = np.union1d(np.linspace(0.0, 1.0, 201), candidate_thresholds(val_max_prob))
    grid = grid[grid <= 1.0]
    scores = oos_threshold_scores(val_max_prob, val_is_oos, grid, in_scope_correct)
    fig, (ax,) = new_figure(size=(6.0, 4.5))
    draw_oos_threshold_curve(
        ax, grid, scores["oos_recall"], scores["in_scope_accuracy"], scores["oos_f1"], chosen_threshold, title
    )
    return save_figure(fig, path)
