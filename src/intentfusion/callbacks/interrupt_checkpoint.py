"""Save `last.ckpt` in the middle of an epoch when training is cut short."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L


class InterruptCheckpoint(L.Callback):
    """Writes `<dirpath>/last.ckpt` right after the step at which training stops mid-epoch.

    Covers a `trainer.max_steps` stop and SIGTERM (Lightning sets `trainer.received_sigterm`). The checkpoint is
    taken in `on_train_batch_end`, the state Lightning resumes mid-epoch from; with resumable dataloaders and
    the RNG state callback, resuming from it reproduces the uninterrupted run. Pair it with a
    `ModelCheckpoint(save_on_train_epoch_end=False)` so the end of the cut epoch does not overwrite it with an
    "epoch finished" state.
    """

    def __init__(self, dirpath: str, filename: str = "last") -> None:
        self.path = Path(dirpath) / f"{filename}.ckpt"

    def on_train_batch_end(self, trainer: L.Trainer, module: L.LightningModule, *args: Any) -> None:
        loop = trainer.fit_loop.epoch_loop
        step_limit = 0 < trainer.max_steps <= trainer.global_step
        if (step_limit and not loop.batch_progress.is_last_batch) or trainer.received_sigterm:
            trainer.save_checkpoint(self.path)
