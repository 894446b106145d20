"""Evaluate a checkpoint: `python evaluate.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt`.

A user error (missing checkpoint, bad config) ends the run with exit code 1 and one `error:` line. The job is
`intentfusion.cli.evaluate_job`, also run by the console script `intentfusion-evaluate`.
"""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("INTENTFUSION_ROOT", str(Path(__file__).resolve().parent))

from intentfusion.cli import run_evaluate  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    run_evaluate(cfg)


if __name__ == "__main__":
    main()
