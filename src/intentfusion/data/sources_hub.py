"""`load_hf`: a data set of the `datasets` library as records, and `open_dataset`, the one call that opens one.

``path`` is a hub id (``clinc/clinc_oos``), a folder written by ``save_to_disk`` (opened with `load_from_disk`,
memory-mapped) or data files (a ``.parquet`` / ``.json`` / ``.jsonl`` / ``.csv`` file or glob, or a folder of
them). Columns are read as in `intentfusion.data.sources_files.load_table`; ``ClassLabel`` integers become their
names (also inside tag lists). An unreachable hub (offline) or an unknown id is one `DataNotFoundError` line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from intentfusion.data.sources_files import carve_splits, column_options, table_records
from intentfusion.data.transforms import Splits, resolve_unseen_labels
from intentfusion.errors import DataNotFoundError, DataSourceError

__all__ = [
    "DATA_FILE_BUILDERS",
    "SPLIT_ALIASES",
    "HUB_SPLITS",
    "open_dataset",
    "hub_call",
    "split_rows",
    "load_hf",
    "hub_copy",
]

DATA_FILE_BUILDERS: dict[str, str] = {".parquet": "parquet", ".json": "json", ".jsonl": "json", ".csv": "csv"}
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {  # our split -> the names data sets use for it, in order
    "train": ("train",),
    "val": ("validation", "val", "valid", "dev"),
    "test": ("test",),
}
HUB_SPLITS: dict[str, str] = {"train": "train", "val": "validation", "test": "test"}  # ours -> the presets' hub copies
READ_BATCH = 10_000  # rows decoded at a time


def hub_call(path: str, name: str | None = None, revision: str | None = None) -> str:
    """The `load_dataset` call a user can paste, e.g. ``load_dataset('clinc/clinc_oos', 'plus')``."""
    args = [repr(path), *([repr(name)] if name else []), *([f"revision={revision!r}"] if revision else [])]
    return f"load_dataset({', '.join(args)})"


def _is_saved(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json"))


def open_dataset(
    path: str, name: str | None = None, revision: str | None = None, data_files: Any = None
) -> Any:
    """The `datasets.DatasetDict` at ``path`` (see the module docstring); a lone `Dataset` becomes split train."""
    import datasets

    where = f"data.source.path={path}"
    local = Path(path)
    try:
        if _is_saved(local):
            opened = datasets.load_from_disk(str(local))
        elif data_files is None and local.suffix.lower() in DATA_FILE_BUILDERS:
            opened = datasets.load_dataset(DATA_FILE_BUILDERS[local.suffix.lower()], data_files=str(local))
        else:
            opened = datasets.load_dataset(path, name, revision=revision, data_files=data_files)
    except ConnectionError as e:
        expected = (f"network access for {hub_call(path, name, revision)}, or a local copy: a save_to_disk folder or "
                    "data files (parquet / json / csv) as data.source.path")
        raise _not_found(where, f"the Hugging Face hub is unreachable ({_first_line(e)})", expected) from None
    except FileNotFoundError as e:
        expected = "a hub data set id, a save_to_disk folder, or parquet / json / csv files"
        raise _not_found(where, _first_line(e), expected) from None
    except (ValueError, RuntimeError, TypeError) as e:  # unknown config, a script-only repo, bad data files
        call = hub_call(path, name, revision)
        raise DataSourceError(where, _first_line(e), f"a data set that {call} loads") from None
    return opened if isinstance(opened, datasets.DatasetDict) else datasets.DatasetDict(train=opened)


def _not_found(where: str, what: str, expected: str) -> DataNotFoundError:
    """The error for a data set that cannot be opened; ``reason`` keeps ``what`` for `hub_copy`'s message."""
    err = DataNotFoundError(where, what, expected)
    err.reason = what
    return err


def _first_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] or type(err).__name__


def _decoder(feature: Any) -> Any:
    """A function turning one stored value into what a record holds: ClassLabel ids -> names (-1 -> None)."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        names = feature.names
        return lambda v: None if v is None or v < 0 else names[v]
    inner = getattr(feature, "feature", None)
    if isinstance(feature, (datasets.List, datasets.Sequence, datasets.LargeList)) and isinstance(
        inner, datasets.ClassLabel
    ):
        names = inner.names
        return lambda v: None if v is None else [names[k] for k in v]
    return None


def split_rows(dataset: Any, origin: str, columns: Sequence[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, row)`` for every row of one split, only ``columns``, ClassLabel ids decoded to names."""
    present = [c for c in dict.fromkeys(columns) if c in dataset.column_names]
    decoders = {c: d for c in present if (d := _decoder(dataset.features[c])) is not None}
    start = 0
    for batch in dataset.select_columns(present).iter(batch_size=READ_BATCH):
        for c, decode in decoders.items():
            batch[c] = [decode(v) for v in batch[c]]
        for i, row in enumerate(zip(*(batch[c] for c in present), strict=True)):
            yield f"{origin} row {start + i}", dict(zip(present, row, strict=True))
        start += len(batch[present[0]]) if present else 0


def _split_map(available: Sequence[str], splits: Mapping[str, str] | None, where: str) -> dict[str, str]:
    """Our split names -> the data set's: ``splits`` as given, else train/val/test by `SPLIT_ALIASES`."""
    if splits:
        unknown = {ours: theirs for ours, theirs in splits.items() if theirs not in available}
        if unknown:
            raise DataSourceError(
                "data.source.splits", f"split(s) {unknown} not in {where}", f"splits among {list(available)}"
            )
        mapping = dict(splits)
    else:
        mapping = {}
        for ours, aliases in SPLIT_ALIASES.items():
            found = next((a for a in aliases if a in available), None)
            if found is not None:
                mapping[ours] = found
    if "train" not in mapping:
        raise DataSourceError(
            "data.source.splits", f"{where} has no split 'train' (splits: {list(available)})",
            "a mapping with a train split, e.g. {train: <split>, val: <split>, test: <split>}",
        )
    return mapping


def load_hf(
    path: str,
    name: str | None = None,
    revision: str | None = None,
    data_files: Any = None,
    splits: Mapping[str, str] | None = None,
    text_column: str = "text",
    label_columns: dict[str, str] | list[str] | None = None,
    token_columns: dict[str, str] | list[str] | None = None,
    token_format: str = "tags",
    tokens_column: str | None = None,
    bio_repair: bool = False,
    keep_columns: Sequence[str] = (),
    split_by: str | None = None,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
    unknown_labels: str = "error",
    task_types: Mapping[str, str] | None = None,
    label_separator: str = "#",
) -> Splits:
    """Labelled texts from a `datasets` data set (a hub id, a save_to_disk folder or data files: `open_dataset`).

    ``name`` / ``revision``: the hub configuration and git revision; ``data_files`` as in `load_dataset`.
    ``splits`` maps our split names to the data set's (``{train: train, val: validation, test: test}``; default
    by `SPLIT_ALIASES`; extra entries such as ``test_oos: <split>`` add test splits); a missing val / test is
    carved out of train as in `load_table` (``fractions``, ``seed``, ``split_by``). ``label_columns``,
    ``token_columns``, ``token_format``, ``tokens_column`` (a column of token lists or space-separated tokens),
    ``bio_repair``, ``unknown_labels``, ``task_types`` and ``label_separator`` as in `load_table`; ClassLabel ids
    become their names (a `Sequence(ClassLabel)` column: a list of names, a multilabel task's label set).
    ``keep_columns``: more columns each record carries as they are (e.g. ``language``, for ``data.slices``).
    """
    columns, tokens = column_options(label_columns, token_columns, token_format, tokens_column, bio_repair,
                                     task_types, label_separator)
    data = open_dataset(path, name, revision, data_files)
    label = hub_call(path, name, revision)
    mapping = _split_map(list(data), splits, label)
    source = Path(path).name or path
    out: Splits = {}
    for ours, theirs in mapping.items():
        ds = data[theirs]
        origin = f"{path}[{theirs}]"
        if columns is None:  # every column may be a task
            wanted = list(ds.column_names)
        else:
            text = text_column if tokens_column is None else tokens_column
            wanted = [text, *columns.values(), *tokens.columns.values(), *keep_columns]
        missing = [c for c in keep_columns if c not in ds.column_names]
        if missing:
            raise DataSourceError("data.source.keep_columns", f"column(s) {missing} not in {origin}",
                                  f"columns among {ds.column_names}")
        rows = split_rows(ds, origin, wanted)
        columns, out[ours] = table_records(origin, ds.column_names, rows, text_column, columns, source, tokens,
                                           keep=keep_columns)
    out = carve_splits(out, columns or {}, tokens.columns, fractions, seed, split_by, label)
    return resolve_unseen_labels(out, list(columns or {}), unknown_labels, where=source, set_tasks=tokens.label_sets)



def hub_copy(root: str | Path, layout: str, hub: Mapping[str, Any] | None, **fill: str) -> Any:
    """The hub copy of a benchmark preset when its local folder ``root`` is absent, else None (read ``root``).

    ``hub``: ``{path, name, revision, data_files}`` as in `open_dataset`; ``{key}`` placeholders in ``name`` /
    ``data_files`` are filled from ``fill`` (``config="english"``). Without ``hub``, or offline, one
    `DataNotFoundError` names both ways: the local layout and the hub call.
    """
    root = Path(root)
    if root.is_dir():
        return None
    if not hub or not hub.get("path"):
        raise DataNotFoundError(f"{root}: folder not found; expected {layout}")
    spec = {k: _fill(hub.get(k), fill) for k in ("path", "name", "revision", "data_files")}
    try:
        return open_dataset(**spec)
    except DataNotFoundError as e:
        call = hub_call(spec["path"], spec["name"], spec["revision"])
        raise DataNotFoundError(
            str(root), f"folder not found, and the hub copy is not reachable: {e.reason}",
            f"{layout}, or network access for {call}",
        ) from None


def _fill(value: Any, fill: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**fill) if fill else value
    if isinstance(value, Mapping):
        return {k: _fill(v, fill) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_fill(v, fill) for v in value]
    return value
