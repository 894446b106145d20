"""Experiment presets (conf/experiment/): each composes to its documented system and runs on `tiny`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from intentfusion.errors import USER_ERRORS, DataError, one_line
from intentfusion.train import train

from ..conftest import CONF, ROOT

PRESETS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
DATA_DIR = Path(os.environ.get("INTENTFUSION_DATA_DIR", ROOT.parent / "shared" / "data"))
SMALL = ["trainer.precision=32", "data.eval_batch_size=16"]


def _full(preset: str, *overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[f"experiment={preset}", "paths.output_dir=x", *overrides])


def test_every_preset_is_listed_and_documented() -> None:
    assert PRESETS == [
        "s0_xlmr_five_phase",
        "s1_intent_slots",
        "s2_frozen_minilm",
        "s3_support4",
        "s4_clinc150_coarse",
        "s4_clinc150_lora",
        "s5_xlmt_me5",
    ]
    for preset in PRESETS:
        text = (CONF / "experiment" / f"{preset}.yaml").read_text()
        assert text.startswith("# @package _global_\n# S"), preset
        assert "backbone=minilm" in text or "backbone: minilm" in text, preset  # the CPU form is documented


def test_presets_compose_to_their_systems() -> None:
    s0 = _full("s0_xlmr_five_phase")
    assert s0.backbone.name_or_path == "xlm-roberta-base" and s0.backbone.gradient_checkpointing
    assert list(s0.tasks.names) == ["intent", "sentiment"] and len(s0.phases.schedule) == 5
    assert (s0.hparams.batch_size, s0.trainer.accumulate_grad_batches, s0.data.max_length) == (4, 4, 64)
    assert (s0.hparams.lr, s0.hparams.weight_decay, s0.trainer.precision) == (3e-5, 0.01, "auto")
    assert _full("s0_xlmr_five_phase", "trainer=gpu").trainer.precision == "16-mixed"
    cpu = _full("s0_xlmr_five_phase", "backbone=minilm")  # the CPU form keeps everything but the encoder
    assert cpu.backbone.name_or_path == "builtin:minilm" and cpu.backbone.gradient_checkpointing

    s1 = _full("s1_intent_slots")
    assert list(s1.tasks.names) == ["intent", "slots"] and s1.data.source.loader == "snips"
    assert s1.tasks.types.slots == "token" and s1.model.token_head.layer == "bilstm_mlp"
    assert s1.data.class_weights.slots.alpha == 0.5 and s1.data.weighted_sampling == "intent"

    s2 = _full("s2_frozen_minilm")
    assert s2.backbone.name_or_path == "builtin:minilm" and s2.phases.cache_features
    assert [p.backbone for p in s2.phases.schedule] == ["none"] and list(s2.tasks.names) == ["intent", "sentiment"]

    s3 = _full("s3_support4")
    assert s3.backbone.name == "distilbert_multilingual" and len(s3.tasks.names) == 4
    assert (s3.hparams.lr, s3.hparams.batch_size, s3.hparams.epochs) == (3e-5, 8, 4)  # config2
    assert s3.callbacks.early_stopping.patience == 2 and s3.callbacks.model_checkpoint.save_top_k == 2
    assert s3.data.source.noise.train_p > 0 and list(s3.data.test_splits) == ["test", "test_noisy"]

    s4 = _full("s4_clinc150_coarse")
    assert list(s4.tasks.names) == ["intent", "intent_coarse"] and s4.data.source.loader == "clinc150"
    mapping = s4.data.source.label_maps[0].mapping
    fine = [i for intents in mapping.values() for i in intents]
    assert len(mapping) == 11 and len(fine) == len(set(fine)) == 151  # 10 domains + oos
    assert all(isinstance(i, str) for i in fine)  # "yes"/"no" are intents, not YAML booleans

    lora = _full("s4_clinc150_lora")
    assert lora.backbone.name_or_path == "FacebookAI/roberta-large" and lora.trainer.accelerator == "gpu"
    assert (lora.peft.method, lora.peft.r) == ("lora", 8) and lora.hparams.lr > s4.hparams.lr
    assert list(lora.tasks.names) == ["intent", "intent_core"]
    core = lora.data.source.label_maps[0].mapping
    assert len(core) == 21 and sorted(i for intents in core.values() for i in intents) == sorted(fine)  # 20 + oos
    assert core.oos == ["oos"] and min(len(intents) for name, intents in core.items() if name != "oos") >= 3

    s5 = _full("s5_xlmt_me5")
    assert s5.backbone.name_or_path == "builtin:me5-small" and list(s5.tasks.names) == ["sentiment"]
    assert s5.data.source.loader == "xlmt_sentiment" and list(s5.data.slice_by) == ["language"]
    assert (s5.hparams.lr, s5.hparams.batch_size, s5.hparams.epochs, s5.trainer.precision) == (5e-5, 32, 3, "auto")


@pytest.mark.skipif(not (DATA_DIR / "snips" / "train" / "seq.out").is_file(), reason="no SNIPS data")
def test_s1_trains_intent_and_slots_on_tiny(cfg_factory) -> None:
    cfg = cfg_factory("experiment=s1_intent_slots", "debug=fdr", "phases.cache_features=false", *SMALL)
    assert cfg.tasks.types.slots == "token" and cfg.model.token_head.layer == "bilstm_mlp"
    metrics = train(cfg)
    assert {"test/intent/acc", "test/slots/f1", "test/exact_match"} <= set(metrics)


def test_a_slots_task_without_its_token_type_fails_with_one_line(cfg_factory) -> None:
    cfg = cfg_factory("tasks=intent_only", "tasks.names=[intent,slots]", "debug=fdr")
    with pytest.raises(DataError) as err:
        train(cfg)
    assert isinstance(err.value, USER_ERRORS)  # train.py prints it as one line and exits 1
    line = one_line(err.value)
    assert line.startswith("error: tasks.types.slots: the labels are lists") and "{slots: token}" in line
    assert "\n" not in line
    assert not (Path(cfg.paths.output_dir) / "metrics.json").exists()  # rejected before anything ran


@pytest.mark.parametrize("preset", ["s0_xlmr_five_phase", "s2_frozen_minilm", "s3_support4"])
def test_support_presets_run_on_tiny(preset: str, cfg_factory) -> None:
    metrics = train(cfg_factory(f"experiment={preset}", "debug=fdr", "data.source.n=480", *SMALL))
    assert "test/intent/acc" in metrics and "test/sentiment/acc" in metrics
    if preset == "s3_support4":
        assert "test_noisy/action/acc" in metrics


@pytest.mark.skipif(not (DATA_DIR / "clinc150" / "data_full.json").is_file(), reason="no CLINC150 data")
@pytest.mark.parametrize(("preset", "coarse"), [("s4_clinc150_coarse", "intent_coarse"),
                                                ("s4_clinc150_lora", "intent_core")])
def test_s4_clinc150_runs_on_tiny_and_reports_both_levels(preset: str, coarse: str, cfg_factory) -> None:
    # no frozen-phase feature cache: it would encode all 15,100 training queries even under fast_dev_run
    cfg = cfg_factory(f"experiment={preset}", "debug=fdr", "phases.cache_features=false", "trainer=cpu", *SMALL)
    metrics = train(cfg)
    for split in ("test", "test_oos"):
        assert f"{split}/intent/acc" in metrics and f"{split}/{coarse}/acc" in metrics


@pytest.mark.skipif(not (DATA_DIR / "xlmt_sentiment").is_dir(), reason="no XLM-T data")
def test_s5_xlmt_runs_on_tiny_and_reports_every_language(cfg_factory) -> None:
    # a small stratified sample of every language, tested whole (fast_dev_run would test one batch)
    subset = "data.source.subset={train:64,val:32,test:64,seed:0,stratify:language}"
    metrics = train(cfg_factory("experiment=s5_xlmt_me5", "backbone=tiny", subset, "data.test_splits=[test]",
                                "hparams.epochs=1", "callbacks.model_checkpoint=null", *SMALL))
    assert "test/sentiment/f1_macro" in metrics
    languages = ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish")
    assert all(f"test/{lang}/sentiment/f1_macro" in metrics for lang in languages)
