"""Training objectives as plugins: a phase lists what it optimises; a toy objective defined here trains through a
phase plan with no change to `src/`; unknown objectives and options are one-line config errors."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from intentfusion.errors import ConfigError, one_line
from intentfusion.objectives import OBJECTIVES, Objective, ObjectiveInputs, Supervised, register_objective

SEEN: list[tuple[int, float]] = []  # (epoch, value) of every call


@register_objective("toy_pooled_norm")
class PooledNorm(Objective):
    """The mean squared norm of the pooled vectors, times `scale` (a regulariser that shrinks them)."""

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    def __call__(self, module: nn.Module, inputs: ObjectiveInputs) -> tuple[torch.Tensor, dict[str, Any]]:
        value = self.scale * inputs.features.pooled.float().pow(2).sum(-1).mean()
        SEEN.append((module.current_epoch, float(value)))
        return value, {}


def test_built_in_objectives_are_registered() -> None:
    assert OBJECTIVES["supervised"] is Supervised and OBJECTIVES["toy_pooled_norm"] is PooledNorm


def test_a_phase_trains_the_objectives_it_lists(cfg_factory) -> None:
    from intentfusion.train import train

    plan = ("phases.schedule=[{name: warm, epochs: 1, backbone: all}, {name: shrink, epochs: 1, backbone: all, "
            "objectives: [supervised, {name: toy_pooled_norm, weight: 0.5, scale: 2.0}]}]")
    SEEN.clear()
    metrics = train(cfg_factory("data.source.n=240", "tasks=intent_only", "trainer.precision=32", plan,
                                "test=false"))
    assert {epoch for epoch, _ in SEEN} == {1}  # the second phase alone
    assert "train/toy_pooled_norm/loss" in metrics and "train/supervised/loss" in metrics
    assert metrics["train/toy_pooled_norm/loss"] == pytest.approx(SEEN[-1][1], rel=1e-5)
    assert metrics["train/loss"] == pytest.approx(metrics["train/supervised/loss"] + 0.5 * SEEN[-1][1], rel=1e-4)


WHERE = "error: phases.schedule[0].objectives:"


@pytest.mark.parametrize(("spec", "message"), [
    ("objectives: [contrastve]", f"{WHERE} unknown objective 'contrastve'; expected one of"),
    ("objectives: [{name: toy_pooled_norm, scael: 2}]", f"{WHERE} objective 'toy_pooled_norm'"),
])
def test_a_bad_objective_is_one_line_naming_the_phase(cfg_factory, spec: str, message: str) -> None:
    from intentfusion.train import train

    cfg = cfg_factory("tasks=intent_only", f"phases.schedule=[{{name: only, epochs: 1, {spec}}}]")
    with pytest.raises(ConfigError) as err:
        train(cfg)
    assert one_line(err.value).startswith(message) and "\n" not in one_line(err.value)
