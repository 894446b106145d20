"""Several intents in one message (`tasks=multi_intent_slots`): the intent <-> slot interaction (an exact no-op when
the phase plan switches it on, learned afterwards, resumed across its phase boundary), the metrics per number of
intents, the Predictor's intents and entities equal to `evaluate.py`'s predictions, ONNX parity."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from intentfusion.inference import Predictor
from intentfusion.models.parts import LabelSetAttention, PartnerShift
from tests.data.test_mixed_intents import toy_mix
from tests.tasks.test_multilabel import metrics_checkpoint

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))


def mix_overrides(tmp_path: Path) -> list[str]:
    mix, corpus = toy_mix(tmp_path)
    return ["data=mixatis", f"data.source.root={mix}", f"data.source.components={corpus}", "data.source.name=toymix",
            "data.source.train_sizes={1: 60, 2: 120, 3: 60}", "tasks=multi_intent_slots",
            "model.fusion.pairs=[[intent, slots]]", "hparams.lr=3e-3", "hparams.batch_size=16",
            "trainer.precision=32", "data.max_length=48"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    from intentfusion.train import train
    from tests.conftest import make_cfg

    root = tmp_path_factory.mktemp("multi_intent")
    cfg = make_cfg(root / "run", cache_dir, *mix_overrides(root), "phases=five", "hparams.epochs=3", "evaluate=true")
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), metrics


def test_metrics_per_number_of_intents_and_the_overall_accuracy(trained) -> None:
    out, metrics = trained
    for group in ("", "1_intent/", "2_intents/", "3_intents/"):
        assert {f"test/{group}intent/subset_acc", f"test/{group}slots/f1", f"test/{group}exact_match"} <= set(metrics)
    assert metrics["test/exact_match"] <= min(metrics["test/intent/subset_acc"], metrics["test/slots/f1"] + 1e-6)
    assert metrics["test/intent/subset_acc"] > 0.5 and metrics["test/slots/f1"] > 0.2  # it learns (untrained: ~0)
    report = (out / "eval" / "report.md").read_text()
    assert "| 3_intents |" in report and "exact_match" in report
    summary = json.loads((out / "data_summary.json").read_text())
    assert next(iter(summary["train"]["provenance"])).startswith("composed from")


def test_the_interaction_is_an_exact_no_op_when_switched_on_and_learned_afterwards(trained) -> None:
    from intentfusion.models.module import MultiTaskModule

    out, metrics = trained
    model = MultiTaskModule.load_from_checkpoint(metrics_checkpoint(out), weights_only=True).eval()
    maps = model.net.fusion.maps
    assert isinstance(maps["slots__from__intent"], LabelSetAttention)  # each token attends over the intents
    assert isinstance(maps["intent__from__slots"], PartnerShift)  # the intents see the pooled slot evidence
    fresh = MultiTaskModule(**{**model.hparams}).eval()
    batch = {"input_ids": torch.randint(5, 100, (3, 11)), "attention_mask": torch.ones(3, 11, dtype=torch.long)}
    with torch.no_grad():
        off = fresh(**batch)
        fresh.fusion_active = True
        on = fresh(**batch)
        model.fusion_active = False
        trained_off = model(**batch)
        model.fusion_active = True
        trained_on = model(**batch)
    for task in off:
        assert torch.equal(off[task], on[task]), task  # switching on changes nothing before training
        assert not torch.allclose(trained_off[task], trained_on[task]), task  # both directions learned something
    per_token = trained_on["slots"] - trained_off["slots"]  # the attention gives tokens different shifts
    assert not torch.allclose(per_token[:, 1:], per_token[:, :1].expand_as(per_token[:, 1:]))


def test_resume_across_the_interaction_phase_boundary_equals_the_uninterrupted_run(cfg_factory, tmp_path: Path
                                                                                    ) -> None:
    from intentfusion.train import train

    common = [*mix_overrides(tmp_path), "data.source.train_sizes={1: 20, 2: 40, 3: 20}", "phases=five",
              "hparams.epochs=1", "trainer.deterministic=true", "test=false"]
    train(cfg_factory(*common, name="whole"))
    stopped = cfg_factory(*common, "trainer.max_epochs=3", name="stopped")  # phases 1-3 done; fusion is next
    train(stopped)
    last = Path(stopped.paths.output_dir) / "checkpoints" / "last.ckpt"
    train(cfg_factory(*common, f"ckpt_path={last}", name="resumed"))
    expected, got = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                     for name in ("whole", "resumed"))
    attention = [k for k in got if "fusion.maps.slots__from__intent" in k]
    assert attention and any(got[k].abs().sum() > 0 for k in attention if k.endswith("out.weight"))
    for key in expected:
        assert torch.allclose(expected[key], got[key], atol=1e-6), key


def test_the_predictor_gives_the_intents_and_entities_evaluate_wrote(trained) -> None:
    out, metrics = trained
    rows = [json.loads(line) for line in (out / "eval" / "predictions.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["split"] == "test"]
    results = Predictor.from_checkpoint(metrics_checkpoint(out)).predict([r["text"] for r in rows])
    assert len(rows) == 16 and any(len(r["predictions"]["intent"]["gold"]["labels"]) == 3 for r in rows)
    for row, result in zip(rows, results, strict=True):
        assert [i["label"] for i in result["predictions"]["intent"]["labels"]] == [
            i["label"] for i in row["predictions"]["intent"]["predicted"]["labels"]]
        spans = lambda entities: [(e["label"], e["start"], e["end"]) for e in entities]  # noqa: E731
        assert spans(result["entities"]["slots"]) == spans(row["entities"]["slots"]["predicted"])


@pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime / onnxscript missing")
def test_onnx_parity_with_the_interaction(trained, tmp_path: Path) -> None:
    from intentfusion.export import export

    out, _ = trained
    report = export(metrics_checkpoint(out), tmp_path / "export", onnx=True, log=lambda *_: None)
    parity = report["onnx"]["parity"]
    assert parity["max_abs_diff"] < 1e-3 and parity["label_agreement"] == 1.0 and parity["entity_agreement"] == 1.0
    texts = [json.loads(line)["text"] for line in (out / "eval" / "predictions.jsonl").read_text().splitlines()]
    torch_results = Predictor.from_export(tmp_path / "export").predict(texts)
    onnx_results = Predictor.from_export(tmp_path / "export", runtime="onnx").predict(texts)
    sets = lambda results: [[i["label"] for i in r["predictions"]["intent"]["labels"]] for r in results]  # noqa: E731
    assert sets(onnx_results) == sets(torch_results) and any(len(s) > 1 for s in sets(torch_results))
