"""`load_table`: the user's own labelled texts from CSV / TSV / JSONL files.

Sequence tasks (``label_columns``) hold one label a row; token tasks (``token_columns``, e.g. slot filling) hold
one BIO tag per whitespace-separated word of the text (see `intentfusion.data.slots`), given either as ``tags``
(space-separated tags; in JSONL also a list of strings) or as ``spans`` (a JSON list of ``{start, end, label}``
character spans; in JSONL also a list), converted with `spans_to_bio`.
"""

from __future__ import annotations

import csv
import io
import json
import random
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intentfusion.data.files import read_lines, read_text, require
from intentfusion.data.transforms import DataWarning, clean_texts, resolve_unseen_labels
from intentfusion.errors import DataSourceError
from intentfusion.tasks import SequenceTask as SEQUENCE
from intentfusion.tasks.token import TOKEN_FORMATS
from intentfusion.types import Records

__all__ = [
    "TABLE_FORMATS",
    "TOKEN_FORMATS",
    "TypedColumns",
    "column_options",
    "read_table",
    "table_records",
    "carve_splits",
    "load_table",
]

Rows = list[tuple[int, dict[str, Any]]]  # (line number, {column: value})

TABLE_FORMATS: dict[str, str] = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
JSONL_ROW = "one JSON object per line"
TABLE_LAYOUT = "a CSV/TSV file with a header row, or a JSONL file with one JSON object per line"
TOKENS_CELL = "space-separated tokens (in JSONL also a list of strings without whitespace)"


def _format(path: Path, format: str) -> str:
    if format != "auto":
        if format not in set(TABLE_FORMATS.values()):
            raise DataSourceError(f"format={format!r}; expected 'auto', 'csv', 'tsv' or 'jsonl'")
        return format
    fmt = TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataSourceError(
            f"{path}: cannot tell the format from the extension '{path.suffix}'; use .csv, .tsv or .jsonl, "
            f"or set format to csv, tsv or jsonl"
        )
    return fmt


def _read_delimited(path: Path, delimiter: str) -> tuple[list[str], Rows]:
    reader = csv.reader(io.StringIO(read_text(path, TABLE_LAYOUT), newline=""), delimiter=delimiter)
    rows: Rows = []
    header: list[str] | None = None
    start = 1
    try:
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip() and header is not None and len(header) > 1):
                continue  # blank line
            if header is None:
                header = [c.strip() for c in row]
                dupes = sorted({c for c in header if header.count(c) > 1})
                if dupes:
                    raise DataSourceError(
                        f"{path}:{line}: duplicate column name(s) {dupes} in the header; expected unique column names"
                    )
                continue
            if len(row) != len(header):
                raise DataSourceError(
                    f"{path}:{line}: {len(row)} field(s); expected {len(header)} ({', '.join(header)})"
                )
            rows.append((line, dict(zip(header, row, strict=True))))
    except csv.Error as e:
        kind = "TSV" if delimiter == "\t" else "CSV"
        raise DataSourceError(
            f"{path}:{start}: malformed {kind} ({e}); expected {kind} with fields separated by {delimiter!r} "
            f"and every opening double quote closed"
        ) from None
    if header is None:
        raise DataSourceError(f"{path}: empty file; expected {TABLE_LAYOUT}")
    return header, rows


def _read_jsonl(path: Path) -> tuple[list[str], Rows]:
    rows: Rows = []
    columns: dict[str, None] = {}
    for line, text in enumerate(read_lines(path, TABLE_LAYOUT), start=1):
        if not text.strip():
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataSourceError(f"{path}:{line}: invalid JSON ({e.msg}); expected {JSONL_ROW}") from None
        if not isinstance(obj, dict):
            raise DataSourceError(f"{path}:{line}: a JSON {type(obj).__name__}; expected {JSONL_ROW}")
        columns.update(dict.fromkeys(obj))
        rows.append((line, obj))
    return list(columns), rows


def read_table(path: str | Path, format: str = "auto") -> tuple[list[str], Rows]:
    """Columns and ``(line number, {column: value})`` rows of a CSV/TSV/JSONL file."""
    path = require(path, TABLE_LAYOUT)
    fmt = _format(path, format)
    if fmt == "jsonl":
        return _read_jsonl(path)
    return _read_delimited(path, "\t" if fmt == "tsv" else ",")


@dataclass(frozen=True)
class TypedColumns:
    """The columns of tasks whose type is not `sequence` (``{task: column}``), their `TaskType` classes, the
    options the types read from a cell (``token_format``, ``bio_repair``, ``label_separator``) and the tokens
    column (the text is its tokens joined by spaces)."""

    columns: dict[str, str] = field(default_factory=dict)
    types: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    tokens_column: str | None = None
    declared: dict[str, str] = field(default_factory=dict)  # {task: the setting that named its column}

    @property
    def label_sets(self) -> list[str]:
        """The tasks whose label is a set of labels (checked against the training split's labels)."""
        return [task for task, cls in self.types.items() if cls.label_sets]


def column_options(
    label_columns: dict[str, str] | list[str] | None,
    token_columns: dict[str, str] | list[str] | None,
    token_format: str,
    tokens_column: str | None,
    bio_repair: bool,
    task_types: Mapping[str, str] | None = None,
    label_separator: str = "#",
) -> tuple[dict[str, str] | None, TypedColumns]:
    """The sequence-task columns (``{task: column}``; a list names same-named columns; None: all) and the typed
    tasks' `TypedColumns`, checked: a known ``token_format``, no task in both.

    A task declared with a type in ``task_types`` (the run's ``tasks.types``) is read as that type from its
    column (``label_columns`` may rename it; default: the column named after the task) without further
    settings; ``token_columns`` declares token tasks by hand (the loader used on its own)."""
    from intentfusion.tasks import task_type

    columns = {c: c for c in label_columns} if isinstance(label_columns, (list, tuple)) else label_columns
    token_cols = {c: c for c in token_columns} if isinstance(token_columns, (list, tuple)) else token_columns
    if token_format not in TOKEN_FORMATS:
        raise DataSourceError(f"token_format={token_format!r}; expected one of {list(TOKEN_FORMATS)}")
    both = sorted(set(columns or {}) & set(token_cols or {}))
    if both:
        raise DataSourceError(
            f"task(s) {both} in both label_columns and token_columns; expected each task in one of them"
        )
    typed = {task: task_type("token", task) for task in token_cols or {}}
    typed_cols = dict(token_cols or {})
    declared = {task: f"token_columns.{task}" for task in typed_cols}
    for task, name in (task_types or {}).items():
        cls = task_type(name, task)
        if cls.samples_by_class or task in typed_cols:  # one label per example: a label column like any other
            continue
        typed[task] = cls
        typed_cols[task] = (columns or {}).get(task, task)
        declared[task] = f"label_columns.{task}" if task in (columns or {}) else f"tasks.types.{task}={cls.name}"
    if columns is not None:
        columns = {t: c for t, c in columns.items() if t not in typed}
    options = {"token_format": token_format, "bio_repair": bool(bio_repair), "label_separator": label_separator}
    return columns, TypedColumns(typed_cols, typed, options, tokens_column, declared)


def _tokens(value: Any, where: str) -> list[str]:
    """The tokens of a tokens cell: a space-separated string, or (JSONL) a list of strings without whitespace."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    ok = isinstance(value, list) and all(isinstance(t, str) and t and t.split() == [t] for t in value)
    if not ok:
        raise DataSourceError(where, f"tokens {str(value)[:80]}", TOKENS_CELL)
    return list(value)


def table_records(
    origin: str,
    present: Sequence[str],
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    text_column: str,
    columns: dict[str, str] | None,
    name: str,
    tokens: TypedColumns | None = None,
    keep: Sequence[str] = (),
) -> tuple[dict[str, str], Records]:
    """Records from the rows of one table (a file, or a split of a `datasets` data set) whose columns are
    ``present``; each row comes with the place it is reported at (``file:line``). ``columns`` None: every
    column but the text, tokens and token columns is a sequence task; ``keep``: columns copied into each record
    as they are. Returns the task columns and the records (empty texts dropped with a `DataWarning`)."""
    tokens = tokens or TypedColumns()
    tokens_col = tokens.tokens_column
    if columns is None:
        taken = {text_column, tokens_col, *tokens.columns.values(), *keep}
        columns = {c: c for c in present if c not in taken}
    if not columns and not tokens.columns:
        raise DataSourceError(
            f"{origin}: no label column besides '{text_column}' (columns present: {list(present)}); "
            "expected one column per task"
        )
    # a column named only by a task's declared type may be absent: this source does not label that task
    typed = {t: c for t, c in tokens.columns.items()
             if c in present or not tokens.declared.get(t, "").startswith("tasks.types.")}
    wanted = {"tokens_column": tokens_col} if tokens_col is not None else {"text_column": text_column}
    wanted.update({f"label_columns.{task}": col for task, col in columns.items()})
    wanted.update({tokens.declared.get(task, task): col for task, col in typed.items()})
    for option, col in wanted.items():
        if col not in present:
            raise DataSourceError(
                f"{origin}: column '{col}' ({option}) not found; expected one of the columns present: {list(present)}"
            )
    out: Records = []
    for where, row in rows:
        if tokens_col is not None:
            text: Any = " ".join(_tokens(row.get(tokens_col), f"{where}: column '{tokens_col}'"))
        else:
            text = row.get(text_column)
        if isinstance(text, (list, dict)):
            kind = type(text).__name__
            raise DataSourceError(f"{where}: column '{text_column}' holds a JSON {kind}; expected text")
        rec: dict[str, Any] = {c: row.get(c) for c in keep}
        rec["text"] = "" if text is None else str(text)
        rec.update({task: SEQUENCE.parse(row.get(col), rec["text"], f"{where}: column '{col}'", {})
                    for task, col in columns.items()})
        rec.update({task: tokens.types[task].parse(row.get(col), rec["text"], f"{where}: column '{col}'",
                                                   tokens.options)
                    for task, col in typed.items()})
        rec["source"] = name
        out.append(rec)
    return columns, clean_texts(out, origin)


def _records(
    path: str, text_column: str, columns: dict[str, str] | None, format: str, name: str, tokens: TypedColumns
) -> tuple[dict[str, str], Records]:
    present, rows = read_table(path, format)
    located = ((f"{path}:{line}", row) for line, row in rows)
    return table_records(str(path), present, located, text_column, columns, name, tokens)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        fr = ()
    if len(fr) != 3 or any(not 0.0 <= f < 1.0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise DataSourceError(
            f"fractions={list(fractions)!r}; expected three numbers (train, val, test) in [0, 1) summing to 1"
        )
    return fr  # type: ignore[return-value]


def _carve(records: Records, size: int, key: str | None, seed: int, where: str) -> tuple[Records, Records]:
    """Split ``size`` records off ``records``, stratified by ``key`` (random if stratifying is impossible or
    ``key`` is None: no sequence task)."""
    from sklearn.model_selection import train_test_split

    if key is not None:
        strata = [str(r.get(key)) for r in records]
        try:
            rest, part = train_test_split(records, test_size=size, stratify=strata, random_state=seed)
            return rest, part
        except ValueError as e:
            message = f"{where}: cannot stratify by '{key}' ({e}); splitting at random"
            warnings.warn(message, DataWarning, stacklevel=3)
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    part = [records[i] for i in sorted(order[:size])]
    rest = [records[i] for i in sorted(order[size:])]
    return rest, part


def load_table(
    train: str,
    text_column: str = "text",
    label_columns: dict[str, str] | list[str] | None = None,
    val: str | None = None,
    test: str | None = None,
    split_by: str | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    unknown_labels: str = "error",
    format: str = "auto",
    name: str | None = None,
    token_columns: dict[str, str] | list[str] | None = None,
    token_format: str = "tags",
    tokens_column: str | None = None,
    bio_repair: bool = False,
    task_types: Mapping[str, str] | None = None,
    label_separator: str = "#",
) -> dict[str, Records]:
    """Labelled texts from CSV/TSV/JSONL files (``format`` auto = by extension; ``.csv .tsv .jsonl .ndjson``).

    ``label_columns`` maps task names to columns (``{"intent": "label_col"}``), or lists same-named columns;
    None takes every column except ``text_column``. An empty cell / null / absent key is a missing label
    (masked for that task). Splits ``val``/``test`` come from their files when given; a split without a file
    is carved out of ``train`` (``fractions`` of the train file: train, val, test; a test fraction of 0
    means no test split), stratified by task ``split_by`` (default: the first task) with ``seed`` (random
    with a warning when a class is too small to stratify). ``unknown_labels`` decides what happens to
    val/test labels never seen in train: ``error`` (default: raise, listing them), ``drop`` (remove those
    examples), ``mask`` (missing label for that task only), ``unknown`` (become the string ``"unknown"``:
    only accepted when train has an ``unknown`` class of its own, e.g. a catch-all class). Records carry
    ``source`` = ``name`` (default: the train file's stem).

    Token tasks: ``token_columns`` maps task names to columns (or lists same-named columns; those columns are
    never taken as sequence tasks). Their label is a list of BIO tags, one per ``text.split()`` word, or None
    for an empty cell / null / absent key. ``token_format``: ``tags`` (space-separated tags, in JSONL also a
    list) or ``spans`` (a JSON list of ``{start, end, label}`` character offsets into the text, in JSONL also a
    list; a word inside a span is one that overlaps it). ``tokens_column``: the text is that column's tokens
    (space-separated, in JSONL also a list) joined by single spaces, and ``text_column`` is not read.
    ``bio_repair``: an ``I-x`` without ``B-x`` becomes ``B-x`` and a span that cuts a word is snapped to the
    words it overlaps, instead of an error. Splits are never stratified by a token task; with token tasks only,
    carved splits are random.

    ``task_types`` (the run's ``tasks.types``, passed by the datamodule): a task declared with a type reads its
    column (named after the task, or renamed in ``label_columns``) as that type: ``token`` as ``token_columns``
    would, ``multilabel`` as labels joined by ``label_separator`` (default ``#``) or a JSON list.
    """
    name = name or Path(train).stem
    columns, tokens = column_options(label_columns, token_columns, token_format, tokens_column, bio_repair,
                                     task_types, label_separator)
    columns, train_recs = _records(train, text_column, columns, format, name, tokens)
    if not train_recs:
        text_col = tokens_column if tokens_column is not None else text_column
        raise DataSourceError(f"{train}: no example with a non-empty '{text_col}'; expected rows of text")
    splits: dict[str, Records] = {"train": train_recs}
    for split, path in (("val", val), ("test", test)):
        if path is not None:
            splits[split] = _records(path, text_column, columns, format, name, tokens)[1]
    splits = carve_splits(splits, columns, tokens.columns, fractions, seed, split_by, str(train))
    return resolve_unseen_labels(splits, list(columns), unknown_labels, where=name, set_tasks=tokens.label_sets)


def carve_splits(
    splits: dict[str, Records],
    columns: Mapping[str, str],
    token_columns: Mapping[str, str],
    fractions: Sequence[float],
    seed: int,
    split_by: str | None,
    origin: str,
) -> dict[str, Records]:
    """``splits`` with ``val`` / ``test`` carved out of ``train`` where missing (``fractions`` of train: train,
    val, test; a test fraction of 0 means no test split), stratified by the sequence task ``split_by`` (default:
    the first of ``columns``), random when there is none."""
    missing = [s for s in ("val", "test") if s not in splits]
    if not missing:
        return splits
    fr = dict(zip(("train", "val", "test"), _check_fractions(fractions), strict=True))
    key = split_by or next(iter(columns), None)
    if key is not None and key not in columns:
        kind = "a token task" if key in token_columns else "not a task"
        raise DataSourceError(f"split_by='{key}' is {kind}; expected a sequence task: {list(columns)}")
    n = len(splits["train"])
    sizes = {s: round(fr[s] * n) for s in missing if fr[s] > 0}
    if "val" in missing and not sizes.get("val"):
        raise DataSourceError(f"{origin}: no val split and a val fraction giving 0 of {n} examples")
    if n - sum(sizes.values()) < 1:
        raise DataSourceError(f"{origin}: {n} example(s) are too few to split off {sizes}")
    out, rest = dict(splits), splits["train"]
    for split, size in sizes.items():
        rest, out[split] = _carve(rest, size, key, seed, origin)
    out["train"] = rest
    return out
