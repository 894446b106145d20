"""`rounded`: results with their floats rounded, for compact JSON."""

from __future__ import annotations

from typing import Any


def rounded(value: Any, digits: int = 4) -> Any:
    """`value` (a result, nested dicts / lists) with every float rounded, for compact JSON."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value
