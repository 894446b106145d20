"""`evaluate(cfg)`: test a checkpoint on the data it was trained on and write `metrics.json`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from intentfusion.models.module import MultiTaskModule
from intentfusion.utils.instantiate import instantiate_group
from intentfusion.utils.run_dir import dump_json, prepare_wandb


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved training config stored inside an intentfusion checkpoint."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={path}: no such checkpoint file (expected a .ckpt written by train.py)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    config = checkpoint.get("intentfusion", {}).get("config")
    if config is None:
        raise FileNotFoundError(f"ckpt_path={path}: not an intentfusion checkpoint (no stored training config)")
    return OmegaConf.create(config)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Rebuild the training run's datamodule (same label maps), test the checkpoint, write `metrics.json`."""
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_cfg = load_run_config(cfg.ckpt_path)
    if cfg.get("data_overrides"):
        run_cfg.data = OmegaConf.merge(run_cfg.data, cfg.data_overrides)
    model = MultiTaskModule.load_from_checkpoint(cfg.ckpt_path, map_location="cpu", weights_only=True)
    L.seed_everything(run_cfg.get("seed", 0), workers=True)
    datamodule = hydra.utils.instantiate(run_cfg.data, label_names=model.label_names)
    datamodule.setup("test")
    prepare_wandb(cfg)
    loggers = instantiate_group(cfg.get("logger"))
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    metrics: dict[str, float] = {}
    for results in trainer.test(model, datamodule=datamodule):
        metrics.update({k: float(v) for k, v in results.items()})
    metrics = dict(sorted(metrics.items()))
    dump_json({"checkpoint": str(cfg.ckpt_path), "metrics": metrics}, out_dir / "metrics.json")
    for logger in loggers:
        if type(logger).__name__ == "WandbLogger":
            logger.experiment.finish()
    return metrics
