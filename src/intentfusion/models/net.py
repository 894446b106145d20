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
from typing import Any

import torch
from torch import nn

from intentfusion.errors import CheckpointError
from intentfusion.models.adapters import base_keys, has_adapters
from intentfusion.models.parts import BiLSTMBranch, LabelFusion, Pooler
from intentfusion.tasks import Features, resolve_task_types

DEFAULT_FUSION_PAIRS = [["intent", "sentiment"]]
PART_PREFIXES = ("heads.", "bilstm.", "fusion.")  # everything but the encoder


class MultiTaskNet(nn.Module):
    """Shared encoder + pooled vector (+ gated BiLSTM branch) -> one head per task (+ label fusion).

    Args:
        encoder: a Hugging Face encoder (`AutoModel`), or a peft model around one (`adapters.with_adapters`); its
            own pooler is dropped (we pool ourselves).
        label_names: ``{task: [label, ...]}``, in task order.
        task_types: ``{task: type name}`` (`intentfusion.tasks.TASK_TYPES`: `sequence`, `token`, `multilabel`,
            or any registered type); default `sequence`.
        pooling: ``mean`` | ``cls``.
        head_dropout: dropout before each head's linear layer (training only).
        bilstm: ``{hidden_size, num_layers}`` of the BiLSTM branch.
        fusion_pairs: task pairs whose heads see each other's distribution (pairs naming absent tasks are ignored).
        token_head: options of the token heads (`TokenTask`: ``layer``, ``lstm_size``, ``crf``); a type takes
            the option block its `options_key` names.
    """

    def __init__(
        self,
        encoder: nn.Module,
        label_names: dict[str, list[str]],
        task_types: dict[str, str] | None = None,
        pooling: str = "mean",
        head_dropout: float = 0.1,
        bilstm: dict[str, Any] | None = None,
        fusion_pairs: list[list[str]] | None = None,
        token_head: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.label_names = {t: list(n) for t, n in label_names.items()}
        self.tasks = list(self.label_names)
        classes = resolve_task_types(self.tasks, task_types)
        self.task_types = {t: cls.name for t, cls in classes.items()}
        self.encoder = encoder
        base = encoder.get_base_model() if has_adapters(encoder) else encoder
        if getattr(base, "pooler", None) is not None:  # BERT's pooler is unused: we pool ourselves
            base.pooler = None
        hidden = self.encoder.config.hidden_size
        self.pooler = Pooler(pooling)
        self.bilstm_config = {"hidden_size": 128, "num_layers": 1, **(bilstm or {})}
        self.bilstm = BiLSTMBranch(hidden, **self.bilstm_config)
        self.token_head = dict(token_head or {})
        options = {"token_head": self.token_head}
        self.heads = nn.ModuleDict({
            task: cls(self.label_names[task], hidden, head_dropout, **options.get(cls.options_key, {}))
            for task, cls in classes.items()
        })
        self.fusion = LabelFusion(self.heads, DEFAULT_FUSION_PAIRS if fusion_pairs is None else fusion_pairs)
        self.bilstm_active = False
        self.fusion_active = False

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
        return self.fusion(logits, features.mask) if self.fusion_active else logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task."""
        return self.classify(self.encode(input_ids, attention_mask))

    @property
    def reads_token_states(self) -> bool:
        """Whether some head needs token states (then training cannot run on cached pooled features)."""
        return any(head.reads_token_states for head in self.heads.values())

    # ----------------------------------------------------------------------------------------- saving
    @property
    def parts_config(self) -> dict[str, Any]:
        """Everything but the encoder's weights needed to rebuild the net (an export's `intentfusion.json`)."""
        return {
            "task_types": dict(self.task_types),
            "token_head": dict(self.token_head),
            "pooling": self.pooler.mode,
            "bilstm": dict(self.bilstm_config) if self.bilstm_active else None,
            "fusion_pairs": [list(p) for p in self.fusion.links] if self.fusion_active else None,
        }

    @classmethod
    def from_parts_config(cls, encoder: nn.Module, label_names: dict[str, list[str]], config: dict[str, Any]
                          ) -> MultiTaskNet:
        """The inverse of `parts_config` (active switches included); weights still to be loaded."""
        net = cls(encoder, label_names, task_types=config.get("task_types"), pooling=config.get("pooling", "mean"),
                  bilstm=config.get("bilstm"), fusion_pairs=config.get("fusion_pairs"),
                  token_head=config.get("token_head"))
        net.bilstm_active = config.get("bilstm") is not None
        net.fusion_active = config.get("fusion_pairs") is not None
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
