"""`MultiTaskDataModule`: records from a source -> label maps -> tokenized once -> length-grouped batches."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from rich.console import Console
from rich.table import Table

from intentfusion.data.batching import IndexDataset, LengthGroupedBatchSampler, ResumableDataLoader, pad_batch
from intentfusion.models.backbone import load_tokenizer, resolve_backbone

IGNORE_INDEX = -100
Records = list[dict[str, Any]]


class DataError(ValueError):
    """Input data does not match what the config declares."""


@dataclass
class EncodedSplit:
    """One split, tokenized once: token ids per example and a (N, tasks) label matrix (-100 = missing)."""

    name: str
    texts: list[str]
    input_ids: list[list[int]]
    labels: torch.Tensor
    truncated: int

    def __len__(self) -> int:
        return len(self.texts)


class Collator:
    """Builds a padded batch from example indices of one split."""

    def __init__(self, split: EncodedSplit, pad_id: int) -> None:
        self.split, self.pad_id = split, pad_id

    def __call__(self, indices: Sequence[int]) -> dict[str, Any]:
        input_ids, mask = pad_batch([self.split.input_ids[i] for i in indices], self.pad_id)
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        return {
            "input_ids": input_ids,
            "attention_mask": mask,
            "labels": self.split.labels[idx],
            "idx": idx,
            "split": self.split.name,
        }


class MultiTaskDataModule(L.LightningDataModule):
    """Tokenizes every split once at setup and serves length-grouped, dynamically padded batches.

    `source` returns `{split: [record, ...]}` with records `{"text": str, <task>: label or None}`; it must
    provide `train` and `val`, and may provide any number of test splits (`test`, `test_noisy`, ...). Label
    maps come from the training split (label names sorted) unless `label_names` is given.
    """

    def __init__(
        self,
        source: Callable[[], dict[str, Records]],
        tasks: Sequence[str],
        backbone: str,
        cache_dir: str = ".cache",
        max_length: int = 64,
        batch_size: int = 16,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        length_grouping: bool = True,
        seed: int = 0,
        test_splits: Sequence[str] = ("test", "test_noisy"),
        label_names: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__()
        self.source, self.tasks = source, list(tasks)
        self.backbone, self.cache_dir = backbone, cache_dir
        self.max_length, self.batch_size, self.eval_batch_size = max_length, batch_size, eval_batch_size
        self.num_workers, self.length_grouping, self.seed = num_workers, length_grouping, seed
        self.test_splits = list(test_splits)
        self.label_names: dict[str, list[str]] | None = label_names
        self.splits: dict[str, EncodedSplit] = {}
        self.tokenizer = None

    # ----------------------------------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        """Load, map labels and tokenize every split once (later calls are no-ops)."""
        if self.splits:
            return
        records = self.source()
        for required in ("train", "val"):
            if required not in records:
                raise DataError(f"data source returned splits {sorted(records)}; '{required}' is required")
        self._check_tasks(records["train"])
        if self.label_names is None:
            self.label_names = {t: sorted({r[t] for r in records["train"] if r.get(t) is not None}) for t in self.tasks}
        self.tokenizer = load_tokenizer(resolve_backbone(self.backbone, self.cache_dir))
        for name, recs in records.items():
            self.splits[name] = self._encode(name, recs)
        missing = [s for s in self.test_splits if s not in self.splits]
        self.test_splits = [s for s in self.test_splits if s in self.splits]
        if missing:
            print(f"[intentfusion] test split(s) {missing} not provided by the data source; skipped")

    def _check_tasks(self, train: Records) -> None:
        present = set().union(*(r.keys() for r in train[:1000])) if train else set()
        absent = [t for t in self.tasks if t not in present]
        if absent:
            raise DataError(
                f"task(s) {absent} have no label column in the training data; columns present: {sorted(present)}"
            )

    def _encode(self, name: str, recs: Records) -> EncodedSplit:
        texts = [str(r["text"]) for r in recs]
        enc = self.tokenizer(texts, truncation=False, verbose=False)["input_ids"]
        long = [i for i, ids in enumerate(enc) if len(ids) > self.max_length]
        if long:  # re-encode only the overlong ones, truncated (keeps the closing special token)
            cut = self.tokenizer([texts[i] for i in long], truncation=True, max_length=self.max_length)["input_ids"]
            for i, ids in zip(long, cut, strict=True):
                enc[i] = ids
        truncated = len(long)
        labels = torch.full((len(recs), len(self.tasks)), IGNORE_INDEX, dtype=torch.long)
        for j, task in enumerate(self.tasks):
            index = {label: k for k, label in enumerate(self.label_names[task])}
            unseen = sorted({r[task] for r in recs if r.get(task) is not None and r[task] not in index})
            if unseen:
                raise DataError(
                    f"split '{name}', task '{task}': label(s) {unseen[:10]} do not occur in the training split"
                    f" (known: {len(index)} labels)"
                )
            for i, r in enumerate(recs):
                if r.get(task) is not None:
                    labels[i, j] = index[r[task]]
        return EncodedSplit(name, texts, enc, labels, truncated)

    # ----------------------------------------------------------------------------------------- loaders
    def _loader(self, split: str, train: bool, shard: bool = True) -> ResumableDataLoader:
        data = self.splits[split]
        lengths = [len(x) for x in data.input_ids] if self.length_grouping else [0] * len(data)
        size = self.batch_size if train else self.eval_batch_size
        sampler = LengthGroupedBatchSampler(lengths, size, shuffle=train, seed=self.seed, shard=shard)
        return ResumableDataLoader(
            IndexDataset(len(data)),
            batch_sampler=sampler,
            collate_fn=Collator(data, self.tokenizer.pad_token_id),
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),  # keeps the global RNG untouched
        )

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader("train", train=True)

    def feature_dataloader(self) -> ResumableDataLoader:
        """The training split in length order, unshuffled: for encoding it once (frozen-phase cache)."""
        return self._loader("train", train=False, shard=False)

    def val_dataloader(self) -> ResumableDataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> list[ResumableDataLoader]:
        return [self._loader(s, train=False) for s in self.test_splits]

    # ----------------------------------------------------------------------------------------- summary
    def summary(self) -> dict[str, Any]:
        """Per split: size, label distribution per task, truncation count, mean/p95 token length."""
        out: dict[str, Any] = {}
        for name, split in self.splits.items():
            lengths = sorted(len(x) for x in split.input_ids)
            dist = {}
            for j, task in enumerate(self.tasks):
                counts = Counter(split.labels[:, j].tolist())
                dist[task] = {self.label_names[task][k]: v for k, v in sorted(counts.items()) if k != IGNORE_INDEX}
            out[name] = {
                "examples": len(split),
                "truncated": split.truncated,
                "mean_tokens": round(sum(lengths) / max(1, len(lengths)), 1),
                "p95_tokens": lengths[int(0.95 * (len(lengths) - 1))] if lengths else 0,
                "labels": dist,
            }
        return out

    def print_summary(self, out_dir: str | Path | None = None) -> None:
        """Print the data summary as a table and save it as `data_summary.json` in `out_dir`."""
        summary = self.summary()
        table = Table(title="data summary")
        for col in ("split", "examples", "truncated", "mean tok", "p95 tok", *self.tasks):
            table.add_column(col)
        for name, s in summary.items():
            classes = [f"{len(s['labels'][t])} cls" for t in self.tasks]
            table.add_row(
                name,
                str(s["examples"]),
                str(s["truncated"]),
                str(s["mean_tokens"]),
                str(s["p95_tokens"]),
                *classes,
            )
        Console().print(table)
        if out_dir is not None:
            Path(out_dir, "data_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
