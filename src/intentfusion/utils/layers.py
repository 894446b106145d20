"""Tensor layers shared by the network parts and the task heads: masked mean, (Bi)LSTMs over padded batches."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `states` (B, T, H) over the positions where `mask` (B, T) is 1."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)


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
