"""`MultiTaskNet`: the one network definition (encoder -> pooled vector (+ BiLSTM branch) -> heads (+ fusion)).

nanoGPT-style, its `forward` is written once and used everywhere: `MultiTaskModule` trains it, the Predictor's
torch runner runs it, and the ONNX export traces it through `OnnxGraph`, which swaps only what ONNX cannot
express (the packed BiLSTM, see `BiLSTMBranch.packed`). No Lightning, no optimizer, no phase plan in here.

Every part exists from construction, so state-dict keys never depend on the phase; `bilstm_active` and
`fusion_active` switch the BiLSTM branch and the label fusion on (both are exact no-ops when switched on).
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from intentfusion.errors import CheckpointError
from intentfusion.models.adapters import base_identity, base_keys, has_adapters, with_adapters
from intentfusion.models.backbone import load_encoder, resolve_backbone
from intentfusion.models.config import NetConfig
from intentfusion.models.parts import BiLSTMBranch, LabelFusion, Pooler
from intentfusion.tasks import Features, resolve_task_types

PART_PREFIXES = ("heads.", "bilstm.", "fusion.")  # everything but the encoder


def build_heads(config: NetConfig, hidden_size: int, dropout: float | None = None) -> nn.ModuleDict:
    """One head per task of `config`, of its task type, with the option block its type's `options_key` names."""
    options = {"token_head": config.token_head}
    return nn.ModuleDict({
        task: cls(config.label_names[task], hidden_size, config.head_dropout if dropout is None else dropout,
                  **options.get(cls.options_key, {}))
        for task, cls in resolve_task_types(list(config.label_names), config.task_types).items()
    })


class MultiTaskNet(nn.Module):
    """Shared encoder + pooled vector (+ gated BiLSTM branch) -> one head per task (+ label fusion).

    Args:
        config: what the network is made of (`NetConfig`); kept as `self.config`, saved with the weights.
        encoder: the encoder `config.backbone` names, loaded (`from_config` loads it): a Hugging Face encoder
            (`AutoModel`), or a peft model around one (`adapters.with_adapters`); its own pooler is dropped (we
            pool ourselves).
    """

    def __init__(self, config: NetConfig, encoder: nn.Module) -> None:
        super().__init__()
        self.config = config
        self.label_names = {t: list(n) for t, n in config.label_names.items()}
        self.tasks = list(self.label_names)
        self.task_types = {t: cls.name for t, cls in resolve_task_types(self.tasks, config.task_types).items()}
        self.encoder = encoder
        base = encoder.get_base_model() if has_adapters(encoder) else encoder
        if getattr(base, "pooler", None) is not None:  # BERT's pooler is unused: we pool ourselves
            base.pooler = None
        hidden = self.encoder.config.hidden_size
        self.pooler = Pooler(config.pooling)
        self.bilstm = BiLSTMBranch(hidden, **config.bilstm)
        self.heads = build_heads(config, hidden)
        self.fusion = LabelFusion(self.heads, config.fusion_pairs, hidden, config.set_attention)
        self.bilstm_active = False
        self.fusion_active = False
        self.base: dict[str, str] | None = None  # with adapters: the frozen base's identity (`from_config`)

    @classmethod
    def from_config(cls, config: NetConfig, cache_dir: str | Path = ".cache") -> MultiTaskNet:
        """The network `config` describes, its encoder loaded from `config.backbone` (a builtin tiny backbone
        is built into `cache_dir` if missing), with adapters when `config.peft` asks for them; `base` then holds
        the identity (name, weight fingerprint) of the frozen base they were put on."""
        path = resolve_backbone(config.backbone, cache_dir)
        encoder = load_encoder(path, gradient_checkpointing=config.gradient_checkpointing)
        encoder.train()  # `from_pretrained` returns it in eval mode
        base = base_identity(config.backbone, encoder) if config.peft is not None else None
        net = cls(config, with_adapters(encoder, config.peft))
        net.base = base
        return net

    # ----------------------------------------------------------------------------------------- forward
    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Features:
        """Token states and the pooled vector (+ the BiLSTM branch when active)."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.pooler(states, attention_mask)
        if self.bilstm_active:
            pooled = pooled + self.bilstm(states, attention_mask)
        return Features(pooled, states, attention_mask)

    def classify(self, features: Features) -> dict[str, torch.Tensor]:
        """Logits per task from the features (+ label fusion when active)."""
        logits = {task: head(features) for task, head in self.heads.items()}
        return self.fusion(logits, features) if self.fusion_active else logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task."""
        return self.classify(self.encode(input_ids, attention_mask))

    @property
    def reads_token_states(self) -> bool:
        """Whether some head needs token states (then training cannot run on cached pooled features)."""
        return any(head.reads_token_states for head in self.heads.values())

    # ----------------------------------------------------------------------------------------- saving
    @property
    def export_config(self) -> dict[str, Any]:
        """What an export's `intentfusion.json` needs to rebuild the net: its config (`net`, without adapters:
        an export holds the merged encoder) and which parts are active (`active_parts`)."""
        return {"net": replace(self.config, peft=None).to_dict(),
                "active_parts": {"bilstm": self.bilstm_active, "fusion": self.fusion_active}}

    @classmethod
    def from_export(cls, encoder: nn.Module, config: dict[str, Any]) -> MultiTaskNet:
        """The inverse of `export_config` (exports of earlier versions included), around an export's encoder;
        weights still to be loaded."""
        net_config, active = NetConfig.from_export(config)
        net = cls(net_config, encoder)
        net.bilstm_active, net.fusion_active = active["bilstm"], active["fusion"]
        return net.eval()

    def parts_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of the heads and of the active parts (BiLSTM, fusion), contiguous, for safetensors."""
        skip = (() if self.bilstm_active else ("bilstm.",)) + (() if self.fusion_active else ("fusion.",))
        return {
            k: v.detach().contiguous()
            for k, v in self.state_dict().items()
            if k.startswith(PART_PREFIXES) and not k.startswith(skip)
        }

    def trained_state_dict(self) -> dict[str, torch.Tensor]:
        """`state_dict()` without the frozen base weights of an encoder with adapters (what a checkpoint keeps)."""
        frozen = {f"encoder.{k}" for k in base_keys(self.encoder)}
        return {k: v for k, v in self.state_dict().items() if k not in frozen}

    def with_base_weights(self, state: dict[str, Any]) -> dict[str, Any]:
        """A `trained_state_dict()` completed with this net's own (frozen) base weights, for a strict load."""
        own = self.state_dict()
        return {**{f"encoder.{k}": own[f"encoder.{k}"] for k in base_keys(self.encoder)}, **state}

    def merged(self) -> MultiTaskNet:
        """This net with its adapters merged into a plain `transformers` encoder (a copy; `self` without adapters)."""
        if not has_adapters(self.encoder):
            return self
        net = copy.deepcopy(self)
        net.encoder = net.encoder.merge_and_unload()
        net.config = replace(net.config, peft=None)
        return net

    def load_parts(self, parts: dict[str, torch.Tensor], where: str) -> None:
        """Load `parts_state_dict()` output (legacy key names upgraded); a `ValueError` naming `where` on mismatch."""
        result = self.load_state_dict(upgrade_state_dict(parts), strict=False)
        skip = (() if self.bilstm_active else ("bilstm.",)) + (() if self.fusion_active else ("fusion.",))
        missing = [k for k in result.missing_keys if k.startswith(PART_PREFIXES) and not k.startswith(skip)]
        if missing or result.unexpected_keys:
            raise CheckpointError(where, f"missing {missing}, unexpected {result.unexpected_keys}",
                                  "the weights named in intentfusion.json")


_LEGACY_HEAD = re.compile(r"^(heads\.[^.]+)\.1\.")  # before v0.2 a head was Sequential(Dropout, Linear)


def upgrade_state_dict(state: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A state dict with the key names of before the one-network refactor renamed to today's.

    Old: `encoder.*`, `heads.<task>.1.*`, `bilstm.*`, `fusion.*` at the top of the LightningModule; new: the same
    under `prefix` (`"net."` in `MultiTaskModule`) and `heads.<task>.linear.*`. Current keys pass unchanged.
    """
    out = {}
    for key, value in state.items():
        if prefix and key.startswith(prefix):
            out[key] = value
            continue
        out[prefix + _LEGACY_HEAD.sub(r"\1.linear.", key)] = value
    return out


class OnnxGraph(nn.Module):
    """`MultiTaskNet` for `torch.onnx.export`: inputs (input_ids, attention_mask), outputs the logits per task
    as a tuple in `net.tasks` order; every LSTM (the BiLSTM branch, a `bilstm_mlp` tagging head) runs unpacked:
    the exporter cannot trace packed sequences."""

    def __init__(self, net: MultiTaskNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        lstms = [m for m in self.net.modules() if hasattr(m, "packed")]  # BiLSTM branch, BiLSTM tagging heads
        for module in lstms:
            module.packed = False
        try:
            logits = self.net(input_ids, attention_mask)
        finally:
            for module in lstms:
                module.packed = True
        return tuple(logits[t] for t in self.net.tasks)
