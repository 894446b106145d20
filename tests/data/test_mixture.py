"""Mixing several sources: strategy shares, the mixture batch sampler (seeded, resumable, sharded), class weights,
and a short heterogeneous multi-task training run on two CSV sources."""

from __future__ import annotations

import csv
import math
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict

import intentfusion.data.batching as batching
from intentfusion.data.batching import IndexDataset, MixtureBatchSampler, ResumableDataLoader
from intentfusion.data.mixture import allocate, class_weight_options, mixing_probabilities, smoothed_inverse_frequency
from intentfusion.train import train

SIZES = [40, 160, 800]  # three sources of very different size
BATCH = 8


def _sources(sizes: list[int]) -> list[list[int]]:
    """Consecutive index ranges, one per source."""
    starts = [sum(sizes[:s]) for s in range(len(sizes))]
    return [list(range(a, a + n)) for a, n in zip(starts, sizes, strict=True)]


def _sampler(strategy: str, seed: int = 0, sizes: list[int] = SIZES, **kw) -> MixtureBatchSampler:
    rng = random.Random(5)
    lengths = [rng.randint(3, 40) for _ in range(sum(sizes))]
    return MixtureBatchSampler(lengths, _sources(sizes), BATCH, strategy=strategy, seed=seed, **kw)


def _source_of(sizes: list[int]) -> list[int]:
    return [s for s, n in enumerate(sizes) for _ in range(n)]


def _batch_shares(sampler: MixtureBatchSampler, sizes: list[int]) -> list[float]:
    """Share of the epoch's batches per source; asserts that every batch comes from one source."""
    owner = _source_of(sizes)
    batches = list(sampler)
    per_batch = []
    for b in batches:
        sources = {owner[i] for i in b}
        assert len(sources) == 1, "a batch mixes sources"
        per_batch.append(sources.pop())
    counts = Counter(per_batch)
    return [counts[s] / len(batches) for s in range(len(sizes))]


# ================================================================================= strategy shares
def test_mixing_probabilities_follow_the_formulas() -> None:
    assert mixing_probabilities([100, 400], "proportional") == pytest.approx([0.2, 0.8])
    assert mixing_probabilities([100, 400], "uniform") == pytest.approx([0.5, 0.5])
    assert mixing_probabilities([100, 400], "temperature", 2.0) == pytest.approx([1 / 3, 2 / 3])  # sqrt: 10 : 20
    assert mixing_probabilities([100, 400], "temperature", 1.0) == pytest.approx([0.2, 0.8])
    assert mixing_probabilities([100, 400, 0], "uniform") == pytest.approx([0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="expected one of"):
        mixing_probabilities([1, 2], "round_robin")
    with pytest.raises(ValueError, match="temperature"):
        mixing_probabilities([1, 2], "temperature", 0.0)


def test_allocate_keeps_the_total_and_rounds_by_largest_remainder() -> None:
    assert allocate([1 / 3, 1 / 3, 1 / 3], 10) == [4, 3, 3]
    assert allocate([0.2, 0.8], 7) == [1, 6]  # 1.4 / 5.6: the larger remainder gets the extra one
    assert sum(allocate([0.1, 0.25, 0.65], 123)) == 123


def test_proportional_epoch_is_one_pass_over_every_source() -> None:
    sampler = _sampler("proportional")
    seen = Counter(i for b in sampler for i in b)
    assert sorted(seen) == list(range(sum(SIZES))) and set(seen.values()) == {1}  # every example exactly once
    assert len(sampler) == sum(math.ceil(n / BATCH) for n in SIZES) == len(list(sampler))
    shares = _batch_shares(sampler, SIZES)
    assert shares == pytest.approx([n / sum(SIZES) for n in SIZES], abs=0.01)


def test_uniform_gives_each_source_an_equal_share_of_batches() -> None:
    sampler = _sampler("uniform")
    assert len(list(sampler)) == len(sampler) == 5 + 20 + 100  # epoch length does not depend on the strategy
    assert _batch_shares(sampler, SIZES) == pytest.approx([1 / 3] * 3, abs=0.01)


@pytest.mark.parametrize("temperature", [2.0, 4.0])
def test_temperature_shares_follow_sizes_to_the_power_one_over_t(temperature: float) -> None:
    sampler = _sampler("temperature", temperature=temperature)
    mass = [n ** (1 / temperature) for n in SIZES]
    expected = [m / sum(mass) for m in mass]
    assert _batch_shares(sampler, SIZES) == pytest.approx(expected, abs=0.01)
    assert sampler.probabilities == pytest.approx(expected)


def test_upsampled_source_repeats_whole_passes_and_downsampled_one_is_covered_over_epochs() -> None:
    sampler = _sampler("uniform")
    small, large = _sources(SIZES)[0], _sources(SIZES)[2]
    k_small = sampler.counts[0]  # 42 batches from a 5-batch source: 8.4 passes
    seen = Counter(i for b in sampler.source_batches(0) for i in b)
    assert set(seen) == set(small)
    assert max(seen.values()) - min(seen.values()) <= 1  # pass by pass: no example is drawn twice as often
    assert sum(seen.values()) == pytest.approx(k_small * BATCH, abs=BATCH)
    covered: set[int] = set()
    for epoch in range(3):  # 41-42 of 100 batches per epoch: the large source is covered after 3 epochs
        sampler.set_epoch(epoch)
        covered |= {i for b in sampler.source_batches(2) for i in b}
    assert covered == set(large)


# ================================================================================= determinism / resume / DDP
def test_order_depends_only_on_seed_and_epoch() -> None:
    a, b = _sampler("temperature", seed=3), _sampler("temperature", seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    assert list(a) == list(a)  # iterating again gives the same epoch
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(a) != list(_epoch(_sampler("temperature", seed=4), 2))
    assert a.sampler is a  # Lightning calls `set_epoch` on `batch_sampler.sampler`


def _epoch(sampler: MixtureBatchSampler, epoch: int) -> MixtureBatchSampler:
    sampler.set_epoch(epoch)
    return sampler


def test_resumable_loader_skips_to_the_middle_of_a_mixture_epoch() -> None:
    def loader() -> ResumableDataLoader:
        sampler = _epoch(_sampler("uniform", seed=7), 1)
        return ResumableDataLoader(IndexDataset(sum(SIZES)), batch_sampler=sampler, collate_fn=list)

    full = list(loader())
    first = loader()
    it = iter(first)
    head = [next(it) for _ in range(17)]
    state = first.state_dict()
    assert state == {"epoch": 1, "processed": 17}
    resumed = loader()
    resumed.load_state_dict(state)
    assert head + list(resumed) == full


def test_ddp_ranks_get_disjoint_batches_of_equal_count(monkeypatch) -> None:
    single = list(_sampler("temperature"))
    ranks = []
    for rank in range(2):
        monkeypatch.setattr(batching, "_rank_world", lambda shard, r=rank: (r, 2))
        sampler = _sampler("temperature")
        ranks.append(list(sampler))
        assert len(sampler) == len(ranks[-1]) == len(single) // 2
    usable = 2 * len(ranks[0])
    assert ranks[0] == single[0:usable:2] and ranks[1] == single[1:usable:2]  # every 2nd batch, in step


def test_weighted_draws_follow_example_weights() -> None:
    sizes = [400]
    weights = [3.0 if i < 100 else 1.0 for i in range(400)]  # first quarter: 3x as likely -> half the draws
    sampler = _sampler("proportional", sizes=sizes, weights=weights)
    draws = []
    for epoch in range(5):
        draws += [i for b in _epoch(sampler, epoch) for i in b]
    assert len(draws) == 5 * 400
    assert sum(i < 100 for i in draws) / len(draws) == pytest.approx(0.5, abs=0.04)


# ================================================================================= class weights
def test_class_weights_formula_on_known_counts() -> None:
    # alpha 1, k 1: (9+1)^-1, (99+1)^-1, (0+1)^-1 = 0.1, 0.01, 1 -> mean 0.37
    assert smoothed_inverse_frequency([9, 99, 0], alpha=1.0, k=1.0) == pytest.approx(
        [0.1 / 0.37, 0.01 / 0.37, 1 / 0.37]
    )
    # defaults alpha 0.5, k 1: 1/sqrt(4), 1/sqrt(16) = 0.5, 0.25 -> mean 0.375
    weights = smoothed_inverse_frequency([3, 15])
    assert weights == pytest.approx([0.5 / 0.375, 0.25 / 0.375])
    assert sum(weights) / len(weights) == pytest.approx(1.0)
    assert smoothed_inverse_frequency([5, 500], alpha=0.0) == pytest.approx([1.0, 1.0])  # alpha 0: no weighting
    with pytest.raises(ValueError, match="no training example"):
        smoothed_inverse_frequency([4, 0], alpha=1.0, k=0.0)
    assert class_weight_options(True, "x") == {"alpha": 0.5, "k": 1.0}
    assert class_weight_options({"alpha": 1}, "x") == {"alpha": 1.0, "k": 1.0}
    assert class_weight_options(None, "x") is None
    with pytest.raises(ValueError, match=r"x: \{'beta': 1\}; expected"):
        class_weight_options({"beta": 1}, "x")


# ================================================================================= training on two sources
def _write_csv(path: Path, column: str, labels: list[str], n: int) -> Path:
    words = {"book": "flight ticket", "cancel": "order refund", "happy": "great love", "sad": "awful hate"}
    rng = random.Random(len(column))
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", column])
        for i in range(n):
            label = labels[i % len(labels)]
            writer.writerow([f"{words[label]} {rng.choice(['please', 'now', 'today', 'thanks'])} {i}", label])
    return path


def test_short_mixture_run_reports_metrics_per_task_and_per_source(cfg_factory, tmp_path: Path) -> None:
    intents = _write_csv(tmp_path / "intents.csv", "intent", ["book", "cancel"], 80)
    moods = _write_csv(tmp_path / "moods.csv", "sentiment", ["happy", "sad"], 60)
    cfg = cfg_factory(
        "data=csv",
        "tasks=intent_sentiment",
        "phases=full",
        "hparams.epochs=1",
        "hparams.batch_size=16",
        "hparams.lr=2e-3",
        "trainer.precision=32",
        "data.source.train=dummy.csv",
    )
    with open_dict(cfg):
        base = OmegaConf.to_container(cfg.data.source)
        cfg.data.sources = {
            "intents": {**base, "train": str(intents), "label_columns": ["intent"]},
            "moods": {**base, "train": str(moods), "label_columns": ["sentiment"]},
        }
        cfg.data.source = None
        cfg.data.mixing = "uniform"
        cfg.data.class_weights = {"intent": True}
    metrics = train(cfg)
    for split in ("test", "test_noisy"):
        for key in ("intents/intent", "moods/sentiment", "intent", "sentiment"):
            assert f"{split}/{key}/acc" in metrics and f"{split}/{key}/f1_macro" in metrics, (split, key)
        assert f"{split}/intents/sentiment/acc" not in metrics  # the intents source has no sentiment labels
        assert f"{split}/moods/intent/acc" not in metrics
        # one source per task here, so the per-source metric is the task's metric
        assert metrics[f"{split}/intents/intent/f1_macro"] == pytest.approx(metrics[f"{split}/intent/f1_macro"])
    assert metrics["val/score"] == pytest.approx(
        (metrics["val/intent/f1_macro"] + metrics["val/sentiment/f1_macro"]) / 2
    )
    summary = (Path(cfg.paths.output_dir) / "data_summary.json").read_text()
    assert '"intents"' in summary and '"mixture"' in summary
    ckpt = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    weights = ckpt["hyper_parameters"]["class_weights"]
    assert list(weights) == ["intent"] and weights["intent"] == pytest.approx([1.0, 1.0])  # balanced classes
