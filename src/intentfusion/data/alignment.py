"""Word labels <-> subword positions: project one label per whitespace word onto the tokenizer's subwords.

A token task labels the words of ``text.split()``; the model sees the subwords of `encode_texts`. Both are tied
together by character offsets: `word_spans` gives each word's ``(start, end)``, the tokenizer's
``offset_mapping`` each subword's. A subword belongs to the word its characters overlap (a byte-level BPE piece
whose offsets include the leading space still overlaps only its own word). Pieces with no word are ``None``:
special tokens (``(0, 0)``), zero-width pieces (byte-level BPE's stand-alone ``Ġ`` with ``trim_offsets``) and
pieces covering only whitespace (the same ``Ġ`` without ``trim_offsets``). A word's first piece that is followed
by a piece of the same word starting at the same character is a marker, also ``None``: XLM-R's stand-alone
``▁`` (its offsets are the first character of the piece after it, not zero-width), and likewise the leading
bytes of a multi-byte first character in byte-level BPE; the word's label goes on the piece after it.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence

from intentfusion.types import IGNORE_INDEX

__all__ = ["align_labels", "continuation_map", "subword_to_word", "word_spans"]

_WORD = re.compile(r"\S+")


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character ``(start, end)`` of each whitespace-separated word, in order (one per ``text.split()`` item)."""
    return [m.span() for m in _WORD.finditer(text)]


def subword_to_word(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int | None]:
    """The word index of each subword; ``None`` for special tokens, whitespace-only / zero-width and marker pieces.

    ``offsets``: the tokenizer's ``offset_mapping`` of one encoded text; ``spans``: its `word_spans`.
    """
    starts = [s for s, _ in spans]
    ends = [e for _, e in spans]
    words: list[int | None] = []
    for start, end in offsets:
        w = bisect_right(ends, start)  # the first word ending after the piece starts
        words.append(w if end > start and w < len(spans) and starts[w] < end else None)
    for i in range(len(words) - 1):  # a word's first piece, followed by one starting at the same character
        w = words[i]
        if w is not None and words[i + 1] == w and (i == 0 or words[i - 1] != w):
            if max(offsets[i][0], starts[w]) == max(offsets[i + 1][0], starts[w]):
                words[i] = None
    return words


def align_labels(
    offsets: Sequence[tuple[int, int]],
    spans: Sequence[tuple[int, int]],
    labels: Sequence[int],
    *,
    every_subword: bool = False,
    continuation: Mapping[int, int] | None = None,
) -> tuple[list[int], int]:
    """(a label id per subword position, number of words no subword covers, i.e. cut by truncation).

    Each word's label id goes on its first subword (see `subword_to_word`); its other subwords get
    ``IGNORE_INDEX``, or with ``every_subword`` the label mapped through ``continuation`` (`continuation_map`:
    ``B-x`` -> ``I-x``; labels not in it are kept). Pieces with no word get ``IGNORE_INDEX``.
    """
    if len(labels) != len(spans):
        raise ValueError(f"{len(labels)} labels for {len(spans)} words; expected one label per word")
    continuation = continuation or {}
    aligned: list[int] = []
    seen: set[int] = set()
    for w in subword_to_word(offsets, spans):
        if w is None:
            aligned.append(IGNORE_INDEX)
        elif w not in seen:
            seen.add(w)
            aligned.append(labels[w])
        elif every_subword:
            aligned.append(continuation.get(labels[w], labels[w]))
        else:
            aligned.append(IGNORE_INDEX)
    return aligned, len(spans) - len(seen)


def continuation_map(labels: Sequence[str]) -> dict[int, int]:
    """Label ids ``B-x`` -> ``I-x`` for every type ``x`` that has both tags; ``labels[i]`` is the tag of id ``i``."""
    ids = {tag: i for i, tag in enumerate(labels)}
    return {i: ids["I-" + tag[2:]] for i, tag in enumerate(labels) if tag.startswith("B-") and "I-" + tag[2:] in ids}
