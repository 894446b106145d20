"""One head per task type: the head owns its module, loss, metrics and decoding to labels and confidences.

A task declares its type (`tasks.types`, default `sequence`); the network builds `HEAD_TYPES[type]` for it, and
the training module, the evaluation suite, the Predictor and the export loop over heads instead of assuming
`(N, C)` logits. A new task type is one class here with the same verbs (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from intentfusion.errors import ConfigError
from intentfusion.models.parts import lstm_packed, lstm_unpacked
from intentfusion.types import IGNORE_INDEX

if TYPE_CHECKING:  # torchmetrics is imported when metrics are asked for: serving never needs it
    from torchmetrics import MetricCollection


@dataclass
class Features:
    """What the encoder hands the heads: the pooled vector (N, H) and, unless cached, token states (N, T, H)."""

    pooled: torch.Tensor
    states: torch.Tensor | None = None
    mask: torch.Tensor | None = None


class SequenceHead(nn.Module):
    """Utterance-level classification: dropout + linear on the pooled vector -> logits (N, C).

    Loss: cross-entropy summed over the labelled examples (label != -100), class-weighted when weights are set.
    Metrics: accuracy and macro-F1. Decoding: the argmax label and softmax(logits / T) as its confidence.
    """

    task_type: ClassVar[str] = "sequence"
    reads_token_states: ClassVar[bool] = False  # trains on cached pooled features too
    score_metric: ClassVar[str] = "f1_macro"  # the metric that enters `<split>/score`

    def __init__(self, labels: Sequence[str], hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.labels = list(labels)
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(hidden_size, len(self.labels))
        self.register_buffer("class_weight", None, persistent=False)

    def forward(self, features: Features) -> torch.Tensor:
        return self.linear(self.dropout(features.pooled))

    def set_class_weight(self, weight: Sequence[float] | None) -> None:
        """Per-class loss weights (None: unweighted)."""
        self.class_weight = None if weight is None else torch.as_tensor([float(w) for w in weight])

    @staticmethod
    def labelled(target: torch.Tensor) -> torch.Tensor:
        """Which targets count (N,): not `IGNORE_INDEX`."""
        return target != IGNORE_INDEX

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of the labelled examples' losses, their number)."""
        weight = None if self.class_weight is None else self.class_weight.to(logits.device)
        summed = nn.functional.cross_entropy(
            logits.float(), target, weight=weight, ignore_index=IGNORE_INDEX, reduction="sum"
        )
        return summed, self.labelled(target).sum()

    def metrics(self) -> MetricCollection:
        """A fresh `acc` / `f1_macro` collection; `f1_macro` is what enters `<split>/score`."""
        from torchmetrics import MetricCollection
        from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

        n = len(self.labels)
        return MetricCollection(
            {
                "acc": MulticlassAccuracy(n, average="micro", ignore_index=IGNORE_INDEX),
                "f1_macro": MulticlassF1Score(n, average="macro", ignore_index=IGNORE_INDEX),
            }
        )

    def predict(self, logits: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Label indices (N,) (`positions` is for token heads)."""
        return logits.argmax(-1)

    def metric_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the metrics take: the logits (as float) and the targets."""
        return logits.float(), target

    @staticmethod
    def decode(
        logits: torch.Tensor, labels: Sequence[str], temperature: float = 1.0, distribution: bool = False
    ) -> list[dict[str, Any]]:
        """Per example `{"label", "confidence"[, "distribution"]}`, confidence = softmax(logits / T) of the label."""
        probs = (logits.float() / temperature).softmax(-1)
        out = []
        for index, row in zip(logits.argmax(-1).tolist(), probs.tolist(), strict=True):
            result: dict[str, Any] = {"label": labels[index], "confidence": row[index]}
            if distribution:
                result["distribution"] = dict(zip(labels, row, strict=True))
            out.append(result)
        return out


class TokenHead(SequenceHead):
    """Token-level tagging (BIO slots / entities) on the token states -> emissions (N, T, C).

    `layer`: `linear` (dropout + linear) or `bilstm_mlp` (the S1 system's head: a BiLSTM over the token states,
    then Linear-ReLU-dropout-Linear). `crf=True` adds a linear-chain CRF (`pytorch-crf`) over each utterance's
    words (the labelled first subwords) whose transitions that BIO forbids (`O -> I-x`, `B-x -> I-y`, start ->
    `I-x`) are held at -10^4, so its Viterbi decoding never emits an invalid sequence.

    Targets are (N, T) subword labels, `IGNORE_INDEX` on special tokens, continuation subwords and padding
    (`intentfusion.data.alignment`). Loss: cross-entropy over the labelled positions (class-weighted when weights
    are set), or the CRF's negative log-likelihood of each utterance's word tags; either summed, and divided by
    the labelled positions by the module. Metrics: span precision / recall / F1 (seqeval, strict IOB2; `f1`
    enters `<split>/score`) and token accuracy.
    """

    task_type: ClassVar[str] = "token"
    reads_token_states: ClassVar[bool] = True  # needs token states: no training on cached pooled features
    score_metric: ClassVar[str] = "f1"

    def __init__(self, labels: Sequence[str], hidden_size: int, dropout: float = 0.1, layer: str = "linear",
                 lstm_size: int = 128, crf: bool = False) -> None:
        super().__init__(labels, hidden_size, dropout)
        if layer not in ("linear", "bilstm_mlp"):
            raise ConfigError("model.token_head.layer", f"{layer!r}", "linear or bilstm_mlp")
        self.layer = layer
        self.lstm = None
        if layer == "bilstm_mlp":
            self.lstm = nn.LSTM(hidden_size, lstm_size, batch_first=True, bidirectional=True)
            self.mlp = nn.Sequential(nn.Linear(2 * lstm_size, hidden_size), nn.ReLU(), nn.Dropout(dropout))
        self.packed = True  # False: the LSTM without packed sequences, for the ONNX export (`OnnxGraph`)
        self.crf = None
        if crf:
            from torchcrf import CRF

            self.crf = CRF(len(self.labels), batch_first=True)
            self.register_buffer("forbidden", _forbidden_transitions(self.labels), persistent=False)
            self.register_buffer("forbidden_start", _forbidden_starts(self.labels), persistent=False)

    def forward(self, features: Features) -> torch.Tensor:
        if features.states is None:
            raise ValueError("a token head needs token states; the pooled-feature cache cannot serve it")
        x = features.states
        if self.lstm is not None:
            mask = features.mask if features.mask is not None else x.new_ones(x.shape[:2])
            x = self.mlp((lstm_packed if self.packed else lstm_unpacked)(self.lstm, x, mask))
        return self.linear(self.dropout(x))

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of the labelled positions' losses, or of the utterances' CRF NLL; the labelled positions)."""
        if self.crf is None:
            return super().loss(logits.flatten(0, 1), target.flatten())
        keep = self.labelled(target)
        rows = keep.any(-1)
        if not bool(rows.any()):
            return logits.sum() * 0.0, keep.sum()
        emissions, tags, mask = _words(logits[rows].float(), keep[rows], target[rows])
        self._constrain()
        return -self.crf(emissions, tags, mask=mask, reduction="sum"), keep.sum()

    def predict(self, logits: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Tag ids (N, T): the argmax, or with a CRF the Viterbi path over `positions` (the words' first
        subwords, (N, T) bool), scattered back to those positions."""
        pred = logits.argmax(-1)
        if self.crf is None or positions is None or not bool(positions.any()):
            return pred
        rows = positions.any(-1)
        emissions, _, mask = _words(logits[rows].float(), positions[rows], None)
        self._constrain()
        paths = self.crf.decode(emissions, mask=mask)
        out = pred[rows].clone()
        for k, (row, path) in enumerate(zip(positions[rows], paths, strict=True)):
            out[k, row.nonzero().flatten()] = torch.as_tensor(path, device=out.device)
        pred[rows] = out
        return pred

    def metric_inputs(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the span metric takes: decoded tag ids (N, T) and the targets."""
        return self.predict(logits, self.labelled(target)), target

    def metrics(self) -> MetricCollection:
        """A fresh span-level `precision` / `recall` / `f1` / `token_acc` metric."""
        from torchmetrics import MetricCollection

        from intentfusion.evaluation.span_metrics import SpanF1

        return MetricCollection({"spans": SpanF1(self.labels)}, compute_groups=False)

    def decode_text(
        self,
        logits: torch.Tensor,
        words: Sequence[int | None],
        spans: Sequence[tuple[int, int]],
        text: str,
        temperature: float = 1.0,
    ) -> list[dict[str, Any]]:
        """One text's entities `[{"label", "text", "start", "end", "confidence"}]`, sorted by `start`.

        `logits`: the text's (T, C) token logits (its real positions, no padding); `words`: the word index of each
        position or None (`intentfusion.data.alignment.subword_to_word(offsets, spans)`); `spans`: the words'
        character `(start, end)` in `text` (`word_spans(text)`); the caller aligns (models never import data).
        Each word takes the tag `predict` gives its first subword (as it was labelled in training: the argmax, or
        the CRF's Viterbi path over the words); a word without a subword (cut by truncation) is `O`. Tags become
        spans as `intentfusion.data.slots.bio_to_spans(text, tags, repair=True)` does: `B-x` starts an entity,
        `I-x` continues one of type x and starts one after `O` or another type (lenient: the strict-IOB2 span
        metric would drop such an entity). `start` / `end` are character offsets into `text` (`text[start:end]
        == entity["text"]`, the words as written in `text`); `confidence` = the lowest, over the entity's words,
        softmax(logits / T) probability of the word's tag (with a CRF: of its tag under the per-token softmax).
        """
        first: dict[int, int] = {}
        for position, word in enumerate(words):
            if word is not None:
                first.setdefault(word, position)
        device = self.linear.weight.device  # a CRF decodes where its transitions are
        positions = torch.zeros(len(words), dtype=torch.bool, device=device)
        positions[list(first.values())] = True
        with torch.no_grad():
            ids = self.predict(logits.float().to(device)[None], positions[None])[0].tolist()
            probs = (logits.float() / temperature).softmax(-1)
        entities: list[dict[str, Any]] = []
        previous = "O"
        for word, (start, end) in enumerate(spans):
            position = first.get(word)
            tag = self.labels[ids[position]] if position is not None else "O"
            if tag == "O":
                previous = tag
                continue
            confidence = float(probs[position, ids[position]])
            if tag.startswith("I-") and previous != "O" and previous[2:] == tag[2:]:
                entity = entities[-1]
                entity["end"], entity["confidence"] = end, min(entity["confidence"], confidence)
            else:
                entities.append({"label": tag[2:], "start": start, "end": end, "confidence": confidence})
            previous = tag
        return [{"label": e["label"], "text": text[e["start"] : e["end"]], "start": e["start"], "end": e["end"],
                 "confidence": e["confidence"]} for e in entities]

    def _constrain(self) -> None:
        """Hold the transitions BIO forbids at -10^4 (the optimizer may have moved them)."""
        with torch.no_grad():
            self.crf.transitions.masked_fill_(self.forbidden, -1e4)
            self.crf.start_transitions.masked_fill_(self.forbidden_start, -1e4)


def _words(logits: torch.Tensor, positions: torch.Tensor, target: torch.Tensor | None
           ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Each row's `positions` moved to the front: (emissions (R, W, C), tags (R, W) or None, mask (R, W))."""
    counts = positions.sum(-1)
    width = int(counts.max())
    order = torch.argsort((~positions).to(torch.int8), dim=-1, stable=True)[:, :width]  # labelled first, in order
    mask = torch.arange(width, device=logits.device).unsqueeze(0) < counts.unsqueeze(1)
    emissions = logits.gather(1, order.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
    tags = None if target is None else target.gather(1, order).masked_fill(~mask, 0)
    return emissions, tags, mask


def _forbidden_transitions(labels: Sequence[str]) -> torch.Tensor:
    """(C, C) bool: `from -> to` pairs that strict BIO forbids (an `I-x` only after `B-x` or `I-x`)."""
    out = torch.zeros(len(labels), len(labels), dtype=torch.bool)
    for j, to in enumerate(labels):
        if to.startswith("I-"):
            for i, frm in enumerate(labels):
                out[i, j] = frm[2:] != to[2:] or frm == "O"
    return out


def _forbidden_starts(labels: Sequence[str]) -> torch.Tensor:
    return torch.tensor([label.startswith("I-") for label in labels])


HEAD_TYPES: dict[str, type[SequenceHead]] = {"sequence": SequenceHead, "token": TokenHead}


def head_type(task: str, name: str) -> type[SequenceHead]:
    """The head class of a task type; a `ConfigError` naming the task for an unknown type."""
    if name not in HEAD_TYPES:
        raise ConfigError(f"tasks.types.{task}", f"unknown task type {name!r}", f"one of {sorted(HEAD_TYPES)}")
    return HEAD_TYPES[name]
