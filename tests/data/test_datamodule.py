"""`MultiTaskDataModule`: one source as before, several partial sources merged and mixed, slices, class
weights, weighted sampling and the per-source data summary; the real CLINC150 + XLM-T mixture (skipped without
the benchmark data)."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import hydra
import pytest

from intentfusion.data.batching import LengthGroupedBatchSampler, MixtureBatchSampler
from intentfusion.data.datamodule import IGNORE_INDEX, DataError, MultiTaskDataModule

from ..conftest import ROOT, make_cfg

TINY = "builtin:tiny-xlmr"
DATA = Path(os.environ.get("INTENTFUSION_DATA_DIR", ROOT.parent / "shared" / "data"))


def _intents(n_train: int = 40, n_eval: int = 8, counts: tuple[int, int] | None = None):
    """A source labelling only `intent` (and `domain`, not trained); ``counts`` = (#book, #cancel) in train."""

    def make(n: int, split: str, ratio: tuple[int, int] | None = None) -> list[dict]:
        labels = ["book"] * ratio[0] + ["cancel"] * ratio[1] if ratio else ["book", "cancel"] * (n // 2)
        return [
            {"text": f"{lab} the {split} flight number {i}" + " again" * (i % 7), "intent": lab, "domain": "x"}
            for i, lab in enumerate(labels)
        ]

    return lambda: {
        "train": make(n_train, "train", counts),
        "val": make(n_eval, "val"),
        "test": make(n_eval, "test"),
    }


def _moods(n_train: int = 24, n_eval: int = 6):
    """A source labelling only `sentiment`, with a `language` field, and no `test_noisy` but a `test` split."""

    def make(n: int, split: str) -> list[dict]:
        return [
            {
                "text": f"{'love' if i % 2 else 'hate'} this {split} product {i}",
                "sentiment": "positive" if i % 2 else "negative",
                "language": "en" if i % 3 == 0 else "fr",
            }
            for i in range(n)
        ]

    return lambda: {"train": make(n_train, "train"), "val": make(n_eval, "val"), "test": make(n_eval, "test")}


def _dm(cache_dir: Path, **kw) -> MultiTaskDataModule:
    args = {"source": None, "tasks": ["intent", "sentiment"], "backbone": TINY, "cache_dir": str(cache_dir)}
    args.update(batch_size=4, seed=3)
    dm = MultiTaskDataModule(**{**args, **kw})
    dm.setup()
    return dm


def _two(cache_dir: Path, **kw) -> MultiTaskDataModule:
    return _dm(cache_dir, sources={"intents": _intents(), "moods": _moods()}, **kw)


# ================================================================================= several sources
def test_two_partial_sources_merge_splits_and_mask_the_missing_task(cache_dir: Path) -> None:
    dm = _two(cache_dir)
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 64, "val": 14, "test": 14}
    assert dm.label_names == {"intent": ["book", "cancel"], "sentiment": ["negative", "positive"]}
    assert dm.source_names == ["intents", "moods"]
    assert dm.source_tasks == {"intents": ["intent"], "moods": ["sentiment"]}
    train = dm.splits["train"]
    assert train.source.tolist() == [0] * 40 + [1] * 24
    intent, sentiment = train.labels["intent"], train.labels["sentiment"]
    assert (intent[:40] >= 0).all() and (intent[40:] == IGNORE_INDEX).all()
    assert (sentiment[:40] == IGNORE_INDEX).all() and (sentiment[40:] >= 0).all()
    assert set(train.groups) == {"intents", "moods"}
    assert train.groups["moods"].tolist() == [False] * 40 + [True] * 24
    assert dm.test_splits == ["test"]  # test_noisy is provided by no source


def test_training_batches_come_from_one_source_and_eval_batches_carry_groups(cache_dir: Path) -> None:
    dm = _two(cache_dir, mixing="uniform")
    loader = dm.train_dataloader()
    assert isinstance(loader.batch_sampler, MixtureBatchSampler)
    assert len(loader) == 10 + 6  # ceil(40 / 4) + ceil(24 / 4): one pass' worth of batches
    kinds = Counter()
    for batch in loader:
        labels = batch["labels"]
        has = (
            [bool((labels[t] != IGNORE_INDEX).all()) for t in dm.tasks],
            [bool((labels[t] == IGNORE_INDEX).all()) for t in dm.tasks],
        )
        assert has in [([True, False], [False, True]), ([False, True], [True, False])], batch["labels"]
        kinds["intents" if has[0][0] else "moods"] += 1
        assert "groups" not in batch or set(batch["groups"]) <= {"intents", "moods"}
    assert kinds == {"intents": 8, "moods": 8}  # uniform: an equal share of the 16 batches
    val = next(iter(dm.val_dataloader()))
    assert set(val["groups"]) == {"intents", "moods"}
    assert (val["groups"]["intents"] == (val["labels"]["intent"] != IGNORE_INDEX)).all()


def test_slices_add_metric_groups_by_record_fields(cache_dir: Path) -> None:
    dm = _two(cache_dir, slices={"english": {"language": "en"}, "both": {"language": ["en", "fr"]}})
    test = dm.splits["test"]
    english = [False] * 8 + [i % 3 == 0 for i in range(6)]
    assert test.groups["english"].tolist() == english
    assert test.groups["both"].tolist() == [False] * 8 + [True] * 6
    batch = next(iter(dm.test_dataloader()[0]))
    assert set(batch["groups"]) == {"intents", "moods", "english", "both"}


def test_single_source_keeps_its_sampler_and_batches(cache_dir: Path) -> None:
    dm = _dm(cache_dir, source=_intents(), tasks=["intent"])
    loader = dm.train_dataloader()
    assert isinstance(loader.batch_sampler, LengthGroupedBatchSampler)
    lengths = [len(x) for x in dm.splits["train"].input_ids]
    expected = list(LengthGroupedBatchSampler(lengths, 4, shuffle=True, seed=3))
    assert [b["idx"].tolist() for b in loader] == expected
    assert all("groups" not in b for b in dm.val_dataloader())
    assert "sources" not in dm.summary()["train"]


def test_config_errors_are_one_readable_line(cache_dir: Path) -> None:
    base = {"tasks": ["intent", "sentiment"], "backbone": TINY, "cache_dir": str(cache_dir)}
    with pytest.raises(DataError, match="either `source`"):
        MultiTaskDataModule(source=_intents(), sources={"a": _moods()}, **base)
    with pytest.raises(DataError, match="either `source`"):
        MultiTaskDataModule(source=None, **base)
    with pytest.raises(DataError, match="mixing='sqrt'; expected one of"):
        MultiTaskDataModule(None, sources={"a": _moods()}, mixing="sqrt", **base)
    with pytest.raises(DataError, match=r"slices: name\(s\) \['moods'\] are also source names"):
        MultiTaskDataModule(None, sources={"moods": _moods()}, slices={"moods": {"language": "en"}}, **base)
    with pytest.raises(DataError, match="must be non-empty, without '.'"):
        MultiTaskDataModule(None, sources={"x.y": _moods()}, **base)
    with pytest.raises(DataError, match="class_weights: task 'urgency' is not one of"):
        MultiTaskDataModule(None, sources={"a": _moods()}, class_weights={"urgency": True}, **base)
    with pytest.raises(DataError, match="weighted_sampling"):
        MultiTaskDataModule(None, sources={"a": _moods()}, weighted_sampling="urgency", **base)
    with pytest.raises(DataError, match=r"task\(s\) \['intent'\] are labelled by no source"):
        _dm(cache_dir, sources={"a": _moods(), "b": _moods()})
    no_val = {"a": _moods(), "b": lambda: {"train": _intents()()["train"]}}
    with pytest.raises(DataError, match=r"source 'b' returned splits \['train'\]; \['val'\] required"):
        _dm(cache_dir, sources=no_val)


# ================================================================================= summary
def test_summary_is_per_source_and_split(cache_dir: Path, tmp_path: Path) -> None:
    dm = _two(cache_dir, max_length=10, mixing="temperature")
    summary = dm.summary()
    train = summary["train"]
    assert train["examples"] == 64 and set(train["sources"]) == {"intents", "moods"}
    intents, moods = train["sources"]["intents"], train["sources"]["moods"]
    assert intents["examples"] == 40 and moods["examples"] == 24
    assert intents["labels"] == {"intent": {"book": 20, "cancel": 20}}  # tasks a source lacks are left out
    assert moods["labels"] == {"sentiment": {"negative": 12, "positive": 12}}
    lengths = [len(x) for x in dm.splits["train"].input_ids]
    untruncated = len(dm.tokenizer(dm.splits["train"].texts[0])["input_ids"])
    assert untruncated > 10 and max(lengths) == 10
    long_intents = sum(len(ids) > 10 for ids in dm.tokenizer(dm.splits["train"].texts[:40])["input_ids"])
    assert intents["truncated"] == long_intents and train["truncated"] == long_intents + moods["truncated"]
    assert intents["mean_tokens"] == round(sum(lengths[:40]) / 40, 1)
    assert intents["p95_tokens"] == sorted(lengths[:40])[int(0.95 * 39)]
    mass = [40**0.5, 24**0.5]
    shares = {"intents": mass[0] / sum(mass), "moods": mass[1] / sum(mass)}
    assert train["mixture"]["share"] == pytest.approx(shares, abs=1e-4)
    assert sum(train["mixture"]["batches_per_epoch"].values()) == 16
    assert summary["test"]["sources"]["moods"]["examples"] == 6
    dm.print_summary(tmp_path)
    assert json.loads((tmp_path / "data_summary.json").read_text()) == json.loads(json.dumps(summary))


# ================================================================================= imbalance
def test_class_weights_come_from_the_training_split(cache_dir: Path) -> None:
    intents = _intents(counts=(30, 10))
    dm = _dm(cache_dir, sources={"a": intents, "b": _moods()}, class_weights={"intent": {"alpha": 1.0, "k": 0.0}})
    # w ∝ 1/30, 1/10 -> normalised to mean 1: 0.5, 1.5; sentiment is not weighted
    assert dm.class_weights == {"intent": pytest.approx([0.5, 1.5])}
    assert dm.summary()["train"]["class_weights"] == {"intent": {"book": 0.5, "cancel": 1.5}}
    assert _two(cache_dir).class_weights is None


def test_weighted_sampling_balances_the_label_frequencies(cache_dir: Path) -> None:
    source = _intents(counts=(180, 20))
    dm = _dm(cache_dir, source=source, tasks=["intent"], weighted_sampling={"task": "intent", "alpha": 1.0, "k": 0})
    sampler = dm.train_dataloader().batch_sampler
    assert isinstance(sampler, MixtureBatchSampler)
    labels = dm.splits["train"].labels["intent"]
    drawn = []
    for epoch in range(5):
        sampler.set_epoch(epoch)
        drawn += [int(labels[i]) for b in sampler for i in b]
    assert len(drawn) == 5 * 200
    assert Counter(drawn)[1] / len(drawn) == pytest.approx(0.5, abs=0.06)  # 10% of the data, half the draws


# ================================================================================= real data
def test_clinc150_plus_xlmt_mixture_sets_up_per_source(tmp_path: Path, cache_dir: Path) -> None:
    if not (DATA / "clinc150").is_dir() or not (DATA / "xlmt_sentiment").is_dir():
        pytest.skip(f"benchmark data not found at {DATA} (set INTENTFUSION_DATA_DIR)")
    cfg = make_cfg(
        tmp_path,
        cache_dir,
        "data=clinc150+xlmt_sentiment",
        "tasks=intent_sentiment",
        f"paths.data_dir={DATA}",
        "data.sources.clinc150.noise=null",  # no test_noisy: keeps the test fast
        "data.sources.xlmt_sentiment.noise=null",
    )
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    assert dm.source_names == ["clinc150", "xlmt_sentiment"] and dm.mixing == "temperature"
    assert dm.source_tasks == {"clinc150": ["intent"], "xlmt_sentiment": ["sentiment"]}
    assert len(dm.label_names["intent"]) == 151 and dm.label_names["sentiment"] == ["negative", "neutral", "positive"]
    per_source = {
        name: {s: int(split.groups[s].sum()) for s in ("clinc150", "xlmt_sentiment", "english") if s in split.groups}
        for name, split in dm.splits.items()
    }
    assert per_source == {
        "train": {"clinc150": 15_100, "xlmt_sentiment": 8 * 1839, "english": 1839},
        "val": {"clinc150": 3_100, "xlmt_sentiment": 8 * 324, "english": 324},
        "test": {"clinc150": 5_500, "xlmt_sentiment": 8 * 870, "english": 870},
        "val_oos": {"clinc150": 100},
        "test_oos": {"clinc150": 1_000},
    }
    assert dm.test_splits == ["test", "test_oos"]
    test = dm.splits["test"]
    labelled = [int((test.labels[t] != IGNORE_INDEX).sum()) for t in ("intent", "sentiment")]
    assert labelled == [5_500, 8 * 870]  # intent only on CLINC150, sentiment only on XLM-T
    sampler = dm.train_sampler()
    mass = [15_100**0.5, 14_712**0.5]
    assert sampler.probabilities == pytest.approx([m / sum(mass) for m in mass])
    assert len(sampler) == -(-15_100 // cfg.data.batch_size) + -(-14_712 // cfg.data.batch_size)
