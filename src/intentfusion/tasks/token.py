"""`token`: one BIO tag per whitespace word (slots, entities), a tagging head on the token states."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from intentfusion.data.alignment import align_labels, continuation_map, word_spans
from intentfusion.data.slots import bio_to_spans, check_tags, spans_to_bio
from intentfusion.errors import ConfigError, DataError, DataSourceError
from intentfusion.tasks.base import EncodeContext, Features, ReportContext, TaskType, TextContext
from intentfusion.tasks.registry import register_task_type
from intentfusion.types import IGNORE_INDEX, Records
from intentfusion.utils.layers import lstm_packed, lstm_unpacked, masked_mean

if TYPE_CHECKING:
    from torchmetrics import MetricCollection

TAGS_CELL = "space-separated BIO tags, one per word of the text (in JSONL also a list of tag strings)"
SPANS_CELL = 'a JSON list of {"start": int, "end": int, "label": str} (in JSONL also a list)'
TOKEN_FORMATS: tuple[str, ...] = ("tags", "spans")
LEADING_PUNCTUATION = "\"'([{<¿¡«“‘„"  # trimmed off an entity's edges: glued to a word, not part of the value
TRAILING_PUNCTUATION = ".,;:!?)]}>\"'»”’…"


def trim_span(text: str, start: int, end: int) -> tuple[int, int]:
    """`(start, end)` without the punctuation glued to the entity's first / last word (`#48213?` -> `#48213`);
    unchanged when nothing else would be left."""
    s, e = start, end
    while s < e and text[s] in LEADING_PUNCTUATION:
        s += 1
    while e > s and text[e - 1] in TRAILING_PUNCTUATION:
        e -= 1
    return (s, e) if e > s else (start, end)


@register_task_type("token")
class TokenTask(TaskType):
    """Token-level tagging (BIO slots / entities) on the token states -> emissions (N, T, C).

    `layer`: `linear` (dropout + linear) or `bilstm_mlp` (the S1 system's head: a BiLSTM over the token states,
    then Linear-ReLU-dropout-Linear). `crf=True` adds a linear-chain CRF (`pytorch-crf`) over each utterance's
    words (the labelled first subwords) whose transitions that BIO forbids (`O -> I-x`, `B-x -> I-y`, start ->
    `I-x`) are held at -10^4, so its Viterbi decoding never emits an invalid sequence.

    Data: a record's label is one tag per `text.split()` word (a file cell: space-separated tags or a JSON list,
    or with ``token_format: spans`` character spans). Targets are (N, T) subword labels: each word's tag on its
    first subword, `IGNORE_INDEX` on special tokens, continuation subwords and padding
    (`intentfusion.data.alignment`). Loss: cross-entropy over the labelled positions (class-weighted when weights
    are set), or the CRF's negative log-likelihood of each utterance's word tags; either summed, and divided by
    the labelled positions by the module. Metrics: span precision / recall / F1 (seqeval, strict IOB2; `f1`
    enters `<split>/score`) and token accuracy. Decoding: entities with character offsets, without the
    punctuation glued to their edge words.
    """

    reads_token_states: ClassVar[bool] = True
    needs_offsets: ClassVar[bool] = True
    per_token: ClassVar[bool] = True
    exact_match: ClassVar[bool] = True
    score_metric: ClassVar[str] = "f1"
    headline_metric: ClassVar[str] = "f1"
    output_key: ClassVar[str] = "entities"
    report_section: ClassVar[str] = "token_tasks"
    options_key: ClassVar[str | None] = "token_head"

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

    # ------------------------------------------------------------------------------------- data side
    @classmethod
    def parse(cls, value: Any, text: str, where: str, options: Mapping[str, Any]) -> list[str] | None:
        """BIO tags (one per word of `text`) from a tags or spans cell (``options``: ``token_format``,
        ``bio_repair``); None for an empty cell / null / absent key, or an empty text (the example is dropped)."""
        if value is None or (isinstance(value, str) and not value.strip()) or not text.strip():
            return None
        repair = bool(options.get("bio_repair", False))
        if options.get("token_format", "tags") == "tags":
            if isinstance(value, str):
                tags = value.split()
            elif isinstance(value, list) and all(isinstance(t, str) for t in value):
                tags = value
            else:
                raise DataSourceError(where, f"a JSON {type(value).__name__} {str(value)[:60]}", TAGS_CELL)
            return check_tags(text, tags, where, repair)
        spans = value
        if isinstance(value, str):
            try:
                spans = json.loads(value)
            except json.JSONDecodeError as e:
                raise DataSourceError(where, f"invalid JSON ({e.msg}) {value[:60]!r}", SPANS_CELL) from None
        if not isinstance(spans, list):
            raise DataSourceError(where, f"a JSON {type(spans).__name__} {str(spans)[:60]}", SPANS_CELL)
        return spans_to_bio(text, spans, where, repair)

    @classmethod
    def label_set(cls, task: str, records: Mapping[str, Records]) -> list[str]:
        """`O` first, then the training split's tags, then tags that only the other splits have (ATIS has a
        few): never trained, they are kept so that their gold spans count as misses instead of vanishing."""
        train = records["train"]
        seen = {tag for r in train if r.get(task) is not None for tag in r[task]}
        other = {tag for recs in records.values() for r in recs if r.get(task) is not None for tag in r[task]}
        if other - seen:
            print(f"[intentfusion] task '{task}': {len(other - seen)} tag(s) occur only outside 'train': "
                  f"{sorted(other - seen)[:5]}{' ...' if len(other - seen) > 5 else ''} (never predicted)")
        return ["O", *sorted(seen - {"O"}), *sorted(other - seen - {"O"})]

    @classmethod
    def encode(cls, task: str, labels: Sequence[str], records: Records, context: EncodeContext) -> torch.Tensor:
        """(N, longest) subword labels: each word's tag on its first subword, -100 elsewhere (with
        ``label_all_subwords`` the continuation subwords get the word's tag as `I-x`). Words cut by `max_length`
        are counted in ``context.stats["truncated_words"]``."""
        index = {label: k for k, label in enumerate(labels)}
        every = bool(context.options.get("label_all_subwords", False))
        continuation = continuation_map(labels) if every else None
        out = torch.full((len(records), int(context.lengths.max()) if len(records) else 0), IGNORE_INDEX,
                         dtype=torch.long)
        cut_words = 0
        for i, (text, record) in enumerate(zip(context.texts, records, strict=True)):
            tags = record.get(task)
            if tags is None:  # another source's example, or no annotation: no loss, no metric
                continue
            if isinstance(tags, str):
                raise DataError(f"split '{context.split}', example {i}, task '{task}'", f"a string {tags[:40]!r}",
                                "a list of BIO tags (file loaders read the task's column as tags)")
            spans = word_spans(text)
            if len(tags) != len(spans):
                raise DataError(f"split '{context.split}', example {i}, task '{task}'",
                                f"{len(tags)} tag(s) for {len(spans)} word(s)", "one BIO tag per whitespace word")
            unseen = sorted({t for t in tags if t not in index})
            if unseen:
                raise DataError(f"split '{context.split}', example {i}, task '{task}'",
                                f"tag(s) {unseen} unseen in 'train'", f"tags among {len(index)} of the training split")
            aligned, cut = align_labels(context.offsets[i].tolist(), spans, [index[t] for t in tags],
                                        every_subword=every, continuation=continuation)
            out[i, : len(aligned)] = torch.as_tensor(aligned, dtype=torch.long)
            cut_words += cut
        context.stats.setdefault("truncated_words", {})[task] = cut_words
        return out

    @staticmethod
    def rows(column: torch.Tensor, idx: torch.Tensor, length: int) -> torch.Tensor:
        return column[idx, :length]

    # ------------------------------------------------------------------------------------- network
    def forward(self, features: Features) -> torch.Tensor:
        if features.states is None:
            raise ValueError("a token head needs token states; the pooled-feature cache cannot serve it")
        x = features.states
        if self.lstm is not None:
            mask = features.mask if features.mask is not None else x.new_ones(x.shape[:2])
            x = self.mlp((lstm_packed if self.packed else lstm_unpacked)(self.lstm, x, mask))
        return self.linear(self.dropout(x))

    @staticmethod
    def labelled(target: torch.Tensor) -> torch.Tensor:
        """Per example (N,): whether some word is tagged."""
        return (target != IGNORE_INDEX).any(-1)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of the labelled positions' losses, or of the utterances' CRF NLL; the labelled positions)."""
        keep = target != IGNORE_INDEX
        if self.crf is None:
            weight = None if self.class_weight is None else self.class_weight.to(logits.device)
            summed = nn.functional.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), weight=weight,
                                                 ignore_index=IGNORE_INDEX, reduction="sum")
            return summed, keep.sum()
        rows = keep.any(-1)
        if not bool(rows.any()):
            return logits.sum() * 0.0, keep.sum()
        emissions, tags, mask = _words(logits[rows].float(), keep[rows], target[rows])
        self._constrain()
        return -self.crf(emissions, tags, mask=mask, reduction="sum"), keep.sum()

    def correct(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        keep = target != IGNORE_INDEX
        return ((self.predict(logits, keep) == target) | ~keep).all(-1)

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
        return self.predict(logits, target != IGNORE_INDEX), target

    def metrics(self) -> MetricCollection:
        """A span-level `precision` / `recall` / `f1` / `token_acc` metric."""
        from torchmetrics import MetricCollection

        from intentfusion.evaluation.span_metrics import SpanF1

        return MetricCollection({"spans": SpanF1(self.labels)}, compute_groups=False)

    def partner_distribution(self, logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The pooled slot evidence: the mean over the utterance's tokens of the per-token distributions."""
        probs = logits.softmax(-1)
        return masked_mean(probs, mask) if mask is not None else probs.mean(1)

    @staticmethod
    def add_shift(logits: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """A partner's shift: (N, C) the same at every position (the intent conditions the tags), or per token
        (N, T, C) (`LabelSetAttention`: each token its own intent)."""
        return logits + (shift if shift.ndim == logits.ndim else shift.unsqueeze(1))

    # ------------------------------------------------------------------------------------- predictions
    def decode(self, logits: Sequence[torch.Tensor], contexts: Sequence[TextContext], temperature: float = 1.0,
               distribution: bool = False) -> list[list[dict[str, Any]]]:
        """Per text, its entities `[{"label", "text", "start", "end", "confidence"}]`, sorted by `start`.

        `logits`: each text's (T, C) token logits (its real positions, no padding); each context carries the
        text, its words' character spans and the word of each position. Each word takes the tag `predict` gives
        its first subword (as it was labelled in training: the argmax, or the CRF's Viterbi path over the
        words); a word without a subword (cut by truncation) is `O`. Tags become spans leniently (`B-x` starts
        an entity, `I-x` continues one of type x and starts one after `O` or another type); `start` / `end` are
        character offsets into the text (`text[start:end] == entity["text"]`), without the punctuation glued to
        the edge words (`trim_span`); `confidence` = the lowest, over the entity's words, softmax(logits / T)
        probability of the word's tag (with a CRF: of its tag under the per-token softmax).
        """
        return [self._entities(row, context, temperature) for row, context in zip(logits, contexts, strict=True)]

    def _entities(self, logits: torch.Tensor, context: TextContext, temperature: float) -> list[dict[str, Any]]:
        first: dict[int, int] = {}
        for position, word in enumerate(context.words):
            if word is not None:
                first.setdefault(word, position)
        device = self.linear.weight.device  # a CRF decodes where its transitions are
        positions = torch.zeros(len(context.words), dtype=torch.bool, device=device)
        positions[list(first.values())] = True
        with torch.no_grad():
            ids = self.predict(logits.float().to(device)[None], positions[None])[0].tolist()
            probs = (logits.float() / temperature).softmax(-1)
        entities: list[dict[str, Any]] = []
        previous = "O"
        for word, (start, end) in enumerate(context.spans):
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
        return [_entity(context.text, e["label"], e["start"], e["end"], confidence=e["confidence"])
                for e in entities]

    @classmethod
    def empty(cls, distribution: bool = False) -> list[dict[str, Any]]:
        return []

    def gold(self, target: torch.Tensor, context: TextContext) -> list[dict[str, Any]] | None:
        """The gold entities (lenient like `decode`), or None when the example has no tags."""
        tags = [self.labels[k] for k in target[target != IGNORE_INDEX].tolist()]
        if not tags:
            return None
        tags += ["O"] * (len(context.spans) - len(tags))  # words cut by truncation
        spans = bio_to_spans(context.text, tags, repair=True)
        return [_entity(context.text, e["label"], e["start"], e["end"]) for e in spans]

    # ------------------------------------------------------------------------------------- evaluation
    def report(self, task: str, outputs: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
               context: ReportContext) -> dict[str, Any]:
        """Span report (seqeval, per slot type) on every split that labels the task, validation included."""
        from intentfusion.evaluation.span_metrics import span_report

        reports = {}
        for split, (logits, gold) in outputs.items():
            keep = gold != IGNORE_INDEX
            if bool(keep.any()):
                with torch.inference_mode():
                    reports[split] = span_report(self.predict(logits, keep), gold, self.labels)
        return {"splits": reports}

    @staticmethod
    def report_lines(task: str, section: Mapping[str, Any]) -> list[str]:
        from intentfusion.evaluation.report_md import token_tables

        return token_tables(task, section["splits"])

    def _constrain(self) -> None:
        """Hold the transitions BIO forbids at -10^4 (the optimizer may have moved them)."""
        with torch.no_grad():
            self.crf.transitions.masked_fill_(self.forbidden, -1e4)
            self.crf.start_transitions.masked_fill_(self.forbidden_start, -1e4)


def _entity(text: str, label: str, start: int, end: int, **extra: Any) -> dict[str, Any]:
    start, end = trim_span(text, start, end)
    return {"label": label, "text": text[start:end], "start": start, "end": end, **extra}


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
