"""`train(cfg)`: everything a training run does, instantiated from the Hydra config."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from intentfusion.utils.instantiate import instantiate_group
from intentfusion.utils.run_dir import dump_json, prepare_wandb, print_config_tree, save_run_metadata


def train(cfg: DictConfig) -> dict[str, float]:
    """Seed, build datamodule/model/callbacks/loggers/trainer, fit, test the best checkpoint.

    Returns the metrics (`val/score` of the best checkpoint and every test metric); they are also written to
    `<run dir>/metrics.json`.
    """
    # frozen backbone groups are in eval mode on purpose (no dropout while frozen)
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print_config_tree(cfg, out_dir)
    save_run_metadata(cfg, out_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    datamodule.print_summary(out_dir)
    model = hydra.utils.instantiate(cfg.model, label_names=datamodule.label_names)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)

    prepare_wandb(cfg)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = [
        c for c in instantiate_group(cfg.get("callbacks")) if loggers or not isinstance(c, LearningRateMonitor)
    ]
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    for logger in loggers:
        logger.log_hyperparams(model.run_config)

    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if checkpoint and trainer.checkpoint_callback.best_model_score is not None:
            metrics["best/val/score"] = float(trainer.checkpoint_callback.best_model_score)
        if cfg.get("test"):
            for results in trainer.test(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True):
                metrics.update({k: float(v) for k, v in results.items()})
        metrics = dict(sorted(metrics.items()))
        if trainer.is_global_zero:
            dump_json({"checkpoint": checkpoint, "metrics": metrics}, out_dir / "metrics.json")
    finally:
        for logger in loggers:
            finish = getattr(getattr(logger, "experiment", None), "finish", None)
            if callable(finish) and type(logger).__name__ == "WandbLogger":
                finish()
    return metrics


def metric_for_sweeper(metrics: dict[str, Any], name: str | None) -> float | None:
    """The metric an Optuna sweep optimises (None when not asked for)."""
    return metrics.get(name) if name else None
