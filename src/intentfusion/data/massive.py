"""MASSIVE (FitzGerald et al. 2022): 1M utterances in 51 locales, 60 intents in 18 scenarios, slots.

`load_massive` reads the release (``<root>/data/<locale>.jsonl`` or ``<root>/<locale>.jsonl``, one JSON object a
line with ``partition`` train/dev/test) or, without it, the hub copy (``AmazonScience/massive``, one locale a
configuration). Slots come from ``annot_utt``, the bracket annotation ``wake me up at [time : nine am]``
(`parse_annotation`), as BIO tags over the words of the utterance.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from intentfusion.data.files import require
from intentfusion.data.slots import spans_to_bio
from intentfusion.data.sources_files import read_table
from intentfusion.data.sources_hub import HUB_SPLITS, hub_copy, split_rows
from intentfusion.data.transforms import Splits, clean_texts
from intentfusion.errors import DataSourceError
from intentfusion.types import Records

__all__ = ["MASSIVE_LOCALES", "MASSIVE_LAYOUT", "parse_annotation", "load_massive"]

MASSIVE_LOCALES: tuple[str, ...] = (
    "af-ZA", "am-ET", "ar-SA", "az-AZ", "bn-BD", "cy-GB", "da-DK", "de-DE", "el-GR", "en-US", "es-ES", "fa-IR",
    "fi-FI", "fr-FR", "he-IL", "hi-IN", "hu-HU", "hy-AM", "id-ID", "is-IS", "it-IT", "ja-JP", "jv-ID", "ka-GE",
    "km-KH", "kn-IN", "ko-KR", "lv-LV", "ml-IN", "mn-MN", "ms-MY", "my-MM", "nb-NO", "nl-NL", "pl-PL", "pt-PT",
    "ro-RO", "ru-RU", "sl-SL", "sq-AL", "sv-SE", "sw-KE", "ta-IN", "te-IN", "th-TH", "tl-PH", "tr-TR", "ur-PK",
    "vi-VN", "zh-CN", "zh-TW",
)  # fmt: skip
MASSIVE_LAYOUT = "<root>/data/<locale>.jsonl (the release's 1.0/ folder; fields partition, utt, annot_utt, intent, ...)"
PARTITIONS = {"train": "train", "dev": "val", "test": "test"}  # the release's partition -> our split
_SLOT = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")
ANNOTATION_FORM = "text with slots as [type : value], e.g. 'wake me up at [time : nine am]'"


def parse_annotation(annot: str, where: str) -> tuple[str, list[dict[str, Any]]]:
    """The plain text and the character spans of an ``annot_utt``: ``"wake me up at [time : nine am]"`` ->
    ``("wake me up at nine am", [{"start": 14, "end": 21, "label": "time"}])``.

    A slot boundary inside a word (scripts written without spaces: ja, zh, th, km, my) gets a space, so that every
    word has one tag.
    """
    text, spans, last = "", [], 0
    for match in _SLOT.finditer(annot):
        before = annot[last : match.start()]
        if "[" in before or "]" in before:
            raise DataSourceError(where, f"unbalanced bracket in {annot[:80]!r}", ANNOTATION_FORM)
        text += before
        value = match.group(2)
        if text and not text[-1].isspace() and value:
            text += " "
        start = len(text)
        text += value
        if value:
            spans.append({"start": start, "end": len(text), "label": match.group(1).strip()})
        last = match.end()
        if last < len(annot) and not annot[last].isspace():
            text += " "
    rest = annot[last:]
    if "[" in rest or "]" in rest:
        raise DataSourceError(where, f"unbalanced bracket in {annot[:80]!r}", ANNOTATION_FORM)
    text += rest
    stripped = len(text) - len(text.lstrip())
    spans = [{**s, "start": s["start"] - stripped, "end": s["end"] - stripped} for s in spans]
    return text.strip(), spans


def _locales(locales: Sequence[str] | str) -> list[str]:
    if isinstance(locales, str):
        locales = list(MASSIVE_LOCALES) if locales == "all" else [s.strip() for s in locales.split(",")]
    unknown = [loc for loc in locales if loc not in MASSIVE_LOCALES]
    if unknown or not locales:
        expected = f"'all' or locales among {', '.join(MASSIVE_LOCALES)}"
        raise DataSourceError("data.source.locales", f"unknown locale(s) {unknown}", expected)
    return list(dict.fromkeys(locales))


def _release_rows(root: Path, locale: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(split, where, row)`` of one locale's release file."""
    path = root / "data" / f"{locale}.jsonl"
    if not path.is_file() and (root / f"{locale}.jsonl").is_file():
        path = root / f"{locale}.jsonl"
    for line, row in read_table(require(path, MASSIVE_LAYOUT), "jsonl")[1]:
        where = f"{path}:{line}"
        split = PARTITIONS.get(row.get("partition"))
        if split is None:
            raise DataSourceError(where, f"partition {row.get('partition')!r}", f"one of {list(PARTITIONS)}")
        yield split, where, row


def _locale_rows(root: Path, locale: str, hub: Mapping[str, Any] | None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(split, where, row)`` of one locale: the release file under ``root`` if there, else the hub copy."""
    dataset = hub_copy(root, MASSIVE_LAYOUT, hub, config=locale)
    if dataset is None:
        yield from _release_rows(root, locale)
        return
    for split, theirs in HUB_SPLITS.items():
        if theirs in dataset:
            columns = ["annot_utt", "intent", "scenario", "locale"]
            for where, row in split_rows(dataset[theirs], f"{hub['path']}[{locale}/{theirs}]", columns):
                yield split, where, row


def load_massive(
    root: str,
    locales: Sequence[str] | str = "en-US",
    hub: Mapping[str, Any] | None = None,
    bio_repair: bool = False,
) -> Splits:
    """MASSIVE records ``{text, intent, scenario, slots, locale, source}`` of ``locales`` (a list, a comma-separated
    string or ``all``: the 51 of `MASSIVE_LOCALES`), splits train / val (dev) / test concatenated over them.

    ``text`` is the utterance of ``annot_utt`` (`parse_annotation`), ``slots`` its BIO tags (``O`` for words outside
    every bracket). ``bio_repair`` snaps a span that cuts a word to the words it overlaps instead of an error.
    Without the release under ``root``, each locale comes from the ``hub`` copy (``{config}`` = the locale).
    """
    chosen = _locales(locales)
    splits: dict[str, Records] = {"train": [], "val": [], "test": []}
    for locale in chosen:
        for split, where, row in _locale_rows(Path(root), locale, hub):
            annot = row.get("annot_utt")
            if not isinstance(annot, str):
                raise DataSourceError(where, f"annot_utt {annot!r}", ANNOTATION_FORM)
            text, spans = parse_annotation(annot, where)
            splits[split].append(
                {
                    "text": text,
                    "intent": row.get("intent"),
                    "scenario": row.get("scenario"),
                    "slots": spans_to_bio(text, spans, f"{where}: annot_utt", bio_repair) if text else None,
                    "locale": row.get("locale") or locale,
                    "source": "massive",
                }
            )
    return {name: clean_texts(recs, f"massive/{name}") for name, recs in splits.items()}
