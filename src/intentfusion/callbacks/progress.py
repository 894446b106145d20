"""Progress output that also works when stdout is a file (SLURM, CI, nohup)."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from lightning.pytorch.trainer.states import TrainerFn


def format_duration(seconds: float) -> str:
    """`65` -> `1m05s`, `3725` -> `1h02m05s`."""
    s = int(round(seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class LineProgress(ProgressBar):
    """Plain-text progress for runs whose stdout is not a terminal.

    The rich bar redraws one line in place and writes nothing when stdout is redirected, so a nine-minute run
    logged to a file says nothing until it ends. This bar prints (with `flush=True`, rank 0 only) one line every
    `every_n_steps` optimizer steps and one after each validation of the fit (none for the sanity check)::

        train | phase frozen | epoch 1/5 | step 50/400 | loss 1.2345 | val/score - | 0m40s elapsed, ETA 4m40s
        val   | phase frozen | epoch 1/5 | step 80/400 | loss 1.1021 | val/score 0.6312 | 1m05s elapsed, ETA 4m20s

    `phase` is the module's `phase_state.phase.name` (`-` without one), `step` the global step over
    `trainer.estimated_stepping_batches`, `loss` the latest `train/loss`, `val/score` the latest validation's,
    and the ETA is elapsed / steps done this run × steps left.
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self._enabled = True
        self._start = time.monotonic()
        self._start_step = 0
        self._total: float = math.inf
        self._last_printed_step = -1
        self._val_score: float | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()
        self._start_step = trainer.global_step  # a resumed run's ETA counts only the steps it did itself
        self._total = trainer.estimated_stepping_batches
        self._last_printed_step = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step = trainer.global_step  # with gradient accumulation several batches share one step: print it once
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_printed_step:
            self._last_printed_step = step
            self._emit("train", trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:  # not `trainer.validate()` either
            return
        score = trainer.callback_metrics.get("val/score")
        if score is not None:
            self._val_score = float(score)
        self._emit("val  ", trainer)

    def _emit(self, kind: str, trainer: L.Trainer) -> None:
        if self._enabled and trainer.is_global_zero:
            print(self._line(kind, trainer), flush=True)

    def _line(self, kind: str, trainer: L.Trainer) -> str:
        state = getattr(trainer.lightning_module, "phase_state", None)
        phase = state.phase.name if state is not None else "-"
        epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        step, finite = trainer.global_step, math.isfinite(self._total)
        loss = trainer.progress_bar_metrics.get("train/loss", trainer.callback_metrics.get("train/loss"))
        elapsed = time.monotonic() - self._start
        done = step - self._start_step
        eta = format_duration(elapsed / done * (self._total - step)) if finite and done > 0 else "?"
        return " | ".join(
            [
                kind,
                f"phase {phase}",
                f"epoch {trainer.current_epoch + 1}{epochs}",
                f"step {step}/{int(self._total)}" if finite else f"step {step}",
                f"loss {float(loss):.4f}" if loss is not None else "loss -",
                f"val/score {self._val_score:.4f}" if self._val_score is not None else "val/score -",
                f"{format_duration(elapsed)} elapsed, ETA {eta}",
            ]
        )


def progress_bar(every_n_steps: int = 50, refresh_rate: int = 1) -> ProgressBar:
    """The rich bar when stdout is a terminal, else a `LineProgress` printing every `every_n_steps` steps."""
    if sys.stdout.isatty():
        return RichProgressBar(refresh_rate=refresh_rate)
    return LineProgress(every_n_steps=every_n_steps)
