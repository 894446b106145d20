"""The on-disk cache of a datamodule's tokenized splits, keyed by everything that decides them.

The key hashes the data source config (loader and options, as Hydra's partials hold them), the size and mtime of
every local file or folder the options name, the tokenizer (its serialized vocabulary and rules), ``max_length``,
the label options, and the data package's code. A hit memory-maps the arrays (`EncodedSplit.load`): repeated
runs and sweep jobs skip loading and tokenization. Entries are written to a temporary folder and renamed, so
parallel jobs never read half an entry. A source that is not a config (a Python function or lambda) is not cached.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from intentfusion.data.encoded import EncodedSplit

__all__ = ["CACHE_VERSION", "cache_key", "load_entry", "save_entry"]

CACHE_VERSION = 1
MAX_FILES = 10_000  # files fingerprinted per folder; a bigger folder is fingerprinted by its first ones
_CODE = Path(__file__).resolve().parent


UNCACHEABLE = "<uncacheable>"  # the description of a value without a stable one (a lambda, an object)


def _files(path: Path) -> list[list[Any]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())[:MAX_FILES]
    out = []
    for f in files:
        stat = f.stat()
        out.append([str(f.relative_to(path)) if f != path else f.name, stat.st_size, stat.st_mtime_ns])
    return out


def describe(value: Any) -> Any:
    """A JSON-able description of a config value: partials by target and arguments, local paths by their files."""
    if isinstance(value, functools.partial):
        target = f"{value.func.__module__}.{value.func.__qualname__}"
        return {"call": target, "args": describe(list(value.args)), "kwargs": describe(dict(value.keywords))}
    if isinstance(value, Mapping):
        return {str(k): describe(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, str):
        path = Path(value)
        if len(value) < 4096 and value and path.exists():
            return {"path": value, "files": _files(path)}
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return UNCACHEABLE


def _code_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted(_CODE.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def tokenizer_identity(tokenizer: Any) -> str:
    """A hash of the tokenizer's vocabulary and rules (a fast tokenizer's JSON), or its name and size."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else f"{type(tokenizer).__name__}:{len(tokenizer)}"
    extra = json.dumps({"cls": type(tokenizer).__name__, "prefix": getattr(tokenizer, "add_prefix_space", None)})
    return hashlib.sha256((text + extra).encode("utf-8")).hexdigest()


def cache_key(parts: Mapping[str, Any]) -> str | None:
    """The hex key of ``parts`` (data source config, tokenizer identity, options), or None if uncacheable."""
    text = json.dumps(describe({**parts, "version": CACHE_VERSION, "code": _code_hash()}), sort_keys=True)
    if json.dumps(UNCACHEABLE) in text:
        return None
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def load_entry(folder: Path) -> tuple[dict[str, EncodedSplit], dict[str, Any]] | None:
    """The splits and metadata of a complete entry, or None."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    return {name: EncodedSplit.load(folder / name) for name in meta["splits"]}, meta


def save_entry(folder: Path, splits: Mapping[str, EncodedSplit], meta: Mapping[str, Any]) -> None:
    """Write an entry atomically (a temporary folder renamed into place; a concurrent writer's entry wins)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name, split in splits.items():
            split.save(tmp / name)
        (tmp / "meta.json").write_text(json.dumps({**meta, "splits": list(splits)}, ensure_ascii=False))
        os.replace(tmp, folder)
    except OSError:
        if not (folder / "meta.json").is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
