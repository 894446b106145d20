"""Train a multi-task model: `python train.py [group=option ...] [key=value ...]` (see README)."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

os.environ.setdefault("INTENTFUSION_ROOT", str(Path(__file__).resolve().parent))

from intentfusion.errors import one_line, user_errors  # noqa: E402


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    from intentfusion.train import metric_for_sweeper, train

    try:
        metrics = train(cfg)
    except user_errors() as err:
        print(one_line(err), file=sys.stderr)
        sys.exit(1)
    return metric_for_sweeper(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
