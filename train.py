"""Train a multi-task model: `python train.py [group=option ...] [key=value ...]` (see README).

Multirun (`-m`): a job that raises is recorded as failed in its `metrics.json` (and in the sweep's
`multirun_summary`), and the sweep goes on; it returns None, which an Optuna sweep counts as a failed trial.
"""

import os
import sys
import time
import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("INTENTFUSION_ROOT", str(Path(__file__).resolve().parent))
# conf/hydra/launcher/{joblib,submitit_slurm}.yaml are named after the plugin schemas they replace, on purpose
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/\w+' is validated against ConfigStore schema")

from intentfusion.errors import one_line, user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from intentfusion.sweeps.job import record_failed_job, sweep_context
    from intentfusion.train import metric_for_sweeper, train

    started = time.perf_counter()
    try:
        metrics = train(cfg)
    except Exception as err:
        if sweep_context() is not None:  # one crashed job must not stop the sweep
            record_failed_job(cfg, err, time.perf_counter() - started)
            print(f"[intentfusion] job failed, the sweep goes on: {one_line(err)}", file=sys.stderr)
            return None
        if isinstance(err, user_errors()):
            print(one_line(err), file=sys.stderr)
            sys.exit(1)
        raise
    return metric_for_sweeper(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
