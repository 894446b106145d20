"""`encode_texts`: texts -> token ids, the one tokenization path of training, evaluation and the Predictor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple


class Encoded(NamedTuple):
    """Token ids per text (special tokens included), whether each was truncated, and (on request) the
    character offsets of each token in the text that was tokenized ((0, 0) for special tokens)."""

    ids: list[list[int]]
    truncated: list[bool]
    offsets: list[list[tuple[int, int]]] | None = None


def encode_texts(
    tokenizer: Any, texts: Sequence[str], max_length: int, max_chars: int | None = None, offsets: bool = False
) -> Encoded:
    """Every text tokenized exactly as on its own, truncated to `max_length` tokens.

    One pass without truncation; only the texts over `max_length` tokens are encoded again, truncated (which
    keeps the closing special token). `max_chars` (the Predictor's guard against huge inputs) first cuts longer
    strings; a cut string that then fits the token budget (mostly whitespace, say) is tokenized whole, so the
    model still sees all it would have seen. `offsets=True` also returns the tokens' character offsets (a fast
    tokenizer's `offset_mapping`), for aligning word-level labels (`intentfusion.data.alignment`).
    """
    extra = {"return_offsets_mapping": True} if offsets else {}

    def run(batch: list[str], **kwargs: Any) -> tuple[list[list[int]], list[Any]]:
        if not batch:
            return [], []
        out = tokenizer(batch, verbose=False, **extra, **kwargs)
        return out["input_ids"], out["offset_mapping"] if offsets else [None] * len(batch)

    sources = [t[:max_chars] if max_chars is not None and len(t) > max_chars else t for t in texts]
    ids, spans = run(sources, truncation=False)
    cut = [i for i, t in enumerate(texts) if len(sources[i]) < len(t)]
    whole = [i for i in cut if len(ids[i]) <= max_length]
    for i, row, span in zip(whole, *run([texts[i] for i in whole], truncation=False), strict=True):
        sources[i], ids[i], spans[i] = texts[i], row, span
    long = [i for i, row in enumerate(ids) if len(row) > max_length]
    for i, row, span in zip(long, *run([sources[i] for i in long], truncation=True, max_length=max_length),
                            strict=True):
        ids[i], spans[i] = row, span
    truncated = [len(sources[i]) < len(texts[i]) for i in range(len(texts))]
    for i in long:
        truncated[i] = True
    return Encoded(ids, truncated, [[tuple(o) for o in row] for row in spans] if offsets else None)
