"""`encode_texts`: texts -> token ids, the one tokenization path of training, evaluation and the Predictor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def encode_texts(
    tokenizer: Any, texts: Sequence[str], max_length: int, max_chars: int | None = None
) -> tuple[list[list[int]], list[bool]]:
    """(token ids per text, whether each was truncated), special tokens included.

    One pass without truncation; only the texts over `max_length` tokens are encoded again, truncated (which
    keeps the closing special token), so every text is tokenized exactly as on its own. `max_chars` (the
    Predictor's guard against huge inputs) first cuts longer strings; a cut string that then fits the token
    budget (mostly whitespace, say) is tokenized whole, so the model still sees all it would have seen.
    """
    sources = [t[:max_chars] if max_chars is not None and len(t) > max_chars else t for t in texts]
    ids = tokenizer(sources, truncation=False, verbose=False)["input_ids"] if sources else []
    cut = [i for i, t in enumerate(texts) if len(sources[i]) < len(t)]
    whole = [i for i in cut if len(ids[i]) <= max_length]
    if whole:
        rows = tokenizer([texts[i] for i in whole], truncation=False, verbose=False)["input_ids"]
        for i, row in zip(whole, rows, strict=True):
            sources[i], ids[i] = texts[i], row
    long = [i for i, row in enumerate(ids) if len(row) > max_length]
    if long:
        rows = tokenizer([sources[i] for i in long], truncation=True, max_length=max_length)["input_ids"]
        for i, row in zip(long, rows, strict=True):
            ids[i] = row
    truncated = [len(sources[i]) < len(texts[i]) for i in range(len(texts))]
    for i in long:
        truncated[i] = True
    return ids, truncated
