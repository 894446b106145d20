"""`train(cfg)`: everything a training run does, instantiated from the Hydra config."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from intentfusion.config import check_hparams, check_phases, resolve_trainer_precision
from intentfusion.models.adapters import check_peft
from intentfusion.sweeps.job import apply_sweep_to_loggers, job_record, sweep_context
from intentfusion.utils.hardware import warn_if_slow_bf16
from intentfusion.utils.instantiate import instantiate_group
from intentfusion.utils.run_dir import dump_json, prepare_wandb, print_config_tree, save_run_metadata


def train(cfg: DictConfig) -> dict[str, float]:
    """Seed, build datamodule/model/callbacks/loggers/trainer, fit, test the best checkpoint.

    Returns the metrics (`val/score` of the best checkpoint and every test metric); they are also written to
    `<run dir>/metrics.json` with the run's status, wall time and overrides (`intentfusion.sweeps.job_record`).
    """
    started = time.perf_counter()
    check_hparams(cfg.get("hparams"))
    check_peft(OmegaConf.to_container(cfg.peft, resolve=True) if cfg.get("peft") is not None else None)
    if cfg.get("phases") is not None:
        check_phases(cfg.phases, OmegaConf.select(cfg, "hparams.epochs") or 1)
    types = OmegaConf.to_container(OmegaConf.select(cfg, "tasks.types") or OmegaConf.create({}))
    resolve_trainer_precision(cfg.trainer)  # `auto` -> what this machine runs natively, before the config is recorded
    # frozen backbone groups are in eval mode on purpose (no dropout while frozen)
    warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
    sweep = sweep_context()  # multirun: W&B group = the sweep, overrides as tags
    apply_sweep_to_loggers(cfg, sweep)
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    print_config_tree(cfg, out_dir)
    save_run_metadata(cfg, out_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)  # the seed is in the config tree

    datamodule = hydra.utils.instantiate(cfg.data, task_types=types)
    datamodule.setup("fit")
    datamodule.print_summary(out_dir)
    model = hydra.utils.instantiate(cfg.model, label_names=datamodule.label_names, task_types=datamodule.task_types)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)

    prepare_wandb(cfg)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = [
        c for c in instantiate_group(cfg.get("callbacks")) if loggers or not isinstance(c, LearningRateMonitor)
    ]
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    if OmegaConf.select(cfg, "trainer.accelerator") == "cpu":
        warn_if_slow_bf16(OmegaConf.select(cfg, "trainer.precision"), "cpu", "trainer.precision")
    for logger in loggers:
        logger.log_hyperparams(model.run_config)
        if sweep:
            logger.log_hyperparams({"sweep": sweep})

    completed = False
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()} | model.parameter_counts()
        checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if checkpoint and trainer.checkpoint_callback.best_model_score is not None:
            metrics["best/val/score"] = float(trainer.checkpoint_callback.best_model_score)
        if cfg.get("test"):
            for results in trainer.test(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True):
                metrics.update({k: float(v) for k, v in results.items()})
        metrics = dict(sorted(metrics.items()))
        if trainer.is_global_zero:
            record = job_record("completed", time.perf_counter() - started, metrics, checkpoint)
            dump_json(record, out_dir / "metrics.json")
            if cfg.get("evaluate") and checkpoint and trainer.world_size > 1:
                print(f"[intentfusion] distributed run: evaluate with `python evaluate.py ckpt_path={checkpoint}`")
            elif cfg.get("evaluate") and checkpoint:  # one process: the suite must not sync across ranks
                from intentfusion.evaluate import evaluate_checkpoint

                trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
                for key in ("strategy", "num_nodes", "sync_batchnorm"):  # one process evaluates
                    trainer_cfg.pop(key, None)
                trainer_cfg.update(devices=1, default_root_dir=str(out_dir / "eval"))
                eval_cfg = OmegaConf.create({"trainer": trainer_cfg, "suite": cfg.get("suite") or {}})
                evaluate_checkpoint(eval_cfg, Path(checkpoint), out_dir / "eval", loggers)
        completed = True
    finally:
        for logger in loggers:
            finish = getattr(getattr(logger, "experiment", None), "finish", None)
            if callable(finish) and type(logger).__name__ == "WandbLogger":
                finish(exit_code=0 if completed else 1)  # a crashed job shows as failed in W&B
    return metrics


def metric_for_sweeper(metrics: dict[str, Any] | None, name: str | None) -> float | None:
    """The metric an Optuna sweep optimises (None when not asked for, or for a failed job).

    `best/<metric>` falls back to `<metric>` when no checkpoint was kept (e.g. `debug=fdr`).
    """
    if not name or not metrics:
        return None
    value = metrics.get(name, metrics.get(name.removeprefix("best/")))
    return None if value is None else float(value)
