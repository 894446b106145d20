"""Batching: length-grouped, seeded, DDP-sharded, and resumable in the middle of an epoch.

`LengthGroupedBatchSampler` serves one pool of examples; `MixtureBatchSampler` serves several sources (each
batch from one source) mixed by a strategy of `intentfusion.data.mixture`. Both derive the whole epoch from
(seed, epoch) alone, so `ResumableDataLoader` can skip to the middle of an epoch after a restart.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler

from intentfusion.data.mixture import allocate, mixing_probabilities


class IndexDataset(Dataset):
    """Yields example indices; the collator turns a list of them into a padded batch."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        return index


class LengthGroupedBatchSampler(Sampler[list[int]]):
    """Batches of similar length (less padding), in an order that depends only on (seed, epoch).

    Shuffled mode: shuffle, sort inside windows of `window` batches by length, cut into batches, shuffle the
    batches. Otherwise batches are cut from the length-sorted order. Under DDP each rank takes every
    `world`-th batch (the last incomplete round is dropped so ranks step together).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        window: int = 50,
        shard: bool = True,
    ) -> None:
        self.lengths, self.batch_size, self.shuffle, self.seed = lengths, batch_size, shuffle, seed
        self.window, self.shard = window, shard
        self.epoch = 0
        self.sampler = self  # Lightning calls `set_epoch` on `batch_sampler.sampler`

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start."""
        self.epoch = epoch

    def _all_batches(self) -> list[list[int]]:
        order = list(range(len(self.lengths)))
        if not self.shuffle:
            order.sort(key=lambda i: self.lengths[i])
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        rng.shuffle(order)
        return grouped_batches(order, self.lengths, self.batch_size, self.window, rng)

    def _world(self) -> tuple[int, int]:
        return _rank_world(self.shard)

    def __iter__(self) -> Iterator[list[int]]:
        return _shard_batches(self._all_batches(), *self._world())

    def __len__(self) -> int:
        rank, world = self._world()
        n = -(-len(self.lengths) // self.batch_size)
        return n // world if world > 1 else n


def grouped_batches(
    order: list[int], lengths: Sequence[int], batch_size: int, window: int, rng: random.Random
) -> list[list[int]]:
    """Sort ``order`` by length inside windows of ``window`` batches, cut into batches, shuffle the batches."""
    span = batch_size * window
    key = lengths.__getitem__
    order = [i for s in range(0, len(order), span) for i in sorted(order[s : s + span], key=key)]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _rank_world(shard: bool) -> tuple[int, int]:
    if shard and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _shard_batches(batches: list[list[int]], rank: int, world: int) -> Iterator[list[int]]:
    """Every ``world``-th batch from ``rank`` on; the last incomplete round is dropped so ranks step together."""
    usable = len(batches) - len(batches) % world if world > 1 else len(batches)
    return iter(batches[rank:usable:world])


class MixtureBatchSampler(Sampler[list[int]]):
    """Training batches from several sources, each batch from one source, mixed by a strategy.

    ``sources`` lists the example indices of each source (indices into ``lengths``). An epoch has
    ``sum_s ceil(n_s / batch_size)`` batches (as many as one pass over all the training data; override with
    ``batches_per_epoch``); source ``s`` gets ``k_s`` of them, ``k_s`` = its share p_s of
    `mixing_probabilities` (``proportional``: exactly one pass over each source; ``uniform`` / ``temperature``:
    `allocate`, largest remainder). Each source is read as an endless stream of passes: pass ``p`` is a seeded
    permutation of the source (or, with ``weights``, ``n_s`` draws with replacement with probability ∝ the
    example's weight), length-grouped like `LengthGroupedBatchSampler`; epoch ``e`` takes batches
    ``[e * k_s, (e + 1) * k_s)`` of that stream, so an up-sampled source repeats and a down-sampled one is
    covered over several epochs. The sources' batches are then interleaved in a seeded random order. Batches
    of one source keep padding low; each step trains the tasks that source labels (MT-DNN style). Everything
    depends on (seed, epoch) only; DDP sharding as in `LengthGroupedBatchSampler`.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        sources: Sequence[Sequence[int]],
        batch_size: int,
        strategy: str = "proportional",
        temperature: float = 2.0,
        seed: int = 0,
        window: int = 50,
        shard: bool = True,
        weights: Sequence[float] | None = None,
        batches_per_epoch: int | None = None,
    ) -> None:
        self.lengths, self.batch_size, self.seed, self.window, self.shard = lengths, batch_size, seed, window, shard
        self.sources = [list(s) for s in sources]
        self.weights = None if weights is None else [[float(weights[i]) for i in s] for s in self.sources]
        sizes = [len(s) for s in self.sources]
        self.batches_per_pass = [math.ceil(n / batch_size) for n in sizes]
        self.probabilities = mixing_probabilities(sizes, strategy, temperature)
        if strategy == "proportional" and batches_per_epoch is None:
            self.counts = list(self.batches_per_pass)
        else:
            self.counts = allocate(self.probabilities, batches_per_epoch or sum(self.batches_per_pass))
        self.epoch = 0
        self.sampler = self  # Lightning calls `set_epoch` on `batch_sampler.sampler`

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning at every epoch start."""
        self.epoch = epoch

    def _pass(self, source: int, index: int) -> list[list[int]]:
        rng = random.Random(f"mixture/{self.seed}/{source}/{index}")
        members = self.sources[source]
        if self.weights is None:
            order = list(members)
            rng.shuffle(order)
        else:
            order = rng.choices(members, weights=self.weights[source], k=len(members))
        return grouped_batches(order, self.lengths, self.batch_size, self.window, rng)

    def source_batches(self, source: int) -> list[list[int]]:
        """The batches source ``source`` contributes to the current epoch, in stream order."""
        k, per_pass = self.counts[source], self.batches_per_pass[source]
        out: list[list[int]] = []
        current: tuple[int, list[list[int]]] | None = None
        for j in range(self.epoch * k, (self.epoch + 1) * k):
            p, b = divmod(j, per_pass)
            if current is None or current[0] != p:
                current = (p, self._pass(source, p))
            out.append(current[1][b])
        return out

    def _all_batches(self) -> list[list[int]]:
        streams = [iter(self.source_batches(s)) for s in range(len(self.sources))]
        order = [s for s, k in enumerate(self.counts) for _ in range(k)]
        random.Random(f"mixture/{self.seed}/epoch/{self.epoch}").shuffle(order)
        return [next(streams[s]) for s in order]

    def __iter__(self) -> Iterator[list[int]]:
        return _shard_batches(self._all_batches(), *_rank_world(self.shard))

    def __len__(self) -> int:
        rank, world = _rank_world(self.shard)
        n = sum(self.counts)
        return n // world if world > 1 else n


class ResumableDataLoader(DataLoader):
    """A DataLoader whose position inside an epoch is saved in Lightning checkpoints.

    Lightning stores `state_dict()` of stateful loaders in the checkpoint and calls `load_state_dict()` when
    resuming; if the checkpoint was taken mid-epoch, the next iteration of that same epoch skips the batches
    already trained on. (Lightning does not pre-fetch from loaders with a length, so every batch yielded
    has been processed when a checkpoint is taken.)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._yielded = 0
        self._resume: dict[str, int] | None = None

    def _epoch(self) -> int:
        return getattr(self.batch_sampler, "epoch", 0)

    def __iter__(self) -> Iterator[Any]:
        resume, self._resume = self._resume, None
        skip = resume["processed"] if resume and resume["epoch"] == self._epoch() else 0
        self._yielded = skip
        iterator = super().__iter__()
        if skip:  # skip whole batches of indices without collating them
            batches = iter(self.batch_sampler)
            for _ in range(skip):
                next(batches, None)
            iterator = (self.collate_fn([self.dataset[i] for i in b]) for b in batches)
        for batch in iterator:
            self._yielded += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch(), "processed": self._yielded}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = {"epoch": int(state.get("epoch", 0)), "processed": int(state.get("processed", 0))}


def pad_batch(
    ids: Sequence[Sequence[int]], pad_id: int, pad_to_multiple_of: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token id lists to the longest in the batch: (input_ids, attention_mask)."""
    longest = max(len(x) for x in ids)
    longest = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(ids), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), longest), dtype=torch.long)
    for row, seq in enumerate(ids):
        input_ids[row, : len(seq)] = torch.from_numpy(np.asarray(seq, dtype=np.int64))
        mask[row, : len(seq)] = 1
    return input_ids, mask
