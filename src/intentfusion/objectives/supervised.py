"""`supervised`: each task's own loss on its labelled examples (its type's `loss`), weighted per task."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from intentfusion.objectives.base import Objective, ObjectiveInputs, register_objective


@register_objective("supervised")
class Supervised(Objective):
    """Sum over tasks of `task_weights[task]` x (the task's summed loss / its labelled count; 0 without any).

    Logs `train/<task>/loss` for the tasks the batch labels (another source's batch says nothing of a task)."""

    def __call__(self, module: nn.Module, inputs: ObjectiveInputs) -> tuple[torch.Tensor, dict[str, Any]]:
        total, parts, counts = module.loss(inputs.logits, inputs.batch["labels"])
        logged = {f"{task}/loss": (value, counts[task]) for task, value in parts.items() if counts[task]}
        return total, logged
