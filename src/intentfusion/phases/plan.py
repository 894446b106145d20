"""A training plan of phases, and the learning rate of every parameter group as a pure function of the step.

The plan is declared in `conf/phases/*.yaml`. Which backbone layers train, which model parts are active and
the LR of each parameter group depend only on the epoch/step counter, so resuming a run (or a DDP rank)
reproduces the exact state of an uninterrupted run without any stored bookkeeping beyond Lightning's own
loop counters.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from transformers import get_scheduler

from intentfusion.errors import ConfigError

BACKBONE_MODES = ("none", "progressive", "all")
SCHEDULES = ("linear", "constant", "slanted_triangular")


class PhaseConfigError(ConfigError):
    """A phase declaration in the config is invalid."""


@dataclass(frozen=True)
class Phase:
    """One training phase as declared in config."""

    name: str
    epochs: int
    backbone: str = "all"  # none | progressive (top groups first) | all
    unfreeze_per_epoch: int = 1  # backbone groups unfrozen per epoch in a progressive phase
    lr_scale: float = 1.0  # multiplies every group's LR in this phase
    bilstm: bool = False  # BiLSTM branch over token states active
    fusion: bool = False  # sentiment<->intent fusion active
    schedule: str = "linear"  # linear | constant | slanted_triangular
    warmup_ratio: float = 0.1  # fraction of the phase's steps spent warming up (linear/constant)
    objectives: tuple[Any, ...] = ("supervised",)  # what it optimises: names or {name, weight, **options}

    def __post_init__(self) -> None:
        object.__setattr__(self, "objectives", tuple(self.objectives))
        if not self.objectives:
            raise PhaseConfigError(f"phase '{self.name}': objectives is empty; expected at least one (supervised)")
        if self.backbone not in BACKBONE_MODES:
            raise PhaseConfigError(f"phase '{self.name}': backbone={self.backbone!r}, expected one of {BACKBONE_MODES}")
        if self.schedule not in SCHEDULES:
            raise PhaseConfigError(f"phase '{self.name}': schedule={self.schedule!r}, expected one of {SCHEDULES}")
        if self.epochs < 1 or self.unfreeze_per_epoch < 1:
            raise PhaseConfigError(f"phase '{self.name}': epochs and unfreeze_per_epoch must be >= 1")


@dataclass(frozen=True)
class PhaseState:
    """What is active during one epoch."""

    index: int
    phase: Phase
    epoch_in_phase: int
    unfrozen_groups: int  # backbone layer groups trainable, counted from the top

    @property
    def label(self) -> str:
        return f"{self.index + 1}_{self.phase.name}"


def resolve_phase_epochs(schedule: Sequence[dict[str, Any]], default_epochs: int) -> list[int]:
    """Phases whose `epochs` is null share `default_epochs` (the hparams config's) equally, at least one each."""
    open_slots = [i for i, p in enumerate(schedule) if p.get("epochs") is None]
    epochs = [p.get("epochs") for p in schedule]
    if open_slots:
        share, extra = divmod(int(default_epochs), len(open_slots))
        for rank, i in enumerate(open_slots):
            epochs[i] = max(1, share + (1 if rank < extra else 0))
    return [int(e) for e in epochs]


def total_epochs(schedule: Sequence[dict[str, Any]], default_epochs: int) -> int:
    """Sum of the plan's epochs (the OmegaConf resolver `phases_total_epochs`)."""
    return sum(resolve_phase_epochs(schedule, default_epochs))


class PhasePlan:
    """The ordered phases of a run and the per-epoch state they imply."""

    def __init__(self, phases: Sequence[Phase], layer_decay: float, n_groups: int) -> None:
        if not phases:
            raise PhaseConfigError("the phase schedule is empty: declare at least one phase")
        if not 0.0 < layer_decay <= 1.0:
            raise PhaseConfigError(f"layer_decay={layer_decay}, expected a value in (0, 1]")
        self.phases = list(phases)
        self.layer_decay = layer_decay
        self.n_groups = n_groups
        self.starts = [0]
        for phase in self.phases:
            self.starts.append(self.starts[-1] + phase.epochs)

    @classmethod
    def from_config(
        cls,
        schedule: Sequence[dict[str, Any]],
        default_epochs: int,
        layer_decay: float,
        n_groups: int,
        defaults: dict[str, Any] | None = None,
    ) -> PhasePlan:
        """Build from `phases.schedule`; `defaults` fill keys a phase leaves out (e.g. the hparams' warmup)."""
        known = {f.name for f in fields(Phase)}
        phases = []
        for i, (spec, epochs) in enumerate(zip(schedule, resolve_phase_epochs(schedule, default_epochs), strict=True)):
            unknown = set(spec) - known
            if unknown:
                raise PhaseConfigError(
                    f"phases.schedule[{i}]", f"unknown key(s) {sorted(unknown)}", f"keys among {sorted(known)}"
                )
            phases.append(Phase(**{**(defaults or {}), **dict(spec), "epochs": epochs}))
        return cls(phases, layer_decay, n_groups)

    @property
    def total_epochs(self) -> int:
        return self.starts[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "phases": [asdict(p) for p in self.phases],
            "layer_decay": self.layer_decay,
            "n_groups": self.n_groups,
        }

    def state_at(self, epoch: int) -> PhaseState:
        """The phase state of a (0-based) epoch; epochs past the plan stay in the last phase."""
        index = next((i for i in range(len(self.phases)) if epoch < self.starts[i + 1]), len(self.phases) - 1)
        phase = self.phases[index]
        in_phase = epoch - self.starts[index]
        if phase.backbone == "none":
            unfrozen = 0
        elif phase.backbone == "all":
            unfrozen = self.n_groups
        else:
            unfrozen = min(self.n_groups, phase.unfreeze_per_epoch * (in_phase + 1))
        return PhaseState(index, phase, in_phase, unfrozen)

    def group_scale(self, state: PhaseState, depth: int) -> float:
        """LR multiplier of a parameter group at `depth` (0 = task parts, k = k-th backbone group from the top).

        Task parts get the phase's scale; backbone group k gets scale * layer_decay**k when unfrozen, else 0.
        """
        if depth == 0:
            return state.phase.lr_scale
        if depth > state.unfrozen_groups:
            return 0.0
        return state.phase.lr_scale * self.layer_decay**depth


def _shape_fn(phase: Phase, steps: int) -> Callable[[int], float]:
    """LR shape over one phase's steps: transformers' schedules, or ULMFiT's slanted triangle."""
    if phase.schedule == "slanted_triangular":
        cut = max(1, math.floor(steps * 0.1))
        ratio = 32.0

        def slanted(step: int) -> float:  # Howard & Ruder (2018), eq. 3; no library ships it
            p = step / cut if step < cut else 1 - (step - cut) / max(1, cut * (1 / 0.1 - 1))
            return (1 + p * (ratio - 1)) / ratio

        return slanted
    name = "linear" if phase.schedule == "linear" else "constant_with_warmup"
    dummy = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = get_scheduler(
        name, dummy, num_warmup_steps=math.ceil(steps * phase.warmup_ratio), num_training_steps=steps
    )
    return scheduler.lr_lambdas[0]


class PhaseLRLambda:
    """LR multiplier of one parameter group at optimizer step `s`, for `torch.optim.lr_scheduler.LambdaLR`.

    Holds only the plan and steps per epoch; the schedule restarts (warmup, decay) at every phase.
    """

    def __init__(self, plan: PhasePlan, steps_per_epoch: int, depth: int) -> None:
        self.plan, self.depth = plan, depth
        self.set_steps_per_epoch(steps_per_epoch)

    def set_steps_per_epoch(self, steps_per_epoch: int) -> None:
        self.steps_per_epoch = max(1, steps_per_epoch)
        self._shapes = [_shape_fn(p, p.epochs * self.steps_per_epoch) for p in self.plan.phases]

    def __call__(self, step: int) -> float:
        state = self.plan.state_at(step // self.steps_per_epoch)
        in_phase = step - self.plan.starts[state.index] * self.steps_per_epoch
        return self.plan.group_scale(state, self.depth) * self._shapes[state.index](in_phase)


class PhaseScheduler(torch.optim.lr_scheduler.LambdaLR):
    """`LambdaLR` over one `PhaseLRLambda` per parameter group.

    The lambdas are rebuilt from the config on every start, so the checkpoint holds only the step counter and
    base LRs (plain numbers, loadable with `weights_only=True`).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, plan: PhasePlan, steps_per_epoch: int = 1) -> None:
        lambdas = [PhaseLRLambda(plan, steps_per_epoch, g["depth"]) for g in optimizer.param_groups]
        super().__init__(optimizer, lambdas)

    def set_steps_per_epoch(self, steps_per_epoch: int) -> None:
        """Fix the epoch length once the training dataloader is known (step 0 is in epoch 0 regardless)."""
        for fn in self.lr_lambdas:
            fn.set_steps_per_epoch(steps_per_epoch)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.pop("lr_lambdas", None)
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update({k: v for k, v in state_dict.items() if k != "lr_lambdas"})
