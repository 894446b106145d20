"""`ReportContext`: what a task type's report section (`TaskType.report`) may use besides its outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch


@dataclass
class ReportContext:
    """The training split's label column, where to draw figures, the suite's options, and the evaluation's shared
    results (temperatures fitted here are written to `temperatures.json` and read by the Predictor)."""

    train_labels: torch.Tensor | None
    out_dir: Path
    options: Mapping[str, Any]
    temperatures: dict[str, float]
