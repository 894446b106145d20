"""Parameter-efficient fine-tuning of the shared encoder with the `peft` library (LoRA).

`with_adapters(encoder, config)` wraps a loaded encoder (before any optimizer exists) and freezes its base
weights for good; only the adapters train, and the phase plan decides which of them when (by layer, as for
full fine-tuning). A checkpoint of such a run holds the adapters and the task parts, not the base weights:
`base_identity` names the base and fingerprints its weights, and `check_same_base` refuses a checkpoint whose
adapters were trained on other weights. For export, `MultiTaskNet.merged` merges the adapters into a plain
`transformers` encoder.

Default LoRA targets follow the architecture (`config.model_type`): peft's own table (BERT / MiniLM, RoBERTa,
XLM-R, ELECTRA: `query, value`; DeBERTa-v2: `query_proj, value_proj`) plus the encoders it lacks
(`TARGET_MODULES`: DistilBERT `q_lin, v_lin`; MPNet `q, v`).
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import nn

from intentfusion.errors import CheckpointError, ConfigError

METHODS = ("none", "lora")
TARGET_MODULES = {"distilbert": ["q_lin", "v_lin"], "mpnet": ["q", "v"]}  # default targets peft's table lacks
# peft.<key>: (check, what the check expects)
LORA_OPTIONS: dict[str, tuple[Any, str]] = {
    "r": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an integer >= 1, e.g. 8"),
    "alpha": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0, "a number > 0, e.g. 16"),
    "dropout": (lambda v: isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < 1,
                "a number in [0, 1)"),
    "target_modules": (lambda v: v is None or (isinstance(v, list | tuple) and len(v) > 0
                                               and all(isinstance(m, str) for m in v)),
                       "null (by architecture) or a list of module names, e.g. [query, value]"),
}


def method_of(config: dict[str, Any] | None) -> str:
    """The PEFT method a `peft` config asks for (`none` when there is none)."""
    return str((config or {}).get("method") or "none")


def check_peft(config: dict[str, Any] | None) -> None:
    """Raise a `ConfigError` naming `peft.<key>` for an unknown method or a bad LoRA option."""
    method = method_of(config)
    if method not in METHODS:
        raise ConfigError("peft.method", f"unknown method {method!r}", " | ".join(METHODS))
    if method == "lora":
        for key, (valid, expected) in LORA_OPTIONS.items():
            if not valid((config or {}).get(key)):
                raise ConfigError(f"peft.{key}", f"{config.get(key)!r} is not valid", expected)


def has_adapters(encoder: nn.Module) -> bool:
    """Whether `encoder` is a peft model (adapters around frozen base weights)."""
    return hasattr(encoder, "peft_config") and hasattr(encoder, "get_base_model")


def with_adapters(encoder: nn.Module, config: dict[str, Any] | None) -> nn.Module:
    """`encoder` wrapped by the `peft` method of `config` (unchanged for `none`); the base weights are frozen.

    peft injects the adapters into `encoder` itself: take `base_identity` of it before."""
    check_peft(config)
    if method_of(config) == "none":
        return encoder
    from peft import LoraConfig, get_peft_model

    model_type = getattr(getattr(encoder, "config", None), "model_type", type(encoder).__name__)
    targets = config.get("target_modules") or TARGET_MODULES.get(model_type)
    lora = LoraConfig(r=int(config["r"]), lora_alpha=float(config["alpha"]), lora_dropout=float(config["dropout"]),
                      target_modules=list(targets) if targets else None, bias="none")
    try:
        return get_peft_model(encoder, lora)
    except ValueError as e:  # no default targets for this architecture, or targets it does not have
        raise ConfigError("peft.target_modules", f"{' '.join(str(e).split())} (encoder type {model_type!r})",
                          "names of the encoder's linear layers, e.g. [query, value]") from e


def adapter_parameters(encoder: nn.Module) -> list[nn.Parameter]:
    """The parameters that may train: the adapters of a peft model, every parameter of a plain encoder."""
    if not has_adapters(encoder):
        return list(encoder.parameters())
    prefix = encoder.base_model.prefix  # "lora_" for LoRA: every adapter parameter's name contains it
    return [p for name, p in encoder.named_parameters() if prefix in name]


def base_keys(encoder: nn.Module) -> set[str]:
    """State-dict keys of a peft model's frozen base (empty for a plain encoder): not saved in checkpoints."""
    if not has_adapters(encoder):
        return set()
    prefix = encoder.base_model.prefix
    return {key for key in encoder.state_dict() if prefix not in key}


def base_identity(name_or_path: str, encoder: nn.Module) -> dict[str, str]:
    """`{name_or_path, fingerprint}` of a base encoder: sha256 over its weights' names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for key, tensor in sorted(encoder.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}:{t.dtype}:{tuple(t.shape)};".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return {"name_or_path": str(name_or_path), "fingerprint": digest.hexdigest()}


def check_same_base(saved: dict[str, str] | None, current: dict[str, str] | None, where: str) -> None:
    """Refuse adapters trained on other base weights (`CheckpointError` naming `where`)."""
    if saved is None or current is None or saved.get("fingerprint") == current.get("fingerprint"):
        return

    def named(identity: dict[str, str]) -> str:
        return f"{identity.get('name_or_path')!r} (weights {identity.get('fingerprint', '')[:12]})"

    raise CheckpointError(where, f"its adapters were trained on base {named(saved)}, this run loads {named(current)}",
                          "backbone.name_or_path set to the base the adapters were trained on")
