"""`MultirunSummary`: a Hydra callback that tabulates every job of a multirun when the sweep ends.

It reads each job's `metrics.json` from its directory under the sweep dir (so it works the same for the
basic, joblib and submitit launchers, whose jobs run in other processes) and writes, into the sweep dir:

- `multirun_summary.csv` / `.md`: one row per job (overrides, status, trainable parameters, best `val/score`,
  every test metric per split and task, wall time, the error of a failed job), then one `mean ± std` row per
  configuration that ran with several seeds (jobs grouped by their overrides minus `seed`; sample std over the completed
  jobs of the group);
- `multirun_summary.json`: the same, unrounded.

The table is also printed. For an Optuna sweep the study's trials of this sweep and its best trial so far are
added (and a `trial` column when jobs and trials match one to one).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import re
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

log = logging.getLogger(__name__)

SEED_KEYS = ("seed", "+seed", "++seed")
VAL_COLUMN = "val/score"
PARAMS_COLUMN = "model/trainable_params"  # what each job's optimizer trained (adapters only under peft)
TEST_METRIC = re.compile(r"^test[^/]*/(score|[^/]+/[^/]+)$")  # <split>/score, <split>/<task>/<metric>


@dataclass
class JobResult:
    """One multirun job as read from its directory."""

    job: str
    path: Path
    overrides: list[str]
    status: str
    wall_time_s: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    trial: int | None = None

    @property
    def val_score(self) -> float | None:
        """The best checkpoint's `val/score` (the last validation's when no checkpoint was kept)."""
        return self.metrics.get("best/val/score", self.metrics.get(VAL_COLUMN))

    @property
    def seed(self) -> str | None:
        return next((o.split("=", 1)[1] for o in self.overrides if o.split("=", 1)[0] in SEED_KEYS), None)

    @property
    def config_key(self) -> tuple[str, ...]:
        """The overrides minus the seed: jobs with the same key ran the same configuration."""
        return tuple(sorted(o for o in self.overrides if o.split("=", 1)[0] not in SEED_KEYS))


# --------------------------------------------------------------------------------------------- reading
def _job_dirs(sweep_dir: Path) -> list[Path]:
    """Directories under the sweep dir that hold a job (its `.hydra/overrides.yaml` or `metrics.json`)."""
    found = {p.parent.parent for p in sweep_dir.rglob(".hydra/overrides.yaml")}
    found |= {p.parent for p in sweep_dir.rglob("metrics.json")}
    hidden = [d for d in found if any(part.startswith(".") for part in d.relative_to(sweep_dir).parts)]
    nested = [d for d in found if any(d != o and o in d.parents for o in found)]  # e.g. an evaluation inside
    return sorted(set(found) - set(hidden) - set(nested) - {sweep_dir}, key=_job_sort_key)


def _job_sort_key(path: Path) -> tuple[int, str]:
    return (int(path.name), "") if path.name.isdigit() else (1 << 30, str(path))


def _read_overrides(job_dir: Path) -> list[str]:
    path = job_dir / ".hydra" / "overrides.yaml"
    if not path.is_file():
        return []
    return [str(o) for o in OmegaConf.load(path)]


def load_job(job_dir: Path, sweep_dir: Path | None = None) -> JobResult:
    """Read one job's `metrics.json`; a job without one died before it could write it (status failed)."""
    name = str(job_dir.relative_to(sweep_dir)) if sweep_dir else job_dir.name
    path = job_dir / "metrics.json"
    if not path.is_file():
        overrides = _read_overrides(job_dir)
        return JobResult(name, job_dir, overrides, "failed", error="no metrics.json: the job died before finishing")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        return JobResult(name, job_dir, _read_overrides(job_dir), "failed", error=f"unreadable metrics.json: {e}")
    overrides = data.get("overrides")
    if overrides is None:
        overrides = _read_overrides(job_dir)
    metrics = {k: float(v) for k, v in (data.get("metrics") or {}).items() if isinstance(v, (int, float))}
    status = data.get("status") or ("completed" if metrics else "failed")
    wall = data.get("wall_time_s")
    return JobResult(name, job_dir, [str(o) for o in overrides], status, wall, metrics, data.get("error"))


def load_jobs(sweep_dir: str | Path) -> list[JobResult]:
    """Every job of a sweep, in job-number order."""
    sweep_dir = Path(sweep_dir)
    return [load_job(d, sweep_dir) for d in _job_dirs(sweep_dir)] if sweep_dir.is_dir() else []


# --------------------------------------------------------------------------------------------- table
def tested_metric_columns(jobs: Sequence[JobResult]) -> list[str]:
    """Test metrics present in any job: `test` first then the other test splits, `score` first in a split."""
    keys = {k for j in jobs for k in j.metrics if TEST_METRIC.match(k)}

    def order(key: str) -> tuple:
        split, _, rest = key.partition("/")
        return (split != "test", split, rest != "score", rest)

    return sorted(keys, key=order)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def _digits(column: str) -> int:
    return {"wall_time_s": 1, PARAMS_COLUMN: 0}.get(column, 4)


@dataclass
class SeedGroup:
    """Jobs that ran the same configuration with different seeds."""

    overrides: tuple[str, ...]
    jobs: list[JobResult]

    @property
    def completed(self) -> list[JobResult]:
        return [j for j in self.jobs if j.status == "completed"]

    def stats(self, column: str) -> tuple[float, float | None, int] | None:
        """(mean, sample std or None for a single value, n) of a column over the completed jobs."""
        values = [v for j in self.completed if (v := _value(j, column)) is not None and not math.isnan(v)]
        if not values:
            return None
        return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None), len(values)


def _value(job: JobResult, column: str) -> float | None:
    if column == VAL_COLUMN:
        return job.val_score
    if column == "wall_time_s":
        return job.wall_time_s
    return job.metrics.get(column)


def seed_groups(jobs: Sequence[JobResult]) -> list[SeedGroup]:
    """Configurations that ran with two or more different seeds and completed at least once."""
    groups: dict[tuple[str, ...], list[JobResult]] = {}
    for job in jobs:
        groups.setdefault(job.config_key, []).append(job)
    out = []
    for key, members in groups.items():
        seeds = {j.seed for j in members}
        if len(members) > 1 and len(seeds) > 1 and None not in seeds:
            group = SeedGroup(key, members)
            if group.completed:
                out.append(group)
    return out


@dataclass
class Summary:
    """The rows of a sweep summary (plain strings, as written to CSV/Markdown) and its raw data."""

    columns: list[str]
    job_rows: list[dict[str, str]]
    group_rows: list[dict[str, str]]
    data: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> list[dict[str, str]]:
        return self.job_rows + self.group_rows


def summarize(jobs: Sequence[JobResult], sweep_dir: str | Path = "") -> Summary:
    """One row per job plus one `mean ± std` row per configuration run with several seeds."""
    metric_cols = [VAL_COLUMN, *tested_metric_columns(jobs)]
    if any(PARAMS_COLUMN in j.metrics for j in jobs):
        metric_cols.insert(0, PARAMS_COLUMN)
    with_trials = any(j.trial is not None for j in jobs)
    columns = ["job", *(["trial"] if with_trials else []), "overrides", "status", *metric_cols, "wall_time_s", "error"]
    job_rows = []
    for j in jobs:
        row = {"job": j.job, "overrides": " ".join(j.overrides), "status": j.status, "error": j.error or ""}
        if with_trials:
            row["trial"] = _fmt(j.trial)
        row.update({c: _fmt(_value(j, c), _digits(c)) for c in [*metric_cols, "wall_time_s"]})
        job_rows.append(row)
    group_rows, groups_data = [], []
    for group in seed_groups(jobs):
        seeds = sorted({j.seed for j in group.jobs}, key=lambda s: (len(s), s))
        shown = [o for o in group.jobs[0].overrides if o.split("=", 1)[0] not in SEED_KEYS]  # command order
        row = {
            "job": "mean ± std",
            "overrides": " ".join(shown) + f" (seeds {','.join(seeds)})",
            "status": f"{len(group.completed)}/{len(group.jobs)} completed",
            "error": "",
        }
        if with_trials:
            row["trial"] = ""
        stats = {}
        for col in [*metric_cols, "wall_time_s"]:
            s = group.stats(col)
            stats[col] = s
            mean, std = ("", "") if s is None else (_fmt(s[0], _digits(col)), _fmt(s[1], _digits(col)))
            row[col] = f"{mean} ± {std}" if std else mean
        group_rows.append(row)
        groups_data.append(
            {
                "overrides": list(group.overrides),
                "seeds": seeds,
                "jobs": [j.job for j in group.jobs],
                "completed": len(group.completed),
                "mean": {c: s[0] for c, s in stats.items() if s},
                "std": {c: s[1] for c, s in stats.items() if s},
            }
        )
    data = {
        "sweep_dir": str(sweep_dir),
        "jobs": [
            {
                "job": j.job,
                "trial": j.trial,
                "overrides": j.overrides,
                "status": j.status,
                "val/score": j.val_score,
                "wall_time_s": j.wall_time_s,
                "error": j.error,
                "metrics": j.metrics,
            }
            for j in jobs
        ],
        "seed_groups": groups_data,
    }
    return Summary(columns, job_rows, group_rows, data)


def write_summary(summary: Summary, out_dir: str | Path, name: str = "multirun_summary") -> list[Path]:
    """`<name>.csv`, `<name>.md` and `<name>.json` in `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.csv", out / f"{name}.md", out / f"{name}.json"]
    with open(paths[0], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=summary.columns)
        writer.writeheader()
        writer.writerows(summary.rows)

    def md_row(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

    lines = [f"# Multirun summary: {summary.data['sweep_dir']}", ""]
    lines += [f"- {note}" for note in summary.notes] + ([""] if summary.notes else [])
    lines += [md_row(summary.columns), "|" + "---|" * len(summary.columns)]
    lines += [md_row([r.get(c, "") for c in summary.columns]) for r in summary.rows]
    paths[1].write_text("\n".join(lines) + "\n")
    paths[2].write_text(json.dumps({**summary.data, "notes": summary.notes}, indent=2, sort_keys=False))
    return paths


def _common_overrides(jobs: Sequence[JobResult]) -> list[str]:
    """Overrides every job of the sweep has (shown once above the table instead of in every row)."""
    if not jobs:
        return []
    rest = [set(j.overrides) for j in jobs[1:]]
    return [o for o in jobs[0].overrides if all(o in r for r in rest)] if len(jobs) > 1 else []


def print_summary(summary: Summary, console: Console | None = None) -> None:
    """The summary as a rich table: the `test` split's columns only (every split is in the files).

    The overrides column shows what differs between jobs; the overrides common to all jobs are printed above.
    """
    shown = [c for c in summary.columns if c not in ("error",) and not re.match(r"^test_", c)]
    shown = [c for c in shown if not c.endswith("/f1_macro")] if len(shown) > 12 else shown
    jobs = summary.data.get("jobs", [])
    common = _common_overrides([JobResult(str(j["job"]), Path(), j["overrides"], j["status"]) for j in jobs])

    def varying(text: str) -> str:
        return " ".join(o for o in text.split(" ") if o not in common) or "-"

    table = Table(title=f"multirun summary ({len(summary.job_rows)} jobs; all columns in multirun_summary.csv)")
    for col in shown:
        if col in ("overrides", "status", "job"):
            table.add_column(col, justify="left", overflow="fold", min_width=12 if col == "overrides" else None)
        else:
            table.add_column(col, justify="right", no_wrap=True)
    for row in summary.job_rows:
        style = "red" if row.get("status") != "completed" else None
        table.add_row(*(varying(row[c]) if c == "overrides" else row.get(c, "") for c in shown), style=style)
    if summary.group_rows:
        table.add_section()
        for row in summary.group_rows:
            table.add_row(*(varying(row[c]) if c == "overrides" else row.get(c, "") for c in shown), style="bold")
    console = console or Console(width=max(140, 18 * len(shown)))
    if common:
        console.print(f"overrides of every job: {' '.join(common)}")
    console.print(table)
    for row in summary.job_rows:
        if row.get("error"):
            console.print(f"[red]job {row['job']} failed:[/red] {row['error']}")
    for note in summary.notes:
        console.print(note)


# --------------------------------------------------------------------------------------------- optuna
def sqlite_path(storage: Any) -> Path | None:
    """The database file of a `sqlite:///<path>` storage URL (None for other storages)."""
    if isinstance(storage, str) and storage.startswith("sqlite:///"):
        return Path(storage[len("sqlite:///") :])
    return None


def attach_optuna_trials(config: DictConfig, jobs: list[JobResult], since: float | None) -> list[str]:
    """Notes on the Optuna study of this sweep; sets `job.trial` when this sweep's trials match the jobs."""
    sweeper = OmegaConf.select(config, "hydra.sweeper") or {}
    if "optuna" not in str(sweeper.get("_target_", "")) or not sweeper.get("storage"):
        return []
    import optuna

    study_name, storage = sweeper.get("study_name"), str(sweeper.get("storage"))
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    start = datetime.fromtimestamp(since) if since else None
    ours = [t for t in trials if start is None or (t.datetime_start and t.datetime_start >= start)]
    if len(ours) == len(jobs):
        for job, trial in zip(jobs, ours, strict=True):
            job.trial = trial.number
    notes = [f"optuna study '{study.study_name}' ({storage}): {len(trials)} trials in total"]
    if ours:
        notes[0] += f", trials {ours[0].number}..{ours[-1].number} ran in this sweep"
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if complete:
        best = study.best_trial
        notes.append(f"best trial so far: #{best.number}, value {best.value:.4f}, params {best.params}")
    return notes


def prepare_optuna_storage(config: DictConfig) -> None:
    """Create the folder of an Optuna SQLite storage (SQLite does not create missing folders)."""
    path = sqlite_path(OmegaConf.select(config, "hydra.sweeper.storage", default=None))
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


# --------------------------------------------------------------------------------------------- callback
def summarize_sweep(
    sweep_dir: str | Path,
    config: DictConfig | None = None,
    since: float | None = None,
    name: str = "multirun_summary",
    show: bool = True,
) -> Summary:
    """Read every job of `sweep_dir`, write the summary files there, print the table; returns the summary."""
    jobs = load_jobs(sweep_dir)
    notes = []
    if config is not None:
        try:
            notes = attach_optuna_trials(config, jobs, since)
        except Exception as e:  # the study is a bonus: never lose the summary over it
            notes = [f"optuna study not read: {type(e).__name__}: {e}"]
    summary = summarize(jobs, sweep_dir)
    summary.notes = notes
    paths = write_summary(summary, sweep_dir, name)
    if show:
        print_summary(summary)
        print(f"[intentfusion] multirun summary: {paths[0]} (+ .md, .json)")
    return summary


class MultirunSummary(Callback):
    """Hydra callback (`hydra.callbacks` in `conf/hydra/default.yaml`): the sweep's summary at its end.

    A failure while summarising is logged and never turns a finished sweep into a failed command.
    """

    def __init__(self, filename: str = "multirun_summary", print_table: bool = True) -> None:
        self.filename, self.print_table = filename, print_table
        self._sweep_dir: Path | None = None
        self._started: float | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._started = time.time()
        try:
            self._sweep_dir = Path(str(config.hydra.sweep.dir))
            prepare_optuna_storage(config)
        except Exception:
            log.exception("multirun summary: could not prepare the sweep")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            sweep_dir = self._sweep_dir or Path(str(config.hydra.sweep.dir))
            summarize_sweep(sweep_dir, config, self._started, self.filename, self.print_table)
        except Exception:
            log.exception("multirun summary: could not be written")
