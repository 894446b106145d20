"""`evaluate(cfg)`: the full metric suite for one or several checkpoints, on the data they were trained on."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from intentfusion.config import resolve_trainer_precision
from intentfusion.data.alignment import subword_to_word, word_spans
from intentfusion.errors import CheckpointError, CheckpointNotFoundError
from intentfusion.evaluation.report_md import render_report
from intentfusion.evaluation.suite import collect_outputs, evaluate_model, group_metrics, write_predictions
from intentfusion.models.module import MultiTaskModule
from intentfusion.tasks import TextContext
from intentfusion.utils.instantiate import instantiate_group
from intentfusion.utils.run_dir import dump_json, prepare_wandb


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved training config stored inside an intentfusion checkpoint."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"ckpt_path={path}", "no such checkpoint file", "a .ckpt written by train.py")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    config = checkpoint.get("intentfusion", {}).get("config")
    if config is None:
        raise CheckpointError(f"ckpt_path={path}", "not an intentfusion checkpoint (no stored training config)",
                              "a .ckpt written by train.py")
    return OmegaConf.create(config)


def checkpoints_of(spec: Any) -> list[Path]:
    """`ckpt_path` as given: one file, a list of files, or a (multi)run dir (its best checkpoint per job)."""
    items = [spec] if isinstance(spec, str | Path) else list(spec)
    found: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            jobs = sorted(item.glob("**/metrics.json"))
            best = [json.loads(p.read_text()).get("checkpoint") for p in jobs]
            found += [Path(b) for b in best if b]
            if not jobs:
                raise CheckpointNotFoundError(f"ckpt_path={item}", "a directory without any run's metrics.json",
                                              "a checkpoint file or a (multi)run directory")
        else:
            found.append(item)
    return found


def evaluate_checkpoint(cfg: DictConfig, ckpt: Path, out_dir: Path, loggers: list[Any]) -> dict[str, Any]:
    """Test metrics (as in training) plus the full suite for one checkpoint; writes outputs into `out_dir`.

    Returns `metrics.json`'s content plus the model's `heads`."""
    resolve_trainer_precision(cfg.trainer)  # `auto` -> what this machine runs natively (bf16-mixed | 32-true, ...)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_cfg = load_run_config(ckpt)
    if cfg.get("data_overrides"):
        run_cfg.data = OmegaConf.merge(run_cfg.data, cfg.data_overrides)
    model = MultiTaskModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    L.seed_everything(run_cfg.get("seed", 0), workers=True)
    datamodule = hydra.utils.instantiate(run_cfg.data, label_names=model.label_names, task_types=model.net.task_types)
    datamodule.setup("test")
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, logger=loggers or False)
    metrics: dict[str, float] = {}
    for results in trainer.test(model, datamodule=datamodule):
        metrics.update({k: float(v) for k, v in results.items()})

    splits = [s for s in datamodule.splits if s != "train"]
    forward_context = trainer.precision_plugin.forward_context
    outputs = {s: collect_outputs(model, datamodule._loader(s, train=False), forward_context) for s in splits}
    heads = dict(model.net.heads)
    suite = evaluate_model(outputs, heads, datamodule.splits["train"].labels, out_dir, dict(cfg.suite))
    suite["groups"] = group_metrics(metrics, heads)
    write_predictions(out_dir / "predictions.jsonl", {s: datamodule.splits[s].texts for s in splits}, outputs, heads,
                      suite["temperatures"], {s: text_contexts(datamodule.splits[s], heads) for s in splits})
    dump_json(suite["temperatures"], ckpt.parent / "temperatures.json")  # the predictor picks them up
    result = {"checkpoint": str(ckpt), "metrics": dict(sorted(metrics.items())), "suite": suite}
    dump_json(result, out_dir / "metrics.json")
    (out_dir / "report.md").write_text(render_report(suite, str(ckpt), heads))
    for logger in loggers:
        _log_to_wandb(logger, result, out_dir)
    return {**result, "heads": heads}  # the heads render the task sections of a multi-checkpoint report


def text_contexts(split: Any, heads: dict[str, Any]) -> list[TextContext]:
    """Each text of a tokenized split as the task types decode it: with a type that needs word offsets, its
    words' spans and the word of each subword (the datamodule tokenized it with offsets then)."""
    if not any(head.needs_offsets for head in heads.values()):
        return [TextContext(text, (), [None] * len(ids))
                for text, ids in zip(split.texts, split.input_ids, strict=True)]
    out = []
    for i, text in enumerate(split.texts):
        spans = word_spans(text)
        out.append(TextContext(text, spans, subword_to_word(split.offsets[i], spans)))
    return out


def _log_to_wandb(logger: Any, result: dict[str, Any], out_dir: Path) -> None:
    if type(logger).__name__ != "WandbLogger":
        return
    logger.log_metrics(result["metrics"])
    flat = {
        f"eval/{t}/{s}/{k}": v
        for t, p in result["suite"]["tasks"].items()
        for s, r in p["splits"].items()
        for k, v in r.items()
        if isinstance(v, float)
    }
    logger.log_metrics(flat)
    for png in sorted(out_dir.glob("*.png")):
        logger.log_image(key=f"eval/{png.stem}", images=[str(png)])
    logger.experiment.save(str(out_dir / "report.md"), base_path=str(out_dir))


def mean_std(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std (sample std; 0 for one run) of every headline metric shared by all runs."""
    keys = set.intersection(*(set(r["metrics"]) for r in results))
    summary = {}
    for key in sorted(keys):
        values = [r["metrics"][key] for r in results]
        summary[key] = {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}
    return {"runs": len(results), "metrics": summary}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Evaluate `cfg.ckpt_path` (a file, a list, or a multirun dir); several checkpoints also get mean ± std."""
    out_dir = Path(cfg.paths.output_dir)
    ckpts = checkpoints_of(cfg.ckpt_path)
    prepare_wandb(cfg)
    loggers = instantiate_group(cfg.get("logger"))
    try:
        if len(ckpts) == 1:
            return evaluate_checkpoint(cfg, ckpts[0], out_dir, loggers)["metrics"]
        results = [evaluate_checkpoint(cfg, c, out_dir / f"run{i}", loggers) for i, c in enumerate(ckpts)]
        summary = mean_std(results)
        dump_json(summary, out_dir / "metrics.json")
        (out_dir / "report.md").write_text(
            render_report(results[0]["suite"], ", ".join(map(str, ckpts)), results[0]["heads"], multi_seed=summary)
        )
        return {k: v["mean"] for k, v in summary["metrics"].items()}
    finally:
        for logger in loggers:
            if type(logger).__name__ == "WandbLogger":
                logger.experiment.finish()
