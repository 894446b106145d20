"""Out-of-scope scorers, registered by name (`suite.oos_scorers`). Built in: `max_softmax`."""

from intentfusion.oos.base import OOS_SCORERS, OOSScorer, ScorerInputs, oos_scorer, register_oos_scorer
from intentfusion.oos.max_softmax import MaxSoftmax

__all__ = ["OOS_SCORERS", "MaxSoftmax", "OOSScorer", "ScorerInputs", "oos_scorer", "register_oos_scorer"]
