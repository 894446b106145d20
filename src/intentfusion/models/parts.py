"""Model parts on top of the shared encoder: pooling, the BiLSTM branch and label fusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

POOLINGS = ("cls", "mean")


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `states` (B, T, H) over the positions where `mask` (B, T) is 1."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class Pooler(nn.Module):
    """Sentence vector from token states: the first token (`cls`) or the masked mean (`mean`)."""

    def __init__(self, mode: str = "mean") -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise ValueError(f"backbone.pooling={mode!r}, expected one of {POOLINGS}")
        self.mode = mode

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return states[:, 0] if self.mode == "cls" else masked_mean(states, mask)


def lstm_packed(lstm: nn.LSTM, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A batch-first (Bi)LSTM over each row's real positions (packed sequences: padding is neither read nor
    written)."""
    lengths = mask.sum(1).clamp(min=1).cpu()
    packed = pack_padded_sequence(states.float(), lengths, batch_first=True, enforce_sorted=False)
    return pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=states.shape[1])[0]


def lstm_unpacked(lstm: nn.LSTM, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`lstm_packed` without packed sequences, which the ONNX exporter cannot trace (equal up to rounding).

    Right padding only disturbs the backward direction, so each layer's backward pass runs over every row
    reversed within its own length (a gather), and its output is put back in place the same way. Padded
    positions hold garbage that valid positions never see (and that callers mask out).
    """
    x = states.float()
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    lengths = mask.sum(1, keepdim=True).clamp(min=1)
    rev = torch.where(steps < lengths, lengths - 1 - steps, steps).unsqueeze(-1)  # its own inverse
    for layer in range(lstm.num_layers):
        fwd = _direction(lstm, x, layer, "")
        bwd = _direction(lstm, x.gather(1, rev.expand(-1, -1, x.shape[2])), layer, "_reverse")
        x = torch.cat([fwd, bwd.gather(1, rev.expand(-1, -1, bwd.shape[2]))], dim=-1)
    return x


def _direction(lstm: nn.LSTM, x: torch.Tensor, layer: int, suffix: str) -> torch.Tensor:
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    weights = [getattr(lstm, f"{name}_l{layer}{suffix}") for name in names]
    h0 = x.new_zeros(1, x.shape[0], lstm.hidden_size)
    # torch.lstm(input, (h0, c0), params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
    return torch.lstm(x, (h0, h0), weights, True, 1, 0.0, False, False, True)[0]


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
    `book_flight`). `p_b` is softmax(logits[b]) for an utterance-level task, and for a token task (`task_types`)
    its pooled slot evidence: the mean over the utterance's tokens (`mask`) of the per-token distributions. A
    token task's logits (N, T, C) get the partner's shift at every position (the intent conditions the tags).
    Both directions use the logits from before fusion, so the result does not depend on the pair order. Pairs
    naming a task that the model does not have, or two token tasks, are ignored.
    """

    def __init__(self, num_labels: dict[str, int], pairs: Sequence[Sequence[str]],
                 task_types: dict[str, str] | None = None) -> None:
        super().__init__()
        self.token_tasks = {t for t, kind in (task_types or {}).items() if kind == "token"}
        links = []
        for a, b in pairs:
            if a in num_labels and b in num_labels and not {a, b} <= self.token_tasks:
                links += [(a, b), (b, a)]
        self.links = sorted(set(links))
        self.maps = nn.ModuleDict(
            {f"{dst}__from__{src}": nn.Linear(num_labels[src], num_labels[dst], bias=False) for dst, src in self.links}
        )
        for layer in self.maps.values():
            nn.init.zeros_(layer.weight)

    def forward(self, logits: dict[str, torch.Tensor], mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        fused = dict(logits)
        for dst, src in self.links:
            probs = logits[src].softmax(-1)
            if src in self.token_tasks:  # pooled slot evidence
                probs = masked_mean(probs, mask) if mask is not None else probs.mean(1)
            shift = self.maps[f"{dst}__from__{src}"](probs)
            fused[dst] = fused[dst] + (shift.unsqueeze(1) if dst in self.token_tasks else shift)
        return fused
