"""`MultiTaskNet`: the inference-only network (encoder -> pooling (+ BiLSTM) -> heads (+ fusion)).

It is built from the same parts as `MultiTaskModule` (`intentfusion.models.parts`) and its state dict uses the
same key names (`encoder.*`, `heads.<task>.1.*`, `bilstm.*`, `fusion.maps.*`), so a checkpoint's weights load
into it verbatim; but it carries nothing of training (no phase plan, optimizer groups, metrics or Lightning),
and parts that were never switched on are not built at all. `OnnxGraph` wraps it for `torch.onnx.export`:
a tuple of logits in task order, and a BiLSTM without packed sequences (which the exporter cannot trace).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from intentfusion.models.parts import BiLSTMBranch, LabelFusion, Pooler, masked_mean

PART_PREFIXES = ("heads.", "bilstm.", "fusion.")


class MultiTaskNet(nn.Module):
    """Shared encoder + pooled vector (+ BiLSTM branch) -> one linear head per task (+ label fusion)."""

    def __init__(
        self,
        encoder: nn.Module,
        label_names: dict[str, list[str]],
        pooling: str = "mean",
        bilstm: dict[str, Any] | None = None,
        fusion_pairs: list[list[str]] | None = None,
    ) -> None:
        """`bilstm` (its `hidden_size`/`num_layers`) and `fusion_pairs` are given only for parts that are active."""
        super().__init__()
        self.label_names = {t: list(n) for t, n in label_names.items()}
        self.tasks = list(self.label_names)
        self.encoder = encoder
        if getattr(self.encoder, "pooler", None) is not None:  # MultiTaskModule drops it too: we pool ourselves
            self.encoder.pooler = None
        hidden = self.encoder.config.hidden_size
        self.pooler = Pooler(pooling)
        self.bilstm = BiLSTMBranch(hidden, **bilstm) if bilstm is not None else None
        # (Identity, Linear) keeps the checkpoint's key names `heads.<task>.1.*` (index 0 was the dropout)
        self.heads = nn.ModuleDict({t: nn.Sequential(nn.Identity(), nn.Linear(hidden, len(n)))
                                    for t, n in self.label_names.items()})
        num_labels = {t: len(n) for t, n in self.label_names.items()}
        self.fusion = LabelFusion(num_labels, fusion_pairs) if fusion_pairs is not None else None
        self.eval()

    @property
    def parts_config(self) -> dict[str, Any]:
        """What is needed to rebuild the parts on top of the encoder (saved in an export's `intentfusion.json`)."""
        lstm = self.bilstm.lstm if self.bilstm is not None else None
        return {
            "pooling": self.pooler.mode,
            "bilstm": {"hidden_size": lstm.hidden_size, "num_layers": lstm.num_layers} if lstm is not None else None,
            "fusion_pairs": [list(p) for p in self.fusion.links] if self.fusion is not None else None,
        }

    def parts_state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of everything but the encoder (heads, BiLSTM, fusion), contiguous, for safetensors."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items() if k.startswith(PART_PREFIXES)}

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.pooler(states, attention_mask)
        if self.bilstm is not None:
            pooled = pooled + self.bilstm(states, attention_mask)
        return pooled

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task, exactly as `MultiTaskModule.forward` computes them."""
        pooled = self.encode(input_ids, attention_mask)
        logits = {task: head(pooled) for task, head in self.heads.items()}
        return self.fusion(logits) if self.fusion is not None else logits


class UnpackedBiLSTM(nn.Module):
    """`BiLSTMBranch.forward` without packed sequences (traceable by the ONNX exporter), equal up to rounding.

    Right padding only disturbs the backward direction, so each layer's backward pass runs over every row
    reversed within its own length (a gather), and its output is put back in place the same way. Padded
    positions hold garbage that `masked_mean` zeroes out and that valid positions of the next layer never see.
    """

    def __init__(self, branch: BiLSTMBranch) -> None:
        super().__init__()
        self.branch = branch

    def _direction(self, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
        lstm = self.branch.lstm
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in names]
        h0 = x.new_zeros(1, x.shape[0], lstm.hidden_size)
        # torch.lstm(input, (h0, c0), params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
        return torch.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, True)[0]

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = states.float()
        steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
        lengths = mask.sum(1, keepdim=True).clamp(min=1)
        rev = torch.where(steps < lengths, lengths - 1 - steps, steps).unsqueeze(-1)  # its own inverse
        for layer in range(self.branch.lstm.num_layers):
            fwd = self._direction(x, layer, "")
            bwd = self._direction(x.gather(1, rev.expand(-1, -1, x.shape[2])), layer, "_reverse")
            x = torch.cat([fwd, bwd.gather(1, rev.expand(-1, -1, bwd.shape[2]))], dim=-1)
        return self.branch.gate * self.branch.proj(masked_mean(x, mask))


class OnnxGraph(nn.Module):
    """`MultiTaskNet` as a graph for `torch.onnx.export`: inputs (input_ids, attention_mask), logits per task
    as a tuple in `net.tasks` order."""

    def __init__(self, net: MultiTaskNet) -> None:
        super().__init__()
        self.net = net
        self.bilstm = UnpackedBiLSTM(net.bilstm) if net.bilstm is not None else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.net
        states = net.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = net.pooler(states, attention_mask)
        if self.bilstm is not None:
            pooled = pooled + self.bilstm(states, attention_mask)
        logits = {task: head(pooled) for task, head in net.heads.items()}
        if net.fusion is not None:
            logits = net.fusion(logits)
        return tuple(logits[t] for t in net.tasks)
