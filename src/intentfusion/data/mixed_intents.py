"""Several intents in one utterance (MixATIS, MixSNIPS; Qin et al., Findings of EMNLP 2020, "AGIF").

The format (the AGIF repository's): one ``word TAG`` per line (BIO slot tags), then the utterance's intents on
one line joined by ``#`` (``atis_airfare#atis_flight``), then a blank line. `read_mixed` reads it (a bad line
names ``file:line``), `write_mixed` writes it.

The clean dev and test sets are distributed; their training split is not, locally. `compose` builds one the
published way: each utterance joins 1, 2 or 3 single-intent utterances of *different* intents from a
single-intent corpus's training split (ATIS, SNIPS) with a connector drawn uniformly from ``", "``, ``" and "``,
``" and then "``, ``" and also "`` (tagged ``O``); the intents are drawn uniformly (as in the clean test sets,
where every intent occurs about equally often), an utterance of each uniformly from its pool. By default as many
utterances with 1 / 2 / 3 intents as the clean training sets hold (`CLEAN_TRAIN_SIZES`). Components whose text
occurs in the corpus's own validation or test split are left out of the pool, and a composed split sharing an
utterance with dev or test is refused (`check_disjoint`).

`load_mixed_intents` is the data source (``data=mixatis``, ``data=mixsnips``): ``val`` / ``test`` from
``<root>/{dev,test}.txt``; ``train`` from ``<root>/train.txt`` when it is there (e.g. the original file), else
composed from ``components`` (a SNIPS/ATIS folder), else from the hub copy of the original split. Records carry
``intent`` as a label set (a `multilabel` task), ``tokens`` / ``slots``, ``intent_count`` (``1_intent``,
``2_intents``, ...: the metric groups of ``data.slice_by``) and ``provenance`` (how the split was made: the data
summary lists it).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intentfusion.data.files import read_lines, require
from intentfusion.data.slots import validate_bio
from intentfusion.data.sources import load_seq_records
from intentfusion.data.sources_hub import hub_call
from intentfusion.data.transforms import Splits, clean_texts, resolve_unseen_labels
from intentfusion.errors import DataSourceError
from intentfusion.types import Records

__all__ = ["MIX_LAYOUT", "CONNECTORS", "CLEAN_TRAIN_SIZES", "Utterance", "read_mixed", "write_mixed", "compose",
           "check_disjoint", "load_mixed_intents"]

MIX_LAYOUT = ("<root>/{dev,test}.txt (+ train.txt): one `word TAG` per line, then the intents line (a#b), "
              "then a blank line")
CONNECTORS: tuple[tuple[str, ...], ...] = ((",",), ("and",), ("and", "then"), ("and", "also"))
# utterances with 1 / 2 / 3 intents in the clean training sets (AGIF repository, MixATIS_clean / MixSNIPS_clean)
CLEAN_TRAIN_SIZES: dict[str, dict[int, int]] = {
    "mixatis": {1: 1118, 2: 8445, 3: 3599},
    "mixsnips": {1: 8277, 2: 22499, 3: 9000},
}
INTENT_SEPARATOR = "#"


@dataclass(frozen=True)
class Utterance:
    """Words, one BIO tag each, the intents (sorted, distinct) and where it was read (``file:line``)."""

    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    intents: tuple[str, ...]
    where: str = ""

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def read_mixed(path: str | Path) -> list[Utterance]:
    """The utterances of a file in the AGIF format (see the module docstring)."""
    lines = read_lines(path, MIX_LAYOUT)
    out: list[Utterance] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    after_intents = False
    for n, raw in enumerate(lines, start=1):
        fields = raw.split()
        where = f"{path}:{n}"
        if not fields:
            if tokens:
                raise DataSourceError(where, "a blank line ends an utterance that has no intents line",
                                      "the intents (a#b) after the last `word TAG` line")
            after_intents = False
            continue
        if after_intents:
            raise DataSourceError(where, f"{raw.strip()[:60]!r} right after an intents line",
                                  "a blank line between utterances (is a tag missing on the line before?)")
        if len(fields) == 2:
            start = start if tokens else n
            tokens.append(fields[0])
            tags.append(fields[1])
        elif len(fields) == 1 and tokens:
            validate_bio(tags, f"{path}:{start}")
            intents = tuple(sorted({i for i in fields[0].split(INTENT_SEPARATOR) if i}))
            out.append(Utterance(tuple(tokens), tuple(tags), intents, f"{path}:{start}"))
            tokens, tags, after_intents = [], [], True
        else:
            raise DataSourceError(where, f"{len(fields)} field(s) {raw.strip()[:60]!r}",
                                  "`word TAG`, the intents line (a#b) after an utterance's words, or a blank line")
    if tokens:
        raise DataSourceError(f"{path}:{len(lines)}", "the file ends inside an utterance",
                              "the intents line (a#b) after its last `word TAG` line")
    return out


def write_mixed(path: str | Path, utterances: Iterable[Utterance]) -> None:
    """Write utterances in the AGIF format (`read_mixed` reads them back equal)."""
    blocks = ["".join(f"{w} {t}\n" for w, t in zip(u.tokens, u.tags, strict=True))
              + INTENT_SEPARATOR.join(u.intents) + "\n" for u in utterances]
    Path(path).write_text("\n".join(blocks), encoding="utf-8")


def compose(singles: Sequence[Utterance], sizes: Mapping[int, int], seed: int = 0,
            exclude: Iterable[str] = ()) -> list[Utterance]:
    """A multi-intent training split from single-intent utterances, the published way (module docstring):
    ``sizes[k]`` utterances of ``k`` components of different intents, intents drawn uniformly, connectors
    uniformly; utterances whose text is in ``exclude`` are never used. Deterministic for a given ``seed``."""
    excluded = set(exclude)
    pool: dict[str, list[Utterance]] = {}
    for u in singles:
        if len(u.intents) == 1 and u.text not in excluded:
            pool.setdefault(u.intents[0], []).append(u)
    intents = sorted(pool)
    rng = random.Random(seed)
    out: list[Utterance] = []
    for k, size in sorted((int(k), int(v)) for k, v in sizes.items()):
        if k < 1 or k > len(intents):
            raise DataSourceError(f"train_sizes.{k}", f"{k} intents per utterance from {len(intents)} intents",
                                  f"between 1 and {len(intents)} intents")
        for _ in range(size):
            parts = [rng.choice(pool[intent]) for intent in rng.sample(intents, k)]
            tokens, tags = list(parts[0].tokens), list(parts[0].tags)
            for part in parts[1:]:
                connector = rng.choice(CONNECTORS)
                tokens += [*connector, *part.tokens]
                tags += ["O"] * len(connector) + list(part.tags)
            out.append(Utterance(tuple(tokens), tuple(tags), tuple(sorted(p.intents[0] for p in parts))))
    rng.shuffle(out)
    return out


def check_disjoint(train: Sequence[Utterance], **others: Sequence[Utterance]) -> None:
    """Raise naming the first utterance of ``train`` that also occurs (same text) in another split."""
    for name, split in others.items():
        shared = {u.text for u in split} & {u.text for u in train}
        if shared:
            raise DataSourceError(f"train vs {name}", f"{len(shared)} utterance(s) in both, e.g. {min(shared)!r}",
                                  "a training split without the evaluation utterances")


def _records(utterances: Sequence[Utterance], name: str, provenance: str) -> Records:
    return [{"text": u.text, "intent": u.intents, "tokens": list(u.tokens), "slots": list(u.tags), "source": name,
             "intent_count": f"{len(u.intents)}_intent" + ("s" if len(u.intents) > 1 else ""),
             "provenance": provenance} for u in utterances]


def _utterances(records: Records) -> list[Utterance]:
    """`load_seq_records` records (intents as written, ``a#b``) as utterances."""
    return [Utterance(tuple(r["tokens"]), tuple(r["slots"]),
                      tuple(sorted({i for i in (r["intent"] or "").split(INTENT_SEPARATOR) if i}))) for r in records]


def load_mixed_intents(
    root: str,
    name: str = "mixatis",
    components: str | None = None,
    train_sizes: Mapping[int, int] | None = None,
    seed: int = 0,
    unknown_labels: str = "mask",
    hub: Mapping[str, Any] | None = None,
    task_types: Mapping[str, str] | None = None,
) -> Splits:
    """MixATIS / MixSNIPS (module docstring). ``name`` names the source (and the default ``train_sizes``:
    `CLEAN_TRAIN_SIZES`); ``components``: the single-intent corpus (``<components>/{train,valid,test}``, the
    SNIPS/ATIS layout) the training split is composed from when ``<root>/train.txt`` is absent; ``seed``: the
    composition's seed. ``unknown_labels``: dev/test intents unseen in training (`resolve_unseen_labels`; MixATIS
    test has ``atis_day_name``, which the ATIS training split lacks): ``mask`` keeps the utterances for slot
    filling. Without the folder ``root``, the ``hub`` copy of all three original splits is read."""
    if "intent" in (task_types or {}):
        from intentfusion.tasks import task_type

        if not task_type(task_types["intent"], "tasks.types.intent").label_sets:
            raise DataSourceError(f"tasks.types.intent={task_types['intent']}",
                                  f"{name} utterances carry several intents",
                                  "a type of label sets (multilabel): tasks=multi_intent_slots")
    folder = Path(root)
    if not folder.is_dir():  # the original splits from the hub (or one error naming both ways)
        call = hub_call(hub["path"], hub.get("name"), hub.get("revision")) if hub else ""
        splits = {s: _records(_utterances(recs), name, f"the original {s} split from {call}")
                  for s, recs in load_seq_records(root, name, hub, MIX_LAYOUT).items()}
    else:
        dev, test = (read_mixed(require(folder / f"{s}.txt", MIX_LAYOUT)) for s in ("dev", "test"))
        if (folder / "train.txt").is_file():
            train, provenance = read_mixed(folder / "train.txt"), f"read from {folder / 'train.txt'}"
        else:
            train, provenance = _composed(name, components, train_sizes, seed, dev, test)
        check_disjoint(train, dev=dev, test=test)
        splits = {"train": _records(train, name, provenance),
                  "val": _records(dev, name, f"read from {folder / 'dev.txt'}"),
                  "test": _records(test, name, f"read from {folder / 'test.txt'}")}
    splits = {s: clean_texts(recs, f"{name}/{s}") for s, recs in splits.items()}
    return resolve_unseen_labels(splits, [], unknown_labels, where=name, set_tasks=["intent"])


def _composed(name: str, components: str | None, train_sizes: Mapping[int, int] | None, seed: int,
              dev: Sequence[Utterance], test: Sequence[Utterance]) -> tuple[list[Utterance], str]:
    if components is None:
        raise DataSourceError(f"{name}: components", "no train.txt and no single-intent corpus to compose one from",
                              "the folder of the corpus's single-intent splits (data.source.components)")
    sizes = dict(train_sizes or CLEAN_TRAIN_SIZES.get(name) or {})
    if not sizes:
        raise DataSourceError(f"{name}: train_sizes", "not given and no published sizes for this name",
                              f"{{1: n1, 2: n2, 3: n3}} or a name among {sorted(CLEAN_TRAIN_SIZES)}")
    source = load_seq_records(components, Path(components).name)
    held_out = {r["text"] for split in ("val", "test") for r in source.get(split, [])}
    held_out |= {u.text for u in (*dev, *test)}
    train = compose(_utterances(source["train"]), sizes, seed, exclude=held_out)
    counts = ", ".join(f"{v} with {k}" for k, v in sorted(sizes.items()))
    return train, (f"composed from {components}/train (single-intent utterances not in its val/test, intents drawn "
                   f"uniformly, connectors {', '.join(repr(' '.join(c)) for c in CONNECTORS)}; {counts} intents; "
                   f"seed {seed}): the published recipe, not the original file")
