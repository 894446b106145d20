"""`max_softmax`: the highest softmax probability of the intent (Hendrycks & Gimpel, 2017), the baseline detector."""

from __future__ import annotations

import torch

from intentfusion.oos.base import OOSScorer, ScorerInputs, register_oos_scorer


@register_oos_scorer("max_softmax")
class MaxSoftmax(OOSScorer):
    """In-scope score = max_c softmax(logits)_c."""

    def score(self, inputs: ScorerInputs) -> torch.Tensor:
        return inputs.logits.float().softmax(-1).max(-1).values
