"""Batching: length-grouped, seeded, DDP-sharded, and resumable in the middle of an epoch."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, Sampler


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
        span = self.batch_size * self.window
        key = self.lengths.__getitem__
        order = [i for s in range(0, len(order), span) for i in sorted(order[s : s + span], key=key)]
        batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def _world(self) -> tuple[int, int]:
        if self.shard and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._world()
        batches = self._all_batches()
        usable = len(batches) - len(batches) % world if world > 1 else len(batches)
        return iter(batches[rank:usable:world])

    def __len__(self) -> int:
        rank, world = self._world()
        n = -(-len(self.lengths) // self.batch_size)
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
        input_ids[row, : len(seq)] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return input_ids, mask
