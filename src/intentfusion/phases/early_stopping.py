"""Early stopping that lets every phase of the plan run."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping


class PhaseAwareEarlyStopping(EarlyStopping):
    """`EarlyStopping` whose patience counts only in the last phase.

    Earlier phases still update the best score, but a plateau there (e.g. a frozen phase) cannot cut the
    plan short: stopping in phase 2 would silently skip the BiLSTM, fusion and final phases.
    """

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        module = trainer.lightning_module
        state, plan = getattr(module, "phase_state", None), getattr(module, "plan", None)
        stop_requested_elsewhere = trainer.should_stop
        super()._run_early_stopping_check(trainer)
        if state is not None and plan is not None and state.index < len(plan.phases) - 1:
            self.wait_count, self.stopped_epoch = 0, 0
            trainer.should_stop = stop_requested_elsewhere
