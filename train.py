"""Train a multi-task model: `python train.py [group=option ...] [key=value ...]` (see README).

Multirun (`-m`): a job that raises is recorded as failed in its `metrics.json` (and in the sweep's
`multirun_summary`), and the sweep goes on; it returns None, which an Optuna sweep counts as a failed trial.
A user error (bad config, missing data or backbone) ends a single run with exit code 1 and one `error:` line.
The job is `intentfusion.cli.train_job`, also run by the console script `intentfusion-train`.
"""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("INTENTFUSION_ROOT", str(Path(__file__).resolve().parent))

from intentfusion.cli import quiet_launcher_warnings, run_train  # noqa: E402

quiet_launcher_warnings()


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run_train(cfg)


if __name__ == "__main__":
    main()
