"""OOS metrics, threshold choice and curve on constructed cases with known answers."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch

from intentfusion.evaluation.oos import (
    apply_threshold,
    candidate_thresholds,
    choose_oos_threshold,
    oos_metrics,
    oos_threshold_curve,
    oos_threshold_scores,
)


def test_oos_metrics_known_case() -> None:
    gold = ["a", "a", "b", "b", "oos", "oos", "oos"]
    pred = ["a", "oos", "b", "a", "oos", "oos", "b"]
    result = oos_metrics(pred, gold)
    # in scope: a ok, a flagged (wrong), b ok, b->a wrong -> 2/4
    assert result["in_scope_accuracy"] == pytest.approx(0.5)
    # 3 gold OOS, 2 caught -> recall 2/3; 3 predicted OOS, 2 right -> precision 2/3; F1 2/3
    assert result["oos_recall"] == pytest.approx(2 / 3)
    assert result["oos_precision"] == pytest.approx(2 / 3)
    assert result["oos_f1"] == pytest.approx(2 / 3)
    assert (result["n_in_scope"], result["n_oos"]) == (4, 3)


def test_oos_metrics_with_indices() -> None:
    result = oos_metrics(torch.tensor([0, 2, 2]), torch.tensor([0, 1, 2]), oos_label=2)
    assert result["in_scope_accuracy"] == pytest.approx(0.5)
    assert result["oos_recall"] == 1.0 and result["oos_precision"] == pytest.approx(0.5)


def test_apply_threshold() -> None:
    probs = torch.tensor([[0.9, 0.1], [0.55, 0.45], [0.3, 0.7]])
    assert apply_threshold(probs, 0.6, oos_index=2).tolist() == [0, 2, 1]  # OOS as an extra index
    assert apply_threshold(probs, 0.6, oos_index=1).tolist() == [0, 1, 1]  # OOS column 1
    assert apply_threshold(probs, 0.0, oos_index=2).tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match="oos_index"):
        apply_threshold(probs, 0.5, oos_index=3)


# Validation max-probabilities, sorted (o = OOS, i = in scope): 0.2o 0.3o 0.4o | 0.45i | 0.5o | 0.7i 0.8i 0.9i
# Flag OOS when p < t:
#   t = 0.425: 3 OOS, 0 in  -> R 3/4, P 1    -> F1 6/7 = 0.857; Youden 0.75 + 1 - 1 = 0.75
#   t = 0.475: 3 OOS, 1 in  -> R 3/4, P 3/4  -> F1 0.75
#   t = 0.6:   4 OOS, 1 in  -> R 1,   P 4/5  -> F1 8/9 = 0.889 (best); Youden 1 + 0.75 - 1 = 0.75 (tie)
#   t = 0.75:  4 OOS, 2 in  -> R 1,   P 2/3  -> F1 0.8
MAX_PROB = [0.9, 0.8, 0.7, 0.45, 0.3, 0.4, 0.5, 0.2]
IS_OOS = [False, False, False, False, True, True, True, True]
# argmax right for 0.9, 0.8, 0.7, wrong for 0.45 -> accuracy with OOS as a class: t=0.425 (3+3)/8,
# t=0.475 (3+3)/8, t=0.6 (4+3)/8 (best), t=0.75 (4+2)/8
IN_SCOPE_CORRECT = [True, True, True, False, False, False, False, False]


def test_candidate_thresholds_are_midpoints() -> None:
    grid = candidate_thresholds(MAX_PROB)
    assert grid[0] == 0.0 and grid[-1] > 0.9
    assert np.allclose(grid[1:-1], [0.25, 0.35, 0.425, 0.475, 0.6, 0.75, 0.85])


def test_choose_threshold_f1() -> None:
    assert choose_oos_threshold(MAX_PROB, IS_OOS, "f1") == pytest.approx(0.6)


def test_choose_threshold_youden_tie_goes_to_smallest() -> None:
    assert choose_oos_threshold(MAX_PROB, IS_OOS, "youden") == pytest.approx(0.425)


def test_choose_threshold_accuracy() -> None:
    assert choose_oos_threshold(MAX_PROB, IS_OOS, "accuracy", in_scope_correct=IN_SCOPE_CORRECT) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="in_scope_correct"):
        choose_oos_threshold(MAX_PROB, IS_OOS, "accuracy")


def test_chosen_threshold_is_optimal_by_brute_force() -> None:
    """The vectorised choice agrees with oos_metrics(apply_threshold(...)) over a fine grid."""
    generator = torch.Generator().manual_seed(0)
    n_in, n_classes = 300, 5
    in_logits = torch.randn(n_in, n_classes, generator=generator) * 3
    oos_logits = torch.randn(100, n_classes, generator=generator)
    probs = torch.cat([in_logits, oos_logits]).softmax(dim=1)
    gold = torch.cat([in_logits.argmax(1), torch.full((100,), n_classes)])
    chosen = choose_oos_threshold(probs.max(1).values, gold == n_classes, "f1")

    def f1_at(t: float) -> float:
        return oos_metrics(apply_threshold(probs, t, n_classes), gold, oos_label=n_classes)["oos_f1"]

    best_on_grid = max(f1_at(t) for t in np.linspace(0, 1, 201))
    assert f1_at(chosen) >= best_on_grid - 1e-12
    assert f1_at(chosen) > f1_at(0.0)


def test_choose_threshold_needs_both_kinds() -> None:
    with pytest.raises(ValueError, match="both OOS and in-scope"):
        choose_oos_threshold([0.5, 0.6], [False, False])
    with pytest.raises(ValueError, match="criterion"):
        choose_oos_threshold(MAX_PROB, IS_OOS, "auc")


def test_oos_threshold_curve_png(tmp_path: Path) -> None:
    path = oos_threshold_curve(MAX_PROB, IS_OOS, IN_SCOPE_CORRECT, tmp_path / "oos.png")
    assert path.stat().st_size > 0
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_scores_at_thresholds_on_data_points_use_strict_less_than() -> None:
    # t = 0.5 flags 0.2, 0.3, 0.4 (OOS) and 0.45 (in scope) but not the OOS example at exactly 0.5
    scores = oos_threshold_scores(MAX_PROB, IS_OOS, [0.5, 0.7], IN_SCOPE_CORRECT)
    assert scores["oos_recall"].tolist() == [0.75, 1.0]
    assert scores["in_scope_kept"].tolist() == [0.75, 0.75]
    assert scores["in_scope_accuracy"].tolist() == [0.75, 0.75]
    assert scores["accuracy"].tolist() == [(3 + 3) / 8, (4 + 3) / 8]
