"""The Hydra entry points: `train.py` / `evaluate.py` and the console scripts `intentfusion-train` /
`intentfusion-evaluate` run the same jobs, `train_job` and `evaluate_job`.

The config is the repository's `conf/` (not packaged): `$INTENTFUSION_ROOT/conf`, else the checkout this module is
installed from (`pip install -e .`). A user error (`intentfusion.errors.USER_ERRORS`) ends the run with exit code 1 and
one `error:` line on stderr (`HYDRA_FULL_ERROR=1`: the traceback); in a multirun, a job that raises anything is
recorded as failed and the sweep goes on.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intentfusion.errors import ConfigError, exit_on_user_error, one_line, user_error_of


def root() -> Path:
    """The repository root: `$INTENTFUSION_ROOT`, else the checkout holding this file (`src/intentfusion/cli.py`)."""
    return Path(os.environ.get("INTENTFUSION_ROOT") or Path(__file__).resolve().parents[2]).resolve()


def conf_dir() -> Path:
    """The repository's `conf/`, or a `ConfigError` saying where it was looked for."""
    conf = root() / "conf"
    if not (conf / "train.yaml").is_file():
        raise ConfigError(f"INTENTFUSION_ROOT={root()}", "no conf/train.yaml there",
                          "the root of an intentfusion checkout (the console scripts read its conf/)")
    return conf


def quiet_launcher_warnings() -> None:
    # conf/hydra/launcher/{joblib,submitit_slurm}.yaml are named after the plugin schemas they replace, on purpose
    warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")


def train_job(cfg: Any) -> float | None:
    """One training run: the metric a sweeper optimises (`optimized_metric`), or None.

    Multirun (`-m`): a job that raises is recorded as failed in its `metrics.json` (and in the sweep's
    `multirun_summary`), and the sweep goes on; it returns None, which an Optuna sweep counts as a failed trial.
    """
    from intentfusion.sweeps.job import record_failed_job, sweep_context
    from intentfusion.train import metric_for_sweeper, train

    started = time.perf_counter()
    try:
        metrics = train(cfg)
    except Exception as err:
        if sweep_context() is not None:  # one crashed job must not stop the sweep
            record_failed_job(cfg, err, time.perf_counter() - started)
            print(f"[intentfusion] job failed, the sweep goes on: {one_line(user_error_of(err) or err)}",
                  file=sys.stderr)
            return None
        raise  # `exit_on_user_error` (run_train) reports a user error as one line, also behind Hydra's wrappers
    return metric_for_sweeper(metrics, cfg.get("optimized_metric"))


def evaluate_job(cfg: Any) -> None:
    """One evaluation run (`evaluate.py ckpt_path=...`)."""
    from intentfusion.evaluate import evaluate

    evaluate(cfg)


# what train.py / evaluate.py decorate with `hydra.main`: a user error -> exit code 1, one line
run_train = exit_on_user_error(train_job)
run_evaluate = exit_on_user_error(evaluate_job)


def _hydra_task(job: Callable[[Any], Any], name: str) -> Callable[[Any], Any]:
    def task(cfg: Any) -> Any:
        return job(cfg)

    # Hydra names the job (its `<name>.log`, `hydra.job.name`) after the task function's module: as for train.py
    task.__module__, task.__name__, task.__qualname__ = f"intentfusion.{name}", f"{name}_task", f"{name}_task"
    return task


def _hydra_main(job: Callable[[Any], Any], name: str, config_name: str) -> Any:
    import hydra

    os.environ.setdefault("INTENTFUSION_ROOT", str(root()))  # conf/paths: runs go under <root>/logs, as train.py's
    quiet_launcher_warnings()
    conf = conf_dir()
    return hydra.main(config_path=str(conf), config_name=config_name, version_base="1.3")(_hydra_task(job, name))()


@exit_on_user_error
def train() -> None:
    """`intentfusion-train [group=option ...] [key=value ...]`: `python train.py ...` from anywhere."""
    _hydra_main(run_train, "train", "train")


@exit_on_user_error
def evaluate() -> None:
    """`intentfusion-evaluate ckpt_path=...`: `python evaluate.py ...` from anywhere."""
    _hydra_main(run_evaluate, "evaluate", "evaluate")
