"""The job side of a Hydra multirun: where a job is in its sweep, its W&B grouping, its record on failure.

Every run's `metrics.json` carries `status`, `wall_time_s` and `overrides` next to `metrics` (see
`job_record`); `MultirunSummary` (`intentfusion.sweeps.summary`) reads them back from each job's directory.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

log = logging.getLogger(__name__)

WANDB_TAG_MAX = 64  # W&B rejects longer tags


def _hydra_config() -> Any | None:
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def sweep_context() -> dict[str, Any] | None:
    """`{sweep_dir, group, job_num, overrides}` inside a Hydra multirun job, else None.

    `group` is the name of the sweep directory (`logs/<task>/multiruns/<time>`), shared by every job of
    the sweep; `overrides` are the job's command-line overrides (`hydra.*` ones excluded).
    """
    from hydra.types import RunMode

    hc = _hydra_config()
    if hc is None or hc.mode != RunMode.MULTIRUN:
        return None
    sweep_dir = str(hc.sweep.dir)
    return {
        "sweep_dir": sweep_dir,
        "group": Path(sweep_dir).name,
        "job_num": int(hc.job.num),
        "overrides": [str(o) for o in hc.overrides.task],
    }


def task_overrides() -> list[str]:
    """The run's command-line overrides (empty outside a Hydra app, e.g. under the compose API)."""
    hc = _hydra_config()
    return [str(o) for o in hc.overrides.task] if hc is not None else []


def apply_sweep_to_loggers(cfg: DictConfig, sweep: dict[str, Any] | None) -> None:
    """In a multirun, every job's W&B run joins the sweep's group and carries its overrides as tags.

    An explicitly configured `logger.wandb.group` is kept. The run name gets the job number appended.
    """
    node = (cfg.get("logger") or {}).get("wandb") if cfg.get("logger") else None
    if sweep is None or not node:
        return
    tags = [str(t) for t in (node.get("tags") or [])]
    tags += ["sweep", *(o[:WANDB_TAG_MAX] for o in sweep["overrides"])]
    with open_dict(cfg):
        if node.get("group") is None:
            node.group = sweep["group"]
        node.tags = list(dict.fromkeys(tags))
        if node.get("name"):
            node.name = f"{node.name}-{sweep['job_num']}"


def job_record(
    status: str,
    wall_time_s: float,
    metrics: dict[str, float] | None = None,
    checkpoint: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """What `metrics.json` holds for a run: status (completed | failed), wall time, overrides, metrics."""
    sweep = sweep_context()
    return {
        "status": status,
        "wall_time_s": round(float(wall_time_s), 2),
        "overrides": sweep["overrides"] if sweep else task_overrides(),
        "job_num": sweep["job_num"] if sweep else None,
        "checkpoint": checkpoint,
        "metrics": metrics or {},
        "error": error,
    }


def record_failed_job(cfg: DictConfig, err: BaseException, wall_time_s: float) -> Path | None:
    """Write `metrics.json` (status failed, the error as one line) and `error.log` (the traceback) in the run dir.

    Called for a multirun job that raised: the sweep goes on, `MultirunSummary` lists the job as failed.
    """
    from intentfusion.errors import one_line
    from intentfusion.utils.run_dir import dump_json

    try:
        out_dir = Path(OmegaConf.select(cfg, "paths.output_dir", throw_on_missing=True))
        out_dir.mkdir(parents=True, exist_ok=True)
    except Exception:  # a config too broken to name its run dir: nothing to write
        log.exception("job failed and its run directory could not be resolved")
        return None
    message = one_line(err).removeprefix("error: ")
    message = f"{type(err).__name__}: {message}"
    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    (out_dir / "error.log").write_text(text)
    path = out_dir / "metrics.json"
    dump_json(job_record("failed", wall_time_s, error=message), path)
    log.error("job failed (recorded in %s; traceback in error.log): %s", path, message)
    return path
