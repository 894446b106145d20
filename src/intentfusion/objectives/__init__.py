"""Training objectives, registered by name (a phase's `objectives`). Built in: `supervised`."""

from intentfusion.objectives.base import OBJECTIVES, Objective, ObjectiveInputs, build_objective, register_objective
from intentfusion.objectives.supervised import Supervised

__all__ = ["OBJECTIVES", "Objective", "ObjectiveInputs", "Supervised", "build_objective", "register_objective"]
