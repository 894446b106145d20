"""Calibration of softmax confidences: ECE / MCE / NLL / Brier, temperature scaling, reliability diagrams.

* ECE and MCE are torchmetrics' ``MulticlassCalibrationError`` on the top-1 confidence with 15 equal-width
  bins (norm "l1": sum over bins of |accuracy - mean confidence| weighted by the bin's share of samples;
  norm "max": the largest such gap over the non-empty bins). Bins are left-closed, [k/15, (k+1)/15).
* NLL is the mean cross-entropy of the targets; Brier is the multiclass Brier score
  mean_i sum_k (p_ik - y_ik)^2 (range [0, 2]; 0 is perfect).
* :func:`fit_temperature` fits one temperature T > 0 on VALIDATION logits by minimising the NLL of
  ``softmax(logits / T)`` (LBFGS over log T). Dividing by T never changes the argmax, so accuracy is
  unchanged; T > 1 softens an over-confident model, T < 1 sharpens an under-confident one. Apply it to
  test logits with :func:`apply_temperature`.

Targets equal to -100 are ignored everywhere.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassCalibrationError

from intentfusion.evaluation.metrics import IGNORE_INDEX, drop_ignored
from intentfusion.evaluation.plots import draw_reliability, new_figure, save_figure

N_BINS = 15
# The fitted temperature is kept in [1/100, 100]: separable validation data would otherwise drive T -> 0.
_LOG_T_BOUND = math.log(100.0)


def calibration_error(probs: Tensor, targets: Tensor, norm: str = "l1", n_bins: int = N_BINS) -> float:
    """torchmetrics' multiclass calibration error of probabilities (N, C): norm "l1" = ECE, "max" = MCE."""
    metric = MulticlassCalibrationError(num_classes=probs.shape[1], n_bins=n_bins, norm=norm)
    return float(metric(probs, targets))


def calibration_metrics(
    logits: Tensor, targets: Tensor, n_bins: int = N_BINS, ignore_index: int = IGNORE_INDEX
) -> dict[str, float]:
    """``{"ece", "mce", "nll", "brier", "n"}`` of softmax(logits) against the targets (module docstring)."""
    logits, targets = drop_ignored(logits, targets, ignore_index)
    # Probabilities, not logits, go to torchmetrics: it would skip the softmax if all logits were in [0, 1].
    probs = logits.softmax(dim=1)
    one_hot = F.one_hot(targets, num_classes=logits.shape[1]).to(probs.dtype)
    return {
        "ece": calibration_error(probs, targets, "l1", n_bins),
        "mce": calibration_error(probs, targets, "max", n_bins),
        "nll": float(F.cross_entropy(logits, targets)),
        "brier": float(((probs - one_hot) ** 2).sum(dim=1).mean()),
        "n": int(targets.numel()),
    }


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """`logits / temperature` (the argmax is unchanged for any temperature > 0)."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.as_tensor(logits) / temperature


def fit_temperature(logits: Tensor, targets: Tensor, max_iter: int = 50, ignore_index: int = IGNORE_INDEX) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T); fit it on validation logits.

    LBFGS (strong-Wolfe line search, `max_iter` iterations) over log T, starting from T = 1, in float64. T is
    clipped to [0.01, 100], and if the fit does not improve on T = 1 (it always should) 1.0 is returned.
    """
    logits, targets = drop_ignored(logits, targets, ignore_index)
    logits = logits.double()
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def nll() -> Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.clamp(-_LOG_T_BOUND, _LOG_T_BOUND).exp(), targets)
        loss.backward()
        return loss

    optimizer.step(nll)
    log_t_value = float(log_t.detach().clamp(-_LOG_T_BOUND, _LOG_T_BOUND))
    if not math.isfinite(log_t_value):
        return 1.0
    with torch.no_grad():
        fitted = F.cross_entropy(logits / math.exp(log_t_value), targets)
        if fitted > F.cross_entropy(logits, targets):
            return 1.0
    return math.exp(log_t_value)


def reliability_bins(
    logits: Tensor, targets: Tensor, n_bins: int = N_BINS, ignore_index: int = IGNORE_INDEX
) -> dict[str, np.ndarray]:
    """Top-1 confidence bins: ``{"edges" (n_bins + 1), "accuracy", "confidence", "count" (n_bins each)}``.

    Same left-closed equal-width bins as torchmetrics, except that a confidence of exactly 1.0 goes into the
    last bin (torchmetrics gives it a bin of its own). Empty bins have count 0, accuracy 0 and confidence 0.
    """
    logits, targets = drop_ignored(logits, targets, ignore_index)
    confidence, preds = logits.softmax(dim=1).max(dim=1)
    correct = (preds == targets).float()
    edges = torch.linspace(0, 1, n_bins + 1)
    index = (torch.bucketize(confidence, edges, right=True) - 1).clamp(0, n_bins - 1)
    count = torch.bincount(index, minlength=n_bins).float()
    acc_sum = torch.zeros(n_bins).scatter_add_(0, index, correct)
    conf_sum = torch.zeros(n_bins).scatter_add_(0, index, confidence)
    safe = count.clamp(min=1)
    return {
        "edges": edges.numpy(),
        "accuracy": (acc_sum / safe).numpy(),
        "confidence": (conf_sum / safe).numpy(),
        "count": count.long().numpy(),
    }


def reliability_diagram(
    logits: Tensor,
    targets: Tensor,
    path: str | Path,
    title: str = "Reliability diagram",
    temperature: float | None = None,
    n_bins: int = N_BINS,
    ignore_index: int = IGNORE_INDEX,
) -> Path:
    """Write a reliability-diagram PNG to `path` and return the path.

    Bars are the accuracy per confidence bin, hatched red bars the gap to the bin's mean confidence, the
    dashed diagonal is perfect calibration, and the legend carries the ECE; the share of samples is printed
    above each bar. Given a `temperature`, two panels are drawn side by side: before and after dividing the
    logits by it.
    """
    logits, targets = drop_ignored(logits, targets, ignore_index)
    panels = [(logits, "before temperature scaling" if temperature is not None else "")]
    if temperature is not None:
        panels.append((apply_temperature(logits, temperature), f"after temperature scaling (T = {temperature:.2f})"))
    fig, axes = new_figure(ncols=len(panels))
    for ax, (panel_logits, subtitle) in zip(axes, panels, strict=False):
        bins = reliability_bins(panel_logits, targets, n_bins)
        ece = calibration_metrics(panel_logits, targets, n_bins)["ece"]
        draw_reliability(
            ax,
            bins["edges"],
            bins["accuracy"],
            bins["confidence"],
            bins["count"],
            ece,
            f"{title}\n{subtitle}" if subtitle else title,
        )
    return save_figure(fig, path)
