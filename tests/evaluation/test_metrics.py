"""task_report: headline metrics, per-class rows, confusion matrix and baselines on hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from intentfusion.evaluation.metrics import drop_ignored, task_report, uniform_random_baseline

LABELS = ["a", "b", "c"]
# gold  0 0 0 1 1 2
# pred  0 0 1 1 2 2  -> 4/6 correct
TARGETS = torch.tensor([0, 0, 0, 1, 1, 2])
PREDS = torch.tensor([0, 0, 1, 1, 2, 2])


def one_hot_logits(preds: torch.Tensor, n_classes: int = 3) -> torch.Tensor:
    return torch.nn.functional.one_hot(preds, n_classes).float() * 4.0


def test_headline_per_class_and_confusion() -> None:
    report = task_report(one_hot_logits(PREDS), TARGETS, LABELS)
    # class a: tp 2 fp 0 fn 1 -> P 1, R 2/3, F1 0.8; class b: tp 1 fp 1 fn 1 -> 0.5 / 0.5 / 0.5;
    # class c: tp 1 fp 1 fn 0 -> P 0.5, R 1, F1 2/3.
    assert report["n"] == 6
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert report["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert report["per_class"]["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert report["per_class"]["b"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert report["per_class"]["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1})
    # rows = gold, columns = predicted
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert report["labels"] == LABELS


def test_majority_baseline_from_eval_and_from_train() -> None:
    report = task_report(one_hot_logits(PREDS), TARGETS, LABELS)
    majority = report["baselines"]["majority"]
    # eval prevalences (1/2, 1/3, 1/6): always "a" -> accuracy 1/2;
    # F1_a = 2 * 0.5 * 1 / 1.5 = 2/3, F1_b = F1_c = 0
    assert (majority["class"], majority["source"]) == ("a", "eval")
    assert majority["accuracy"] == pytest.approx(0.5)
    assert majority["macro_f1"] == pytest.approx((2 / 3) / 3)
    assert majority["weighted_f1"] == pytest.approx(0.5 * 2 / 3)

    # train majority is "c" (prevalence 1/6 on eval): accuracy 1/6; F1_c = 2 * (1/6) * 1 / (7/6) = 2/7
    report = task_report(one_hot_logits(PREDS), TARGETS, LABELS, train_targets=torch.tensor([2, 2, 2, 1, -100]))
    majority = report["baselines"]["majority"]
    assert (majority["class"], majority["source"]) == ("c", "train")
    assert majority["accuracy"] == pytest.approx(1 / 6)
    assert majority["macro_f1"] == pytest.approx((2 / 7) / 3)
    assert majority["weighted_f1"] == pytest.approx((1 / 6) * (2 / 7))


def test_uniform_random_baseline_analytic() -> None:
    uniform = task_report(one_hot_logits(PREDS), TARGETS, LABELS)["baselines"]["uniform_random"]
    # p = (1/2, 1/3, 1/6), precision_k = p_k, recall = 1/3, F1_k = 2 p_k (1/3) / (p_k + 1/3) = 0.4, 1/3, 2/9
    f1 = [0.4, 1 / 3, 2 / 9]
    assert uniform["accuracy"] == pytest.approx(1 / 3)
    assert uniform["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert uniform["weighted_f1"] == pytest.approx(0.5 * 0.4 + (1 / 3) * (1 / 3) + (1 / 6) * (2 / 9))


def test_uniform_random_baseline_matches_simulated_guessing() -> None:
    """The analytic large-N values agree with torchmetrics on many uniform random guesses."""
    from torchmetrics.functional.classification import multiclass_f1_score

    generator = torch.Generator().manual_seed(0)
    targets = torch.multinomial(torch.tensor([0.6, 0.25, 0.1, 0.05]), 200_000, replacement=True, generator=generator)
    guesses = torch.randint(0, 4, (200_000,), generator=generator)
    analytic = uniform_random_baseline(targets, 4)
    for average in ("macro", "weighted"):
        simulated = float(multiclass_f1_score(guesses, targets, num_classes=4, average=average))
        assert analytic[f"{average}_f1"] == pytest.approx(simulated, abs=5e-3)


def test_ignore_index_rows_are_dropped() -> None:
    base = task_report(one_hot_logits(PREDS), TARGETS, LABELS)
    # extra rows predicting "b" with target -100: counted, they would change every number above
    logits = torch.cat([one_hot_logits(PREDS), one_hot_logits(torch.tensor([1, 1, 1, 1]))])
    targets = torch.cat([TARGETS, torch.full((4,), -100)])
    assert task_report(logits, targets, LABELS) == base
    kept_logits, kept_targets = drop_ignored(logits, targets)
    assert kept_targets.tolist() == TARGETS.tolist() and kept_logits.shape == (6, 3)


def test_absent_class_row_and_macro_convention() -> None:
    # class "c" is neither gold nor predicted: its row is all zeros; macro-F1 averages over a and b only
    report = task_report(one_hot_logits(torch.tensor([0, 1])), torch.tensor([0, 1]), LABELS)
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert report["macro_f1"] == pytest.approx(1.0)


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="label names"):
        task_report(one_hot_logits(PREDS), TARGETS, ["a", "b"])
    with pytest.raises(ValueError, match="targets must be in"):
        task_report(one_hot_logits(PREDS), torch.tensor([0, 0, 0, 1, 1, 3]), LABELS)
    with pytest.raises(ValueError, match="no targets left"):
        task_report(one_hot_logits(PREDS), torch.full((6,), -100), LABELS)
