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
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from intentfusion.data.slots import validate_bio
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
MULTI_INTENT_POLICIES: tuple[str, ...] = ("first", "join", "drop")
SEQ_LAYOUT = "<root>/{train,valid,test}/{seq.in,seq.out,label} (one example a line)"
XLMT_LAYOUT = "<root>/<language>/{train,val,test}_{text,labels}.txt (one tweet / one label 0|1|2 a line)"
CLINC_LAYOUT = "<root>/data_full.json (keys train, val, test, oos_train, oos_val, oos_test) + domains.json"

LOADERS: dict[str, str] = {
    "clinc150": "intentfusion.data.sources.load_clinc150",
    "xlmt_sentiment": "intentfusion.data.sources.load_xlmt_sentiment",
    "snips": "intentfusion.data.sources.load_snips",
    "atis": "intentfusion.data.sources.load_atis",
    "table": "intentfusion.data.sources_files.load_table",
}


# --------------------------------------------------------------------------------------------- file access
def require(path: str | Path, expected: str, kind: str = "file") -> Path:
    """Return ``path`` as a Path, or raise `DataNotFoundError` naming it and the ``expected`` layout."""
    path = Path(path)
    ok = path.is_dir() if kind == "folder" else path.is_file()
    if not ok:
        raise DataNotFoundError(f"{path}: {kind} not found; expected {expected}")
    return path


def read_text(path: str | Path, expected: str = "a UTF-8 text file") -> str:
    """Read a UTF-8 file (BOM skipped); undecodable bytes raise `DataSourceError` with the line number."""
    raw = require(path, expected).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        bad = raw[e.start : e.end]
        raise DataSourceError(
            f"{path}:{line}: undecodable bytes {bad!r} at column {column}; expected UTF-8 text"
        ) from None


def read_lines(path: str | Path, expected: str = "a UTF-8 text file") -> list[str]:
    """The lines of a UTF-8 file without line ends (a final newline adds no empty line)."""
    lines = read_text(path, expected).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


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
def load_clinc150(root: str, oos: str = "class", domain_task: bool = True) -> Splits:
    """CLINC150 (``data_full.json``): 150 intents in 10 domains + out-of-scope queries.

    ``oos="class"``: the oos examples join train/val/test with intent ``oos`` (a 151st class, domain
    ``oos``). ``oos="exclude"``: train/val/test are in-scope only and the oos examples are kept only as
    ``val_oos``/``test_oos`` with intent and domain missing (None), for threshold-based detection; the 100
    ``oos_train`` examples are not used. ``val_oos`` and ``test_oos`` (the ``oos_val``/``oos_test`` lists)
    exist in both modes; every record has ``is_oos``. ``domain_task`` adds task ``domain`` from
    ``domains.json``.
    """
    if oos not in ("class", "exclude"):
        raise DataSourceError(f"clinc150: oos={oos!r}; expected 'class' or 'exclude'")
    root_path = require(root, CLINC_LAYOUT, "folder")
    path = root_path / "data_full.json"
    data = _read_json(path, CLINC_LAYOUT)
    keys = ("train", "val", "test", "oos_train", "oos_val", "oos_test")
    missing = [k for k in keys if not isinstance(data, dict) or k not in data]
    if missing:
        present = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise DataSourceError(f"{path}: key(s) {missing} missing; expected {list(keys)}, present: {present}")
    domain_of: dict[str, str] = {}
    if domain_task:
        dpath = root_path / "domains.json"
        domains = _read_json(dpath, "domains.json: {domain: [intent, ...]}")
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
                        f"{path}: {key}[{i}]: intent '{intent}' is not listed in {root_path / 'domains.json'}; "
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


def load_xlmt_sentiment(root: str, languages: list[str] | str = "all", unescape: bool = True) -> Splits:
    """XLM-T / UMSAB multilingual tweet sentiment (TweetEval layout per language).

    Labels 0/1/2 become ``negative``/``neutral``/``positive``; records carry ``language``. Splits
    train/val/test as shipped, concatenated over ``languages`` (a list, a comma-separated string or
    ``"all"`` = the 8 of `XLMT_LANGUAGES`). ``unescape`` decodes literal ``\\uXXXX`` sequences (the English
    train/val files contain ``\\u2019`` and ``\\u002c`` as text; the test file does not).
    """
    chosen = _languages(languages)
    root_path = require(root, XLMT_LAYOUT, "folder")
    splits: Splits = {"train": [], "val": [], "test": []}
    for lang in chosen:
        folder = require(root_path / lang, XLMT_LAYOUT, "folder")
        for split in splits:
            tpath, lpath = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
            texts, labels = read_lines(tpath, XLMT_LAYOUT), read_lines(lpath, XLMT_LAYOUT)
            _same_length({tpath: texts, lpath: labels}, "one label per tweet")
            for i, (text, label) in enumerate(zip(texts, labels, strict=True), start=1):
                if label.strip() not in XLMT_LABELS:
                    raise DataSourceError(f"{lpath}:{i}: label {label!r}; expected 0, 1 or 2")
                splits[split].append(
                    {
                        "text": unescape_unicode(text) if unescape else text,
                        "sentiment": XLMT_LABELS[label.strip()],
                        "language": lang,
                        "source": "xlmt_sentiment",
                    }
                )
    return {name: clean_texts(recs, f"xlmt_sentiment/{name}") for name, recs in splits.items()}


# --------------------------------------------------------------------------------------------- SNIPS / ATIS
def _load_seq(root: str, name: str) -> Splits:
    root_path = require(root, SEQ_LAYOUT, "folder")
    splits: Splits = {}
    for folder, split in (("train", "train"), ("valid", "val"), ("test", "test")):
        if folder == "valid" and not (root_path / "valid").is_dir() and (root_path / "val").is_dir():
            folder = "val"
        d = require(root_path / folder, SEQ_LAYOUT, "folder")
        pin, pout, plab = d / "seq.in", d / "seq.out", d / "label"
        seq_in, seq_out, labels = (read_lines(p, SEQ_LAYOUT) for p in (pin, pout, plab))
        _same_length({pin: seq_in, pout: seq_out, plab: labels}, "one line per example in each file")
        recs = []
        for i, (line, tags_line, label) in enumerate(zip(seq_in, seq_out, labels, strict=True), start=1):
            tokens, tags = line.split(), tags_line.split()
            if len(tokens) != len(tags):
                raise DataSourceError(
                    f"{pout}:{i}: {len(tags)} BIO tag(s) for {len(tokens)} token(s) in {pin}:{i}; "
                    f"expected one tag per token"
                )
            validate_bio(tags, f"{pout}:{i}")
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


def load_snips(root: str, unknown_labels: str = "mask") -> Splits:
    """SNIPS (Goo et al. 2018 split): 7 intents + BIO slot tags; ``valid`` becomes ``val``.

    Records: ``text`` (tokens joined by a space), ``intent``, ``tokens`` and ``slots`` (one BIO tag per
    token, from ``seq.out``; checked with `validate_bio`). ``unknown_labels`` handles val/test intents unseen in
    train (`resolve_unseen_labels`; SNIPS has none). Slot tags are not checked against the training tags.
    """
    return resolve_unseen_labels(_load_seq(root, "snips"), ["intent"], unknown_labels, where="snips")


def load_atis(root: str, multi_intent: str = "first", unknown_labels: str = "mask") -> Splits:
    """ATIS (Goo et al. 2018 split): intents + BIO slot tags; ``valid`` becomes ``val``.

    Records as in `load_snips` (``text``, ``intent``, ``tokens``, ``slots``).

    Multi-intent labels ``a#b``: ``first`` keeps ``a``; ``join`` keeps ``a#b`` as a class of its own;
    ``drop`` removes those examples (counted in a `DataWarning`). ``unknown_labels`` handles val/test
    intents unseen in train (ATIS test has ``atis_day_name``, absent from train; with ``join`` also three
    unseen combinations): ``mask`` (default) keeps the examples for slot filling and masks their intent,
    ``drop`` removes them, ``error`` raises. Slot tags unseen in train (ATIS test has a few) are kept.
    """
    if multi_intent not in MULTI_INTENT_POLICIES:
        raise DataSourceError(f"atis: multi_intent={multi_intent!r}; expected one of {list(MULTI_INTENT_POLICIES)}")
    splits = _load_seq(root, "atis")
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
    **options: Any,
) -> Splits:
    """Run a loader (a name in `LOADERS`, a dotted path or a callable) with ``options``, then `prepare`.

    This is the ``source`` of ``conf/data/*.yaml``: loader options sit next to ``label_maps`` (see
    `map_labels`) and ``noise`` (``{test_p, train_p, seed}``: the ``test_noisy`` split and noisy training
    copies). ``subset``: ``{split: size, seed?, stratify?}`` keeps a stratified sample of those splits.
    """
    fn = _resolve_loader(loader)
    params = inspect.signature(fn).parameters
    accepted = [p for p in params if params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    unexpected = [k for k in options if k not in params]
    if len(accepted) == len(params) and unexpected:
        raise DataSourceError(f"loader {loader!r}: unknown option(s) {unexpected}; accepted: {accepted}")
    try:
        inspect.signature(fn).bind(**options)
    except TypeError as e:
        raise DataSourceError(f"loader {loader!r}: {e}; accepted options: {accepted}") from None
    return prepare(fn(**options), label_maps=label_maps, noise=noise, subset=subset)
