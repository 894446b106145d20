"""What every benchmark section shares: the run context, figure/ratio records, timing and child processes."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"  # the benchmark data (as conf/paths: INTENTFUSION_DATA_DIR wins)
Section = dict[str, Any]  # {"title": str, "figures": [figure], "ratios": [ratio], "notes": [str]}


@dataclass
class Context:
    """Settings shared by the sections of one benchmark run."""

    quick: bool = False  # the few-minute version: fewer messages/steps, same comparisons
    full: bool = False  # also the long figures (section time_to_model)
    reps: int = 3  # repetitions per figure (mean, min and max are reported)
    threads: int = 2  # torch intra-op threads in every measured process
    work_dir: Path = field(default_factory=lambda: REPO / "bench" / "results" / "work")  # scratch (ignored)
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("INTENTFUSION_DATA_DIR", DATA_DIR)))
    python: str = sys.executable

    def env(self, **extra: str) -> dict[str, str]:
        """Environment of a measured child process: offline, fixed thread count, repo importable."""
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
        threads = str(self.threads)
        return {**os.environ, "WANDB_MODE": "offline", "WANDB_ERROR_REPORTING": "false", "HF_HUB_OFFLINE": "1",
                "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false",
                "PYTHONPATH": path, **extra}


def stats(values: Sequence[float]) -> dict[str, float]:
    """Mean, min and max of repeated measurements (and how many)."""
    vals = [float(v) for v in values]
    return {"mean": statistics.fmean(vals), "min": min(vals), "max": max(vals), "n": len(vals)}


def figure(key: str, what: str, unit: str, values: Sequence[float], *, command: str, **setup: Any) -> dict[str, Any]:
    """One measured quantity: ``values`` per repetition + their stats, the command and the setup that made it.

    ``setup`` carries model, data, batch_size, max_length, threads and anything else a reader needs.
    """
    return {"id": key, "what": what, "unit": unit, "values": [float(v) for v in values], **stats(values),
            "command": command, **setup}


def ratio(key: str, what: str, numerator: dict[str, Any], denominator: dict[str, Any],
          target: float | None = None, stat: str = "mean") -> dict[str, Any]:
    """``numerator[stat] / denominator[stat]`` (two figures of the same run), with an optional target (>=)."""
    value = numerator[stat] / denominator[stat] if denominator[stat] else float("nan")
    return {"id": key, "what": what, "value": value, "of": [numerator["id"], denominator["id"]], "stat": stat,
            "target": target, "met": None if target is None else bool(value >= target)}


@dataclass
class ChildRun:
    """A finished child process: its output, wall time, peak RSS and the JSON it wrote (if any)."""

    args: list[str]
    returncode: int
    seconds: float
    peak_rss_mb: float
    output: str
    result: Any = None

    @property
    def command(self) -> str:
        return shlex.join(self.args)


def run_child(args: Sequence[str], ctx: Context, *, result_file: Path | None = None, timeout: float = 1800,
              cwd: Path = REPO, **env: str) -> ChildRun:
    """Run ``args`` in ``cwd`` with `Context.env`; peak RSS from the kernel's rusage of that process.

    A child reports its measurements by writing JSON to ``result_file`` (read back into ``ChildRun.result``).
    Raises `RuntimeError` with the output's tail when the child fails.
    """
    args = [str(a) for a in args]
    if result_file is not None and result_file.exists():
        result_file.unlink()
    with tempfile.TemporaryFile("w+") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, env=ctx.env(**env), stdout=log, stderr=subprocess.STDOUT, text=True)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        peak = _HighWaterMark(proc.pid)
        peak.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            peak.stop.set()
        seconds = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    if code != 0:
        why = f"timed out after {timeout} s" if seconds >= timeout else f"exited with {code}"
        raise RuntimeError(f"{shlex.join(args)} {why}:\n{output[-3000:]}")
    result = json.loads(result_file.read_text()) if result_file is not None and result_file.exists() else None
    # ru_maxrss alone is wrong for a small child: Linux carries the parent's high-water mark across fork+exec
    rss = peak.mb if peak.mb else usage.ru_maxrss / 1024
    return ChildRun(args, code, seconds, rss, output, result)


class _HighWaterMark(threading.Thread):
    """Polls a process's VmHWM (its own peak RSS since exec) until told to stop; `mb` is the last value read."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.every, self.mb, self.stop = pid, every, 0.0, threading.Event()

    def run(self) -> None:
        status = Path(f"/proc/{self.pid}/status")
        while not self.stop.is_set():
            try:
                line = next(x for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
                self.mb = max(self.mb, int(line.split()[1]) / 1024)
            except (OSError, StopIteration, ValueError):
                pass
            self.stop.wait(self.every)


def machine_info(threads: int) -> dict[str, Any]:
    """CPU model, core count, thread setting and library versions, stored with the results."""
    import torch
    import transformers

    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "threads": threads, "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}
