"""Evaluate a checkpoint: `python evaluate.py ckpt_path=logs/train/runs/<run>/checkpoints/last.ckpt`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("INTENTFUSION_ROOT", str(Path(__file__).resolve().parent))

from intentfusion.errors import one_line, user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from intentfusion.evaluate import evaluate

    try:
        evaluate(cfg)
    except user_errors() as err:
        print(one_line(err), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
