"""Record-level transforms shared by every data source: text cleaning, label maps, unseen labels, noise.

A record is a dict ``{"text": str, <task>: label or None, ...}``; splits are ``{split_name: [record, ...]}``.
Every function here returns new lists/dicts and leaves its input untouched.
"""

from __future__ import annotations

import random
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from intentfusion.data.noise import noisy_copy, noisy_words
from intentfusion.data.slots import OUTSIDE, TAG_RE
from intentfusion.errors import DataSourceError
from intentfusion.types import Records

__all__ = [
    "UNKNOWN",
    "UNSEEN_POLICIES",
    "DataWarning",
    "unescape_unicode",
    "clean_texts",
    "map_labels",
    "resolve_unseen_labels",
    "add_noisy_split",
    "augment_train",
    "subsample",
    "prepare",
]

Splits = dict[str, Records]  # {split name: records}

UNKNOWN = "unknown"
UNSEEN_POLICIES: tuple[str, ...] = ("error", "unknown", "drop", "mask")
TOKEN_ALIGNED_KEYS: tuple[str, ...] = ("tokens", "slots")  # fields that stop matching a noised text
NOISE_KEYS: tuple[str, ...] = ("test_p", "train_p", "seed", "source_split", "name")

_ESCAPE_RE = re.compile(r"\\u([0-9a-fA-F]{4})")


class DataWarning(UserWarning):
    """Examples were dropped or labels masked while loading data (the message says where and how many)."""


def _warn(message: str) -> None:
    warnings.warn(message, DataWarning, stacklevel=3)


def unescape_unicode(text: str) -> str:
    """Replace literal ``\\uXXXX`` escape sequences (left over from a JSON/CSV export) by their character."""
    return _ESCAPE_RE.sub(lambda m: chr(int(m.group(1), 16)), text) if "\\u" in text else text


def clean_texts(records: Iterable[dict[str, Any]], where: str) -> Records:
    """Strip surrounding whitespace from every text; drop empty/whitespace-only (or missing) texts.

    Dropped examples are counted in one `DataWarning` naming ``where`` (e.g. ``"snips/train"``).
    """
    kept: Records = []
    dropped = 0
    for r in records:
        text = r.get("text")
        if not isinstance(text, str) or not text.strip():
            dropped += 1
            continue
        kept.append(r if text == text.strip() else {**r, "text": text.strip()})
    if dropped:
        _warn(f"{where}: dropped {dropped} example(s) with empty or whitespace-only text")
    return kept


def _normalize_mapping(task: str, mapping: Mapping[str, Any] | Sequence[str]) -> dict[str, str]:
    """``{fine: coarse}`` as is; ``{coarse: [fine, ...]}`` inverted; ``[label, ...]`` kept as themselves."""
    if isinstance(mapping, str) or not isinstance(mapping, (Mapping, Sequence)):
        raise DataSourceError(
            f"label map for task '{task}': expected a dict {{fine: coarse}}, a dict {{coarse: [fine, ...]}} "
            f"or a list of labels to keep, got {type(mapping).__name__}"
        )
    if not isinstance(mapping, Mapping):
        return {str(label): str(label) for label in mapping}
    grouped = [isinstance(v, (list, tuple)) for v in mapping.values()]
    if not any(grouped):
        return {str(k): str(v) for k, v in mapping.items()}
    if not all(grouped):
        raise DataSourceError(
            f"label map for task '{task}': mixes {{fine: coarse}} and {{coarse: [fine, ...]}} entries; use one form"
        )
    out: dict[str, str] = {}
    for coarse, fines in mapping.items():
        for fine in fines:
            if str(fine) in out and out[str(fine)] != str(coarse):
                raise DataSourceError(
                    f"label map for task '{task}': '{fine}' is listed under both '{out[str(fine)]}' and '{coarse}'"
                )
            out[str(fine)] = str(coarse)
    return out


def map_labels(
    records: Sequence[dict[str, Any]],
    task: str,
    mapping: Mapping[str, Any] | Sequence[str],
    new_task: str | None = None,
    default: str | None = None,
) -> Records:
    """Map the labels of ``task`` to coarser ones (e.g. CLINC150 intents -> domains, or -> core intents).

    ``mapping`` is ``{fine: coarse}``, ``{coarse: [fine, ...]}`` (the layout of CLINC150's domains.json) or a
    list of labels kept as they are (a user's core intents; combine with ``default: other``). The result goes
    to ``new_task`` when given (both levels are kept, e.g. ``intent`` and ``intent_coarse``), otherwise it
    replaces ``task``. Missing labels (None) stay missing. Labels absent from the map become ``default``;
    with ``default=None`` they raise a `DataSourceError` listing them.
    """
    table = _normalize_mapping(task, mapping)
    if records and not any(task in r for r in records):
        raise DataSourceError(
            f"label map: task '{task}' not found in the records; expected one of the keys present: {sorted(records[0])}"
        )
    unmapped = sorted({r[task] for r in records if r.get(task) is not None and r[task] not in table})
    if unmapped and default is None:
        raise DataSourceError(
            f"label map for task '{task}': {len(unmapped)} label(s) have no entry and no default is set: "
            f"{unmapped[:20]}{' ...' if len(unmapped) > 20 else ''}"
        )
    target = new_task or task
    out: Records = []
    for r in records:
        label = r.get(task)
        out.append({**r, target: None if label is None else table.get(label, default)})
    return out


def _check_policy(policy: str) -> None:
    if policy not in UNSEEN_POLICIES:
        raise DataSourceError(f"unknown_labels={policy!r} is not a policy; expected one of {list(UNSEEN_POLICIES)}")


def _labels(value: Any, is_set: bool) -> list[str]:
    """The labels a record's value holds: a string label, or the members of a label set (``is_set``)."""
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if is_set and isinstance(value, list | tuple) else []


def resolve_unseen_labels(
    splits: Splits, tasks: Sequence[str], policy: str = "error", where: str = "data", reference: str = "train",
    set_tasks: Sequence[str] = (),
) -> Splits:
    """Apply a policy to labels of the non-``reference`` splits that never occur in ``reference``.

    Policies: ``error`` (raise, listing them), ``drop`` (remove those examples), ``mask`` (set that label to
    None: the example stays for the other tasks, the task ignores it), ``unknown`` (replace it by the string
    ``"unknown"``; only accepted when the training split itself has an ``"unknown"`` class for that task,
    since a classifier never trained on a class cannot predict it and the datamodule would reject it).
    Only string labels are checked (token-level lists such as slot tags are left alone), and the label sets of
    ``set_tasks`` (multilabel: a set with a label unseen in ``reference`` counts as unseen).
    Drops and masks are counted in one `DataWarning` per split.
    """
    _check_policy(policy)
    tasks = [*tasks, *[t for t in set_tasks if t not in tasks]]
    seen = {t: {label for r in splits.get(reference, []) for label in _labels(r.get(t), t in set_tasks)}
            for t in tasks}
    out: Splits = {}
    for name, records in splits.items():
        if name == reference:
            out[name] = records
            continue
        unseen: dict[str, Counter] = {t: Counter() for t in tasks}
        for r in records:
            for t in tasks:
                for label in _labels(r.get(t), t in set_tasks):
                    if label not in seen[t]:
                        unseen[t][label] += 1
        found = {t: c for t, c in unseen.items() if c}
        if not found:
            out[name] = records
            continue
        desc = "; ".join(f"task '{t}': {sorted(c)}" for t, c in found.items())
        if policy == "error":
            raise DataSourceError(
                f"{where}: split '{name}' has label(s) never seen in '{reference}' ({desc}); "
                f"expected only labels seen in '{reference}', or unknown_labels set to 'mask', 'drop' or 'unknown'"
            )
        if policy == "unknown":
            lacking = [t for t in found if UNKNOWN not in seen[t]]
            if lacking:
                raise DataSourceError(
                    f"{where}: unknown_labels='unknown' needs an '{UNKNOWN}' class in the '{reference}' split"
                    f" of task(s) {lacking} (split '{name}' has unseen {desc}); expected unknown_labels 'mask' or"
                    f" 'drop' instead"
                )
        n_examples = 0
        kept: Records = []
        for r in records:
            bad = [t for t in found if any(label not in seen[t] for label in _labels(r.get(t), t in set_tasks))]
            if not bad:
                kept.append(r)
                continue
            n_examples += 1
            if policy == "drop":
                continue
            kept.append({**r, **{t: (None if policy == "mask" else UNKNOWN) for t in bad}})
        verb = {"drop": "dropped", "mask": "masked the label of", "unknown": f"relabelled as '{UNKNOWN}'"}
        _warn(
            f"{where}: split '{name}': {verb[policy]} {n_examples} example(s) with label(s) unseen in"
            f" '{reference}' ({desc})"
        )
        out[name] = kept
    return out


def _noised(record: dict[str, Any], text: str, realigned: Mapping[str, list] | None = None) -> dict[str, Any]:
    """``record`` with ``text``; its word-aligned fields become ``realigned[key]``, or None (missing) without one."""
    if text == record["text"]:
        return dict(record)
    realigned = realigned or {}
    out = {**record, "text": text}
    for key, value in record.items():  # word-aligned labels (tokens, BIO tags) no longer fit a noised text
        if key in TOKEN_ALIGNED_KEYS or isinstance(value, list):
            out[key] = realigned.get(key)
    return out


def _word_lists(record: dict[str, Any]) -> dict[str, list]:
    """The record's word-aligned fields: list values with one entry per word of ``text.split()``."""
    n_words = len(record["text"].split())
    return {k: v for k, v in record.items() if isinstance(v, list) and n_words and len(v) == n_words}


def _is_word_copy(key: str, values: list, words: list[str]) -> bool:
    """Whether a word-aligned list holds the words themselves (``tokens``), not tags that merely look like them."""
    return values == words and (key == "tokens" or not all(v == OUTSIDE or TAG_RE.match(v) for v in values))


def _noisy_record(record: dict[str, Any], plain_text: str, p: float, rng: random.Random) -> dict[str, Any]:
    """The noisy version of ``record``: `noisy_words` (tags kept aligned) when it has word-aligned lists.

    Without such lists it gets ``plain_text`` (its `noisy_copy`). With them, the text becomes the noisy words
    joined by single spaces; a copy of the words (``tokens``) follows them, lists of strings are realigned
    (inserted words tagged ``O``), and any other list (one that cannot be realigned) becomes None.
    """
    lists = _word_lists(record)
    if not lists:
        return _noised(record, plain_text)
    words = record["text"].split()
    copies = [k for k, v in lists.items() if _is_word_copy(k, v, words)]
    tags = {k: v for k, v in lists.items() if k not in copies and all(isinstance(t, str) for t in v)}
    noisy, realigned = noisy_words(words, tags, p, rng)
    if noisy == words:
        return dict(record)
    return _noised(record, " ".join(noisy), {**realigned, **{k: list(noisy) for k in copies}})


def _noisy_records(records: Records, p: float, seed: int) -> Records:
    """Each record noised by `_noisy_record`, deterministic given ``seed``.

    `noisy_copy` runs over all the texts as before, so a plain record gets the same text whatever other records
    are present; the word-aligned path draws from its own rng, seeded from ``seed``.
    """
    texts = noisy_copy([r["text"] for r in records], p, seed)
    rng = random.Random(f"{seed}/word-aligned")
    return [_noisy_record(r, t, p, rng) for r, t in zip(records, texts, strict=True)]


def add_noisy_split(
    splits: Splits, source_split: str = "test", name: str = "test_noisy", p: float = 1.0, seed: int = 1234
) -> Splits:
    """Add split ``name``: ``source_split`` with each text noised (typos/casing/slang/emoji, `noisy_copy`).

    Same labels, same order, deterministic given ``seed``. A record with word-aligned lists (``tokens``,
    ``slots``: one entry per word) is noised by `noisy_words`, which keeps them aligned (inserted filler words
    tagged ``O``); a list that cannot be kept aligned is set to None (missing).
    """
    if source_split not in splits:
        raise DataSourceError(f"noisy split: source split '{source_split}' not found; splits: {sorted(splits)}")
    return {**splits, name: _noisy_records(splits[source_split], p, seed)}


def augment_train(splits: Splits, p: float, seed: int = 0, split: str = "train") -> Splits:
    """Append a noisy copy (marked ``"augmented": True``) of each training example that the noise changed.

    Each example is noised with probability ``p`` (as in `add_noisy_split`: word-aligned labels stay aligned),
    so about ``p * len(train)`` copies are added; ``p=0`` returns the splits unchanged.
    """
    if not p:
        return splits
    if split not in splits:
        raise DataSourceError(f"augment: split '{split}' not found; splits present: {sorted(splits)}")
    records = splits[split]
    pairs = zip(records, _noisy_records(records, p, seed), strict=True)
    extra = [{**n, "augmented": True} for r, n in pairs if n["text"] != r["text"]]
    return {**splits, split: [*records, *extra]}


def subsample(records: Records, n: int, seed: int = 0, stratify: str | None = None) -> Records:
    """``n`` records drawn without replacement (all when ``n >= len``), in their original order.

    With ``stratify`` (a task), each label keeps its share (largest remainders), so small subsets still
    cover every class; records without that label form their own stratum.
    """
    if n < 0:
        raise DataSourceError(f"subset: size must be >= 0, got {n}")
    if n >= len(records):
        return list(records)
    rng = random.Random(seed)
    strata: dict[Any, list[int]] = {}
    for i, r in enumerate(records):
        strata.setdefault(r.get(stratify) if stratify else None, []).append(i)
    quotas = {k: n * len(v) / len(records) for k, v in strata.items()}
    take = {k: int(q) for k, q in quotas.items()}
    for k in sorted(quotas, key=lambda k: take[k] - quotas[k])[: n - sum(take.values())]:
        take[k] += 1
    keep = sorted(i for k, idx in strata.items() for i in rng.sample(idx, take[k]))
    return [records[i] for i in keep]


def prepare(
    splits: Splits,
    *,
    label_maps: Sequence[Mapping[str, Any]] | None = None,
    noise: Mapping[str, Any] | None = None,
    subset: Mapping[str, Any] | None = None,
) -> Splits:
    """Config-driven post-processing of a loader's splits: subset, label maps, then noise.

    ``subset``: ``{split: size, ..., seed?, stratify?}`` keeps ``size`` examples of each named split
    (stratified by task ``stratify``, default ``intent`` when the records have it; see `subsample`).

    ``label_maps``: list of ``{task, mapping, new_task?, default?}`` (arguments of `map_labels`), applied in
    order to every split. ``noise``: ``{test_p, train_p, seed, source_split, name}`` (all optional):
    ``test_p`` (default 1.0, null = no noisy split) builds ``name`` (``test_noisy``) from ``source_split``
    (``test``) with ``seed``; ``train_p`` (default 0) adds noisy training copies with ``seed + 1``.
    """
    if subset:
        options = {k: subset[k] for k in ("seed", "stratify") if k in subset}
        sizes = {k: v for k, v in subset.items() if k not in options}
        for split, size in sizes.items():
            if split not in splits:
                raise DataSourceError(f"subset: split '{split}' not found; splits present: {sorted(splits)}")
            recs = splits[split]
            stratify = options.get("stratify", "intent" if recs and "intent" in recs[0] else None)
            splits = {**splits, split: subsample(recs, int(size), int(options.get("seed", 0)), stratify)}
    for spec in label_maps or []:
        extra = sorted(set(spec) - {"task", "mapping", "new_task", "default"})
        if extra or "task" not in spec or "mapping" not in spec:
            raise DataSourceError(
                f"label_maps entry {dict(spec)!r}: expected keys task, mapping (+ optional new_task, default)"
            )
        splits = {name: map_labels(recs, **spec) for name, recs in splits.items()}
    if noise is not None:
        unknown = sorted(set(noise) - set(NOISE_KEYS))
        if unknown:
            raise DataSourceError(f"noise: unknown key(s) {unknown}; expected some of {list(NOISE_KEYS)}")
        seed = int(noise.get("seed", 1234))
        if noise.get("train_p"):
            splits = augment_train(splits, float(noise["train_p"]), seed=seed + 1)
        test_p = noise.get("test_p", 1.0)
        if test_p is not None:
            source, name = noise.get("source_split", "test"), noise.get("name", "test_noisy")
            splits = add_noisy_split(splits, source, name, float(test_p), seed)
    return splits
