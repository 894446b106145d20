"""`evaluate.py`: the full report on a trained checkpoint, and mean ± std over several."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest

from intentfusion.evaluate import evaluate


@pytest.fixture(scope="module")
def evaluated(tiny_run, tmp_path_factory, cache_dir):
    from .conftest import make_cfg

    out, _ = tiny_run
    best = json.loads((out / "metrics.json").read_text())["checkpoint"]
    eval_dir = tmp_path_factory.mktemp("eval")
    cfg = make_cfg(eval_dir, cache_dir, f"ckpt_path={best}", "trainer.precision=32", config="evaluate")
    return Path(best), eval_dir, evaluate(cfg)


def test_writes_every_output_with_stable_keys(evaluated) -> None:
    ckpt, out, metrics = evaluated
    data = json.loads((out / "metrics.json").read_text())
    suite = data["suite"]
    assert set(suite["tasks"]) == {"intent", "urgency", "sentiment", "action"}
    test = suite["tasks"]["intent"]["splits"]["test"]
    for key in (
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "per_class",
        "confusion_matrix",
        "baselines",
        "calibration",
        "calibration_scaled",
    ):
        assert key in test
    assert set(test["calibration"]) >= {"ece", "mce", "nll", "brier"}
    assert {"gap", "clean", "noisy"} <= set(suite["tasks"]["intent"]["robustness"]["accuracy"])
    assert set(suite) >= {"fuzzy_intent", "business", "temperatures"}
    # the suite's accuracy is the same number the Lightning test loop reports
    assert test["accuracy"] == pytest.approx(metrics["test/intent/acc"], abs=1e-6)
    temperatures = json.loads((ckpt.parent / "temperatures.json").read_text())
    assert set(temperatures) == set(suite["tasks"]) and all(t > 0 for t in temperatures.values())


def test_report_opens_with_model_vs_baselines_per_task(evaluated) -> None:
    _, out, _ = evaluated
    report = (out / "report.md").read_text()
    first_table = report.split("### intent", 1)[1].split("###", 1)[0]
    assert "| model |" in first_table and "| majority class |" in first_table and "| uniform random |" in first_table
    assert "test_noisy acc" in first_table
    assert report.index("### intent") < report.index("## Calibration")


def test_pngs_render_and_predictions_cover_every_split(evaluated) -> None:
    _, out, _ = evaluated
    for name in ("reliability_intent.png", "confusion_action.png"):
        image = matplotlib.image.imread(out / name)
        assert image.shape[0] > 100 and image.shape[1] > 100
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"val", "test", "test_noisy", "val_oos", "test_oos"}
    assert len([r for r in rows if r["split"] == "test"]) == 72  # 15% of 480
    intent = rows[0]["predictions"]["intent"]  # as the Predictor returns it, next to the gold label
    assert 0 < intent["predicted"]["confidence"] <= 1 and intent["predicted"]["label"] and intent["gold"]


def test_several_checkpoints_report_mean_and_std(tiny_run, cfg_factory) -> None:
    out, _ = tiny_run
    ckpts = sorted((out / "checkpoints").glob("epoch*.ckpt"))
    assert len(ckpts) == 2
    cfg = cfg_factory(
        f"ckpt_path=[{ckpts[0]},{ckpts[1]}]",
        "trainer.precision=32",
        "suite.fuzzy=false",
        name="multi",
        config="evaluate",
    )
    means = evaluate(cfg)
    summary = json.loads((Path(cfg.paths.output_dir) / "metrics.json").read_text())
    assert summary["runs"] == 2
    single = [
        json.loads((Path(cfg.paths.output_dir) / f"run{i}" / "metrics.json").read_text())["metrics"] for i in range(2)
    ]
    acc = [s["test/intent/acc"] for s in single]
    assert means["test/intent/acc"] == pytest.approx(sum(acc) / 2)
    assert summary["metrics"]["test/intent/acc"]["std"] == pytest.approx(abs(acc[0] - acc[1]) / 2**0.5)
    assert "Mean ± std over 2 checkpoints" in (Path(cfg.paths.output_dir) / "report.md").read_text()


def test_missing_checkpoint_is_a_clear_error(cfg_factory) -> None:
    cfg = cfg_factory("ckpt_path=/nonexistent/x.ckpt", name="missing", config="evaluate")
    with pytest.raises(FileNotFoundError, match="ckpt_path=/nonexistent/x.ckpt: no such checkpoint file"):
        evaluate(cfg)


def test_a_token_task_run_reports_spans_and_its_entities_equal_the_predictors(tmp_path, cfg_factory) -> None:
    """`train.py` on JSONL with character-span annotations (tiny backbone), evaluated: the report has the slot
    section, and `predictions.jsonl`'s predicted entities are the Predictor's on the same texts."""
    from intentfusion.inference import Predictor
    from intentfusion.train import train

    from .models.test_token_tasks import bookings_jsonl, jsonl_slot_overrides

    data = bookings_jsonl(tmp_path / "bookings.jsonl")
    cfg = cfg_factory(*jsonl_slot_overrides(data), "phases=full", "hparams.epochs=4", "evaluate=true", name="slots")
    metrics = train(cfg)
    assert {"test/slots/f1", "test/exact_match", "test/intent/acc"} <= set(metrics)
    run = Path(cfg.paths.output_dir)
    report = (run / "eval" / "report.md").read_text()
    assert "### slots (token task" in report and "| city |" in report
    lines = [json.loads(line) for line in (run / "eval" / "predictions.jsonl").read_text().splitlines()]
    test = [row for row in lines if row["split"] == "test"]
    predictor = Predictor.from_checkpoint(json.loads((run / "metrics.json").read_text())["checkpoint"])
    results = predictor.predict([row["text"] for row in test])
    for row, result in zip(test, results, strict=True):
        assert [{k: e[k] for k in ("label", "start", "end", "text")} for e in row["entities"]["slots"]["predicted"]] \
            == [{k: e[k] for k in ("label", "start", "end", "text")} for e in result["entities"]["slots"]]
        assert all(row["text"][e["start"]:e["end"]] == e["text"] for e in row["entities"]["slots"]["predicted"])
    assert any(row["entities"]["slots"]["gold"] for row in test)
