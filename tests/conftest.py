"""Shared fixtures: offline environment, Hydra compose helper, a session-wide tiny-backbone cache."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("INTENTFUSION_ROOT", str(ROOT))

import pytest  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import DictConfig, open_dict  # noqa: E402

import intentfusion  # noqa: E402, F401  (registers the OmegaConf resolvers)

CONF = ROOT / "conf"
# a small, fast corpus, its four sequence tasks (the default adds `slots`: tests/test_train.py) and a learning rate a
# random tiny encoder can learn with
FAST = ["data.source.n=480", "tasks=support4", "hparams.batch_size=16", "hparams.lr=2e-3", "trainer.precision=32"]


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of built tiny backbones for the whole session; `builtin:tiny-xlmr` (conf/backbone/tiny.yaml) is
    built up front (~0.5 s) from the corpus it names."""
    from intentfusion.models.backbone import resolve_backbone

    cache = tmp_path_factory.mktemp("cache")
    resolve_backbone("builtin:tiny-xlmr", cache)
    return cache


def make_cfg(out_dir: Path, cache: Path, *overrides: str, config: str = "train") -> DictConfig:
    """Compose `conf/<config>.yaml` for a test: tiny backbone, no logger, no progress bar, outputs in out_dir."""
    base = [f"paths.output_dir={out_dir}", f"paths.cache_dir={cache}", "logger=none"]
    if config == "train":
        base += ["backbone=tiny", "callbacks.progress_bar=null", "evaluate=false"]
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(config, overrides=[*base, *overrides])
    with open_dict(cfg):
        cfg.trainer.enable_model_summary = False
        cfg.trainer.enable_progress_bar = False
        if cfg.get("trainer", {}).get("precision") == "auto" and not any(
            o.startswith("trainer.precision=") for o in overrides
        ):
            cfg.trainer.precision = "32-true"  # the same numbers on every CI machine unless a test asks for auto
    return cfg


@pytest.fixture
def cfg_factory(tmp_path: Path, cache_dir: Path):
    """`cfg_factory(*overrides, name="run")` -> a composed train config writing to tmp_path/name."""

    def factory(*overrides: str, name: str = "run", config: str = "train") -> DictConfig:
        return make_cfg(tmp_path / name, cache_dir, *overrides, config=config)

    return factory


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, dict]:
    """A short real run on tiny (plain fine-tuning, 6 epochs, CSV logger), shared by several test modules."""
    from intentfusion.train import train

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = make_cfg(out, cache_dir, "phases=full", "hparams.epochs=6", "logger=csv", "evaluate=true", *FAST)
    return out, train(cfg)
