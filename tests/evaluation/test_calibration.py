"""Calibration metrics on hand-computed cases, temperature scaling, reliability diagram PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from intentfusion.evaluation.calibration import (
    apply_temperature,
    calibration_metrics,
    fit_temperature,
    reliability_bins,
    reliability_diagram,
)

# Six samples; logits = log(p) so softmax(logits) = p. 15 bins of width 1/15, left-closed.
#   p                    target  conf  correct  bin [k/15, (k+1)/15)
#   (0.90, 0.05, 0.05)   0       0.90  1        13 [0.867, 0.933)
#   (0.75, 0.15, 0.10)   1       0.75  0        11 [0.733, 0.800)
#   (0.20, 0.70, 0.10)   1       0.70  1        10 [0.667, 0.733)
#   (0.10, 0.20, 0.70)   0       0.70  0        10
#   (0.50, 0.30, 0.20)   0       0.50  1         7 [0.467, 0.533)
#   (0.35, 0.33, 0.32)   2       0.35  0         5 [0.333, 0.400)
# bin gaps |acc - conf|: 13: |1 - 0.9| = 0.1; 11: |0 - 0.75| = 0.75; 10: |0.5 - 0.7| = 0.2;
# 7: |1 - 0.5| = 0.5; 5: |0 - 0.35| = 0.35.
# ECE = (0.1 + 0.75 + 2 * 0.2 + 0.5 + 0.35) / 6 = 2.1 / 6 = 0.35;  MCE = 0.75.
PROBS = torch.tensor(
    [
        [0.90, 0.05, 0.05],
        [0.75, 0.15, 0.10],
        [0.20, 0.70, 0.10],
        [0.10, 0.20, 0.70],
        [0.50, 0.30, 0.20],
        [0.35, 0.33, 0.32],
    ]
)
TARGETS = torch.tensor([0, 1, 1, 0, 0, 2])


def overconfident_model(n: int, seed: int, scale: float = 5.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z) (noisy), the model outputs scale * z (over-confident for scale > 1)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 4, generator=generator) * 1.5
    targets = torch.multinomial(z.softmax(dim=1), 1, generator=generator).squeeze(1)
    return z * scale, targets


def test_ece_mce_hand_computed() -> None:
    metrics = calibration_metrics(PROBS.log(), TARGETS)
    assert metrics["ece"] == pytest.approx(0.35, abs=1e-6)
    assert metrics["mce"] == pytest.approx(0.75, abs=1e-6)
    assert metrics["n"] == 6


def test_nll_and_brier_hand_computed() -> None:
    # p = (0.8, 0.2) gold 0; p = (0.4, 0.6) gold 0
    # NLL = -(ln 0.8 + ln 0.4) / 2 = 0.569717; Brier = ((0.2^2 + 0.2^2) + (0.6^2 + 0.6^2)) / 2 = 0.4
    logits = torch.tensor([[0.8, 0.2], [0.4, 0.6]]).log()
    metrics = calibration_metrics(logits, torch.tensor([0, 0]))
    assert metrics["nll"] == pytest.approx(-(math.log(0.8) + math.log(0.4)) / 2, abs=1e-6)
    assert metrics["nll"] == pytest.approx(0.569717, abs=1e-6)
    assert metrics["brier"] == pytest.approx(0.4, abs=1e-6)


def test_logits_inside_unit_interval_are_still_softmaxed() -> None:
    # torchmetrics would take logits all in [0, 1] for probabilities; a shift must not change anything
    logits = torch.rand(50, 3, generator=torch.Generator().manual_seed(1))
    targets = torch.randint(0, 3, (50,), generator=torch.Generator().manual_seed(2))
    assert calibration_metrics(logits, targets) == pytest.approx(calibration_metrics(logits + 7.0, targets))


def test_ignore_index_dropped() -> None:
    logits = torch.cat([PROBS.log(), torch.tensor([[5.0, 0.0, 0.0]] * 3)])
    targets = torch.cat([TARGETS, torch.full((3,), -100)])
    assert calibration_metrics(logits, targets) == pytest.approx(calibration_metrics(PROBS.log(), TARGETS))


def test_reliability_bins_reproduce_ece() -> None:
    logits, targets = overconfident_model(400, seed=3, scale=1.0)
    bins = reliability_bins(logits, targets)
    assert bins["count"].sum() == 400 and len(bins["edges"]) == 16
    ece = float((bins["count"] * np.abs(bins["accuracy"] - bins["confidence"])).sum() / 400)
    assert ece == pytest.approx(calibration_metrics(logits, targets)["ece"], abs=1e-5)


def test_temperature_scaling_fixes_overconfidence() -> None:
    val_logits, val_targets = overconfident_model(3000, seed=0)
    test_logits, test_targets = overconfident_model(3000, seed=1)
    temperature = fit_temperature(val_logits, val_targets)
    assert temperature > 1.0
    assert 3.5 < temperature < 7.0  # the model is the true one scaled by 5
    before = calibration_metrics(test_logits, test_targets)
    after = calibration_metrics(apply_temperature(test_logits, temperature), test_targets)
    assert after["nll"] < before["nll"]
    assert after["ece"] < before["ece"]
    assert torch.equal(apply_temperature(test_logits, temperature).argmax(1), test_logits.argmax(1))


def test_temperature_below_one_for_underconfident_model() -> None:
    logits, targets = overconfident_model(3000, seed=4, scale=0.25)
    assert fit_temperature(logits, targets) < 1.0


def test_apply_temperature_rejects_non_positive() -> None:
    with pytest.raises(ValueError, match="temperature must be > 0"):
        apply_temperature(PROBS.log(), 0.0)


@pytest.mark.parametrize("temperature", [None, 4.0])
def test_reliability_diagram_png(tmp_path: Path, temperature: float | None) -> None:
    logits, targets = overconfident_model(1000, seed=5)
    path = reliability_diagram(logits, targets, tmp_path / "sub" / "rel.png", "intent", temperature=temperature)
    assert path.is_file() and path.stat().st_size > 0
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100
    # two panels (before / after) make a wider image
    assert (image.shape[1] > 1.5 * image.shape[0]) == (temperature is not None)
