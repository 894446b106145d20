"""`key=value` command lines for the small entry points (`python -m intentfusion.export|serve`)."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def parse_options(args: list[str], defaults: dict[str, Any]) -> dict[str, Any]:
    """`defaults` updated from `key=value` arguments; an unknown key raises ValueError naming it."""
    cli = OmegaConf.to_container(OmegaConf.from_dotlist(args), resolve=True)
    unknown = sorted(set(cli) - set(defaults))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **cli}
