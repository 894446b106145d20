"""`PhaseCallback`: moves the module through its phase plan at epoch boundaries.

Why it is immune to the known Lightning fine-tuning pitfalls:
- no param groups are ever added (every parameter is in the optimizer from the start; frozen groups have LR 0
  through `PhaseScheduler`), so `BaseFinetuning`'s value-based "already in optimizer" check and schedulers
  missing later groups cannot happen;
- the phase is a pure function of `trainer.current_epoch`, re-applied at every epoch start, so a resumed
  run re-derives exactly what was trainable (no re-freezing, Lightning #21901);
- `requires_grad` changes only after DDP wrapped the model with all parameters trainable, and the DDP
  trainer config uses `find_unused_parameters` (Lightning #20340).
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rich.console import Console
from rich.table import Table

from intentfusion.evaluation.plots import save_confusion_matrices
from intentfusion.phases.plan import PhaseState


class PhaseCallback(L.Callback):
    """Applies the module's `PhasePlan`, builds the frozen-phase feature cache, writes per-phase artefacts."""

    def __init__(self, out_dir: str | None = None) -> None:
        self.out_dir = out_dir
        self.rows: list[dict[str, Any]] = []  # one per finished phase, kept across resumes
        self._loaded_plan: dict[str, Any] | None = None
        self._phase_started: float | None = None

    # ----------------------------------------------------------------------------------------- apply
    def _apply(self, trainer: L.Trainer, module: L.LightningModule) -> PhaseState:
        state = module.plan.state_at(trainer.current_epoch)
        current = module.phase_state
        if current is None or (current.index, current.unfrozen_groups) != (
            state.index,
            state.unfrozen_groups,
        ):
            module.set_phase(state)
        return state

    def on_fit_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._loaded_plan is not None and self._loaded_plan != module.plan.to_dict():
            raise RuntimeError(
                "the checkpoint was trained with a different phase plan than the current config "
                f"(checkpoint: {[(p['name'], p['epochs']) for p in self._loaded_plan['phases']]}, "
                f"config: {[(p.name, p.epochs) for p in module.plan.phases]}); resume with the same `phases` and "
                "`hparams.epochs` (to train longer, raise trainer.max_epochs: the last phase continues)"
            )
        if trainer.max_epochs and trainer.max_epochs > module.plan.total_epochs:
            print(
                f"[intentfusion] trainer.max_epochs={trainer.max_epochs} exceeds the phase plan "
                f"({module.plan.total_epochs} epochs): the last phase continues"
            )

    def on_sanity_check_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._apply(trainer, module)

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        state = self._apply(trainer, module)
        module.train()  # trainable parts in train mode, frozen groups in eval mode (see `MultiTaskModule.train`)
        if self._phase_started is None or state.epoch_in_phase == 0:
            self._phase_started = time.perf_counter()
        if module.uses_feature_cache and module.feature_cache is None:
            module.feature_cache = self._encode_training_set(trainer, module)
        module.log("phase", float(state.index + 1), on_step=False, on_epoch=True)

    @staticmethod
    @torch.no_grad()
    def _encode_training_set(trainer: L.Trainer, module: L.LightningModule) -> torch.Tensor:
        """Pooled features of every training example, computed once with the frozen encoder."""
        loader = trainer.datamodule.feature_dataloader()
        cache = None
        with trainer.precision_plugin.forward_context():
            for batch in loader:
                ids, mask = batch["input_ids"].to(module.device), batch["attention_mask"].to(module.device)
                pooled = module.net.encode(ids, mask).pooled
                if cache is None:
                    cache = torch.empty(len(loader.dataset), pooled.shape[-1], dtype=pooled.dtype, device=module.device)
                cache[batch["idx"].to(module.device)] = pooled
        return cache

    # ----------------------------------------------------------------------------------------- artefacts
    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        """After the last validation of a phase (before checkpoints are saved, so the row is in them)."""
        state = module.phase_state
        if trainer.sanity_checking or state is None or trainer.state.fn != "fit":
            return
        if trainer.current_epoch + 1 == module.plan.starts[state.index + 1]:
            self._finish_phase(trainer, module, state)

    def _finish_phase(self, trainer: L.Trainer, module: L.LightningModule, state: PhaseState) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        row = {
            "phase": state.label,
            "epochs": state.phase.epochs,
            "trainable_params": sum(p.numel() for p in module.parameters() if p.requires_grad),
            "wall_s": round(time.perf_counter() - (self._phase_started or time.perf_counter()), 1),
            "feature_cache": _cache_status(module, state),
            **{k: round(v, 4) for k, v in sorted(metrics.items())},
        }
        self.rows = [r for r in self.rows if r["phase"] != state.label] + [row]
        if trainer.is_global_zero and self.out_dir:
            phase_dir = Path(self.out_dir, state.label)
            phase_dir.mkdir(parents=True, exist_ok=True)
            (phase_dir / "val_metrics.json").write_text(json.dumps(row, indent=2))
            images = save_confusion_matrices(module.confusion.get("val", {}), module.label_names, phase_dir)
            log_image = getattr(trainer.logger, "log_image", None)
            for image in images if log_image is not None else []:
                log_image(key=f"phases/{state.label}/{image.stem}", images=[str(image)])

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if not self.rows or not trainer.is_global_zero:
            return
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        shown = [c for c in columns if not c.startswith("val/") or c == "val/score" or c.endswith("/acc")]
        table = Table(title="phase summary (validation; all columns in phase_summary.csv)")
        for col in shown:
            table.add_column(col.removeprefix("val/"), justify="right")
        for row in self.rows:
            table.add_row(*(str(row.get(c, "")) for c in shown))
        Console(width=max(100, 14 * len(shown))).print(table)
        if self.out_dir:
            out = Path(self.out_dir)
            out.mkdir(parents=True, exist_ok=True)
            with open(out / "phase_summary.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(self.rows)
            lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in self.rows]
            (out / "phase_summary.md").write_text("\n".join(lines) + "\n")

    # ----------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        module = getattr(self, "_module", None)
        return {"rows": self.rows, "plan": module.plan.to_dict() if module is not None else None}

    def setup(self, trainer: L.Trainer, module: L.LightningModule, stage: str) -> None:
        self._module = module

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))
        self._loaded_plan = state_dict.get("plan")


def _cache_status(module: L.LightningModule, state: PhaseState) -> str:
    """How the phase read the encoder: `cached` features, or `off (token task)` where a frozen phase could not."""
    if state.unfrozen_groups or getattr(module, "bilstm_active", False):
        return "-"
    if module.uses_feature_cache:
        return "cached"
    return "off (token task)" if getattr(module.net, "reads_token_states", False) else "off"
