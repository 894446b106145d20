"""Training objectives: what a phase optimises. A phase lists its objectives (`objectives: [supervised]`, the
default, or ``[{name: supervised}, {name: my_loss, weight: 0.5, temperature: 0.1}]``); the training step adds up
their weighted losses. A new objective (contrastive, distillation, ...) is one module in `intentfusion/objectives/`
with an `Objective` subclass decorated with `@register_objective("name")`; its options are its constructor's
keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from intentfusion.errors import ConfigError
from intentfusion.tasks import Features
from intentfusion.utils.registry import Registry


@dataclass
class ObjectiveInputs:
    """One training batch as the objectives see it: the batch (``labels``, ``idx``, ...), the encoder's
    features (pooled only when the phase trains on cached features) and the logits per task."""

    batch: Mapping[str, Any]
    features: Features
    logits: dict[str, torch.Tensor]


class Objective:
    """Base of the training objectives: `__call__(module, inputs)` -> (loss, {name: value to log})."""

    name: ClassVar[str] = ""  # set by `register_objective`
    needs_token_states: ClassVar[bool] = False  # True: the phase cannot train on cached pooled features

    def __call__(self, module: nn.Module, inputs: ObjectiveInputs) -> tuple[torch.Tensor, dict[str, Any]]:
        raise NotImplementedError


OBJECTIVES = Registry("objective", "phases.schedule.objectives")


def register_objective(name: str) -> Callable[[type[Objective]], type[Objective]]:
    """Class decorator: register an `Objective` subclass under `name` (a later registration replaces it)."""
    return OBJECTIVES.register(name)


def build_objective(spec: str | Mapping[str, Any], where: str) -> tuple[Objective, float]:
    """(the objective, its weight) from a phase's entry: a name, or ``{name, weight?, **options}``."""
    options = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = options.pop("name", None)
    weight = float(options.pop("weight", 1.0))
    cls = OBJECTIVES.lookup(name, where)
    try:
        return cls(**options), weight
    except TypeError as e:
        raise ConfigError(where, f"objective {name!r}: {e}", "the options its constructor takes") from None
