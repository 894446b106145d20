"""Pattern pools with held-out splits, and text pieces that keep their entity spans: the generator's machinery.

A `Pool` holds the patterns of one kind (the frames of a language, the paraphrases of one intent, ...) under
stable ids ``<pool>/<k>``; `split_of` assigns each id to train, val or test once, independent of any seed, so a
generator that draws a split's patterns only from that split's part gives a test split of phrasings training
never saw. A `Piece` is text plus the character spans of the entities filled into it; `fill` and `join` keep the
spans right through template filling and concatenation.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["SPLITS", "split_of", "Pool", "Piece", "fill", "join"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
_SLOT = re.compile(r"\{(\w+)\}")


def split_of(k: int, size: int) -> str:
    """The split of pattern ``k`` (0-based) of a pool of ``size``: every fifth (k mod 5 == 3) val, every fifth
    (k mod 5 == 4) test, the rest train; a pool of 3 or 4 gives its last two to val and test."""
    if size < 3:
        raise ValueError(f"a pool needs at least 3 patterns (one per split), got {size}")
    if size < 5:
        return {size - 2: "val", size - 1: "test"}.get(k, "train")
    return {3: "val", 4: "test"}.get(k % 5, "train")


@dataclass(frozen=True)
class Pool:
    """Patterns of one kind under ids ``<name>/<k>``, each in one split (`split_of`)."""

    name: str
    patterns: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(set(self.patterns)) != len(self.patterns):
            raise ValueError(f"pool {self.name}: duplicate patterns")
        split_of(0, len(self.patterns))  # size check

    def part(self, split: str | None) -> list[tuple[str, str]]:
        """``(id, pattern)`` of the patterns of ``split`` (None: the whole pool, for pools every split shares)."""
        n = len(self.patterns)
        return [(f"{self.name}/{k}", p) for k, p in enumerate(self.patterns) if split in (None, split_of(k, n))]

    def draw(self, split: str | None, rng: random.Random) -> tuple[str, str]:
        """A random ``(id, pattern)`` of ``split`` (None: of the whole pool)."""
        return rng.choice(self.part(split))


@dataclass(frozen=True)
class Piece:
    """Text and the entity spans in it: ``[(start, end, label)]`` with ``text[start:end]`` the entity."""

    text: str
    spans: tuple[tuple[int, int, str], ...] = field(default_factory=tuple)


def fill(template: str, values: Mapping[str, Callable[[], Piece]]) -> Piece:
    """``template`` with each ``{slot}`` replaced by ``values[slot]()``; the pieces' spans move with them."""
    text, spans, last = "", [], 0
    for match in _SLOT.finditer(template):
        text += template[last : match.start()]
        piece = values[match.group(1)]()
        spans += [(len(text) + s, len(text) + e, label) for s, e, label in piece.spans]
        text += piece.text
        last = match.end()
    return Piece(text + template[last:], tuple(spans))


def join(pieces: Sequence[Piece], sep: str = " ") -> Piece:
    """The pieces joined by ``sep`` (empty ones left out), spans shifted to their place."""
    text, spans = "", []
    for piece in (p for p in pieces if p.text):
        if text:
            text += sep
        spans += [(len(text) + s, len(text) + e, label) for s, e, label in piece.spans]
        text += piece.text
    return Piece(text, tuple(spans))
