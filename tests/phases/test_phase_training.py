"""Five-phase training on the tiny backbone: what trains when, LRs, resume across phases, feature cache."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from intentfusion.train import train

# 336 training examples, batch 16 -> 21 steps per epoch; plan: frozen 1, unfreeze 2, bilstm 1, fusion 1, final 1
FAST = [
    "data.source.n=480",
    "tasks=support4",  # sequence tasks only: the frozen phase runs on cached features
    "hparams.batch_size=16",
    "hparams.lr=2e-3",
    "hparams.epochs=2",
    "trainer.precision=32",
    "trainer.deterministic=true",
]
STEPS_PER_EPOCH = 21
RECORDER = "+callbacks.recorder._target_=tests.phases.test_phase_training.Recorder"


class Recorder(L.Callback):
    """Writes, for every epoch, what is trainable and each group's LR (at the epoch's 3rd step)."""

    def __init__(self) -> None:
        self.epochs: dict[int, dict[str, Any]] = {}

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        if idx != 2:
            return
        trainable = sorted({_part(n) for n, p in module.named_parameters() if p.requires_grad})
        lrs = {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups}
        self.epochs[trainer.current_epoch] = {
            "phase": module.phase_state.label,
            "trainable": trainable,
            "lrs": lrs,
            "bilstm": module.bilstm_active,
            "fusion": module.fusion_active,
            "step": trainer.global_step,
            "cached": module.uses_feature_cache and module.feature_cache is not None,
        }

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        path = Path(trainer.default_root_dir, "recorded.json")
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **{str(k): v for k, v in self.epochs.items()}}, indent=1))


def _part(name: str) -> str:
    """net.encoder.encoder.layer.3.attention... -> encoder.layer.3; net.heads.intent.linear.weight -> heads"""
    parts = name.removeprefix("net.").split(".")
    if parts[0] == "encoder":
        return "encoder.layer." + parts[3] if parts[1] == "encoder" else "encoder." + parts[1]
    return parts[0]


def _recorded(cfg) -> dict[int, dict[str, Any]]:
    data = json.loads(Path(cfg.paths.output_dir, "recorded.json").read_text())
    return {int(k): v for k, v in data.items()}


@pytest.fixture(scope="module")
def five(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    """One uninterrupted five-phase run, shared by the tests of this module."""
    from ..conftest import make_cfg

    cfg = make_cfg(tmp_path_factory.mktemp("five"), cache_dir, "phases=five", RECORDER, *FAST)
    return cfg, train(cfg)


def test_trainable_parts_in_each_phase(five) -> None:
    cfg, _ = five
    rec = _recorded(cfg)
    layers = [f"encoder.layer.{i}" for i in range(4)]
    assert [rec[e]["phase"] for e in range(6)] == [
        "1_frozen",
        "2_unfreeze",
        "2_unfreeze",
        "3_bilstm",
        "4_fusion",
        "5_final",
    ]
    assert rec[0]["trainable"] == ["heads"] and rec[0]["cached"]
    assert rec[1]["trainable"] == sorted(["heads", *layers]) and not rec[1]["cached"]  # top 4 of 5 groups
    everything = sorted(["heads", "encoder.embeddings", *layers])
    assert rec[2]["trainable"] == everything  # the embeddings join in phase 2's second epoch
    assert rec[3]["trainable"] == sorted([*everything, "bilstm"])
    assert rec[4]["trainable"] == rec[5]["trainable"] == sorted([*everything, "bilstm", "fusion"])
    assert [(rec[e]["bilstm"], rec[e]["fusion"]) for e in range(6)] == [
        (False, False),
        (False, False),
        (False, False),
        (True, False),
        (True, True),
        (True, True),
    ]


def test_learning_rates_follow_layer_decay_and_gating(five) -> None:
    cfg, _ = five
    rec = _recorded(cfg)
    for epoch in range(6):
        lrs = rec[epoch]["lrs"]
        unfrozen = {0: 0, 1: 4}.get(epoch, 5)
        head = lrs["task_parts"]
        assert head > 0
        for depth in range(1, 6):
            name = "embeddings" if depth == 5 else f"backbone_top{depth}"
            expected = head * 0.9**depth if depth <= unfrozen else 0.0
            assert lrs[name] == pytest.approx(expected, rel=1e-6), (epoch, name)
            assert lrs[name + "_no_decay"] == pytest.approx(expected, rel=1e-6)
    # the phase's lr_scale: phase 1 trains heads at 30x, the final phase at 0.5x (same point in the schedule)
    assert rec[0]["lrs"]["task_parts"] / rec[5]["lrs"]["task_parts"] == pytest.approx(60.0)


def test_bilstm_and_fusion_start_as_exact_no_ops_and_learn(five, cache_dir) -> None:
    from intentfusion.models.module import MultiTaskModule

    cfg, _ = five
    ckpt_dir = Path(cfg.paths.output_dir) / "checkpoints"
    model = MultiTaskModule.load_from_checkpoint(ckpt_dir / "last.ckpt", weights_only=True).eval()
    assert model.net.bilstm.gate.abs().sum() > 0  # learned during phases 3-5
    assert any(m.weight.abs().sum() > 0 for m in model.net.fusion.maps.values())
    fresh = MultiTaskModule(**{**model.hparams}).eval()
    batch = {"input_ids": torch.randint(5, 100, (3, 9)), "attention_mask": torch.ones(3, 9, dtype=torch.long)}
    with torch.no_grad():
        off = fresh(**batch)
        fresh.bilstm_active = fresh.fusion_active = True
        on = fresh(**batch)
        model.bilstm_active = model.fusion_active = False
        trained_off = model(**batch)
        model.bilstm_active = model.fusion_active = True
        trained_on = model(**batch)
    for task in off:
        assert torch.equal(off[task], on[task])  # switching on changes nothing before training
    assert any(not torch.allclose(trained_off[t], trained_on[t]) for t in trained_on)


def _state(cfg) -> dict[str, torch.Tensor]:
    return torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.parametrize(
    ("stop", "label"),
    [
        ("trainer.max_epochs=3", "after_phase_2"),
        (f"trainer.max_steps={3 * STEPS_PER_EPOCH + 9}", "mid_phase_3"),
    ],
)
def test_resume_equals_the_uninterrupted_run(five, cfg_factory, stop: str, label: str) -> None:
    cfg, metrics = five
    stopped = cfg_factory("phases=five", RECORDER, *FAST, stop, "test=false", name=f"{label}_stopped")
    train(stopped)
    last = Path(stopped.paths.output_dir) / "checkpoints" / "last.ckpt"
    resumed = cfg_factory("phases=five", RECORDER, *FAST, f"ckpt_path={last}", name=f"{label}_resumed")
    resumed_metrics = train(resumed)

    expected, got = _state(cfg), _state(resumed)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.allclose(expected[key], got[key], atol=1e-6), key
    assert resumed_metrics["val/score"] == pytest.approx(metrics["val/score"], abs=1e-6)
    uninterrupted, after = _recorded(cfg), _recorded(resumed)
    for epoch, row in after.items():
        assert row["trainable"] == uninterrupted[epoch]["trainable"], epoch
        assert row["lrs"] == pytest.approx(uninterrupted[epoch]["lrs"], rel=1e-9), epoch


def test_cached_and_uncached_frozen_phase_give_the_same_heads(cfg_factory) -> None:
    runs = {}
    for cached in (True, False):
        cfg = cfg_factory(
            "phases=frozen",
            *FAST,
            "hparams.epochs=1",
            f"phases.cache_features={cached}",
            "test=false",
            name=f"cache_{cached}",
        )
        train(cfg)
        runs[cached] = _state(cfg)
    for key in runs[True]:
        if key.startswith("net.heads."):
            assert torch.allclose(runs[True][key], runs[False][key], atol=1e-5), key
    assert not torch.equal(runs[True]["net.heads.intent.linear.weight"], _fresh_head_weight(cfg_factory))


def _fresh_head_weight(cfg_factory) -> torch.Tensor:
    import hydra

    from intentfusion.data.support import LABELS

    cfg = cfg_factory(*FAST, name="fresh")
    L.seed_everything(cfg.seed, workers=True)
    model = hydra.utils.instantiate(cfg.model, label_names={t: list(LABELS[t]) for t in cfg.tasks.names})
    return model.net.heads.intent.linear.weight.detach()


@pytest.mark.parametrize("phases", ["full", "frozen", "ulmfit", "warm_start"])
def test_other_phase_plans_run(cfg_factory, phases: str) -> None:
    cfg = cfg_factory(
        f"phases={phases}",
        *FAST,
        "hparams.epochs=1",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=1",
        name=phases,
    )
    metrics = train(cfg)
    assert "test/score" in metrics
    summary = Path(cfg.paths.output_dir, "phases", "phase_summary.csv").read_text()
    assert summary.startswith("phase,epochs,trainable_params,wall_s")
    if phases == "warm_start":  # heads alone on cached features, then everything
        rows = list(csv.DictReader(summary.splitlines()))
        assert [r["phase"] for r in rows] == ["1_heads", "2_full"]
        assert [r["feature_cache"] for r in rows] == ["cached", "-"]  # phase 2 unfreezes every group
