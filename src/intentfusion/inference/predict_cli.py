"""Predict labels for many messages: one JSON line per message, in input order.

    python predict.py model=EXPORT_DIR_OR_CKPT [input=FILE] [key=value ...]      (or: intentfusion-predict ...)

Options (`key=value`, OmegaConf syntax, as for train.py; `help` prints this):

| key | default | what |
|---|---|---|
| `model` | required | an export directory (`python -m intentfusion.export`) or a `.ckpt` written by train.py |
| `input` | `-` | a text file (one message a line), a CSV / TSV or a JSONL file, or `-` for stdin |
| `format` | auto | `auto` (by extension: .csv, .tsv, .jsonl / .ndjson, else text), `text`, `csv`, `tsv`, `jsonl` |
| `column` | text | CSV / TSV / JSONL field holding the message |
| `id_column` | null | CSV / TSV / JSONL field copied to the output as `"id"` |
| `out` | null | write the JSONL here instead of stdout |
| `batch_size` | 64 | messages per forward pass |
| `runtime` | torch | exports only: `torch`, `onnx`, `onnx-int8`, `onnx-fused`, `onnx-int8-fused`, `auto` (below) |
| `precision` | auto | torch runtime: `auto` (as trained; fp32 where bf16 is only emulated), `32` or `bf16` |
| `compile` | false | torch runtime: torch.compile the network (compiles for tens of seconds, then faster) |
| `fallbacks` | null | low-confidence fallbacks, e.g. `'fallbacks={action: {threshold: 0.7, fallback: X}}'` |
| `temperatures` | beside | checkpoints: `beside` (evaluate.py's `temperatures.json` by it), a file, `null` (T = 1) |
| `distribution` | false | include every label's probability |
| `include_text` | true | copy the message into its output line (false: leave it out) |
| `threads` | null | torch / onnxruntime CPU threads (null: the libraries' default, one per core) |
| `progress` | true | a progress bar on stderr |

In a text file, blank lines are kept as empty (flagged) messages.

Output (stdout, or `out=FILE`): `{"index": i, "text": ..., "predictions": {task: {"label", "confidence", ...}},
"flags": [...]}` per message (`"id"` too with `id_column`); a multilabel task's prediction is `{"labels":
[{"label", "confidence"}]}`; a model with token tasks adds `"entities": {task: [{"label", "text", "start", "end",
"confidence"}]}` (character offsets into the message as read; see `intentfusion.inference.predictor`). A
progress bar and, at the end, the throughput (messages/s, model loading excluded) go to stderr.

    predict.py model=exports/minilm input=messages.txt > predictions.jsonl
    predict.py model=exports/minilm input=tickets.csv column=body id_column=ticket_id out=pred.jsonl
    predict.py model=run/checkpoints/best.ckpt distribution=true \\
        'fallbacks={action: {threshold: 0.7, fallback: request_more_info}}' < messages.txt
    predict.py model=exports/minilm input=messages.txt runtime=onnx-int8 batch_size=128 threads=1

Threads: `threads` defaults to the libraries' own choice (one per core). On a machine other processes keep
busy, intra-op threads wait on each other: measured here on a loaded 2-core box, `threads=1` ran the tiny
model 17x and MiniLM 3.5x faster than the default. Use `threads=1` on shared machines.

`runtime=auto`: the fastest runtime measured at export whose accuracy drop is at most half a point (a checkpoint:
torch).

No Hydra: the inputs are files and options, not a config tree. Exit status 0 on success; 1 with one
`error: <where>: <what>; expected <what>` line on stderr (no traceback) for unusable input: an unknown or
missing option, a missing model, input file or column, a bad JSON line.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from intentfusion.errors import (
    CheckpointNotFoundError,
    ConfigError,
    DataNotFoundError,
    DataSourceError,
    exit_on_user_error,
)
from intentfusion.inference.runtimes import runtime_choices
from intentfusion.utils.cli import parse_options, user_errors_from, wants_help

FORMATS = ("auto", "text", "csv", "tsv", "jsonl")
DEFAULTS: dict[str, Any] = {
    "model": None,
    "input": "-",
    "format": "auto",
    "column": "text",
    "id_column": None,
    "out": None,
    "batch_size": 64,
    "runtime": "torch",
    "precision": "auto",
    "compile": False,
    "fallbacks": None,
    "temperatures": "beside",
    "distribution": False,
    "include_text": True,
    "threads": None,
    "progress": True,
}
TYPES: dict[str, type] = {"model": str, "id_column": str, "out": str, "fallbacks": dict, "threads": int,
                          "temperatures": str}
USAGE = "python predict.py model=EXPORT_DIR_OR_CKPT input=messages.txt"


class InputError(DataSourceError):
    """Unusable input (missing column, bad JSON line, ...)."""


def parse_args(argv: list[str]) -> dict[str, Any]:
    """The options of a `key=value` command line, checked (a `ConfigError` naming the first bad one)."""
    opts = parse_options(argv, DEFAULTS, types=TYPES, required=("model",), usage=USAGE)
    for key, choices in (("format", FORMATS), ("runtime", runtime_choices())):
        if opts[key] not in choices:
            raise ConfigError(f"{key}={opts[key]}", f"unknown {key}", f"one of {list(choices)}")
    for key in ("batch_size", "threads"):
        if opts[key] is not None and opts[key] < 1:
            raise ConfigError(f"{key}={opts[key]}", "not positive", "an integer >= 1")
    return opts


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
    raise InputError(where, f"the message is a {type(value).__name__}", "a string")


def read_rows(stream: TextIO, fmt: str, column: str, id_column: str | None, source: str = "stdin"
              ) -> Iterator[tuple[Any, str]]:
    """(id or None, message) per input record; `source` names the input in errors."""
    if fmt == "text":
        for line in stream:
            yield None, line.rstrip("\r\n")
    elif fmt in ("csv", "tsv"):
        reader = csv.DictReader(stream, delimiter="," if fmt == "csv" else "\t")
        header = reader.fieldnames or []
        for key, name in (("column", column), ("id_column", id_column)):
            if name is not None and name not in header:
                raise InputError(f"{source}", f"column {name!r} is not in the {fmt.upper()} header {header}",
                                 f"{key}=<one of its columns>")
        for row in reader:
            where = f"{source}: {fmt.upper()} line {reader.line_num}"
            yield (row.get(id_column) if id_column else None), _field(row.get(column), where)
    else:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            where = f"{source}: JSONL line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(where, f"not valid JSON ({e.msg})", "one JSON object per line") from None
            if not isinstance(record, dict):
                raise InputError(where, f"got a {type(record).__name__}", "a JSON object")
            if column not in record:
                raise InputError(where, f"no field {column!r} (fields: {sorted(record)})",
                                 "column=<the field holding the message>")
            yield (record.get(id_column) if id_column else None), _field(record[column], where)


def check_model(opts: dict[str, Any]) -> Path:
    """`model` as a path that exists, and fits `runtime`."""
    model = Path(opts["model"])
    if not model.exists():
        raise CheckpointNotFoundError(f"model={model}", "no such export directory or checkpoint file",
                                      "an export directory (python -m intentfusion.export) or a .ckpt written by "
                                      "train.py")
    if not model.is_dir() and opts["runtime"] not in ("torch", "auto"):  # a checkpoint runs on torch
        raise ConfigError(f"runtime={opts['runtime']}", f"needs an export directory, and model={model} is a checkpoint",
                          "runtime=torch, or an export (python -m intentfusion.export ckpt_path=... out=DIR onnx=true)")
    return model


def load_predictor(opts: dict[str, Any]) -> Any:
    """The `Predictor` of `model` (an export directory or a checkpoint)."""
    from intentfusion.inference import Predictor

    model = check_model(opts)

    common = {"batch_size": opts["batch_size"], "fallbacks": opts["fallbacks"], "precision": opts["precision"],
              "compile": opts["compile"]}
    with user_errors_from(ValueError, ImportError, TypeError):  # bad fallbacks / precision, no onnx extra, ...
        if model.is_dir():
            return Predictor.from_export(model, runtime=opts["runtime"], threads=opts["threads"], **common)
        temperatures = None if opts["temperatures"].strip() in ("", "null", "~") else opts["temperatures"]
        return Predictor.from_checkpoint(model, temperatures=temperatures, **common)


def read_input(opts: dict[str, Any]) -> list[tuple[Any, str]]:
    fmt = detect_format(opts["input"], opts["format"])
    column, id_column = str(opts["column"]), opts["id_column"]
    if opts["input"] == "-":
        return list(read_rows(sys.stdin, fmt, column, id_column))
    path = Path(opts["input"])
    if not path.is_file():
        raise DataNotFoundError(f"input={path}", "no such input file",
                                "a text / CSV / TSV / JSONL file, or input=- for stdin")
    with open(path, encoding="utf-8", errors="replace", newline="" if fmt in ("csv", "tsv") else None) as f:
        return list(read_rows(f, fmt, column, id_column, source=str(path)))


def run(opts: dict[str, Any]) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    check_model(opts)  # before reading stdin
    rows = read_input(opts)
    import torch
    from transformers.utils import logging as hf_logging

    from intentfusion.utils.rounding import rounded

    hf_logging.disable_progress_bar()
    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    loaded = time.perf_counter()
    predictor = load_predictor(opts)
    load_s = time.perf_counter() - loaded
    out = open(opts["out"], "w", encoding="utf-8") if opts["out"] else sys.stdout  # noqa: SIM115
    chunk = max(1024, 16 * opts["batch_size"])  # sorted by length inside each chunk
    started = time.perf_counter()
    try:
        columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn()]
        with Progress(*columns, console=console, disable=not opts["progress"], transient=False) as progress:
            bar = progress.add_task("predicting", total=len(rows))
            for start in range(0, len(rows), chunk):
                part = rows[start : start + chunk]
                results = predictor.predict([text for _, text in part], return_distribution=opts["distribution"])
                lines = []
                for offset, ((row_id, text), result) in enumerate(zip(part, results, strict=True)):
                    record: dict[str, Any] = {"index": start + offset}
                    if opts["id_column"]:
                        record["id"] = row_id
                    if opts["include_text"]:
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
    print(f"predicted {len(rows)} messages in {elapsed:.2f} s: {rate:,.0f} msgs/s (batch size {opts['batch_size']}, "
          f"runtime {predictor.info.get('runtime')}, model load {load_s:.1f} s)", file=sys.stderr)
    return 0


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    """`predict.py model=... [input=...] [key=value ...]`: 0 on success, `help` prints the usage; a user error ends
    the process with exit code 1 and one `error:` line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_help(args):
        print(__doc__)
        return 0
    return run(parse_args(args))


if __name__ == "__main__":
    sys.exit(main())
