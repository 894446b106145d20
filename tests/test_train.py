"""End-to-end behaviour of `train(cfg)` and `evaluate(cfg)` on the embedded data."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from intentfusion.evaluate import evaluate
from intentfusion.train import train

from .conftest import CONF, FAST, ROOT


def _groups() -> list[tuple[str, str]]:
    skip = {"hydra", "experiment"}
    return [
        (group.name, option.stem)
        for group in sorted(CONF.iterdir())
        if group.is_dir() and group.name not in skip
        for option in sorted(group.glob("*.yaml"))
    ]


@pytest.mark.parametrize(("group", "option"), _groups())
def test_every_config_group_option_composes(group: str, option: str, tmp_path: Path) -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"{group}={option}", f"paths.output_dir={tmp_path}"])
    assert cfg.trainer.max_epochs >= 1
    assert cfg.model._target_.endswith("MultiTaskModule")


def test_hparams_configs_match_the_documented_triples() -> None:
    expected = {"config1": (2e-5, 16, 3), "config2": (3e-5, 8, 4), "config3": (5e-5, 16, 5), "config4": (1e-4, 16, 4)}
    for name, (lr, bs, epochs) in expected.items():
        with initialize_config_dir(str(CONF), version_base="1.3"):
            cfg = compose("train", overrides=[f"hparams={name}", "paths.output_dir=x"])
        h = cfg.hparams
        assert (h.lr, h.batch_size, h.epochs, h.weight_decay, h.warmup_ratio, h.grad_clip) == (
            lr,
            bs,
            epochs,
            0.01,
            0.1,
            1.0,
        )
        assert cfg.data.batch_size == bs


def test_fast_dev_run_on_tiny(cfg_factory) -> None:
    metrics = train(cfg_factory("debug=fdr", *FAST))
    assert "test/intent/acc" in metrics and "test_noisy/intent/acc" in metrics


def test_the_default_trains_entities_and_reports_out_of_scope(cfg_factory) -> None:
    """`make train`'s task set (support5: four sequence tasks + `slots`) end to end on tiny, evaluation included."""
    fast = [o for o in FAST if not o.startswith("tasks=")]
    cfg = cfg_factory("phases=full", "hparams.epochs=2", "evaluate=true", *fast)
    assert list(cfg.tasks.names) == ["intent", "urgency", "sentiment", "action", "slots"]
    metrics = train(cfg)
    assert {"test/slots/f1", "test/exact_match", "test_noisy/slots/f1"} <= set(metrics)
    suite = json.loads((Path(cfg.paths.output_dir) / "eval" / "metrics.json").read_text())["suite"]
    assert suite["oos"]["max_softmax"]["n_oos"] == 7  # 10 % of the 72 test messages; threshold chosen on val_oos


def _majority_macro_f1(records: list[dict], task: str) -> float:
    from sklearn.metrics import f1_score

    gold = [r[task] for r in records]
    majority = Counter(gold).most_common(1)[0][0]
    return f1_score(gold, [majority] * len(gold), average="macro", labels=sorted(set(gold)))


def test_short_tiny_run_learns_and_beats_the_majority_baseline(tiny_run) -> None:
    from intentfusion.data.support import load_support

    out, metrics = tiny_run
    test = load_support(n=480)["test"]
    baseline = sum(_majority_macro_f1(test, t) for t in ("intent", "urgency", "sentiment", "action")) / 4
    assert metrics["test/score"] > baseline + 0.1  # mean macro-F1 on held-out phrasings
    rows = [r for r in csv.DictReader(open(next((out / "csv").rglob("metrics.csv")))) if r.get("val/score")]
    assert float(rows[-1]["val/score"]) > float(rows[0]["val/score"]) + 0.1  # validation moves epoch by epoch
    written = json.loads((out / "metrics.json").read_text())
    assert written["metrics"]["test/intent/acc"] == pytest.approx(metrics["test/intent/acc"])
    assert (out / "checkpoints" / "last.ckpt").is_file()
    assert len(list((out / "checkpoints").glob("epoch*.ckpt"))) == 2  # best 2
    assert (out / "eval" / "report.md").is_file() and (out / "eval" / "metrics.json").is_file()  # suite ran
    assert (out / "csv").is_dir() and (out / "config_tree.log").is_file() and (out / "data_summary.json").is_file()


def test_evaluate_reproduces_the_train_time_test_metrics(tiny_run, cfg_factory) -> None:
    out, metrics = tiny_run
    best = json.loads((out / "metrics.json").read_text())["checkpoint"]
    cfg = cfg_factory(f"ckpt_path={best}", "trainer.precision=32", name="eval", config="evaluate")
    evaluated = evaluate(cfg)
    for key, value in metrics.items():
        if key.startswith("test"):
            assert evaluated[key] == value, key
    assert json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())["metrics"] == evaluated


def test_resume_from_last_checkpoint_continues_from_the_saved_step(cfg_factory) -> None:
    plan = ["phases=full", "hparams.epochs=4", "test=false", *FAST]
    stopped = cfg_factory(*plan, "trainer.max_epochs=2", name="stopped")
    train(stopped)
    last = Path(stopped.paths.output_dir) / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=True)
    resumed_cfg = cfg_factory(*plan, f"ckpt_path={last}", name="resumed")
    train(resumed_cfg)
    resumed = torch.load(Path(resumed_cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["epoch"] == 1 and resumed["epoch"] == 3
    assert resumed["global_step"] == 2 * saved["global_step"]  # continued, not restarted


def test_minilm_loads_offline_and_trains_a_few_dozen_steps(cfg_factory) -> None:
    cfg = cfg_factory(
        "backbone=minilm",
        "phases=full",
        "trainer.max_steps=30",
        "trainer.limit_val_batches=4",
        "trainer.limit_test_batches=2",
        "data.source.n=480",
    )
    metrics = train(cfg)
    assert metrics["test/intent/acc"] >= 0.0
    assert cfg.backbone.name_or_path == "builtin:minilm"
    last = torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == 30
    assert last["state_dict"]["net.encoder.embeddings.word_embeddings.weight"].shape == (30522, 384)


def test_missing_backbone_fails_in_one_readable_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "backbone=xlmr", f"hydra.run.dir={tmp_path}", "logger=none"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**_env(), "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1
    err = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1, result.stderr[-2000:]
    assert "xlm-roberta-base" in err[0] and "backbone.name_or_path" in err[0]
    assert "Traceback" not in result.stderr


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
