"""Loading a `Predictor`'s parts: the network, tokenizer and metadata of a checkpoint or an export directory."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from intentfusion.errors import CheckpointError, CheckpointNotFoundError
from intentfusion.models.config import NetConfig
from intentfusion.models.net import MultiTaskNet, upgrade_state_dict

EXPORT_FORMAT = "intentfusion-export"
EXPORT_VERSION = 3  # 3: `net` (a `NetConfig`); 2: heads as `heads.<task>.linear.*`, `task_types` (1, 2 read too)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")  # refused inside an export
DEFAULT_MAX_LENGTH = 64  # the data configs' default, for checkpoints without a stored config


def check_fallbacks(fallbacks: dict[str, Any] | None, label_names: dict[str, list[str]]) -> dict[str, dict]:
    """Validated `{task: {"threshold": float in [0, 1], "fallback": str}}` (empty when None)."""
    out: dict[str, dict] = {}
    for task, rule in dict(fallbacks or {}).items():
        if task not in label_names:
            raise ValueError(f"fallbacks: unknown task {task!r}; the model has tasks {list(label_names)}")
        if not isinstance(rule, dict) or set(rule) != {"threshold", "fallback"}:
            raise ValueError(f"fallbacks.{task} must be {{'threshold': float, 'fallback': label}}, got {rule!r}")
        threshold, label = rule["threshold"], rule["fallback"]
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ValueError(f"fallbacks.{task}.threshold must be a number in [0, 1], got {threshold!r}")
        if not isinstance(label, str) or not label:
            raise ValueError(f"fallbacks.{task}.fallback must be a non-empty label string, got {label!r}")
        out[task] = {"threshold": float(threshold), "fallback": label}
    return out


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers logs errors only, inside the block."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def read_temperatures(path: Path, tasks: Sequence[str]) -> dict[str, float]:
    """Per-task temperatures from a `temperatures.json` ({} when the file is absent); validated."""
    if not path.is_file():
        return {}
    data = _read_json(path)
    out = {}
    for task, value in data.items():
        if task in tasks:
            if not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"{path}: temperature of {task!r} must be a number > 0, got {value!r}")
            out[task] = float(value)
    return out


def load_checkpoint_net(
    path: str | Path, cache_dir: str | Path | None = None
) -> tuple[MultiTaskNet, Any, dict[str, Any]]:
    """(net, tokenizer, meta) from an intentfusion checkpoint, loaded with `weights_only=True`.

    `meta`: label_names, max_length, precision (of the training run), temperatures, backbone, peft (the adapter
    config, or None), config (the stored training config, or None). A checkpoint with adapters is rebuilt from
    its base (refused when the base's weights differ) plus the saved adapters. `cache_dir` overrides where builtin
    tiny backbones are looked for / built.
    """
    from intentfusion.models.adapters import check_same_base
    from intentfusion.models.backbone import load_tokenizer, resolve_backbone

    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(str(path), "no such checkpoint file", "a .ckpt written by train.py")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "state_dict" not in checkpoint or "hyper_parameters" not in checkpoint:
        raise CheckpointError(str(path), "not a checkpoint of intentfusion (no state_dict / hyper_parameters)",
                              "a .ckpt written by train.py")
    hp, state = checkpoint["hyper_parameters"], checkpoint.get("intentfusion", {})
    label_names = {t: list(n) for t, n in (state.get("label_names") or hp["label_names"]).items()}
    config = state.get("config") or {}
    if state.get("net_config"):
        net_config = NetConfig.from_dict(state["net_config"], f"{path}: net_config")
    else:  # written before `net_config` existed: rebuilt from the module's hyperparameters
        net_config = NetConfig.from_hparams(hp, label_names)
    cache = cache_dir or hp.get("cache_dir", ".cache")
    net = MultiTaskNet.from_config(net_config, cache)
    if net.base is not None:  # adapters: only around the base they were trained on
        check_same_base(state.get("base"), net.base, str(path))
    net.bilstm_active, net.fusion_active = bool(state.get("bilstm_active")), bool(state.get("fusion_active"))
    weights = upgrade_state_dict(checkpoint["state_dict"], prefix="net.")
    net.load_state_dict(net.with_base_weights({k.removeprefix("net."): v for k, v in weights.items()}), strict=True)
    net.eval()
    meta = {
        "label_names": label_names,
        "max_length": int((config.get("data") or {}).get("max_length") or DEFAULT_MAX_LENGTH),
        "precision": str((config.get("trainer") or {}).get("precision", "32")),
        "temperatures": read_temperatures(path.parent / "temperatures.json", list(label_names)),  # exports copy them
        "backbone": dict(hp.get("backbone") or {"name_or_path": net_config.backbone}),
        "peft": net_config.peft,
        "config": config or None,
    }
    return net, load_tokenizer(resolve_backbone(net_config.backbone, cache)), meta


def load_export_config(directory: str | Path) -> dict[str, Any]:
    """The export's `intentfusion.json` (+ `labels.json`, `temperatures.json`), checked."""
    directory = Path(directory)
    path = directory / "intentfusion.json"
    if not path.is_file():
        raise CheckpointNotFoundError(str(directory), "not an intentfusion export (no intentfusion.json)",
                                      "a directory written by `intentfusion-export ckpt_path=... out=DIR`")
    config = _read_json(path)
    if config.get("format") != EXPORT_FORMAT or int(config.get("format_version", 0)) > EXPORT_VERSION:
        raise CheckpointError(str(path), f"unsupported export format {config.get('format')!r} version "
                              f"{config.get('format_version')!r}", f"{EXPORT_FORMAT} version <= {EXPORT_VERSION}")
    pickles = sorted(p.name for p in directory.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise CheckpointError(str(directory), f"pickle files {pickles}", "an export's weights as safetensors only")
    if not any((directory / "encoder").glob("*.safetensors")):
        raise CheckpointError(str(directory / "encoder"), "no *.safetensors weights", "the encoder's safetensors")
    config["label_names"] = _read_json(directory / "labels.json")
    config["temperatures"] = read_temperatures(directory / "temperatures.json", list(config["label_names"]))
    return config
