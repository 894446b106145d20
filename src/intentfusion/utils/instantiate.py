"""Instantiate lists of callbacks/loggers from config groups (lightning-hydra-template style)."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig


def instantiate_group(cfg: DictConfig | None, **kwargs: Any) -> list[Any]:
    """Every `_target_` entry of a config group (a dict of name -> node), skipping null entries."""
    if not cfg:
        return []
    return [hydra.utils.instantiate(node, **kwargs) for node in cfg.values() if node and "_target_" in node]
