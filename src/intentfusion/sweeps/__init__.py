"""Sweeps: multirun jobs that record their outcome, and the summary of a whole sweep.

- `job`: inside a job: `sweep_context`, W&B group/tags for multirun jobs, `metrics.json` records, failed jobs;
- `summary`: the `MultirunSummary` Hydra callback (multirun_summary.csv/.md/.json in the sweep dir).
"""

from intentfusion.sweeps.job import apply_sweep_to_loggers, job_record, record_failed_job, sweep_context

__all__ = ["apply_sweep_to_loggers", "job_record", "record_failed_job", "sweep_context"]
