"""OmegaConf resolvers used by `conf/` (registered on import of `intentfusion`)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf


def _phases_total_epochs(schedule: Any, default_epochs: Any) -> int:
    from intentfusion.phases.plan import total_epochs

    return total_epochs(OmegaConf.to_container(schedule, resolve=True), int(default_epochs))


def register_resolvers() -> None:
    """`${phases_total_epochs:${phases.schedule},${hparams.epochs}}`: the number of epochs a plan spans."""
    if not OmegaConf.has_resolver("phases_total_epochs"):
        OmegaConf.register_new_resolver("phases_total_epochs", _phases_total_epochs)


# hparams keys every run reads: (type, check, what the check expects)
HPARAMS: dict[str, tuple[type, Any, str]] = {
    "lr": (float, lambda v: v > 0, "a number > 0, e.g. 3e-5"),
    "batch_size": (int, lambda v: v >= 1, "an integer >= 1"),
    "epochs": (int, lambda v: v >= 1, "an integer >= 1"),
    "weight_decay": (float, lambda v: v >= 0, "a number >= 0"),
    "warmup_ratio": (float, lambda v: 0 <= v < 1, "a number in [0, 1)"),
    "grad_clip": (float, lambda v: v >= 0, "a number >= 0 (0 or null: no clipping)"),
}


def check_hparams(hparams: Any) -> None:
    """Raise a `ConfigError` naming `hparams.<key>` for a value of the wrong type or range (`hparams.lr=abc`)."""
    from intentfusion.errors import ConfigError

    for key, (kind, valid, expected) in HPARAMS.items():
        value = hparams.get(key) if hparams is not None else None
        if value is None:
            continue
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        if not numeric or (kind is int and not isinstance(value, int)) or not valid(value):
            raise ConfigError(f"hparams.{key}", f"{value!r} is not valid", expected)


def check_phases(phases: Any, default_epochs: int) -> None:
    """Raise a `PhaseConfigError` for a bad phase plan (unknown key, bad value) and a `ConfigError` for an unknown
    objective or objective option, before anything is loaded."""
    from intentfusion.objectives import build_objective
    from intentfusion.phases.plan import PhasePlan

    plain = OmegaConf.to_container(phases, resolve=True) if OmegaConf.is_config(phases) else dict(phases)
    plan = PhasePlan.from_config(plain["schedule"], int(default_epochs), plain.get("layer_decay", 1.0), n_groups=0)
    for i, phase in enumerate(plan.phases):
        for spec in phase.objectives:
            build_objective(spec, f"phases.schedule[{i}].objectives")


def lightning_precisions() -> list[str]:
    """Every `precision` value Lightning's `Trainer` takes (`32-true`, `bf16-mixed`, `16-mixed`, `32`, ...)."""
    from typing import get_args

    from lightning.fabric.plugins.precision.precision import _PRECISION_INPUT

    values = [str(v) for literal in get_args(_PRECISION_INPUT) for v in get_args(literal)]
    return list(dict.fromkeys(["32-true", "bf16-mixed", "16-mixed", *values]))  # the usual ones first


def resolve_trainer_precision(trainer: DictConfig | None) -> str | int | None:
    """Replace `trainer.precision=auto` in the trainer config by what it means on `trainer.accelerator`
    (`intentfusion.utils.hardware.auto_precision`: `bf16-mixed` on a CPU with AMX/AVX512-BF16, else `32-true`) and
    print the choice; any other valid value is kept. Returns the precision (None: not set, Lightning's default).

    Called before a `Trainer` is instantiated from the config, and before the config is recorded (run dir,
    checkpoint), so that everything downstream sees the resolved value. A value Lightning does not take raises a
    `ConfigError` naming `trainer.precision`.
    """
    from intentfusion.errors import ConfigError
    from intentfusion.utils.hardware import auto_precision

    precision = OmegaConf.select(trainer, "precision") if trainer is not None else None
    if precision is None:
        return None
    allowed = lightning_precisions()
    if isinstance(precision, bool) or str(precision) not in ["auto", *allowed]:
        raise ConfigError("trainer.precision", f"{precision!r} is not a precision",
                          f"auto or one of {', '.join(allowed)}")
    if str(precision) != "auto":
        return precision
    accelerator = OmegaConf.select(trainer, "accelerator") or "auto"
    resolved, why = auto_precision(accelerator)
    trainer.precision = resolved
    print(f"[intentfusion] trainer.precision: auto -> {resolved} ({why})")
    return resolved
