"""BIO tags and character spans: the two forms of a token-level (slot filling) label.

A token task's label in a record is a list of BIO tag strings, one per whitespace-separated word of
``record["text"]`` (``text.split()``): ``O``, ``B-<type>`` (a word that starts an entity) or ``I-<type>`` (a word
that continues the entity of the word before it); ``None`` when the example has no annotation. Annotation tools
export character spans instead, ``[{"start": 10, "end": 18, "label": "date"}]`` (``text[start:end]`` is the
entity): `spans_to_bio` and `bio_to_spans` convert between the two, so that
``bio_to_spans(text, spans_to_bio(text, spans)) == spans`` for word-aligned spans sorted by ``start``.

Bad input raises `DataSourceError` ``<where>: <what>; expected <what>``, where ``where`` (``file:line``, maybe
with the column) comes from the caller. ``repair=True`` fixes what has one obvious fix instead of raising: an
``I-x`` that does not follow ``B-x``/``I-x`` becomes ``B-x``, and a span that starts or ends inside a word is
snapped to the words it overlaps. Overlapping spans, spans outside the text, a tag count that differs from the
word count and tags that are not BIO are errors either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from intentfusion.data.alignment import word_spans
from intentfusion.errors import DataSourceError

__all__ = [
    "OUTSIDE",
    "check_tag_count",
    "validate_bio",
    "repair_bio",
    "check_tags",
    "spans_to_bio",
    "bio_to_spans",
]

OUTSIDE = "O"
TAG_RE = re.compile(r"^[BI]-\S+$")
BIO_FORM = "O, B-<type> or I-<type> (type without whitespace)"
REPAIR_HINT = "bio_repair: true"
SPAN_FORM = '{"start": int, "end": int, "label": str}'


def check_tag_count(text: str, tags: Sequence[str], where: str) -> None:
    """Raise unless ``tags`` has one tag per whitespace-separated word of ``text``."""
    n_words = len(text.split())
    if len(tags) != n_words:
        raise DataSourceError(
            where,
            f"{len(tags)} BIO tag(s) for {n_words} word(s)",
            "one tag per whitespace-separated word of the text",
        )


def _check_forms(tags: Sequence[Any], where: str) -> None:
    for i, tag in enumerate(tags, start=1):
        if not isinstance(tag, str) or (tag != OUTSIDE and not TAG_RE.match(tag)):
            raise DataSourceError(where, f"tag {i} {tag!r} is not a BIO tag", BIO_FORM)


def _bad_continuations(tags: Sequence[str]) -> list[int]:
    """Indices of the ``I-x`` tags that do not follow ``B-x`` or ``I-x``."""
    bad, prev = [], OUTSIDE
    for i, tag in enumerate(tags):
        if tag.startswith("I-") and (prev == OUTSIDE or prev[2:] != tag[2:]):
            bad.append(i)
        prev = tag
    return bad


def validate_bio(tags: Sequence[str], where: str) -> None:
    """Raise unless every tag is BIO and every ``I-x`` follows ``B-x`` or ``I-x`` (the first offender is named)."""
    _check_forms(tags, where)
    bad = _bad_continuations(tags)
    if bad:
        i = bad[0]
        prev = f"'{tags[i - 1]}'" if i else "the start"
        raise DataSourceError(
            where,
            f"tag {i + 1} '{tags[i]}' follows {prev}",
            f"I-{tags[i][2:]} only after B-{tags[i][2:]} or I-{tags[i][2:]} ({REPAIR_HINT} makes it B-{tags[i][2:]})",
        )


def repair_bio(tags: Sequence[str], where: str = "tags") -> list[str]:
    """A copy of ``tags`` where each ``I-x`` that does not follow ``B-x``/``I-x`` becomes ``B-x``.

    Tags that are not BIO at all (``X``, ``B-``) cannot be repaired and raise naming ``where``.
    """
    _check_forms(tags, where)
    out = list(tags)
    for i in _bad_continuations(out):
        out[i] = "B-" + out[i][2:]
    return out


def check_tags(text: str, tags: Sequence[str], where: str, repair: bool = False) -> list[str]:
    """``tags`` as a list, checked against ``text`` (one per word, valid BIO; `repair_bio` first if ``repair``)."""
    check_tag_count(text, tags, where)
    if repair:
        return repair_bio(tags, where)
    validate_bio(tags, where)
    return list(tags)


def _span(span: Any, index: int, n_chars: int, where: str) -> tuple[int, int, str]:
    ok = (
        isinstance(span, Mapping)
        and all(isinstance(span.get(k), int) and not isinstance(span.get(k), bool) for k in ("start", "end"))
        and isinstance(span.get("label"), str)
    )
    if not ok:
        raise DataSourceError(where, f"span {index + 1} is {str(span)[:80]}", SPAN_FORM)
    start, end, label = span["start"], span["end"], span["label"]
    if not label or any(c.isspace() for c in label) or label == OUTSIDE:
        raise DataSourceError(where, f"span {index + 1} has label {label!r}", "a non-empty label without whitespace")
    if start < 0 or end > n_chars or start >= end:
        raise DataSourceError(
            where,
            f"span {index + 1} [{start}, {end}) '{label}' is outside the text (length {n_chars})",
            f"0 <= start < end <= {n_chars}",
        )
    return start, end, label


def spans_to_bio(
    text: str, spans: Sequence[Mapping[str, Any]], where: str = "spans", repair: bool = False
) -> list[str]:
    """One BIO tag per whitespace-separated word of ``text`` from character spans ``{start, end, label}``.

    A word is inside a span if it overlaps it; a span must start at a word's start and end at a word's end
    (``repair``: snapped to the words it overlaps instead of an error). Spans may come in any order; overlapping
    spans (also two snapped spans that share a word), spans outside the text and spans that cover no word raise.
    """
    words = word_spans(text)
    checked = sorted((_span(s, i, len(text), where) + (i,) for i, s in enumerate(spans)), key=lambda s: s[:2])
    for (s1, e1, l1, i1), (s2, e2, l2, i2) in zip(checked, checked[1:], strict=False):
        if s2 < e1:
            raise DataSourceError(
                where,
                f"span {i1 + 1} [{s1}, {e1}) '{l1}' and span {i2 + 1} [{s2}, {e2}) '{l2}' overlap",
                "spans that do not overlap",
            )
    starts, ends = {s for s, _ in words}, {e for _, e in words}
    tags = [OUTSIDE] * len(words)
    for start, end, label, i in checked:
        inside = [w for w, (ws, we) in enumerate(words) if ws < end and start < we]
        if not inside:
            raise DataSourceError(
                where,
                f"span {i + 1} [{start}, {end}) '{label}' covers no word ({text[start:end]!r})",
                "a span over one or more words",
            )
        if not repair and (start not in starts or end not in ends):
            raise DataSourceError(
                where,
                f"span {i + 1} [{start}, {end}) '{label}' ({text[start:end]!r}) does not align to word boundaries",
                f"a span that starts at a word's start and ends at a word's end ({REPAIR_HINT} snaps it to "
                f"the words it overlaps: [{words[inside[0]][0]}, {words[inside[-1]][1]}))",
            )
        if any(tags[w] != OUTSIDE for w in inside):
            raise DataSourceError(
                where,
                f"span {i + 1} [{start}, {end}) '{label}' shares a word with another span once snapped to words",
                "spans that do not overlap",
            )
        tags[inside[0]] = f"B-{label}"
        for w in inside[1:]:
            tags[w] = f"I-{label}"
    return tags


def bio_to_spans(text: str, tags: Sequence[str], where: str = "tags", repair: bool = False) -> list[dict[str, Any]]:
    """Character spans ``[{"start", "end", "label"}, ...]`` (sorted by start) of the entities in BIO ``tags``.

    ``text[start:end]`` is the entity's words joined as in ``text``. ``tags`` is checked as in `check_tags`
    (``repair``: an ``I-x`` without ``B-x`` starts an entity instead of an error).
    """
    tags = check_tags(text, tags, where, repair)
    words = word_spans(text)
    spans: list[dict[str, Any]] = []
    for (ws, we), tag in zip(words, tags, strict=True):
        if tag.startswith("B-"):
            spans.append({"start": ws, "end": we, "label": tag[2:]})
        elif tag.startswith("I-"):
            spans[-1]["end"] = we
    return spans
