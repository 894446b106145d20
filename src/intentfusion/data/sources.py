"""Loaders for the benchmark data sets (CLINC150, XLM-T sentiment, SNIPS, ATIS) and `load_source`.

Every loader returns ``{split: [record, ...]}`` with records ``{"text": str, <task>: label or None,
"source": <name>, ...}``, ready for `MultiTaskDataModule`. Bad input raises `DataSourceError` (from
`intentfusion.errors`, a `DataError`; `DataNotFoundError` is also a ``FileNotFoundError``) with a one-line message
naming the file, line or column and what was expected; dropped examples are counted in a `DataWarning`.
Loaders for the user's own CSV/JSONL files live in `intentfusion.data.sources_files`.
"""

from __future__ import annotations

import importlib
import inspect
import json
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from intentfusion.data.files import read_lines, read_text, require
from intentfusion.data.slots import validate_bio
from intentfusion.data.sources_hub import HUB_SPLITS, hub_call, hub_copy, split_rows
from intentfusion.data.transforms import (
    DataWarning,
    Splits,
    clean_texts,
    prepare,
    resolve_unseen_labels,
    unescape_unicode,
)
from intentfusion.errors import DataNotFoundError, DataSourceError  # re-exported: the data layer's error names
from intentfusion.types import Records

__all__ = [
    "DataSourceError",
    "DataNotFoundError",
    "CLINC150_OOS",
    "XLMT_LANGUAGES",
    "XLMT_LABELS",
    "MULTI_INTENT_POLICIES",
    "LOADERS",
    "load_seq_records",
    "read_text",
    "read_lines",
    "load_clinc150",
    "load_xlmt_sentiment",
    "load_snips",
    "load_atis",
    "load_source",
]

CLINC150_OOS = "oos"
XLMT_LANGUAGES: tuple[str, ...] = (
    "arabic",
    "english",
    "french",
    "german",
    "hindi",
    "italian",
    "portuguese",
    "spanish",
)
XLMT_LABELS: dict[str, str] = {"0": "negative", "1": "neutral", "2": "positive"}
MULTI_INTENT_POLICIES: tuple[str, ...] = ("first", "join", "drop", "labels")
SEQ_LAYOUT = "<root>/{train,valid,test}/{seq.in,seq.out,label} (one example a line)"
XLMT_LAYOUT = "<root>/<language>/{train,val,test}_{text,labels}.txt (one tweet / one label 0|1|2 a line)"
CLINC_LAYOUT = "<root>/data_full.json (keys train, val, test, oos_train, oos_val, oos_test) + domains.json"

LOADERS: dict[str, str] = {
    "clinc150": "intentfusion.data.sources.load_clinc150",
    "xlmt_sentiment": "intentfusion.data.sources.load_xlmt_sentiment",
    "snips": "intentfusion.data.sources.load_snips",
    "atis": "intentfusion.data.sources.load_atis",
    "table": "intentfusion.data.sources_files.load_table",
    "hf": "intentfusion.data.sources_hub.load_hf",
    "massive": "intentfusion.data.massive.load_massive",
    "mixed_intents": "intentfusion.data.mixed_intents.load_mixed_intents",
}


def _read_json(path: Path, expected: str) -> Any:
    try:
        return json.loads(read_text(path, expected))
    except json.JSONDecodeError as e:
        raise DataSourceError(f"{path}:{e.lineno}: invalid JSON ({e.msg}); expected {expected}") from None


def _same_length(paths_lines: Mapping[Path, list[str]], what: str) -> None:
    counts = {p: len(lines) for p, lines in paths_lines.items()}
    if len(set(counts.values())) > 1:
        desc = ", ".join(f"{p} has {n}" for p, n in counts.items())
        raise DataSourceError(f"line counts differ ({desc}); expected {what}")


# --------------------------------------------------------------------------------------------- CLINC150
def _clinc150_from_hub(dataset: Any) -> dict[str, list[list[str]]]:
    """The hub copy (``clinc/clinc_oos``: splits train/validation/test, ``intent`` a ClassLabel with ``oos``) in the
    layout of ``data_full.json``."""
    data: dict[str, list[list[str]]] = {}
    for ours, theirs in HUB_SPLITS.items():
        rows = [[r["text"], r["intent"]] for _, r in split_rows(dataset[theirs], theirs, ["text", "intent"])]
        data[ours] = [row for row in rows if row[1] != CLINC150_OOS]
        data[f"oos_{ours}"] = [row for row in rows if row[1] == CLINC150_OOS]
    return data


def _read_url_json(url: str | None, key: str, expected: str) -> Any:
    if not url:
        raise DataSourceError(key, "not set", expected)
    try:
        with urllib.request.urlopen(url, timeout=20) as response:  # noqa: S310 (a configured https URL)
            return json.loads(response.read().decode("utf-8"))
    except (OSError, ValueError) as e:
        raise DataNotFoundError(key, f"{url} not readable ({e})", f"network access for {expected}") from None


def load_clinc150(
    root: str,
    oos: str = "class",
    domain_task: bool = True,
    hub: Mapping[str, Any] | None = None,
    domains_url: str | None = None,
) -> Splits:
    """CLINC150 (``data_full.json``): 150 intents in 10 domains + out-of-scope queries.

    ``oos="class"``: the oos examples join train/val/test with intent ``oos`` (a 151st class, domain
    ``oos``). ``oos="exclude"``: train/val/test are in-scope only and the oos examples are kept only as
    ``val_oos``/``test_oos`` with intent and domain missing (None), for threshold-based detection; the 100
    ``oos_train`` examples are not used. ``val_oos`` and ``test_oos`` (the ``oos_val``/``oos_test`` lists)
    exist in both modes; every record has ``is_oos``. ``domain_task`` adds task ``domain`` from
    ``domains.json``.

    Without the folder ``root``, the ``hub`` copy is loaded (`intentfusion.data.sources_hub.hub_copy`;
    ``clinc/clinc_oos`` ``plus``: the same in-scope queries, 250 instead of 100 oos training queries) and the
    domains come from ``domains_url``.
    """
    if oos not in ("class", "exclude"):
        raise DataSourceError(f"clinc150: oos={oos!r}; expected 'class' or 'exclude'")
    dataset = hub_copy(root, CLINC_LAYOUT, hub)
    if dataset is None:
        root_path = require(root, CLINC_LAYOUT, "folder")
        path, dpath = root_path / "data_full.json", root_path / "domains.json"
        data = _read_json(path, CLINC_LAYOUT)
    else:
        path, dpath = hub_call(hub["path"], hub.get("name"), hub.get("revision")), domains_url
        data = _clinc150_from_hub(dataset)
    keys = ("train", "val", "test", "oos_train", "oos_val", "oos_test")
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        present = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataSourceError(f"{path}: key(s) {missing} missing; expected {list(keys)}, present: {present}")
    domain_of: dict[str, str] = {}
    if domain_task:
        if dataset is None:
            domains = _read_json(dpath, "domains.json: {domain: [intent, ...]}")
        else:
            domains = _read_url_json(domains_url, "data.source.domains_url", "CLINC150's domains.json")
        if not isinstance(domains, dict) or not all(isinstance(v, list) for v in domains.values()):
            raise DataSourceError(f"{dpath}: expected a JSON object {{domain: [intent, ...]}}")
        domain_of = {intent: domain for domain, intents in domains.items() for intent in intents}
        domain_of[CLINC150_OOS] = CLINC150_OOS

    def records(key: str, labelled: bool = True) -> Records:
        out = []
        for i, item in enumerate(data[key]):
            if not (isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)):
                raise DataSourceError(f"{path}: {key}[{i}] is {str(item)[:60]}; expected [text, intent]")
            text, intent = item
            rec: dict[str, Any] = {"text": text, "intent": intent if labelled else None}
            if domain_task:
                if intent not in domain_of:
                    raise DataSourceError(
                        f"{path}: {key}[{i}]: intent '{intent}' is not listed in {dpath}; "
                        f"expected every intent listed under one domain"
                    )
                rec["domain"] = domain_of[intent] if labelled else None
            rec.update(is_oos=key.startswith("oos_"), source="clinc150")
            out.append(rec)
        return out

    in_scope = oos == "class"
    splits = {
        "train": records("train") + (records("oos_train") if in_scope else []),
        "val": records("val") + (records("oos_val") if in_scope else []),
        "test": records("test") + (records("oos_test") if in_scope else []),
        "val_oos": records("oos_val", labelled=in_scope),
        "test_oos": records("oos_test", labelled=in_scope),
    }
    return {name: clean_texts(recs, f"clinc150/{name}") for name, recs in splits.items()}


# --------------------------------------------------------------------------------------------- XLM-T
def _languages(languages: Sequence[str] | str) -> list[str]:
    if isinstance(languages, str):
        languages = list(XLMT_LANGUAGES) if languages == "all" else [s.strip() for s in languages.split(",")]
    unknown = [lang for lang in languages if lang not in XLMT_LANGUAGES]
    if unknown or not languages:
        raise DataSourceError(
            f"xlmt_sentiment: unknown language(s) {unknown}; available: {', '.join(XLMT_LANGUAGES)} (or 'all')"
        )
    return list(dict.fromkeys(languages))


def _xlmt_lines(root: str, lang: str, hub: Mapping[str, Any] | None) -> Iterator[tuple[str, list]]:
    """``(split, [(where, text, label 0|1|2), ...])`` of one language, from the folder or (without it) the hub."""
    dataset = hub_copy(root, XLMT_LAYOUT, hub, config=lang)
    if dataset is not None:
        names = {v: k for k, v in XLMT_LABELS.items()}  # the hub's ClassLabel names -> our 0/1/2
        for split, theirs in HUB_SPLITS.items():
            rows = split_rows(dataset[theirs], f"{hub['path']}[{lang}/{theirs}]", ["text", "label"])
            yield split, [(where, r["text"], names.get(str(r["label"]), str(r["label"]))) for where, r in rows]
        return
    folder = require(Path(root) / lang, XLMT_LAYOUT, "folder")
    for split in ("train", "val", "test"):
        tpath, lpath = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
        texts, labels = read_lines(tpath, XLMT_LAYOUT), read_lines(lpath, XLMT_LAYOUT)
        _same_length({tpath: texts, lpath: labels}, "one label per tweet")
        yield split, [(f"{lpath}:{i}", t, y) for i, (t, y) in enumerate(zip(texts, labels, strict=True), start=1)]


def load_xlmt_sentiment(
    root: str, languages: list[str] | str = "all", unescape: bool = True, hub: Mapping[str, Any] | None = None
) -> Splits:
    """XLM-T / UMSAB multilingual tweet sentiment (TweetEval layout per language).

    Labels 0/1/2 become ``negative``/``neutral``/``positive``; records carry ``language``. Splits
    train/val/test as shipped, concatenated over ``languages`` (a list, a comma-separated string or
    ``"all"`` = the 8 of `XLMT_LANGUAGES`). ``unescape`` decodes literal ``\\uXXXX`` sequences (the English
    train/val files contain ``\\u2019`` and ``\\u002c`` as text; the test file does not). Without the folder
    ``root``, each language comes from the ``hub`` copy (``{config}`` in its data_files = the language).
    """
    chosen = _languages(languages)
    splits: Splits = {"train": [], "val": [], "test": []}
    for lang in chosen:
        for split, rows in _xlmt_lines(root, lang, hub):
            for where, text, label in rows:
                if str(label).strip() not in XLMT_LABELS:
                    raise DataSourceError(f"{where}: label {label!r}; expected 0, 1 or 2")
                splits[split].append(
                    {
                        "text": unescape_unicode(text) if unescape else text,
                        "sentiment": XLMT_LABELS[str(label).strip()],
                        "language": lang,
                        "source": "xlmt_sentiment",
                    }
                )
    return {name: clean_texts(recs, f"xlmt_sentiment/{name}") for name, recs in splits.items()}


# --------------------------------------------------------------------------------------------- SNIPS / ATIS
SEQ_HUB_COLUMNS = {"tokens": "text", "tags": "slot", "intent": "intent"}  # LightChen2333/OpenSLU's names


def _seq_lines(root: str, hub: Mapping[str, Any] | None, layout: str = SEQ_LAYOUT
               ) -> Iterator[tuple[str, str, list[tuple]]]:
    """``(split, folder, [(where, tokens, tags, intent), ...])`` from the local folder, or the hub copy without it
    (``hub.columns``: its tokens / tags / intent columns, lists or space-separated strings; ``layout``: the local
    layout an error names)."""
    dataset = hub_copy(root, layout, hub)
    if dataset is not None:
        cols = {**SEQ_HUB_COLUMNS, **dict(hub.get("columns") or {})}
        label = hub_call(hub["path"], hub.get("name"), hub.get("revision"))
        for split, theirs in HUB_SPLITS.items():
            if theirs not in dataset:
                raise DataSourceError(label, f"no split '{theirs}' (splits: {list(dataset)})", "train/validation/test")
            rows = split_rows(dataset[theirs], f"{label}[{theirs}]", list(cols.values()))
            yield split, theirs, [
                (where, _words(r[cols["tokens"]]), _words(r[cols["tags"]]), str(r[cols["intent"]] or ""))
                for where, r in rows
            ]
        return
    root_path = require(root, SEQ_LAYOUT, "folder")
    for folder, split in (("train", "train"), ("valid", "val"), ("test", "test")):
        if folder == "valid" and not (root_path / "valid").is_dir() and (root_path / "val").is_dir():
            folder = "val"
        d = require(root_path / folder, SEQ_LAYOUT, "folder")
        pin, pout, plab = d / "seq.in", d / "seq.out", d / "label"
        seq_in, seq_out, labels = (read_lines(p, SEQ_LAYOUT) for p in (pin, pout, plab))
        _same_length({pin: seq_in, pout: seq_out, plab: labels}, "one line per example in each file")
        yield split, folder, [
            (f"{pout}:{i}", line.split(), tags.split(), label)
            for i, (line, tags, label) in enumerate(zip(seq_in, seq_out, labels, strict=True), start=1)
        ]


def _words(value: Any) -> list[str]:
    return list(value) if isinstance(value, (list, tuple)) else str(value or "").split()


def load_seq_records(root: str, name: str, hub: Mapping[str, Any] | None = None, layout: str = SEQ_LAYOUT
                     ) -> Splits:
    """Records ``{text, intent (as written, a#b), tokens, slots, source}`` of a corpus in the SNIPS / ATIS layout
    (`_seq_lines`: the folder ``root``, else the ``hub`` copy), tags checked with `validate_bio`."""
    splits: Splits = {}
    for split, folder, rows in _seq_lines(root, hub, layout):
        recs = []
        for where, tokens, tags, label in rows:
            if len(tokens) != len(tags):
                raise DataSourceError(
                    f"{where}: {len(tags)} BIO tag(s) for {len(tokens)} token(s); expected one tag per token"
                )
            validate_bio(tags, where)
            recs.append(
                {
                    "text": " ".join(tokens),
                    "intent": label.strip() or None,
                    "tokens": tokens,
                    "slots": tags,
                    "source": name,
                }
            )
        splits[split] = clean_texts(recs, f"{name}/{folder}")
    return splits


def load_snips(root: str, unknown_labels: str = "mask", hub: Mapping[str, Any] | None = None) -> Splits:
    """SNIPS (Goo et al. 2018 split): 7 intents + BIO slot tags; ``valid`` becomes ``val``.

    Records: ``text`` (tokens joined by a space), ``intent``, ``tokens`` and ``slots`` (one BIO tag per
    token, from ``seq.out``; checked with `validate_bio`). ``unknown_labels`` handles val/test intents unseen in
    train (`resolve_unseen_labels`; SNIPS has none). Slot tags are not checked against the training tags.
    Without the folder ``root``, the ``hub`` copy is read (same split, same tags: `_seq_lines`).
    """
    return resolve_unseen_labels(load_seq_records(root, "snips", hub), ["intent"], unknown_labels, where="snips")


def load_atis(
    root: str, multi_intent: str = "first", unknown_labels: str = "mask", hub: Mapping[str, Any] | None = None,
    task_types: Mapping[str, str] | None = None,
) -> Splits:
    """ATIS (Goo et al. 2018 split): intents + BIO slot tags; ``valid`` becomes ``val``.

    Records as in `load_snips` (``text``, ``intent``, ``tokens``, ``slots``).

    Multi-intent labels ``a#b``: ``first`` keeps ``a``; ``join`` keeps ``a#b`` as a class of its own;
    ``drop`` removes those examples (counted in a `DataWarning`); ``labels`` makes every intent a label set
    (``("a", "b")``, ``("a",)``) for a `multilabel` task, scored as sets; it is what a run gets whose
    ``tasks.types`` declares ``intent`` with a type of label sets (`tasks=atis_multilabel`).
    ``unknown_labels`` handles val/test intents unseen in train (ATIS test has ``atis_day_name``, absent from
    train; with ``join`` also three unseen combinations): ``mask`` (default) keeps the examples for slot filling
    and masks their intent,
    ``drop`` removes them, ``error`` raises. Slot tags unseen in train (ATIS test has a few) are kept.
    Without the folder ``root``, the ``hub`` copy is read (as in `load_snips`).
    """
    if multi_intent not in MULTI_INTENT_POLICIES:
        raise DataSourceError(f"atis: multi_intent={multi_intent!r}; expected one of {list(MULTI_INTENT_POLICIES)}")
    from intentfusion.tasks import task_type

    if "intent" in (task_types or {}) and task_type(task_types["intent"], "intent").label_sets:
        multi_intent = "labels"
    splits = load_seq_records(root, "atis", hub)
    if multi_intent == "labels":
        splits = {name: [{**r, "intent": tuple(sorted(set(r["intent"].split("#")))) if r["intent"] else None}
                         for r in recs] for name, recs in splits.items()}
        return resolve_unseen_labels(splits, [], unknown_labels, where="atis", set_tasks=["intent"])
    for name, recs in splits.items():
        is_multi = [bool(r["intent"]) and "#" in r["intent"] for r in recs]
        if not any(is_multi) or multi_intent == "join":
            continue
        if multi_intent == "drop":
            message = f"atis/{name}: dropped {sum(is_multi)} multi-intent example(s) (multi_intent='drop')"
            warnings.warn(message, DataWarning, stacklevel=2)
            splits[name] = [r for r, m in zip(recs, is_multi, strict=True) if not m]
        else:
            splits[name] = [
                {**r, "intent": r["intent"].split("#")[0]} if m else r for r, m in zip(recs, is_multi, strict=True)
            ]
    return resolve_unseen_labels(splits, ["intent"], unknown_labels, where="atis")


# --------------------------------------------------------------------------------------------- composition
def _resolve_loader(loader: str | Callable[..., Splits]) -> Callable[..., Splits]:
    if callable(loader):
        return loader
    target = LOADERS.get(loader, loader)
    module, _, attr = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError):
        raise DataSourceError(
            f"loader {loader!r} not found; expected one of {sorted(LOADERS)} or a dotted path module.function"
        ) from None


def load_source(
    loader: str | Callable[..., Splits],
    *,
    label_maps: Sequence[Mapping[str, Any]] | None = None,
    noise: Mapping[str, Any] | None = None,
    subset: Mapping[str, Any] | None = None,
    task_types: Mapping[str, str] | None = None,
    **options: Any,
) -> Splits:
    """Run a loader (a name in `LOADERS`, a dotted path or a callable) with ``options``, then `prepare`.

    This is the ``source`` of ``conf/data/*.yaml``: loader options sit next to ``label_maps`` (see
    `map_labels`) and ``noise`` (``{test_p, train_p, seed}``: the ``test_noisy`` split and noisy training
    copies). ``subset``: ``{split: size, seed?, stratify?}`` keeps a stratified sample of those splits.
    ``task_types`` (the run's ``tasks.types``, passed by the datamodule) reach the loaders that read columns by
    type (``load_table``, ``load_hf``: a declared token or multilabel task needs no further column setting).
    """
    fn = _resolve_loader(loader)
    params = inspect.signature(fn).parameters
    if task_types and "task_types" in params:
        options = {**options, "task_types": dict(task_types)}
    accepted = [p for p in params if params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    unexpected = [k for k in options if k not in params]
    if len(accepted) == len(params) and unexpected:
        raise DataSourceError(f"loader {loader!r}: unknown option(s) {unexpected}; accepted: {accepted}")
    try:
        inspect.signature(fn).bind(**options)
    except TypeError as e:
        raise DataSourceError(f"loader {loader!r}: {e}; accepted options: {accepted}") from None
    return prepare(fn(**options), label_maps=label_maps, noise=noise, subset=subset)
