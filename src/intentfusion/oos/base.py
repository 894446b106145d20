"""Out-of-scope scorers: how sure a model is that a message is in scope, one number per message.

A scorer turns what the model computed for a split (`ScorerInputs`: the intent logits, and when a scorer asks for
them the pooled features) into an in-scope score (N,), higher = more in scope. The evaluation suite chooses each
scorer's threshold on validation (`intentfusion.evaluation.oos.choose_oos_threshold`) and reports it on test: a
message scoring under the threshold is out of scope. A new detector is one module in `intentfusion/oos/` with an
`OOSScorer` subclass decorated with `@register_oos_scorer("name")`, then `suite.oos_scorers: [max_softmax, name]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch

from intentfusion.utils.registry import Registry


@dataclass
class ScorerInputs:
    """What a scorer may read of a split: the intent logits (N, C) and, when computed, pooled features (N, H)."""

    logits: torch.Tensor
    features: torch.Tensor | None = None


class OOSScorer:
    """Base of the out-of-scope scorers: `fit` on the training split's inputs (optional), then `score`."""

    name: ClassVar[str] = ""  # set by `register_oos_scorer`

    def fit(self, train: ScorerInputs | None) -> OOSScorer:
        """Learn what the scorer needs from the training split (None: not available). Default: nothing."""
        return self

    def score(self, inputs: ScorerInputs) -> torch.Tensor:
        """(N,) in-scope scores: higher = more in scope."""
        raise NotImplementedError


OOS_SCORERS = Registry("out-of-scope scorer", "suite.oos_scorers")


def register_oos_scorer(name: str) -> Callable[[type[OOSScorer]], type[OOSScorer]]:
    """Class decorator: register an `OOSScorer` subclass under `name` (a later registration replaces it)."""
    return OOS_SCORERS.register(name)


def oos_scorer(name: str) -> type[OOSScorer]:
    """The scorer registered under `name`; a `ConfigError` naming `suite.oos_scorers` otherwise."""
    return OOS_SCORERS.lookup(name)
