"""The tokenized-split cache: a second datamodule on the same data reads it instead of loading and tokenizing;
anything that changes the encoding (the file, max_length, the tokenizer) misses it; flat arrays round-trip."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import torch

from intentfusion.data.datamodule import MultiTaskDataModule
from intentfusion.data.encoded import RaggedArray, TextColumn
from intentfusion.data.encoded_cache import cache_key
from intentfusion.data.sources import load_source

CALLS: list[str] = []


def counting_loader(train: str) -> dict:
    """`load_table` that counts its calls (a loader by dotted path, as a config would name it)."""
    from intentfusion.data.sources_files import load_table

    CALLS.append(train)
    return load_table(train, token_columns={"slots": "tags"}, label_columns=["intent"])


def _csv(path: Path, n: int = 40) -> Path:
    rows = ["text,intent,tags"]
    for i in range(n):
        rows.append(f"wake me at {i} am,alarm,O O O B-time I-time" if i % 2 else f"rain in city{i},weather,O O B-city")
    path.write_text("\n".join(rows) + "\n")
    return path


def _module(path: Path, cache_dir: Path, **options) -> MultiTaskDataModule:
    source = partial(load_source, loader=f"{__name__}.counting_loader", train=str(path))
    return MultiTaskDataModule(source, ["intent", "slots"], "builtin:tiny-xlmr", cache_dir=str(cache_dir),
                               task_types={"slots": "token"}, cache=True, slice_by=["intent"], **options)


def test_second_setup_reads_the_cache_and_equals_the_first(tmp_path: Path, cache_dir: Path) -> None:
    path = _csv(tmp_path / "u.csv")
    first = _module(path, cache_dir)
    first.setup()
    CALLS.clear()
    second = _module(path, cache_dir)
    second.setup()
    assert CALLS == []  # nothing loaded, nothing tokenized
    assert second.label_names == first.label_names and second.source_tasks == first.source_tasks
    for name, a in first.splits.items():
        b = second.splits[name]
        assert list(b.texts) == list(a.texts) and len(b) == len(a)
        assert all(np.array_equal(x, y) for x, y in zip(a.input_ids, b.input_ids, strict=True))
        assert all(np.array_equal(x, y) for x, y in zip(a.offsets, b.offsets, strict=True))
        assert a.labels.keys() == b.labels.keys() and all(torch.equal(a.labels[t], b.labels[t]) for t in a.labels)
        assert a.groups.keys() == b.groups.keys() == {"alarm", "weather"}
        assert torch.equal(a.is_truncated, b.is_truncated) and a.truncated == b.truncated
    assert second.summary() == first.summary()
    CALLS.clear()
    _module(path, cache_dir, label_names=first.label_names).setup()  # evaluate.py passes the checkpoint's maps
    assert CALLS == []
    other = {**first.label_names, "intent": ["weather", "alarm"]}
    reordered = _module(path, cache_dir, label_names=other)
    reordered.setup()
    assert len(CALLS) == 1 and reordered.splits["train"].labels["intent"].tolist() != \
        first.splits["train"].labels["intent"].tolist()  # other label maps: encoded afresh, the entry kept
    CALLS.clear()
    _module(path, cache_dir).setup()
    assert CALLS == []
    batch = next(iter(second.train_dataloader()))  # batches come out of the memory-mapped arrays
    assert batch["input_ids"].dtype == torch.long and batch["labels"]["slots"].shape == batch["input_ids"].shape


def test_changed_file_max_length_or_tokenizer_miss_the_cache(tmp_path: Path, cache_dir: Path) -> None:
    path = _csv(tmp_path / "u.csv")
    _module(path, cache_dir).setup()
    CALLS.clear()
    _module(path, cache_dir, max_length=16).setup()
    assert len(CALLS) == 1
    _csv(path, n=44)  # the same file, other content
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    dm = _module(path, cache_dir)
    dm.setup()
    assert len(CALLS) == 2 and len(dm.splits["train"]) + len(dm.splits["val"]) + len(dm.splits["test"]) == 44
    source = partial(load_source, loader=f"{__name__}.counting_loader", train=str(path))
    base = {"source": source, "max_length": 64, "tokenizer": "a"}
    assert cache_key(base) != cache_key({**base, "tokenizer": "b"})
    assert cache_key({**base, "source": lambda: {}}) is None  # a Python function is not a config: never cached
    no_cache = MultiTaskDataModule(source, ["intent", "slots"], "builtin:tiny-xlmr", cache_dir=str(tmp_path / "c"),
                                   task_types={"slots": "token"})
    no_cache.setup()
    assert not (tmp_path / "c" / "encoded").exists()


def test_ragged_array_and_text_column_round_trip(tmp_path: Path) -> None:
    rows = [[1, 2, 3], [], [70000, 5]]
    ragged = RaggedArray.from_rows(rows)
    assert [r.tolist() for r in ragged] == rows and ragged.lengths().tolist() == [3, 0, 2]
    pairs = RaggedArray.from_rows([[(0, 0), (0, 4)], [(5, 7)]], width=2)
    assert pairs[0].tolist() == [[0, 0], [0, 4]] and len(pairs) == 2
    texts = TextColumn.from_texts(["héllo", "", "午前九時"])
    assert list(texts) == ["héllo", "", "午前九時"] and texts[1:] == ["", "午前九時"]
    ragged.save(tmp_path, "ids")
    texts.save(tmp_path, "texts")
    assert [r.tolist() for r in RaggedArray.load(tmp_path, "ids")] == rows
    assert list(TextColumn.load(tmp_path, "texts")) == ["héllo", "", "午前九時"]
