"""`PhasePlan`: epochs, per-epoch state, LR multipliers and per-phase schedules."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from intentfusion.phases.plan import (
    Phase,
    PhaseConfigError,
    PhaseLRLambda,
    PhasePlan,
    PhaseScheduler,
    resolve_phase_epochs,
)

# A five-phase plan with 2 groups unfrozen per epoch (finer steps than conf/phases/five.yaml's 4)
FIVE = [
    {"name": "frozen", "epochs": 1, "backbone": "none", "lr_scale": 30.0},
    {"name": "unfreeze", "epochs": None, "backbone": "progressive", "unfreeze_per_epoch": 2},
    {"name": "bilstm", "epochs": 1, "bilstm": True},
    {"name": "fusion", "epochs": 1, "bilstm": True, "fusion": True},
    {"name": "final", "epochs": 1, "bilstm": True, "fusion": True, "lr_scale": 0.3},
]


def test_null_epochs_share_the_hparams_epochs() -> None:
    assert resolve_phase_epochs(FIVE, 4) == [1, 4, 1, 1, 1]
    assert resolve_phase_epochs([{"epochs": None}, {"epochs": 2}, {"epochs": None}], 5) == [3, 2, 2]
    assert resolve_phase_epochs([{"epochs": None}, {"epochs": None}], 1) == [1, 1]


def test_state_follows_progressive_unfreezing_top_first() -> None:
    plan = PhasePlan.from_config(FIVE, 3, layer_decay=0.9, n_groups=7)
    unfrozen = [plan.state_at(e).unfrozen_groups for e in range(plan.total_epochs)]
    assert unfrozen == [0, 2, 4, 6, 7, 7, 7]
    names = [plan.state_at(e).phase.name for e in range(plan.total_epochs)]
    assert names == ["frozen", "unfreeze", "unfreeze", "unfreeze", "bilstm", "fusion", "final"]
    assert plan.state_at(99).phase.name == "final"  # past the plan: the last phase continues


def test_group_scale_applies_layer_decay_and_gates_frozen_groups() -> None:
    plan = PhasePlan.from_config(FIVE, 2, layer_decay=0.9, n_groups=5)
    unfreeze_first_epoch = plan.state_at(1)
    assert plan.group_scale(unfreeze_first_epoch, 0) == 1.0
    assert plan.group_scale(unfreeze_first_epoch, 1) == pytest.approx(0.9)
    assert plan.group_scale(unfreeze_first_epoch, 2) == pytest.approx(0.81)
    assert plan.group_scale(unfreeze_first_epoch, 3) == 0.0
    final = plan.state_at(plan.total_epochs - 1)
    assert plan.group_scale(final, 5) == pytest.approx(0.3 * 0.9**5)
    assert plan.group_scale(plan.state_at(0), 0) == 30.0 and plan.group_scale(plan.state_at(0), 1) == 0.0


def test_linear_schedule_restarts_at_every_phase() -> None:
    plan = PhasePlan([Phase("a", 1), Phase("b", 2, lr_scale=0.5)], layer_decay=1.0, n_groups=2)
    fn = PhaseLRLambda(plan, steps_per_epoch=10, depth=0)
    assert fn(0) == 0.0 and fn(1) == pytest.approx(1.0)  # warmup of ceil(10 * 0.1) = 1 step
    assert fn(9) == pytest.approx(1 / 9)  # linear decay to 0 at the phase end
    assert fn(10) == 0.0  # phase b warms up again from 0 ...
    assert fn(12) == pytest.approx(0.5)  # ... over ceil(20 * 0.1) = 2 steps, to b's lr_scale
    assert fn(29) == pytest.approx(0.5 / 18)


def test_slanted_triangular_peaks_after_ten_percent() -> None:
    plan = PhasePlan([Phase("u", 1, schedule="slanted_triangular")], layer_decay=1.0, n_groups=1)
    fn = PhaseLRLambda(plan, steps_per_epoch=100, depth=0)
    values = [fn(s) for s in range(100)]
    assert max(range(100), key=values.__getitem__) == 10
    assert values[0] == pytest.approx(1 / 32) and values[10] == pytest.approx(1.0)


def test_scheduler_state_is_plain_numbers() -> None:
    plan = PhasePlan([Phase("a", 2)], layer_decay=1.0, n_groups=1)
    param = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW([{"params": [param], "depth": 0}], lr=1e-3)
    sched = PhaseScheduler(opt, plan, steps_per_epoch=5)
    for _ in range(3):
        opt.step()
        sched.step()
    state = sched.state_dict()
    assert "lr_lambdas" not in state and state["last_epoch"] == 3
    fresh = PhaseScheduler(torch.optim.AdamW([{"params": [param], "depth": 0}], lr=1e-3), plan, 5)
    fresh.load_state_dict(state)
    assert fresh.last_epoch == 3


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x", "epochs": 1, "backbone": "half"}, "backbone='half'"),
        ({"name": "x", "epochs": 1, "schedule": "cosine"}, "schedule='cosine'"),
        ({"name": "x", "epochs": 1, "bilstn": True}, "unknown key(s) ['bilstn']"),
    ],
)
def test_bad_phase_declarations_say_what_is_wrong(spec: dict, message: str) -> None:
    with pytest.raises(PhaseConfigError, match=re.escape(message)):
        PhasePlan.from_config([spec], 1, layer_decay=0.9, n_groups=2)


def test_five_plan_gives_late_unfrozen_groups_their_full_lr() -> None:
    """`conf/phases/five.yaml` holds the LR from phase 2's warmup to the final phase, which alone decays it:
    with a decaying phase-2 schedule the groups unfrozen late would start near LR 0 and barely train (val score
    0.93 vs 0.98 on support)."""
    from omegaconf import OmegaConf

    conf = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[2] / "conf" / "phases" / "five.yaml"))
    plan = PhasePlan.from_config(conf["schedule"], default_epochs=4, layer_decay=conf["layer_decay"], n_groups=7)
    steps = 100
    deepest = PhaseLRLambda(plan, steps, depth=7)  # the embeddings: the last group to be unfrozen
    per_epoch = plan.phases[1].unfreeze_per_epoch
    unfrozen_at = (plan.starts[1] + math.ceil(7 / per_epoch) - 1) * steps  # first step of its unfreezing epoch
    assert 7 > per_epoch and unfrozen_at > plan.starts[1] * steps  # it is unfrozen in a later epoch of phase 2
    assert deepest(unfrozen_at - 1) == 0.0  # still frozen
    full = 0.9**7
    assert deepest(unfrozen_at) == pytest.approx(full)  # full layer-decayed LR from its first step
    for step in (plan.starts[2] * steps - 1, plan.starts[3] * steps + 50, plan.starts[4] * steps - 1):
        assert deepest(step) == pytest.approx(full), step  # held through phases 3-4 (past their warmup)
    final = plan.phases[4].lr_scale
    assert 0 < final < 1 and deepest(plan.starts[4] * steps + 50) < final * full  # the final phase decays
