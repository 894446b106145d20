"""Predict labels for many messages: one JSON line per message, in input order.

    .venv/bin/python predict.py --model EXPORT_DIR_OR_CKPT [INPUT] [options]

INPUT is a text file (one message a line; blank lines are kept as empty, flagged messages), a CSV / TSV
file or a JSONL file (the message is in `--column`, default `text`), or `-` / nothing for stdin. The format
follows the file extension (.csv, .tsv, .jsonl / .ndjson, anything else is text) unless `--format` says.

Output (stdout, or `--out FILE`): `{"index": i, "text": ..., "predictions": {task: {"label", "confidence",
...}}, "flags": [...]}` per message (`"id"` too with `--id-column`). A progress bar and, at the end, the
throughput (messages/s, model loading excluded) go to stderr.

    predict.py --model exports/minilm messages.txt > predictions.jsonl
    predict.py --model exports/minilm tickets.csv --column body --id-column ticket_id --out pred.jsonl
    predict.py --model run/checkpoints/best.ckpt --fallback action=0.7:request_more_info --distribution -
    predict.py --model exports/minilm --runtime onnx-int8 --batch-size 128 messages.txt

Threads: `--threads` defaults to the libraries' own choice (one per core). On a machine other processes keep
busy, intra-op threads wait on each other: measured here on a loaded 2-core box, `--threads 1` ran the tiny
model 17x and MiniLM 3.5x faster than the default. Use `--threads 1` on shared machines.

A plain argparse CLI (no Hydra): the inputs are files and flags, not a config tree. Exit status 2 with a
one-line `error:` for unusable input (missing file or column, bad JSON line, bad option).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from intentfusion.errors import one_line

FORMATS = ("auto", "text", "csv", "tsv", "jsonl")


class InputError(ValueError):
    """Unusable input (missing column, bad JSON line, ...)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="predict.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Model: an export directory (python -m intentfusion.export) or a training checkpoint (.ckpt).",
    )
    parser.add_argument("input", nargs="?", default="-", help="text / CSV / TSV / JSONL file, or - for stdin")
    parser.add_argument("--model", required=True, help="export directory or .ckpt checkpoint")
    parser.add_argument("--format", choices=FORMATS, default="auto", help="input format (default: by extension)")
    parser.add_argument("--column", default="text", help="CSV/TSV/JSONL field holding the message (default: text)")
    parser.add_argument("--id-column", help="CSV/TSV/JSONL field copied to the output as \"id\"")
    parser.add_argument("--out", help="write JSONL here instead of stdout")
    parser.add_argument("--batch-size", type=int, default=64, help="messages per forward pass (default: 64)")
    parser.add_argument("--runtime", choices=("torch", "onnx", "onnx-int8"), default="torch",
                        help="exports only: PyTorch, ONNX or int8 ONNX via onnxruntime (default: torch)")
    parser.add_argument("--precision", default="auto",
                        help="torch runtime: auto (as trained; fp32 where bf16 is only emulated) | 32 | bf16")
    parser.add_argument("--compile", action="store_true",
                        help="torch runtime: torch.compile the network (compiles for tens of seconds, then faster)")
    parser.add_argument("--fallback", action="append", default=[], metavar="TASK=THRESHOLD:LABEL",
                        help="low-confidence fallback, e.g. action=0.7:request_more_info (repeatable)")
    parser.add_argument("--distribution", action="store_true", help="include every label's probability")
    parser.add_argument("--no-text", action="store_true", help="leave the message text out of the output")
    parser.add_argument("--threads", type=int, help="torch / onnxruntime CPU threads (default: library default)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def parse_fallbacks(specs: list[str]) -> dict[str, dict[str, Any]] | None:
    """`["action=0.7:request_more_info"]` -> `{"action": {"threshold": 0.7, "fallback": "request_more_info"}}`."""
    out: dict[str, dict[str, Any]] = {}
    for spec in specs:
        task, _, rule = spec.partition("=")
        threshold, _, label = rule.partition(":")
        try:
            out[task.strip()] = {"threshold": float(threshold), "fallback": label.strip()}
        except ValueError:
            raise InputError(f"--fallback {spec!r}: expected TASK=THRESHOLD:LABEL, e.g. action=0.7:request_more_info"
                             ) from None
    return out or None


def detect_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    suffix = Path(path).suffix.lower() if path != "-" else ""
    return {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "text")


def _field(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    raise InputError(f"{where}: the message must be a string, got {type(value).__name__}")


def read_rows(stream: TextIO, fmt: str, column: str, id_column: str | None) -> Iterator[tuple[Any, str]]:
    """(id or None, message) per input record."""
    if fmt == "text":
        for line in stream:
            yield None, line.rstrip("\r\n")
    elif fmt in ("csv", "tsv"):
        reader = csv.DictReader(stream, delimiter="," if fmt == "csv" else "\t")
        header = reader.fieldnames or []
        for name in (column, id_column):
            if name is not None and name not in header:
                raise InputError(f"column {name!r} is not in the {fmt.upper()} header {header}")
        for row in reader:
            where = f"{fmt.upper()} line {reader.line_num}"
            yield (row.get(id_column) if id_column else None), _field(row.get(column), where)
    else:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"JSONL line {number}: not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"JSONL line {number}: expected an object, got {type(record).__name__}")
            if column not in record:
                raise InputError(f"JSONL line {number}: no field {column!r} (fields: {sorted(record)})")
            yield (record.get(id_column) if id_column else None), _field(record[column], f"JSONL line {number}")


def load_predictor(args: argparse.Namespace) -> Any:
    from intentfusion.inference import Predictor

    fallbacks = parse_fallbacks(args.fallback)
    model = Path(args.model)
    if model.is_dir():
        return Predictor.from_export(model, runtime=args.runtime, batch_size=args.batch_size, fallbacks=fallbacks,
                                     precision=args.precision, threads=args.threads, compile=args.compile)
    if args.runtime != "torch":
        raise InputError(f"--runtime {args.runtime} needs an export directory (python -m intentfusion.export ...)")
    return Predictor.from_checkpoint(model, batch_size=args.batch_size, fallbacks=fallbacks,
                                     precision=args.precision, compile=args.compile)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    fmt = detect_format(args.input, args.format)
    if args.input == "-":
        rows = list(read_rows(sys.stdin, fmt, args.column, args.id_column))
    else:
        path = Path(args.input)
        if not path.is_file():
            raise InputError(f"{path}: no such input file")
        with open(path, encoding="utf-8", errors="replace", newline="" if fmt in ("csv", "tsv") else None) as f:
            rows = list(read_rows(f, fmt, args.column, args.id_column))
    import torch
    from transformers.utils import logging as hf_logging

    from intentfusion.inference.predictor import rounded

    hf_logging.disable_progress_bar()
    if args.threads:
        torch.set_num_threads(args.threads)
    loaded = time.perf_counter()
    predictor = load_predictor(args)
    load_s = time.perf_counter() - loaded
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout  # noqa: SIM115
    chunk = max(1024, 16 * args.batch_size)  # sorted by length inside each chunk
    started = time.perf_counter()
    try:
        columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn()]
        with Progress(*columns, console=console, disable=args.no_progress, transient=False) as progress:
            bar = progress.add_task("predicting", total=len(rows))
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                results = predictor.predict([text for _, text in part], return_distribution=args.distribution)
                lines = []
                for offset, ((row_id, text), result) in enumerate(zip(part, results, strict=True)):
                    record: dict[str, Any] = {"index": start + offset}
                    if args.id_column:
                        record["id"] = row_id
                    if not args.no_text:
                        record["text"] = text
                    record.update(rounded(result))
                    lines.append(json.dumps(record, ensure_ascii=False))
                out.write("\n".join(lines) + "\n")
                progress.advance(bar, len(part))
    finally:
        if out is not sys.stdout:
            out.close()
        else:
            out.flush()
    elapsed = time.perf_counter() - started
    rate = len(rows) / elapsed if elapsed > 0 else float("inf")
    print(f"predicted {len(rows)} messages in {elapsed:.2f} s: {rate:,.0f} msgs/s (batch size {args.batch_size}, "
          f"runtime {predictor.info.get('runtime')}, model load {load_s:.1f} s)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.batch_size < 1:
            raise InputError("--batch-size must be >= 1")
        return run(args)
    except (InputError, FileNotFoundError, ValueError, ImportError) as err:
        print(one_line(err), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
