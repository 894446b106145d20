"""The job side of a sweep: W&B grouping of multirun jobs and the `metrics.json` record."""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from intentfusion.sweeps.job import apply_sweep_to_loggers, job_record, record_failed_job, sweep_context

SWEEP = {"sweep_dir": "/logs/train/multiruns/2026-01-01_00-00-00", "group": "2026-01-01_00-00-00", "job_num": 3}


def _cfg(group=None):
    return OmegaConf.create({"tags": ["dev"], "logger": {"wandb": {"name": "tiny", "group": group, "tags": "${tags}"}}})


def test_multirun_jobs_share_the_sweep_group_and_carry_their_overrides_as_tags() -> None:
    cfg = _cfg()
    apply_sweep_to_loggers(cfg, {**SWEEP, "overrides": ["hparams=config1", "seed=1", "x=" + "y" * 100]})
    wandb = cfg.logger.wandb
    assert wandb.group == "2026-01-01_00-00-00" and wandb.name == "tiny-3"
    assert list(wandb.tags)[:4] == ["dev", "sweep", "hparams=config1", "seed=1"]
    assert all(len(t) <= 64 for t in wandb.tags)  # W&B's tag limit
    kept = _cfg(group="mine")
    apply_sweep_to_loggers(kept, {**SWEEP, "overrides": []})
    assert kept.logger.wandb.group == "mine"  # an explicit group wins


def test_single_runs_and_other_loggers_are_left_alone() -> None:
    cfg = _cfg()
    apply_sweep_to_loggers(cfg, None)
    assert cfg.logger.wandb.group is None and cfg.logger.wandb.name == "tiny"
    csv = OmegaConf.create({"logger": {"csv": {"name": "csv"}}})
    apply_sweep_to_loggers(csv, {**SWEEP, "overrides": []})
    assert csv.logger.csv == {"name": "csv"}


def test_records_outside_a_multirun(tmp_path: Path) -> None:
    assert sweep_context() is None
    record = job_record("completed", 1.234, {"val/score": 0.5}, "best.ckpt")
    assert record["status"] == "completed" and record["wall_time_s"] == 1.23 and record["overrides"] == []
    cfg = OmegaConf.create({"paths": {"output_dir": str(tmp_path)}})
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError as err:
        record_failed_job(cfg, err, 2.0)
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert written["status"] == "failed" and written["error"] == "RuntimeError: boom second line"
    assert "Traceback" in (tmp_path / "error.log").read_text()
