"""Routing cost of the action task on a known confusion, and the threshold-fallback sweep."""

from __future__ import annotations

import pytest
import torch

from intentfusion.data.support import LABELS
from intentfusion.evaluation.business import (
    ACTION_LABELS,
    DEFAULT_THRESHOLDS,
    default_cost_matrix,
    routing_cost,
    threshold_fallback_sweep,
)

AUTO, MORE, ESC = "auto_resolve", "request_more_info", "escalate_to_human"

# gold -> pred                     count  unit cost  cost
# auto -> auto                     3      0          0
# auto -> escalate (false esc.)    2      10         20
# more -> auto (false auto)        1      5          5
# escalate -> auto (false auto)    2      5          10
# escalate -> more                 1      0          0
# more -> more                     1      0          0
# total 35 over 10 messages -> 3.5 per message; 2 false escalations, 3 false auto-resolves
PAIRS = [(AUTO, AUTO)] * 3 + [(AUTO, ESC)] * 2 + [(MORE, AUTO)] + [(ESC, AUTO)] * 2 + [(ESC, MORE)] + [(MORE, MORE)]
GOLD = [g for g, _ in PAIRS]
PRED = [p for _, p in PAIRS]


def test_labels_match_the_data() -> None:
    assert set(ACTION_LABELS) == {AUTO, MORE, ESC}
    assert ACTION_LABELS == LABELS["action"]  # the support seed's label order


def test_default_cost_on_known_confusion() -> None:
    result = routing_cost(PRED, GOLD)
    assert result["n"] == 10
    assert result["total_cost"] == 35.0
    assert result["cost_per_message"] == pytest.approx(3.5)
    assert result["false_escalations"] == 2
    assert result["false_auto_resolves"] == 3
    assert result["accuracy"] == pytest.approx(0.4)


def test_default_matrix_shape() -> None:
    matrix = default_cost_matrix()
    assert matrix[AUTO][ESC] == 10 and matrix[MORE][ESC] == 10 and matrix[ESC][ESC] == 0
    assert matrix[MORE][AUTO] == 5 and matrix[ESC][AUTO] == 5 and matrix[AUTO][AUTO] == 0
    assert matrix[ESC][MORE] == 0 and matrix[AUTO][MORE] == 0


def test_custom_cost_matrix() -> None:
    # only a missed escalation answered with "more info" costs (7); left-out pairs cost 0
    result = routing_cost(PRED, GOLD, cost_matrix={ESC: {MORE: 7}})
    assert result["total_cost"] == 7.0 and result["cost_per_message"] == pytest.approx(0.7)
    assert result["false_escalations"] == 2  # counts do not depend on the costs


def test_unknown_labels_are_named() -> None:
    with pytest.raises(ValueError, match="escalate_to_manager"):
        routing_cost(PRED, GOLD, cost_matrix={AUTO: {"escalate_to_manager": 3}})
    with pytest.raises(ValueError, match="refund"):
        routing_cost(PRED, GOLD, cost_matrix={"refund": {AUTO: 1}})
    with pytest.raises(ValueError, match="auto_resolv'"):
        routing_cost(["auto_resolv"], [AUTO])
    with pytest.raises(ValueError, match=">= 0"):
        routing_cost(PRED, GOLD, cost_matrix={AUTO: {ESC: -1}})


# Sweep case (labels auto=0, more=1, escalate=2):
#   probs               gold      model pred      conf
#   (0.90 0.05 0.05)    auto      auto  ok        0.90
#   (0.10 0.10 0.80)    esc       esc   ok        0.80
#   (0.20 0.25 0.55)    auto      esc   false esc 0.55  (10)
#   (0.45 0.35 0.20)    esc       auto  false auto 0.45 (5)
#   (0.35 0.33 0.32)    more      auto  false auto 0.35 (5)
SWEEP_PROBS = torch.tensor(
    [[0.90, 0.05, 0.05], [0.10, 0.10, 0.80], [0.20, 0.25, 0.55], [0.45, 0.35, 0.20], [0.35, 0.33, 0.32]]
)
SWEEP_GOLD = torch.tensor([0, 2, 0, 2, 1])


def test_threshold_sweep_known_case() -> None:
    rows = threshold_fallback_sweep(SWEEP_PROBS, SWEEP_GOLD, ACTION_LABELS, thresholds=(0.0, 0.4, 0.5, 0.6, 0.95))
    by_t = {row["threshold"]: row for row in rows}
    # t = 0: nothing deferred, 10 + 5 + 5 = 20
    assert by_t[0.0]["coverage"] == 1.0 and by_t[0.0]["total_cost"] == 20.0
    assert by_t[0.0]["accuracy_covered"] == pytest.approx(0.4)
    # t = 0.4: the 0.35 message becomes request_more_info, which is its gold -> cost 15, accuracy 3/5
    assert by_t[0.4]["coverage"] == pytest.approx(0.8) and by_t[0.4]["total_cost"] == 15.0
    assert by_t[0.4]["accuracy_covered"] == pytest.approx(0.5) and by_t[0.4]["accuracy"] == pytest.approx(0.6)
    assert by_t[0.4]["false_auto_resolves"] == 1
    # t = 0.5: the false auto-resolve (0.45) is deferred -> 10 (a deferred escalation costs 0 by default)
    assert by_t[0.5]["cost_per_message"] == pytest.approx(2.0) and by_t[0.5]["n_deferred"] == 2
    # t = 0.6: the false escalation is deferred too -> no cost, the kept two are right
    assert by_t[0.6]["total_cost"] == 0.0 and by_t[0.6]["accuracy_covered"] == 1.0
    assert by_t[0.6]["false_escalations"] == 0
    # t = 0.95: everything deferred; only the request_more_info message is right
    assert by_t[0.95]["coverage"] == 0.0 and by_t[0.95]["accuracy_covered"] is None
    assert by_t[0.95]["accuracy"] == pytest.approx(0.2)


def test_threshold_sweep_coverage_monotone() -> None:
    generator = torch.Generator().manual_seed(0)
    probs = (torch.randn(500, 3, generator=generator) * 2).softmax(dim=1)
    gold = torch.randint(0, 3, (500,), generator=generator)
    gold[:20] = -100
    rows = threshold_fallback_sweep(probs, gold, ACTION_LABELS)
    assert [row["threshold"] for row in rows] == list(DEFAULT_THRESHOLDS)
    coverage = [row["coverage"] for row in rows]
    assert coverage[0] == 1.0
    assert all(a >= b for a, b in zip(coverage, coverage[1:], strict=False))
    assert coverage[-1] < coverage[0]
    assert all(row["n"] == 480 for row in rows)


def test_threshold_sweep_validation() -> None:
    with pytest.raises(ValueError, match="fallback 'ask'"):
        threshold_fallback_sweep(SWEEP_PROBS, SWEEP_GOLD, ACTION_LABELS, fallback="ask")
    with pytest.raises(ValueError, match="apply softmax"):
        threshold_fallback_sweep(SWEEP_PROBS.log(), SWEEP_GOLD, ACTION_LABELS)
