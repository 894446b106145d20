"""`StepTimer`: a Lightning callback that measures an intentfusion training run from the command line.

Added without touching the configs:

    python train.py ... +callbacks.bench_probe._target_=bench.train_probe.StepTimer \\
        +callbacks.bench_probe.out=/tmp/probe.json [+callbacks.bench_probe.stop_at=0.8]

It records the same things as the HF script's callback (`bench.hf_trainer.Recorder`): per optimizer step the
training clock (validation excluded) and the batch's samples / padded / real tokens, every validation's
accuracy, every epoch end (with its phase). The clock starts at the start of the training loop, so the
frozen phase's feature encoding (done at its epoch start) counts as training time.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from bench.hf_trainer import Recorder


class StepTimer(L.Callback):
    """Writes step timings and validation accuracy to ``out`` (JSON) when training ends.

    ``stop_at``: stop training at the first validation whose ``metric`` reaches it (time-to-accuracy runs).
    """

    def __init__(self, out: str, metric: str = "val/intent/acc", stop_at: float | None = None) -> None:
        self.out, self.metric, self.stop_at = out, metric, stop_at
        self.recorder = Recorder()
        self._written = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        encoder = getattr(getattr(pl_module, "net", pl_module), "encoder", pl_module)
        encoder.register_forward_hook(  # the encoder's output: a transformers ModelOutput, [0] = last hidden state
            lambda m, a, out: self.recorder.autocast_probe(out[0]) if m.training and pl_module.training else None
        )
        self.recorder.start()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        self.recorder.step(trainer.global_step, int(ids.shape[0]), int(ids.numel()), int(mask.sum()))

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.recorder.pause()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.metric)
        if value is not None:
            epoch = trainer.current_epoch + trainer.fit_loop.epoch_loop.batch_progress.current.ready / max(
                1, trainer.num_training_batches
            )
            self.recorder.point(trainer.global_step, round(float(epoch), 4), float(value))
            if self.stop_at is not None and float(value) >= self.stop_at:
                trainer.should_stop = True
        self.recorder.resume()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state = getattr(pl_module, "phase_state", None)
        phase = state.label if state is not None else None
        self.recorder.epoch_end(trainer.current_epoch + 1, trainer.global_step, phase=phase)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._write(trainer)

    def _write(self, trainer: L.Trainer) -> None:
        if self._written or not trainer.is_global_zero:
            return
        self._written = True
        module = trainer.lightning_module
        dm = trainer.datamodule
        splits = getattr(dm, "splits", {})
        self.recorder.dump(
            self.out,
            tool="intentfusion",
            tasks=list(getattr(module, "tasks", [])),
            n_train=len(splits["train"]) if "train" in splits else None,
            n_val=len(splits["val"]) if "val" in splits else None,
            precision=str(trainer.precision),
            phases=[p.name for p in module.plan.phases] if hasattr(module, "plan") else None,
        )
