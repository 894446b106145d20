"""What a run writes next to its results: the config tree, versions, W&B mode."""

from __future__ import annotations

import json
import netrc
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import rich
import rich.syntax
import rich.tree
from omegaconf import DictConfig, OmegaConf

PACKAGES = (
    "intentfusion",
    "torch",
    "lightning",
    "transformers",
    "tokenizers",
    "torchmetrics",
    "hydra-core",
    "wandb",
)


def print_config_tree(cfg: DictConfig, out_dir: str | Path | None = None) -> None:
    """Print the resolved config as a rich tree (one branch per group) and save it as `config_tree.log`."""
    tree = rich.tree.Tree("CONFIG", style="dim", guide_style="dim")
    for key, node in cfg.items():
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(str(key)).add(rich.syntax.Syntax(text, "yaml"))
    rich.print(tree)
    if out_dir is not None:
        with open(Path(out_dir, "config_tree.log"), "w") as f:
            rich.print(tree, file=f)


def save_run_metadata(cfg: DictConfig, out_dir: str | Path) -> None:
    """Resolved config, git commit of the code and package versions, for reproducibility."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = bool(
            subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True, timeout=5
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    meta = {"git_commit": commit or None, "git_dirty": dirty, "packages": versions}
    (out / "run_metadata.json").write_text(json.dumps(meta, indent=2))


def wandb_has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def prepare_wandb(cfg: DictConfig) -> None:
    """Switch W&B to offline mode when a wandb logger is configured but no API key is available."""
    if not any("WandbLogger" in str(n.get("_target_", "")) for n in (cfg.get("logger") or {}).values() if n):
        return
    if os.environ.get("WANDB_MODE") or wandb_has_credentials():
        return
    os.environ["WANDB_MODE"] = "offline"
    print(f"[intentfusion] no W&B API key: logging offline to {cfg.paths.output_dir}/wandb (`wandb sync` it later)")


def dump_json(data: Any, path: str | Path) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True))
