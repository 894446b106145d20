"""A tokenized split in flat arrays: `RaggedArray` (rows of different lengths), `TextColumn`, `EncodedSplit`.

A split of a million utterances is a few numpy arrays, not millions of Python objects: token ids are one int32
array plus row offsets, texts one UTF-8 buffer plus offsets. `EncodedSplit.save` / `EncodedSplit.load` write and
memory-map them (`intentfusion.data.encoded_cache` keys them on disk).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["RaggedArray", "TextColumn", "EncodedSplit"]


class RaggedArray(Sequence):
    """Rows of different lengths in one array: row ``i`` is ``values[offsets[i]:offsets[i + 1]]`` (a numpy view)."""

    def __init__(self, values: np.ndarray, offsets: np.ndarray) -> None:
        self.values, self.offsets = values, offsets

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]], dtype: Any = np.int32, width: int | None = None) -> RaggedArray:
        """Pack rows (lists of ints, or of ``width``-long tuples such as character offsets)."""
        builder = RaggedBuilder(dtype, width)
        builder.extend(rows)
        return builder.build()

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int | slice) -> Any:  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(len(self))[i]]
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        """The length of every row."""
        return np.diff(self.offsets)

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}.values.npy", self.values)
        np.save(folder / f"{name}.offsets.npy", self.offsets)

    @classmethod
    def load(cls, folder: Path, name: str) -> RaggedArray:
        """Memory-mapped: the rows are read from disk when used."""
        return cls(np.load(folder / f"{name}.values.npy", mmap_mode="r"),
                   np.load(folder / f"{name}.offsets.npy", mmap_mode="r"))


class RaggedBuilder:
    """Appends rows chunk by chunk into growing arrays (no Python object per element is kept)."""

    def __init__(self, dtype: Any = np.int32, width: int | None = None) -> None:
        self.dtype, self.width = dtype, width
        self.chunks: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []

    def extend(self, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        flat = [x for r in rows for x in r]
        shape = (-1, self.width) if self.width else (-1,)
        self.chunks.append(np.asarray(flat, dtype=self.dtype).reshape(shape))
        self.lengths.append(lengths)

    def build(self) -> RaggedArray:
        empty = np.zeros((0, self.width) if self.width else (0,), dtype=self.dtype)
        values = np.concatenate(self.chunks) if self.chunks else empty
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, dtype=np.int64)
        return RaggedArray(values, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))


class TextColumn(Sequence):
    """Texts in one UTF-8 buffer; ``column[i]`` decodes text ``i``."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray) -> None:
        self.data, self.offsets = data, offsets

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> TextColumn:
        encoded = [t.encode("utf-8") for t in texts]
        offsets = np.concatenate([[0], np.cumsum([len(b) for b in encoded], dtype=np.int64)]).astype(np.int64)
        return cls(np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int | slice) -> Any:  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(len(self))[i]]
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def save(self, folder: Path, name: str) -> None:
        np.save(folder / f"{name}.utf8.npy", self.data)
        np.save(folder / f"{name}.offsets.npy", self.offsets)

    @classmethod
    def load(cls, folder: Path, name: str) -> TextColumn:
        return cls(np.load(folder / f"{name}.utf8.npy", mmap_mode="r"), np.load(folder / f"{name}.offsets.npy",
                                                                                  mmap_mode="r"))


@dataclass
class EncodedSplit:
    """One split, tokenized once: token ids per example and labels per task (``{task: (N,)}``, -100 = missing;
    a token task ``(N, longest)``: one label per subword).

    ``source`` is each example's source index (into `MultiTaskDataModule.source_names`), ``groups`` the
    metric groups (``{name: bool mask}``: one per source when there are several, plus the configured slices)
    and ``is_truncated`` marks the examples cut to ``max_length``; ``offsets`` (token tasks) the tokens'
    character offsets in the text.
    """

    name: str
    texts: Sequence[str]
    input_ids: RaggedArray
    labels: dict[str, torch.Tensor]
    truncated: int
    source: torch.Tensor | None = None
    groups: dict[str, torch.Tensor] = field(default_factory=dict)
    is_truncated: torch.Tensor | None = None
    offsets: RaggedArray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def save(self, folder: Path) -> None:
        """Write every array of the split into ``folder`` (created)."""
        folder.mkdir(parents=True, exist_ok=True)
        texts = self.texts if isinstance(self.texts, TextColumn) else TextColumn.from_texts(self.texts)
        texts.save(folder, "texts")
        self.input_ids.save(folder, "input_ids")
        if self.offsets is not None:
            self.offsets.save(folder, "offsets")
        tensors = {f"labels.{t}": v for t, v in self.labels.items()}
        tensors |= {f"groups.{g}": v for g, v in self.groups.items()}
        tensors |= {"source": self.source, "is_truncated": self.is_truncated}
        for key, value in tensors.items():
            if value is not None:
                np.save(folder / f"{key}.npy", value.numpy())
        meta = {"name": self.name, "truncated": self.truncated, "tasks": list(self.labels), "groups": list(self.groups),
                "offsets": self.offsets is not None}
        (folder / "split.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> EncodedSplit:
        """The split written by `save`; ids, offsets and texts memory-mapped, labels and masks in memory."""
        meta = json.loads((folder / "split.json").read_text())

        def tensor(key: str) -> torch.Tensor | None:
            path = folder / f"{key}.npy"
            return torch.from_numpy(np.load(path)) if path.is_file() else None

        return cls(
            meta["name"],
            TextColumn.load(folder, "texts"),
            RaggedArray.load(folder, "input_ids"),
            {t: tensor(f"labels.{t}") for t in meta["tasks"]},
            meta["truncated"],
            tensor("source"),
            {g: tensor(f"groups.{g}") for g in meta["groups"]},
            tensor("is_truncated"),
            RaggedArray.load(folder, "offsets") if meta["offsets"] else None,
        )
