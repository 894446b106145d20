"""LoRA (peft=lora) on the tiny backbones: default targets, phases over adapters with a frozen base, checkpoints
that keep only what trains, wrong-base refusal, resume across a phase boundary, merged export and ONNX parity."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from intentfusion.errors import CheckpointError, ConfigError
from intentfusion.inference import Predictor
from intentfusion.inference.loading import load_checkpoint_net
from intentfusion.models.adapters import check_peft, with_adapters
from intentfusion.models.backbone import load_encoder, resolve_backbone
from intentfusion.models.module import MultiTaskModule
from intentfusion.train import train

from ..conftest import make_cfg

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
LORA = {"method": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": None}
# 336 training examples, batch 16 -> 21 steps per epoch; plan: frozen 1, unfreeze 2 (2 groups per epoch),
# bilstm 1, fusion 1, final 1
FAST = ["peft=lora", "phases=five", "phases.schedule.1.unfreeze_per_epoch=2", "data.source.n=480",
        "tasks=support4", "hparams.batch_size=16", "hparams.lr=2e-3", "hparams.epochs=2", "trainer.precision=32",
        "trainer.deterministic=true"]
RECORDER = "+callbacks.recorder._target_=tests.models.test_adapters.AdapterRecorder"
TEXTS = ["where is my refund", "I want to cancel my order now!!", "hola, necesito ayuda con mi cuenta", "ok"]


class AdapterRecorder(L.Callback):
    """Per epoch (at its 3rd step): the layers whose adapters train, any base weight that trains, group LRs."""

    def __init__(self) -> None:
        self.epochs: dict[int, dict[str, Any]] = {}

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch: Any, idx: int) -> None:
        if idx != 2:
            return
        training = [n for n, p in module.net.encoder.named_parameters() if p.requires_grad]
        optimized = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
        self.epochs[trainer.current_epoch] = {
            "adapter_layers": sorted({int(n.split(".layer.")[1].split(".")[0]) for n in training if "lora_" in n}),
            "base_training": [n for n in training if "lora_" not in n],
            "base_optimized": [n for n, p in module.net.encoder.named_parameters()
                               if "lora_" not in n and id(p) in optimized],
            "heads_training": all(p.requires_grad for p in module.net.heads.parameters()),
            "lrs": {g["name"]: g["lr"] for g in trainer.optimizers[0].param_groups},
        }

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        path = Path(trainer.default_root_dir, "recorded.json")
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **{str(k): v for k, v in self.epochs.items()}}, indent=1))


def _recorded(cfg) -> dict[int, dict[str, Any]]:
    data = json.loads(Path(cfg.paths.output_dir, "recorded.json").read_text())
    return {int(k): v for k, v in data.items()}


def _last(cfg) -> Path:
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    """One uninterrupted five-phase LoRA run on tiny-xlmr (6 epochs), shared by the tests of this module."""
    cfg = make_cfg(tmp_path_factory.mktemp("lora"), cache_dir, RECORDER, *FAST)
    return cfg, train(cfg)


# ================================================================================= wrapping
@pytest.mark.parametrize(("name", "targets"), [("builtin:tiny-xlmr", {"query", "value"}),
                                               ("builtin:tiny-distilbert", {"q_lin", "v_lin"})])
def test_default_targets_follow_the_architecture(name: str, targets: set[str], cache_dir: Path) -> None:
    encoder = load_encoder(resolve_backbone(name, cache_dir))
    wrapped = with_adapters(encoder, LORA)
    adapted = {n.split(".")[-1] for n, m in wrapped.named_modules() if hasattr(m, "lora_A")}
    assert adapted == targets
    assert all(p.requires_grad == ("lora_" in n) for n, p in wrapped.named_parameters())


@pytest.mark.parametrize(("change", "key"), [({"method": "prefix"}, "peft.method"), ({"r": 0}, "peft.r"),
                                             ({"alpha": "big"}, "peft.alpha"), ({"dropout": 1.0}, "peft.dropout"),
                                             ({"target_modules": []}, "peft.target_modules")])
def test_bad_peft_options_name_their_key(change: dict, key: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_peft({**LORA, **change})
    assert str(raised.value).startswith(f"{key}: ")


def test_targets_the_encoder_lacks_name_the_key(cache_dir: Path) -> None:
    encoder = load_encoder(resolve_backbone("builtin:tiny-xlmr", cache_dir))
    with pytest.raises(ConfigError) as raised:
        with_adapters(encoder, {**LORA, "target_modules": ["q_lin"]})
    assert str(raised.value).startswith("peft.target_modules: ") and "xlm-roberta" in str(raised.value)


# ================================================================================= phases
def test_base_stays_frozen_while_adapters_follow_the_plan(lora_run) -> None:
    cfg, metrics = lora_run
    rec = _recorded(cfg)
    assert [rec[e]["adapter_layers"] for e in range(6)] == [[], [2, 3], [0, 1, 2, 3], *[[0, 1, 2, 3]] * 3]
    for epoch, row in rec.items():
        assert row["base_training"] == [] and row["base_optimized"] == [], epoch  # never trains, never optimized
        assert row["heads_training"], epoch
    lrs = rec[1]["lrs"]  # layer-wise decay over the adapter groups; frozen adapter groups at LR 0
    assert lrs["backbone_top1"] == pytest.approx(lrs["task_parts"] * 0.9)
    assert lrs["backbone_top2"] == pytest.approx(lrs["task_parts"] * 0.9**2)
    assert lrs["backbone_top3"] == lrs["backbone_top4"] == 0.0
    assert "embeddings" not in lrs  # no adapters in the embeddings: no group
    assert metrics["model/trainable_params"] < metrics["model/total_params"]


def test_checkpoint_keeps_the_adapters_and_task_parts_only(lora_run) -> None:
    cfg, metrics = lora_run
    ckpt = torch.load(_last(cfg), weights_only=True)
    encoder_keys = [k for k in ckpt["state_dict"] if k.startswith("net.encoder.")]
    assert encoder_keys and all(".lora_" in k for k in encoder_keys)
    assert any(k.startswith("net.heads.") for k in ckpt["state_dict"])
    assert sum(v.numel() for v in ckpt["state_dict"].values()) <= metrics["model/trainable_params"] + 1000  # buffers
    moments = ckpt["optimizer_states"][0]["state"]
    assert sum(s["exp_avg"].numel() for s in moments.values()) <= metrics["model/trainable_params"]
    base = ckpt["intentfusion"]["base"]
    assert base["name_or_path"] == "builtin:tiny-xlmr" and len(base["fingerprint"]) == 64


def test_save_load_round_trip_gives_identical_logits(lora_run) -> None:
    cfg, _ = lora_run
    module = MultiTaskModule.load_from_checkpoint(_last(cfg), weights_only=True).eval()
    net, tokenizer, _ = load_checkpoint_net(_last(cfg))
    assert any(p.abs().sum() > 0 for n, p in net.named_parameters() if "lora_B" in n)  # trained (B starts at 0)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        a = module(batch["input_ids"], batch["attention_mask"])
        b = net(batch["input_ids"], batch["attention_mask"])
    for task in a:
        assert torch.equal(a[task], b[task]), task


def test_a_different_base_is_refused(lora_run, tmp_path: Path, cache_dir: Path) -> None:
    cfg, _ = lora_run
    other = tmp_path / "other-base"
    shutil.copytree(resolve_backbone("builtin:tiny-xlmr", cache_dir), other)
    encoder = load_encoder(str(other))
    with torch.no_grad():
        next(encoder.parameters()).add_(1e-3)
    encoder.save_pretrained(other)
    ckpt = torch.load(_last(cfg), weights_only=True)
    ckpt["hyper_parameters"]["backbone"]["name_or_path"] = str(other)  # the base as configured, and as the network
    ckpt["intentfusion"]["net_config"]["backbone"] = str(other)  # config names it: its weights are not those trained on
    moved = tmp_path / "other.ckpt"
    torch.save(ckpt, moved)
    with pytest.raises(CheckpointError) as raised:
        load_checkpoint_net(moved)
    assert str(raised.value).startswith(f"{moved}: its adapters were trained on base 'builtin:tiny-xlmr'")
    with pytest.raises(CheckpointError, match=r"^ckpt_path: its adapters were trained on base"):
        MultiTaskModule.load_from_checkpoint(moved, weights_only=True)
    with pytest.raises(CheckpointError, match=r"^ckpt_path: the checkpoint was trained with adapters"):
        MultiTaskModule.load_from_checkpoint(_last(cfg), weights_only=True, peft={"method": "none"})


def test_resume_across_a_phase_boundary_equals_the_uninterrupted_run(lora_run, cfg_factory) -> None:
    cfg, metrics = lora_run
    stopped = cfg_factory(RECORDER, *FAST, "trainer.max_epochs=2", "test=false", name="stopped")  # mid phase 2
    train(stopped)
    resumed = cfg_factory(RECORDER, *FAST, f"ckpt_path={_last(stopped)}", name="resumed")
    resumed_metrics = train(resumed)
    expected, got = (torch.load(_last(c), weights_only=True)["state_dict"] for c in (cfg, resumed))
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.allclose(expected[key], got[key], atol=1e-6), key
    assert resumed_metrics["val/score"] == pytest.approx(metrics["val/score"], abs=1e-6)
    uninterrupted = _recorded(cfg)
    for epoch, row in _recorded(resumed).items():
        assert row["lrs"] == pytest.approx(uninterrupted[epoch]["lrs"], rel=1e-9), epoch
        assert row["adapter_layers"] == uninterrupted[epoch]["adapter_layers"], epoch


# ================================================================================= export
def test_merged_export_predicts_like_the_unmerged_model(lora_run, tmp_path: Path) -> None:
    from transformers import AutoModel

    from intentfusion.export import export

    cfg, _ = lora_run
    out = tmp_path / "export"
    # legacy: one dynamo export per process (tests/inference runs its own; see export_onnx's fixed-size check)
    report = export(_last(cfg), out, onnx=HAS_ONNX, exporter="legacy", log=lambda *_: None)
    plain = AutoModel.from_pretrained(out / "encoder")  # plain transformers: no peft, no adapter files
    assert not any("lora" in n for n, _ in plain.named_parameters())
    assert not (out / "encoder" / "adapter_config.json").exists()
    assert json.loads((out / "intentfusion.json").read_text())["peft"]["merged"] is True
    unmerged, merged = Predictor.from_checkpoint(_last(cfg)).logits(TEXTS), Predictor.from_export(out).logits(TEXTS)
    for task in unmerged:
        assert (unmerged[task] - merged[task]).abs().max() < 1e-5, task
    if HAS_ONNX:
        parity = report["onnx"]["parity"]
        assert parity["max_abs_diff"] < 1e-4 and parity["label_agreement"] == 1.0
