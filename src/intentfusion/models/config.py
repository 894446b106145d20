"""`NetConfig`: the one description of a `MultiTaskNet` (nanoGPT's `GPTConfig`): everything but the weights.

Training builds it from the Hydra `model` config (`from_hparams`), checkpoints keep it (`intentfusion.net_config`),
exports write it (`intentfusion.json` `net`), and `MultiTaskNet(config, encoder)` / `MultiTaskNet.from_config` is
the only way to build the network. Checkpoints and exports of before it are migrated on load (`from_hparams`,
`from_export`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from intentfusion.errors import CheckpointError

DEFAULT_FUSION_PAIRS = [["intent", "sentiment"], ["intent", "slots"]]  # pairs naming absent tasks are ignored
LEGACY_FUSION_PAIRS = [["intent", "sentiment"]]  # the network's default before `NetConfig`


@dataclass
class NetConfig:
    """What a `MultiTaskNet` is made of.

    Attributes:
        backbone: the encoder: a hub id, a local directory or a `builtin:` name (`models.backbone`).
        label_names: ``{task: [label, ...]}``, in task order.
        task_types: ``{task: type name}`` (`intentfusion.tasks.TASK_TYPES`); a task left out is `sequence`.
        pooling: ``mean`` | ``cls``.
        head_dropout: dropout before each head's output layer (training only).
        bilstm: ``{hidden_size, num_layers}`` of the gated BiLSTM branch.
        fusion_pairs: task pairs whose heads see each other's distribution (pairs naming absent tasks, or two
            per-token tasks, are ignored).
        set_attention: a per-token task fused with a label-set task (slots with several intents) attends per token
            over the partner's label embeddings (`LabelSetAttention`); false: the same shift at every token (the
            only link of configs written before this setting, which load with false).
        token_head: options of the token heads (`TokenTask`: ``layer``, ``lstm_size``, ``crf``); a task type
            takes the block its `options_key` names.
        peft: adapters on the encoder (``{method: lora, r, alpha, dropout, target_modules}``) or None.
        gradient_checkpointing: recompute the encoder's activations in the backward pass.
    """

    backbone: str
    label_names: dict[str, list[str]]
    task_types: dict[str, str] = field(default_factory=dict)
    pooling: str = "mean"
    head_dropout: float = 0.1
    bilstm: dict[str, int] = field(default_factory=lambda: {"hidden_size": 128, "num_layers": 1})
    fusion_pairs: list[list[str]] = field(default_factory=lambda: [list(p) for p in DEFAULT_FUSION_PAIRS])
    set_attention: bool = True
    token_head: dict[str, Any] = field(default_factory=dict)
    peft: dict[str, Any] | None = None
    gradient_checkpointing: bool = False

    def __post_init__(self) -> None:
        self.label_names = {str(t): [str(n) for n in names] for t, names in self.label_names.items()}
        self.task_types = {str(t): str(k) for t, k in (self.task_types or {}).items() if t in self.label_names}
        self.bilstm = {"hidden_size": 128, "num_layers": 1, **(self.bilstm or {})}
        self.fusion_pairs = [list(map(str, p)) for p in self.fusion_pairs]
        self.token_head = dict(self.token_head or {})
        self.peft = dict(self.peft) if self.peft and str(self.peft.get("method", "none")) != "none" else None

    def to_dict(self) -> dict[str, Any]:
        """Plain containers (JSON, `torch.load(weights_only=True)`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "net_config") -> NetConfig:
        """The inverse of `to_dict`; unknown keys are refused (`CheckpointError` naming `where`)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CheckpointError(where, f"unknown network setting(s) {unknown}", f"settings among {sorted(known)}")
        return cls(**{"set_attention": False, **dict(data)})  # written before it existed: the shift

    @classmethod
    def from_hparams(cls, hparams: Mapping[str, Any], label_names: Mapping[str, list[str]] | None = None
                     ) -> NetConfig:
        """From `MultiTaskModule`'s hyperparameters (the Hydra `model` config): how training builds it, and how a
        checkpoint written before `net_config` existed is read."""
        backbone = dict(hparams.get("backbone") or {})
        fusion = hparams.get("fusion")
        pairs = (fusion or {}).get("pairs") if fusion is not None else None
        return cls(
            backbone=str(backbone.get("name_or_path")),
            label_names=dict(label_names if label_names is not None else hparams["label_names"]),
            task_types=dict(hparams.get("task_types") or {}),
            pooling=str(backbone.get("pooling", "mean")),
            head_dropout=float(hparams.get("head_dropout", 0.1)),
            bilstm=dict(hparams.get("bilstm") or {}),
            fusion_pairs=[list(p) for p in (LEGACY_FUSION_PAIRS if pairs is None else pairs)],
            set_attention=bool((fusion or {}).get("set_attention", False)),
            token_head=dict(hparams.get("token_head") or {}),
            peft=dict(hparams["peft"]) if hparams.get("peft") else None,
            gradient_checkpointing=bool(backbone.get("gradient_checkpointing", False)),
        )

    @classmethod
    def from_export(cls, config: Mapping[str, Any]) -> tuple[NetConfig, dict[str, bool]]:
        """(the network config, its active parts ``{bilstm, fusion}``) of an export's `intentfusion.json` (`net`,
        `active_parts`);
        format version 2 and earlier wrote ``task_types``, ``pooling``, ``bilstm`` / ``fusion_pairs`` (None when
        inactive) and ``token_head`` at the top level."""
        if "net" in config:
            active = dict(config.get("active_parts") or {})
            return (cls.from_dict(config["net"], "intentfusion.json: net"),
                    {"bilstm": bool(active.get("bilstm")), "fusion": bool(active.get("fusion"))})
        net = cls(backbone=str((config.get("backbone") or {}).get("name_or_path")), label_names=config["label_names"],
                  task_types=dict(config.get("task_types") or {}), pooling=str(config.get("pooling", "mean")),
                  bilstm=dict(config.get("bilstm") or {}),
                  fusion_pairs=[list(p) for p in (config.get("fusion_pairs") or LEGACY_FUSION_PAIRS)],
                  set_attention=False, token_head=dict(config.get("token_head") or {}))
        return net, {"bilstm": config.get("bilstm") is not None, "fusion": config.get("fusion_pairs") is not None}
