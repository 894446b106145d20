"""Model parts on top of the shared encoder: pooling, the BiLSTM branch and label fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from intentfusion.utils.layers import lstm_packed, lstm_unpacked, masked_mean

POOLINGS = ("cls", "mean")


class Pooler(nn.Module):
    """Sentence vector from token states: the first token (`cls`) or the masked mean (`mean`)."""

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ValueError(f"backbone.pooling={mode!r}, expected one of {POOLINGS}")
        self.mode = mode

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return states[:, 0] if self.mode == "cls" else masked_mean(states, mask)


class BiLSTMBranch(nn.Module):
    """BiLSTM over the encoder's token states, joined to the pooled vector by a zero-initialised gate.

    Returns `gate * proj(mean_t BiLSTM(states)_t)`, added residually to the pooled representation. The gate
    starts at exactly zero, so switching the branch on leaves the model's outputs unchanged until it learns.
    `packed=False` runs `lstm_unpacked` (for the ONNX export, see `OnnxGraph`).
    """

    def __init__(self, input_size: int, hidden_size: int = 128, num_layers: int = 1) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden_size, input_size)
        self.gate = nn.Parameter(torch.zeros(input_size))
        self.packed = True

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = (lstm_packed if self.packed else lstm_unpacked)(self.lstm, states, mask)
        return self.gate * self.proj(masked_mean(out, mask))


class LabelFusion(nn.Module):
    """Label fusion between task pairs: each task's logits see the other task's predicted distribution.

    For every ordered pair (a, b) built from `pairs`, `logits[a] += W_ab · p_b`, where `W_ab` is a bias-free
    linear map initialised to zero, so the fusion is an exact no-op when switched on and learns how the partner's
    distribution should shift each class (an angry sentiment raising `cancellation`; a `city` slot raising
    `book_flight`). `p_b` is task b's `partner_distribution` (softmax for an utterance-level task; for a token
    task its pooled slot evidence, the mean over the utterance's tokens of the per-token distributions), and
    task a adds the shift as its type says (`add_shift`: a token task at every position). Both directions use
    the logits from before fusion, so the result does not depend on the pair order. Pairs naming a task that
    the model does not have, or two per-token tasks, are ignored.
    """

    def __init__(self, heads: Mapping[str, nn.Module], pairs: Sequence[Sequence[str]]) -> None:
        super().__init__()
        self.heads = dict(heads)  # not submodules: the network owns them
        links = []
        for a, b in pairs:
            if a in heads and b in heads and not (heads[a].per_token and heads[b].per_token):
                links += [(a, b), (b, a)]
        self.links = sorted(set(links))
        self.maps = nn.ModuleDict({
            f"{dst}__from__{src}": nn.Linear(len(heads[src].labels), len(heads[dst].labels), bias=False)
            for dst, src in self.links
        })
        for layer in self.maps.values():
            nn.init.zeros_(layer.weight)

    def forward(self, logits: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        fused = dict(logits)
        for dst, src in self.links:
            shift = self.maps[f"{dst}__from__{src}"](self.heads[src].partner_distribution(logits[src], mask))
            fused[dst] = self.heads[dst].add_shift(fused[dst], shift)
        return fused
