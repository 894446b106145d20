"""`python -m bench [--quick | --full] [--only training,inference,...] [--reps N] [--threads T]`.

Runs the benchmark sections, writes ``bench/results/<date>.json`` and regenerates the generated block of
``BENCHMARKS.md``. A section that fails is recorded with its error and the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import shlex
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench.common import REPO, Context, machine_info
from bench.report import update_benchmarks_md

SECTIONS = ("machine", "training", "inference", "data_scale", "time_to_model")  # modules of this package, in order


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the few-minute version (fewer steps and messages)")
    parser.add_argument("--full", action="store_true",
                        help="also time_to_model: full CLINC150, HF vs intentfusion (~9 min a repetition here)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per figure (>= 3 for the tables)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads in every measured process")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="results folder")
    parser.add_argument("--no-markdown", action="store_true", help="do not rewrite BENCHMARKS.md")
    return parser.parse_args(argv)


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        print(f"error: --only: unknown section(s) {unknown}; expected some of {list(SECTIONS)}", file=sys.stderr)
        return 2
    if args.quick and args.full:
        print("error: --quick and --full: pick one; expected at most one of them", file=sys.stderr)
        return 2
    ctx = Context(quick=args.quick, full=args.full, reps=args.reps, threads=args.threads, work_dir=args.out / "work")
    ctx.work_dir.mkdir(parents=True, exist_ok=True)
    date = dt.date.today().isoformat()
    command = shlex.join(["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])])
    results = {"date": date, "quick": args.quick, "full": args.full, "command": command, "git": git_commit(),
               "machine": machine_info(args.threads), "sections": []}
    out_file = args.out / f"{date}.json"
    failed = []
    for name in names:
        start = time.perf_counter()
        print(f"[bench] {name} ...", flush=True)
        try:
            section = importlib.import_module(f"bench.{name}").run(ctx)
        except Exception as e:  # noqa: BLE001 - one broken section must not lose the others' numbers
            traceback.print_exc()
            failed.append(name)
            section = {"title": name, "figures": [], "ratios": [], "notes": [f"FAILED: {type(e).__name__}: {e}"]}
        section["seconds"] = time.perf_counter() - start
        results["sections"].append(section)
        out_file.write_text(json.dumps(results, indent=1))  # after every section: nothing measured is lost
        print(f"[bench] {name} done in {section['seconds']:.0f} s -> {out_file}", flush=True)
    if not args.no_markdown:
        shown = out_file.resolve()
        shown = shown.relative_to(REPO) if shown.is_relative_to(REPO) else shown
        update_benchmarks_md(REPO / "BENCHMARKS.md", results, str(shown))
        print(f"[bench] BENCHMARKS.md regenerated from {out_file}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
