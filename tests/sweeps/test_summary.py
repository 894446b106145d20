"""`MultirunSummary`: one row per job, mean ± std per configuration run with several seeds, failed jobs listed."""

from __future__ import annotations

import csv
import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from intentfusion.sweeps.summary import MultirunSummary, load_jobs, summarize, summarize_sweep
from intentfusion.train import metric_for_sweeper

from ..conftest import ROOT


def _job(sweep: Path, num: int, overrides: list[str], metrics: dict | None, status: str = "completed") -> Path:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
    if metrics is not None:
        record = {"status": status, "wall_time_s": 10.0 + num, "overrides": overrides, "metrics": metrics}
        if status == "failed":
            record["error"] = "RuntimeError: boom"
        (job / "metrics.json").write_text(json.dumps(record))
    return job


def _metrics(score: float) -> dict[str, float]:
    return {
        "best/val/score": score,
        "val/score": score - 0.1,
        "test/score": score / 2,
        "test/intent/acc": score,
        "test/intent/f1_macro": score / 2,
        "test/loss": 1.0,
        "test_noisy/intent/acc": score / 3,
        "lr-AdamW/task_parts": 0.1,
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """2 configs x seeds 1, 2; config b seed 2 failed; a third config ran once; one job died without a record."""
    sweep = tmp_path / "sweep"
    _job(sweep, 0, ["hparams=a", "seed=1"], _metrics(0.5))
    _job(sweep, 1, ["hparams=a", "seed=2"], _metrics(0.7))
    _job(sweep, 2, ["hparams=b", "seed=1"], _metrics(0.4))
    _job(sweep, 3, ["hparams=b", "seed=2"], {}, status="failed")
    _job(sweep, 4, ["hparams=c", "seed=1"], _metrics(0.9))
    _job(sweep, 10, ["hparams=d", "seed=1"], None)  # no metrics.json: killed
    (sweep / "multirun.yaml").write_text("{}")
    return sweep


def test_rows_per_job_and_mean_std_per_seed_group(sweep: Path) -> None:
    jobs = load_jobs(sweep)
    assert [j.job for j in jobs] == ["0", "1", "2", "3", "4", "10"]
    assert [j.status for j in jobs] == ["completed"] * 3 + ["failed", "completed", "failed"]
    assert "died" in jobs[-1].error and jobs[-1].overrides == ["hparams=d", "seed=1"]
    summary = summarize(jobs, sweep)
    assert len(summary.job_rows) == 6 and len(summary.group_rows) == 2  # a (2 seeds) and b (1 of 2 completed)
    cols = summary.columns
    assert cols[:4] == ["job", "overrides", "status", "val/score"]
    assert cols[4:9] == [
        "test/score",
        "test/intent/acc",
        "test/intent/f1_macro",
        "test_noisy/intent/acc",
        "wall_time_s",
    ]
    assert "test/loss" not in cols and not any(c.startswith("lr-") for c in cols)
    assert summary.job_rows[0]["val/score"] == "0.5000"  # the best checkpoint's, not the last validation's
    assert summary.job_rows[3]["error"] == "RuntimeError: boom"
    group_a, group_b = summary.group_rows
    assert group_a["overrides"] == "hparams=a (seeds 1,2)" and group_a["status"] == "2/2 completed"
    std = statistics.stdev([0.5, 0.7])
    assert group_a["val/score"] == f"{0.6:.4f} ± {std:.4f}"
    assert group_a["wall_time_s"] == f"10.5 ± {statistics.stdev([10.0, 11.0]):.1f}"
    assert group_b["status"] == "1/2 completed" and group_b["val/score"] == "0.4000"  # one value: no std
    data = summary.data["seed_groups"][0]
    assert math.isclose(data["mean"]["test/intent/acc"], 0.6) and math.isclose(data["std"]["val/score"], std)


def test_trainable_parameters_per_job_when_recorded(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _job(sweep, 0, ["peft=none", "seed=1"], {**_metrics(0.5), "model/trainable_params": 22_786_944.0})
    _job(sweep, 1, ["peft=lora", "seed=1"], {**_metrics(0.4), "model/trainable_params": 131_075.0})
    summary = summarize(load_jobs(sweep), sweep)
    assert summary.columns[3:5] == ["model/trainable_params", "val/score"]
    assert [r["model/trainable_params"] for r in summary.job_rows] == ["22786944", "131075"]
    assert "model/trainable_params" not in summarize(load_jobs(tmp_path / "none"), tmp_path).columns


def test_files_written_and_table_printed(sweep: Path, capsys: pytest.CaptureFixture) -> None:
    summarize_sweep(sweep)
    with open(sweep / "multirun_summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and rows[-2]["job"] == "mean ± std"
    md = (sweep / "multirun_summary.md").read_text().splitlines()
    assert sum(line.startswith("| ") for line in md) == 9  # header + 8 rows
    assert json.loads((sweep / "multirun_summary.json").read_text())["jobs"][3]["status"] == "failed"
    out = capsys.readouterr().out
    assert "multirun summary" in out and "mean ± std" in out and "job 3 failed" in out


def test_callback_uses_the_sweep_dir_it_saw_at_start(sweep: Path, tmp_path: Path) -> None:
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}, "sweeper": {"_target_": "basic"}}})
    callback = MultirunSummary(print_table=False)
    callback.on_multirun_start(config)
    callback.on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "elsewhere")}}}))
    assert (sweep / "multirun_summary.csv").is_file()


def test_summary_failure_never_fails_the_sweep(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    MultirunSummary().on_multirun_end(OmegaConf.create({}))  # no hydra node: logged, not raised
    assert "could not be written" in caplog.text


def test_metric_for_sweeper() -> None:
    assert metric_for_sweeper({"best/val/score": 0.5, "val/score": 0.4}, "best/val/score") == 0.5
    assert metric_for_sweeper({"val/score": 0.4}, "best/val/score") == 0.4  # fast_dev_run keeps no checkpoint
    assert metric_for_sweeper({"val/score": 0.4}, None) is None
    assert metric_for_sweeper(None, "best/val/score") is None  # a failed job: Optuna marks the trial failed


def test_joblib_multirun_records_a_crashed_job_and_summarises(tmp_path: Path) -> None:
    """Parallel jobs (joblib); n=5 crashes in data loading (not a user error) and the sweep goes on."""
    sweep = tmp_path / "sweep"
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "backbone=tiny",
        "debug=fdr",
        "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
        "trainer.precision=32",
        "hparams.batch_size=16",
        "tasks=support4",  # few metric columns: the printed table keeps "mean ± std" on one line
        "data.source.n=480,5",
        "seed=1,2",
    ]
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("PYTEST")}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = {tuple(o for o in j.overrides if o.startswith(("data.source.n=", "seed="))): j for j in load_jobs(sweep)}
    assert len(jobs) == 4 and all({"backbone=tiny", "debug=fdr"} <= set(j.overrides) for j in jobs.values())
    for seed in (1, 2):
        ok, crashed = jobs[("data.source.n=480", f"seed={seed}")], jobs[("data.source.n=5", f"seed={seed}")]
        assert ok.status == "completed" and ok.wall_time_s > 0 and "test/intent/acc" in ok.metrics
        assert crashed.status == "failed" and crashed.error.startswith("ValueError: n=5 is too small")
        assert (crashed.path / "error.log").read_text().startswith("Traceback")
    rows = list(csv.DictReader(open(sweep / "multirun_summary.csv")))
    assert [r["job"] for r in rows] == ["0", "1", "2", "3", "mean ± std"]
    assert rows[-1]["overrides"].endswith("data.source.n=480 (seeds 1,2)") and rows[-1]["status"] == "2/2 completed"
    assert "mean ± std" in result.stdout
