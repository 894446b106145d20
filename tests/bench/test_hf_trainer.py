"""The HF baseline of the training benchmark reads exactly what intentfusion reads; its clock skips evaluation."""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from bench.common import Context
from bench.hf_trainer import Recorder, accuracy, encode, load_examples
from bench.time_to_model import PLAN, recipe_overrides
from bench.training import hf_command, if_command, throughput, time_to

ROOT = Path(__file__).resolve().parents[2]
CLINC = Path(os.environ.get("INTENTFUSION_DATA_DIR", ROOT.parent / "shared" / "data")) / "clinc150"


@pytest.mark.skipif(not (CLINC / "data_full.json").is_file(), reason=f"CLINC150 not at {CLINC}")
def test_hf_examples_and_label_ids_equal_intentfusions_subset() -> None:
    from intentfusion.data.datamodule import MultiTaskDataModule
    from intentfusion.data.sources import load_source

    subset = {"train": 302, "val": 151, "seed": 0}
    source = partial(load_source, "clinc150", root=str(CLINC), subset=subset, noise={"test_p": None})
    # a short max_length, so the truncation of long queries is compared too
    dm = MultiTaskDataModule(source, tasks=["intent", "domain"], backbone="builtin:minilm", max_length=12)
    dm.setup("fit")
    records = load_examples(CLINC, subset["train"], subset["val"])
    for task in dm.tasks:
        data, names = encode(records, task, dm.tokenizer, max_length=12)
        assert names == dm.label_names[task]
        for split in ("train", "val"):
            assert [r["text"] for r in records[split]] == list(dm.splits[split].texts)
            assert [e["input_ids"] for e in data[split]] == [row.tolist() for row in dm.splits[split].input_ids]
            assert [e["labels"] for e in data[split]] == dm.splits[split].labels[task].tolist()
    assert dm.splits["train"].truncated > 0  # the comparison covered truncated queries


def test_recorder_clock_skips_evaluation_and_the_window_arithmetic(monkeypatch: pytest.MonkeyPatch) -> None:
    now = iter([0.0, 1.0, 2.0, 3.0, 13.0, 14.0, 14.0, 16.0, 16.0])  # a fake clock, one value per reading
    monkeypatch.setattr("bench.hf_trainer.time.perf_counter", lambda: next(now))
    rec = Recorder()
    rec.start()  # 0
    rec.step(1, 16, 160, 120)  # t = 1 (samples, padded tokens, real tokens)
    rec.step(2, 16, 160, 120)  # t = 2
    rec.pause()  # 3: evaluation from 3 to 13
    rec.point(2, 0.5, acc=0.4)  # paused: t = 3
    rec.resume()  # 13
    rec.step(3, 8, 80, 80)  # 14 - 10 paused = 4
    rec.pause()  # 14
    rec.resume()  # 16
    rec.point(3, 1.0, acc=0.6)  # 16 - 12 = 4
    assert [s["t"] for s in rec.steps] == [1.0, 2.0, 4.0]
    assert [p["t"] for p in rec.points] == [3.0, 4.0]
    result = {"steps": rec.steps, "points": rec.points}
    window = throughput(result, warmup=1, timed=2)  # steps 2 and 3: 24 samples in 4 - 1 = 3 s
    assert window["samples_per_s"] == pytest.approx(8.0)
    assert window["padding_efficiency"] == pytest.approx(200 / 240)
    assert time_to(result, 0.5) == 4.0 and time_to(result, 0.7) is None


@pytest.mark.skipif(not (CLINC / "data_full.json").is_file(), reason=f"CLINC150 not at {CLINC}")
def test_size_zero_reads_whole_splits_with_oos_as_a_class() -> None:
    records = load_examples(CLINC, 0, 0, test=True)
    assert {k: len(v) for k, v in records.items()} == {"train": 15_100, "val": 3_100, "test": 5_500}
    assert sum(r["intent"] == "oos" for r in records["val"]) == 100


def test_in_scope_accuracy_ignores_oos_gold_but_not_oos_predictions() -> None:
    logits = np.eye(3)[[0, 2, 2, 1]]  # predictions 0, 2, 2, 1; label 2 plays oos
    labels = np.array([0, 1, 2, 2])
    assert accuracy(logits, labels) == pytest.approx(0.5)
    assert accuracy(logits, labels, ignore=2) == pytest.approx(0.5)  # in scope: 0 right, 1 predicted oos
    assert accuracy(logits, np.array([1, 2, 0, 2]), ignore=2) == pytest.approx(0.0)  # both in-scope wrong


def test_whole_plan_commands_read_full_splits_and_stop_on_in_scope_accuracy(tmp_path: Path) -> None:
    ctx = Context(work_dir=tmp_path)
    hf = hf_command(ctx, PLAN, tmp_path / "hf.json", "intent")
    assert hf[hf.index("--train-size") + 1] == "0" and hf[hf.index("--val-size") + 1] == "0"
    assert hf[hf.index("--batch-size") + 1] == "32" and hf[hf.index("--epochs") + 1] == "3"
    cmd = if_command(ctx, PLAN, tmp_path / "if.json", tmp_path / "run", *recipe_overrides(0.95), test=True)
    assert not any(a.startswith("data.source.subset") for a in cmd)
    assert "test=true" in cmd and "+callbacks.bench_probe.stop_at=0.95" in cmd
    assert "+trainer.val_check_interval=118" in cmd  # a quarter of the 472 steps of an epoch
