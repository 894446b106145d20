"""Heterogeneous multi-task data: how sources are mixed, and class weights against label imbalance.

Mixing strategies (as in MT-DNN / jiant), for sources of ``n_s`` training examples:

=============  =========================  =====================================================
strategy       share of batches p_s       effect
=============  =========================  =====================================================
proportional   n_s / sum(n)               every example once per epoch (natural sizes)
uniform        1 / S                      small sources are repeated, large ones sub-sampled
temperature    n_s^(1/T) / sum(n^(1/T))   in between: T=1 is proportional, T -> inf uniform
=============  =========================  =====================================================

Class weights: smoothed inverse frequency ``w_c ∝ (n_c + k)^-alpha``, normalised to mean 1 over the classes
(``alpha=1`` is plain inverse frequency, ``alpha=0.5`` its square root; ``k`` keeps rare classes finite).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MIXING_STRATEGIES",
    "CLASS_WEIGHT_DEFAULTS",
    "mixing_probabilities",
    "allocate",
    "smoothed_inverse_frequency",
    "class_weight_options",
]

MIXING_STRATEGIES: tuple[str, ...] = ("proportional", "uniform", "temperature")
CLASS_WEIGHT_DEFAULTS: dict[str, float] = {"alpha": 0.5, "k": 1.0}


def mixing_probabilities(sizes: Sequence[int], strategy: str = "proportional", temperature: float = 2.0) -> list[float]:
    """Share of training batches per source (a source without examples gets 0)."""
    if strategy not in MIXING_STRATEGIES:
        raise ValueError(f"mixing={strategy!r}; expected one of {list(MIXING_STRATEGIES)}")
    if not sizes or any(n < 0 for n in sizes) or not any(sizes):
        raise ValueError(f"mixing: source sizes {list(sizes)}; expected counts >= 0, at least one > 0")
    if strategy == "proportional":
        mass = [float(n) for n in sizes]
    elif strategy == "uniform":
        mass = [1.0 if n else 0.0 for n in sizes]
    else:
        if not (isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"mixing temperature={temperature!r}; expected a finite number > 0 (2.0: sqrt sizes)")
        mass = [n ** (1.0 / temperature) if n else 0.0 for n in sizes]
    total = sum(mass)
    return [m / total for m in mass]


def allocate(probabilities: Sequence[float], total: int) -> list[int]:
    """``total`` items split by ``probabilities`` in whole numbers (largest remainder; ties: first source)."""
    raw = [p * total for p in probabilities]
    counts = [math.floor(x) for x in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    return counts


def smoothed_inverse_frequency(counts: Sequence[int], alpha: float = 0.5, k: float = 1.0) -> list[float]:
    """Class weights ``w_c ∝ (n_c + k)^-alpha``, normalised so that their mean over the classes is 1."""
    if alpha < 0 or k < 0:
        raise ValueError(f"class weights: alpha={alpha}, k={k}; expected alpha >= 0 and k >= 0")
    if not counts:
        raise ValueError("class weights: no classes")
    if any(n + k <= 0 for n in counts):
        raise ValueError(f"class weights: a class has no training example and k={k}; use k > 0")
    raw = [(n + k) ** -alpha for n in counts]
    mean = sum(raw) / len(raw)
    return [w / mean for w in raw]


def class_weight_options(spec: Any, where: str) -> dict[str, float] | None:
    """``true`` / ``{alpha, k}`` -> options of `smoothed_inverse_frequency`; ``false`` / None -> None."""
    if spec is None or spec is False:
        return None
    if spec is True:
        return dict(CLASS_WEIGHT_DEFAULTS)
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(CLASS_WEIGHT_DEFAULTS))
        if not unknown:
            return {key: float(spec.get(key, default)) for key, default in CLASS_WEIGHT_DEFAULTS.items()}
    raise ValueError(f"{where}: {spec!r}; expected true, false or {{alpha: 0.5, k: 1.0}}")
