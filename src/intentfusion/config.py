"""OmegaConf resolvers used by `conf/` (registered on import of `intentfusion`)."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def _phases_total_epochs(schedule: Any, default_epochs: Any) -> int:
    from intentfusion.phases.plan import total_epochs

    return total_epochs(OmegaConf.to_container(schedule, resolve=True), int(default_epochs))


def register_resolvers() -> None:
    """`${phases_total_epochs:${phases.schedule},${hparams.epochs}}`: the number of epochs a plan spans."""
    if not OmegaConf.has_resolver("phases_total_epochs"):
        OmegaConf.register_new_resolver("phases_total_epochs", _phases_total_epochs)
