"""`MultiTaskDataModule`: records from one or several sources -> label maps -> tokenized once -> batches."""

from __future__ import annotations

import inspect
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from intentfusion.data.batching import (
    IndexDataset,
    LengthGroupedBatchSampler,
    MixtureBatchSampler,
    ResumableDataLoader,
    pad_batch,
)
from intentfusion.data.encoded import EncodedSplit, RaggedBuilder, TextColumn
from intentfusion.data.encoded_cache import cache_key, load_entry, save_entry, tokenizer_identity
from intentfusion.data.encoding import encode_texts
from intentfusion.data.mixture import class_weight_options, mixing_probabilities, smoothed_inverse_frequency
from intentfusion.errors import DataError  # re-exported: `from intentfusion.data.datamodule import DataError`
from intentfusion.models.backbone import load_tokenizer, resolve_backbone
from intentfusion.tasks import EncodeContext, TaskType, resolve_task_types
from intentfusion.types import IGNORE_INDEX, Records

Source = Callable[..., dict[str, Records]]  # () -> splits; accepting `task_types`, it gets the tasks' declared types
SINGLE_SOURCE = "data"  # the name of the one source of a `source=` datamodule
_NAME = re.compile(r"^[^./\s]+$")  # source / slice names become metric-key segments: no dots, slashes, spaces
ENCODE_CHUNK = 20_000  # texts tokenized at a time: the tokenizer's per-text objects live for one chunk only


class Collator:
    """Builds a padded batch from example indices of one split.

    With metric groups (several sources, or slices) the batch also carries ``groups``: ``{name: bool mask}``
    over its examples, for per-source / per-slice metrics.
    """

    def __init__(self, split: EncodedSplit, pad_id: int, types: Mapping[str, type[TaskType]]) -> None:
        self.split, self.pad_id, self.types = split, pad_id, dict(types)

    def __call__(self, indices: Sequence[int]) -> dict[str, Any]:
        input_ids, mask = pad_batch([self.split.input_ids[i] for i in indices], self.pad_id)
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        batch = {
            "input_ids": input_ids,
            "attention_mask": mask,
            "labels": {task: self.types[task].rows(column, idx, input_ids.shape[1])
                       for task, column in self.split.labels.items()},
            "idx": idx,
            "split": self.split.name,
        }
        if self.split.groups:
            batch["groups"] = {name: members[idx] for name, members in self.split.groups.items()}
        return batch


class MultiTaskDataModule(L.LightningDataModule):
    """Tokenizes every split once at setup and serves length-grouped, dynamically padded batches.

    **One source** (``source``): a callable returning ``{split: [record, ...]}`` with records
    ``{"text": str, <task>: label or None}``; it must provide ``train`` and ``val``, and may provide any
    number of test splits (``test``, ``test_noisy``, ...).

    **Several sources** (``sources: {name: source}``, heterogeneous multi-task): each source returns its own
    splits (``train`` and ``val`` required) and may label only some of the tasks; a label it lacks is missing
    (-100), which the loss and the metrics ignore per task. Splits of the same name are concatenated (every
    record gets ``"source": name``), so ``test`` holds the test examples of every source that has one.
    Training batches come from `MixtureBatchSampler` (each batch from one source; ``mixing`` =
    ``proportional`` | ``uniform`` | ``temperature`` with ``temperature``; an epoch = one pass' worth of
    batches, ``sum_s ceil(n_s / batch_size)``); validation/test batches carry ``groups`` so the module reports
    ``<split>/<source>/<task>/<metric>`` next to ``<split>/<task>/<metric>``.

    ``slices: {name: {field: value | [values]}}`` adds metric groups of the examples whose record fields
    match (e.g. ``english: {language: english}`` -> ``test/english/sentiment/f1_macro``); ``slice_by: [field]``
    adds one group per value of those record fields (MASSIVE's ``locale``: ``test/de-DE/intent/acc``).

    Imbalance: ``class_weights: {task: true | {alpha, k}}`` computes smoothed inverse-frequency class weights
    (``w_c ∝ (n_c + k)^-alpha``, mean 1; defaults alpha 0.5, k 1) from the training split into
    `class_weights` (``{task: [w per label]}``), which `MultiTaskModule` uses in its loss.
    ``weighted_sampling: task | {task, alpha, k}`` draws training examples (with replacement, per source)
    with probability ∝ the class weight of their label for that task (unlabelled examples: weight 1).

    Label maps come from the training split(s) (label names sorted) unless ``label_names`` is given.

    ``cache``: tokenized splits are kept under ``<cache_dir>/encoded/<key>`` (`encoded_cache`: keyed by the
    source config and the files it reads, the tokenizer, ``max_length`` and the label options), so a second run
    on the same data skips loading and tokenization. Token ids, offsets and texts are flat arrays
    (`intentfusion.data.encoded`), memory-mapped from the cache.
    """

    def __init__(
        self,
        source: Source | None,
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
        sources: Mapping[str, Source] | None = None,
        mixing: str = "proportional",
        temperature: float = 2.0,
        slices: Mapping[str, Mapping[str, Any]] | None = None,
        class_weights: Mapping[str, Any] | None = None,
        weighted_sampling: str | Mapping[str, Any] | None = None,
        task_types: Mapping[str, str] | None = None,
        label_all_subwords: bool = False,
        slice_by: Sequence[str] = (),
        cache: bool = False,
    ) -> None:
        super().__init__()
        if (source is None) == (not sources):
            raise DataError("data: give either `source` (one data source) or `sources` ({name: source}), not both")
        self.source, self.sources, self.tasks = source, dict(sources or {}), list(tasks)
        self.source_names = list(self.sources) or [SINGLE_SOURCE]
        self.types = resolve_task_types(self.tasks, task_types)  # {task: its TaskType class}
        self.task_types = {t: cls.name for t, cls in self.types.items()}
        self.label_all_subwords = bool(label_all_subwords)
        self.truncated_words: dict[str, dict[str, int]] = {}  # split -> token task -> words cut by max_length
        self.provenance: dict[str, dict[str, int]] = {}  # split -> how its records were made (`provenance`) -> count
        self.backbone, self.cache_dir = backbone, cache_dir
        self.max_length, self.batch_size, self.eval_batch_size = max_length, batch_size, eval_batch_size
        self.num_workers, self.length_grouping, self.seed = num_workers, length_grouping, seed
        self.test_splits = list(test_splits)
        self.label_names: dict[str, list[str]] | None = label_names
        self.mixing, self.temperature = mixing, temperature
        try:
            mixing_probabilities([1], mixing, temperature)
        except ValueError as e:
            raise DataError(f"data.{e}") from None
        self.slices = {name: dict(spec) for name, spec in (slices or {}).items()}
        self.slice_by = [slice_by] if isinstance(slice_by, str) else list(slice_by)
        self.cache = bool(cache)
        self._check_names()
        self.class_weight_options = self._weight_options(class_weights)
        self.sampling_task, self.sampling_options = self._sampling_options(weighted_sampling)
        self.class_weights: dict[str, list[float]] | None = None
        self.sample_weights: list[float] | None = None
        self.source_tasks: dict[str, list[str]] = {}
        self.splits: dict[str, EncodedSplit] = {}
        self.tokenizer = None

    # ----------------------------------------------------------------------------------------- config checks
    @property
    def multi_source(self) -> bool:
        return len(self.sources) > 1

    def _check_names(self) -> None:
        bad = [n for n in [*self.sources, *self.slices] if not isinstance(n, str) or not _NAME.match(n)]
        if bad:
            raise DataError(f"data: source/slice name(s) {bad} must be non-empty, without '.', '/' or spaces")
        clash = sorted(set(self.sources) & set(self.slices))
        if clash:
            raise DataError(f"data.slices: name(s) {clash} are also source names; pick other slice names")
        for name, spec in self.slices.items():
            if not spec:
                raise DataError(f"data.slices.{name}: expected {{field: value or [values]}}, e.g. {{language: en}}")

    def _weight_options(self, spec: Mapping[str, Any] | None) -> dict[str, dict[str, float]]:
        out = {}
        for task, value in (spec or {}).items():
            if task not in self.tasks:
                raise DataError(f"data.class_weights: task '{task}' is not one of the tasks {self.tasks}")
            try:
                options = class_weight_options(value, f"data.class_weights.{task}")
            except ValueError as e:
                raise DataError(str(e)) from None
            if options is not None:
                out[task] = options
        return out

    def _sampling_options(self, spec: str | Mapping[str, Any] | None) -> tuple[str | None, dict[str, float]]:
        if spec is None:
            return None, {}
        options = dict(spec) if isinstance(spec, Mapping) else {"task": spec}
        task = options.pop("task", None)
        if task not in self.tasks:
            raise DataError(
                f"data.weighted_sampling: {spec!r}; expected a task name or {{task, alpha, k}}, tasks: {self.tasks}"
            )
        if not self.types[task].samples_by_class:
            raise DataError("data.weighted_sampling", f"task '{task}' is a {self.task_types[task]} task",
                            "a task with one class per example (sequence)")
        try:
            return task, class_weight_options(options or True, "data.weighted_sampling")
        except ValueError as e:
            raise DataError(str(e)) from None

    # ----------------------------------------------------------------------------------------- setup
    def setup(self, stage: str | None = None) -> None:
        """Load, map labels and tokenize every split once (later calls are no-ops); with ``cache``, a run with the
        same data, tokenizer and options reads the tokenized splits from disk instead (`encoded_cache`)."""
        if self.splits:
            return
        self.tokenizer = load_tokenizer(resolve_backbone(self.backbone, self.cache_dir))
        folder = self._cache_folder()
        entry = load_entry(folder) if folder is not None else None
        if entry is not None and self.label_names is not None:
            given = {t: list(names) for t, names in self.label_names.items()}
            if given != entry[1]["label_names"]:  # a checkpoint's label maps differ: encode, leave the entry alone
                entry = folder = None
        if entry is not None:
            self.splits, meta = entry
            self.label_names, self.source_tasks = meta["label_names"], meta["source_tasks"]
            self.truncated_words, self.provenance = meta["truncated_words"], meta.get("provenance", {})
            print(f"[intentfusion] data: tokenized splits read from the cache ({folder})")
        else:
            records, origin = self._load()
            if self.label_names is None:
                self.label_names = {t: cls.label_set(t, records) for t, cls in self.types.items()}
            for name in list(records):
                recs = records.pop(name)
                made = Counter(str(r["provenance"]) for r in recs if r.get("provenance"))
                if made:
                    self.provenance[name] = dict(made)
                self.splits[name] = self._encode(name, recs, origin.pop(name))
            if folder is not None:
                meta = {"label_names": self.label_names, "source_tasks": self.source_tasks,
                        "truncated_words": self.truncated_words, "provenance": self.provenance}
                save_entry(folder, self.splits, meta)
        missing = [s for s in self.test_splits if s not in self.splits]
        self.test_splits = [s for s in self.test_splits if s in self.splits]
        if missing:
            print(f"[intentfusion] test split(s) {missing} not provided by the data source; skipped")
        self.class_weights = {t: self._weights_for(t, o) for t, o in self.class_weight_options.items()} or None
        if self.sampling_task is not None:
            per_class = self._weights_for(self.sampling_task, self.sampling_options)
            column = self.splits["train"].labels[self.sampling_task].tolist()
            self.sample_weights = [1.0 if y == IGNORE_INDEX else per_class[y] for y in column]

    def _cache_folder(self) -> Path | None:
        """Where this data's tokenized splits are cached; None without ``cache`` or for a source that is no config."""
        if not self.cache:
            return None
        key = cache_key(
            {
                "source": self.source,
                "sources": self.sources,
                "tasks": self.tasks,
                "task_types": self.task_types,
                "label_all_subwords": self.label_all_subwords,
                "max_length": self.max_length,
                "slices": self.slices,
                "slice_by": self.slice_by,
                "tokenizer": tokenizer_identity(self.tokenizer),
            }
        )
        return None if key is None else Path(self.cache_dir) / "encoded" / key

    def _load(self) -> tuple[dict[str, Records], dict[str, list[int]]]:
        """Merged splits and, per split, each example's source index."""
        if self.source is not None:
            records = self._call(self.source)
            for required in ("train", "val"):
                if required not in records:
                    raise DataError(f"data source returned splits {sorted(records)}; '{required}' is required")
            self._check_tasks(records["train"])
            self.source_tasks = {SINGLE_SOURCE: list(self.tasks)}
            return records, {name: [0] * len(recs) for name, recs in records.items()}
        merged: dict[str, Records] = {}
        origin: dict[str, list[int]] = {}
        for k, (name, source) in enumerate(self.sources.items()):
            splits = self._call(source)
            missing = [s for s in ("train", "val") if s not in splits]
            if missing:
                raise DataError(f"data source '{name}' returned splits {sorted(splits)}; {missing} required")
            self.source_tasks[name] = [t for t in self.tasks if any(r.get(t) is not None for r in splits["train"])]
            for split, recs in splits.items():
                merged.setdefault(split, []).extend({**r, "source": name} for r in recs)
                origin.setdefault(split, []).extend([k] * len(recs))
        absent = [t for t in self.tasks if not any(t in provided for provided in self.source_tasks.values())]
        idle = [name for name, provided in self.source_tasks.items() if not provided]
        if absent or idle:
            problem = f"task(s) {absent} are labelled by no source" if absent else f"source(s) {idle} label no task"
            raise DataError(f"{problem}; tasks {self.tasks}, labelled per source: {self.source_tasks}")
        return merged, origin

    def _call(self, source: Source) -> dict[str, Records]:
        """Run a source; one that takes ``task_types`` (`load_source`) learns the declared type of each task."""
        try:
            takes_types = "task_types" in inspect.signature(source).parameters
        except (TypeError, ValueError):  # a callable without a signature
            takes_types = False
        declared = {t: k for t, k in self.task_types.items() if t in self.tasks}
        return source(task_types=declared) if takes_types else source()

    def _check_tasks(self, train: Records) -> None:
        present = set().union(*(r.keys() for r in train[:1000])) if train else set()
        absent = [t for t in self.tasks if t not in present]
        if absent:
            raise DataError(
                f"task(s) {absent} have no label column in the training data; columns present: {sorted(present)};"
                " expected a label column per task of tasks.names"
            )

    def _encode(self, name: str, recs: Records, origin: list[int]) -> EncodedSplit:
        texts = [str(r["text"]) for r in recs]
        with_offsets = any(cls.needs_offsets for cls in self.types.values())
        ids, offsets = RaggedBuilder(np.int32), RaggedBuilder(np.int32, width=2) if with_offsets else None
        truncated: list[bool] = []
        for start in range(0, len(texts), ENCODE_CHUNK):
            encoded = encode_texts(self.tokenizer, texts[start : start + ENCODE_CHUNK], self.max_length,
                                   offsets=with_offsets)
            ids.extend(encoded.ids)
            truncated += encoded.truncated
            if offsets is not None:
                offsets.extend(encoded.offsets)
        input_ids, token_offsets = ids.build(), offsets.build() if offsets is not None else None
        is_truncated = torch.as_tensor(truncated, dtype=torch.bool)
        context = EncodeContext(name, texts, input_ids.lengths(), token_offsets,
                                {"label_all_subwords": self.label_all_subwords})
        labels = {task: cls.encode(task, self.label_names[task], recs, context) for task, cls in self.types.items()}
        if context.stats.get("truncated_words"):
            self.truncated_words[name] = context.stats["truncated_words"]
        source = torch.as_tensor(origin, dtype=torch.long)
        groups: dict[str, torch.Tensor] = {}
        if self.multi_source:
            groups = {s: source == k for k, s in enumerate(self.source_names)}
        for slice_name, spec in self.slices.items():
            groups[slice_name] = torch.as_tensor([_matches(r, spec) for r in recs], dtype=torch.bool)
        for key in self.slice_by:
            values = [r.get(key) for r in recs]
            for value in sorted({str(v) for v in values if v is not None}):
                if not _NAME.match(value) or value in groups:
                    raise DataError(f"data.slice_by.{key}", f"value {value!r} cannot name a metric group",
                                    "values without '.', '/' or spaces that are not source or slice names")
                groups[value] = torch.as_tensor([v is not None and str(v) == value for v in values], dtype=torch.bool)
        groups = {g: members for g, members in groups.items() if bool(members.any())}
        return EncodedSplit(name, TextColumn.from_texts(texts), input_ids, labels, int(is_truncated.sum()), source,
                            groups, is_truncated, token_offsets)

    def _weights_for(self, task: str, options: Mapping[str, float]) -> list[float]:
        """Class weights of ``task`` from its label counts in the training split."""
        counts = self.types[task].label_counts(self.splits["train"].labels[task], len(self.label_names[task]))
        return smoothed_inverse_frequency(counts, **options)

    # ----------------------------------------------------------------------------------------- loaders
    def train_sampler(self, shard: bool = True) -> LengthGroupedBatchSampler | MixtureBatchSampler:
        """The training batch sampler: a `MixtureBatchSampler` with several sources or weighted sampling."""
        data = self.splits["train"]
        lengths = data.input_ids.lengths().tolist() if self.length_grouping else [0] * len(data)
        if not self.multi_source and self.sample_weights is None:
            return LengthGroupedBatchSampler(lengths, self.batch_size, shuffle=True, seed=self.seed, shard=shard)
        members = [torch.nonzero(data.source == k).flatten().tolist() for k in range(len(self.source_names))]
        return MixtureBatchSampler(
            lengths,
            members,
            self.batch_size,
            strategy=self.mixing,
            temperature=self.temperature,
            seed=self.seed,
            shard=shard,
            weights=self.sample_weights,
        )

    def _loader(self, split: str, train: bool, shard: bool = True) -> ResumableDataLoader:
        data = self.splits[split]
        if train:
            sampler = self.train_sampler(shard)
        else:
            lengths = data.input_ids.lengths().tolist() if self.length_grouping else [0] * len(data)
            size = self.eval_batch_size
            sampler = LengthGroupedBatchSampler(lengths, size, shuffle=False, seed=self.seed, shard=shard)
        return ResumableDataLoader(
            IndexDataset(len(data)),
            batch_sampler=sampler,
            collate_fn=Collator(data, self.tokenizer.pad_token_id, self.types),
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
    def _stats(self, split: EncodedSplit, rows: torch.Tensor | None, all_tasks: bool) -> dict[str, Any]:
        """Size, truncation count, mean/p95 token length and label distribution of ``rows`` (None: all)."""
        all_lengths = split.input_ids.lengths()
        lengths = sorted(all_lengths.tolist() if rows is None else all_lengths[rows.numpy()].tolist())
        labels = split.labels if rows is None else {t: column[rows] for t, column in split.labels.items()}
        truncated = split.truncated if rows is None else int(split.is_truncated[rows].sum())
        dist = {}
        for task, cls in self.types.items():  # token tasks: per word; multilabel: examples per label
            counts = cls.label_counts(labels[task], len(self.label_names[task]))
            named = {self.label_names[task][k]: n for k, n in enumerate(counts) if n}
            if named or all_tasks:
                dist[task] = named
        return {
            "examples": len(lengths),
            "truncated": truncated,
            "mean_tokens": round(sum(lengths) / max(1, len(lengths)), 1),
            "p95_tokens": lengths[int(0.95 * (len(lengths) - 1))] if lengths else 0,
            "labels": dist,
        }

    def summary(self) -> dict[str, Any]:
        """Per split: size, label distribution per task, truncation count, mean/p95 token length.

        With several sources every split also has ``sources: {name: <the same figures>}`` (tasks a source
        does not label are left out), and ``train`` has ``mixture``: strategy, share of batches and batches per
        epoch per source. Configured class weights are under ``train.class_weights``.
        """
        out: dict[str, Any] = {}
        for name, split in self.splits.items():
            out[name] = self._stats(split, None, all_tasks=True)
            if self.truncated_words.get(name):  # token tasks: words whose every subword max_length cut
                out[name]["truncated_words"] = dict(self.truncated_words[name])
            if self.provenance.get(name):  # how a loader made the split (a composed training split says so)
                out[name]["provenance"] = dict(self.provenance[name])
            if self.multi_source:
                out[name]["sources"] = {
                    s: self._stats(split, torch.nonzero(split.source == k).flatten(), all_tasks=False)
                    for k, s in enumerate(self.source_names)
                    if bool((split.source == k).any())
                }
        if "train" in out and self.multi_source:
            sampler = self.train_sampler(shard=False)
            out["train"]["mixture"] = {
                "strategy": self.mixing,
                "temperature": self.temperature if self.mixing == "temperature" else None,
                "share": {s: round(p, 4) for s, p in zip(self.source_names, sampler.probabilities, strict=True)},
                "batches_per_epoch": dict(zip(self.source_names, sampler.counts, strict=True)),
                "tasks": self.source_tasks,
            }
        if "train" in out and self.class_weights:
            out["train"]["class_weights"] = {
                t: {label: round(w, 4) for label, w in zip(self.label_names[t], ws, strict=True)}
                for t, ws in self.class_weights.items()
            }
        return out

    def print_summary(self, out_dir: str | Path | None = None) -> None:
        """Print the data summary as a table and save it as `data_summary.json` in `out_dir`."""
        summary = self.summary()
        table = Table(title="data summary")
        columns = ["split", *(["source"] if self.multi_source else []), "examples", "truncated", "mean tok", "p95 tok"]
        for col in (*columns, *self.tasks):
            table.add_column(col)
        for name, s in summary.items():
            rows = [("all" if self.multi_source else None, s)]
            rows += list(s.get("sources", {}).items())
            for source, stats in rows:
                classes = [f"{len(stats['labels'][t])} cls" if t in stats["labels"] else "-" for t in self.tasks]
                first = [name if source in (None, "all") else "", *([source] if source is not None else [])]
                table.add_row(
                    *first,
                    str(stats["examples"]),
                    str(stats["truncated"]),
                    str(stats["mean_tokens"]),
                    str(stats["p95_tokens"]),
                    *classes,
                )
        console = Console()
        console.print(table)
        mixture = summary.get("train", {}).get("mixture")
        if mixture:
            shares = ", ".join(
                f"{s} {100 * p:.1f}% ({mixture['batches_per_epoch'][s]} batches)" for s, p in mixture["share"].items()
            )
            temperature = f" T={mixture['temperature']}" if mixture["temperature"] is not None else ""
            console.print(f"mixing {mixture['strategy']}{temperature} per epoch: {shares}")
        if out_dir is not None:
            Path(out_dir, "data_summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))


def _matches(record: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """Whether every ``field: value | [values]`` of a slice spec holds for the record (compared as strings)."""
    for key, wanted in spec.items():
        value = record.get(key)
        options = wanted if isinstance(wanted, (list, tuple)) else [wanted]
        if value is None or str(value) not in {str(o) for o in options}:
            return False
    return True
