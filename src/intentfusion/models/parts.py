"""Model parts on top of the shared encoder: pooling, the BiLSTM branch and label fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from intentfusion.tasks import Features
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


class PartnerShift(nn.Linear):
    """A fused partner's distribution (N, C_src) -> a shift of this task's logits (N, C_dst): a bias-free linear
    map initialised to zero (an exact no-op when fusion is switched on)."""

    def __init__(self, partner_labels: int, labels: int) -> None:
        super().__init__(partner_labels, labels, bias=False)
        nn.init.zeros_(self.weight)

    def forward(self, partner: torch.Tensor, features: Features) -> torch.Tensor:  # type: ignore[override]
        return super().forward(partner)


class LabelSetAttention(nn.Module):
    """Each token attends over the embeddings of a label-set partner's labels (several intents), weighted by the
    partner's probabilities, and shifts its own logits by what it finds: (N, T, C_dst).

    ``scores[t, k] = q_t . e_k / sqrt(d) + log p_k`` with ``q_t`` a projection of token t's state and ``e_k`` label
    k's embedding, so a token of the second clause can take the second intent while the labels the partner does
    not predict get almost no weight; the output layer starts at zero (an exact no-op when switched on).
    """

    def __init__(self, partner_labels: int, labels: int, hidden_size: int, size: int = 64) -> None:
        super().__init__()
        self.embeddings = nn.Parameter(torch.randn(partner_labels, size) * 0.02)
        self.query = nn.Linear(hidden_size, size)
        self.out = nn.Linear(size, labels, bias=False)
        nn.init.zeros_(self.out.weight)

    def forward(self, partner: torch.Tensor, features: Features) -> torch.Tensor:
        if features.states is None:
            raise ValueError("label-set attention reads token states, and the features hold none")
        query = self.query(features.states)
        scores = query @ self.embeddings.T / self.embeddings.shape[-1] ** 0.5
        scores = scores + partner.clamp_min(1e-6).log().unsqueeze(1).to(scores.dtype)
        return self.out(scores.softmax(-1) @ self.embeddings)


class LabelFusion(nn.Module):
    """Label fusion between task pairs: each task's logits see the other task's predictions.

    For every ordered pair (a, b) built from `pairs`, task a's logits are shifted by a link that reads task b's
    `partner_distribution` (softmax for an utterance-level task, sigmoids for a label-set task; for a token task
    its pooled slot evidence, the mean over the utterance's tokens of the per-token distributions) and adds it as
    a's type says (`add_shift`). The link is a `PartnerShift` (a zero-initialised linear map: an angry sentiment
    raising `cancellation`, a `city` slot raising `book_flight`), or, for a per-token task fused with a label-set
    task and ``set_attention``, a `LabelSetAttention` (each token picks its intent among those predicted). Every
    link starts as an exact no-op. Both directions use the logits from before fusion, so the result does not
    depend on the pair order. Pairs naming a task that the model does not have, or two per-token tasks, are
    ignored.
    """

    def __init__(self, heads: Mapping[str, nn.Module], pairs: Sequence[Sequence[str]], hidden_size: int,
                 set_attention: bool = True) -> None:
        super().__init__()
        self.heads = dict(heads)  # not submodules: the network owns them
        links = []
        for a, b in pairs:
            if a in heads and b in heads and not (heads[a].per_token and heads[b].per_token):
                links += [(a, b), (b, a)]
        self.links = sorted(set(links))
        self.maps = nn.ModuleDict()
        for dst, src in self.links:
            n_src, n_dst = len(heads[src].labels), len(heads[dst].labels)
            attend = set_attention and heads[dst].per_token and heads[src].label_sets
            self.maps[f"{dst}__from__{src}"] = (LabelSetAttention(n_src, n_dst, hidden_size) if attend
                                                else PartnerShift(n_src, n_dst))

    def forward(self, logits: dict[str, torch.Tensor], features: Features) -> dict[str, torch.Tensor]:
        fused = dict(logits)
        for dst, src in self.links:
            partner = self.heads[src].partner_distribution(logits[src], features.mask)
            fused[dst] = self.heads[dst].add_shift(fused[dst], self.maps[f"{dst}__from__{src}"](partner, features))
        return fused
