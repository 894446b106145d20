"""`predict.py` / `intentfusion-predict` (`intentfusion.inference.predict_cli`): text / CSV / JSONL / stdin in,
JSONL out in input order, throughput on stderr, `key=value` options, and every user error as one line, exit code 1."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from intentfusion.inference.predict_cli import main

from .test_predictor import best_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ckpt(tiny_run) -> str:
    return str(best_checkpoint(tiny_run))


def run(capsys, *args: str) -> tuple[int, list[dict], str]:
    """(exit code, output records, stderr) of `predict.py progress=false *args`."""
    try:
        code = main(["progress=false", *args])
    except SystemExit as exited:  # a user error: `exit_on_user_error` exits with 1
        code = exited.code
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def one_error_line(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_text_file_one_message_a_line(ckpt, tmp_path, capsys) -> None:
    lines = ["where is my order", "", "CANCEL NOW 😡", "¿dónde está mi pedido?"] * 5
    path = tmp_path / "messages.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, rows, err = run(capsys, f"model={ckpt}", f"input={path}", "batch_size=3")
    assert code == 0 and [r["index"] for r in rows] == list(range(len(lines)))
    assert [r["text"] for r in rows] == lines
    assert all(r["flags"] == ["empty"] for r in rows if not r["text"])
    assert "msgs/s" in err and f"predicted {len(lines)} messages" in err
    from intentfusion.inference import Predictor

    expected = Predictor.from_checkpoint(ckpt).predict(lines)
    assert [r["predictions"]["intent"]["label"] for r in rows] == [e["predictions"]["intent"]["label"]
                                                                     for e in expected]


def test_csv_and_jsonl_columns_and_stdin(ckpt, tmp_path, capsys, monkeypatch) -> None:
    csv_path = tmp_path / "tickets.csv"
    csv_path.write_text('id,body\n7,"late parcel, again"\n8,"refund ""now"""\n', encoding="utf-8")
    code, rows, _ = run(capsys, f"model={ckpt}", f"input={csv_path}", "column=body", "id_column=id",
                        "distribution=true", "fallbacks={action: {threshold: 1.0, fallback: request_more_info}}")
    assert code == 0 and [(r["id"], r["text"]) for r in rows] == [("7", "late parcel, again"), ("8", 'refund "now"')]
    assert rows[0]["predictions"]["action"]["label"] == "request_more_info" and rows[0]["predictions"]["action"][
        "fallback"] is True
    assert set(rows[1]["predictions"]["urgency"]["distribution"]) == {"high", "low", "medium"}

    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"msg": "hello"}\n\n{"msg": null}\n{"msg": "bye"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, f"model={ckpt}", f"input={jsonl}", "column=msg", f"out={out}", "include_text=false")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and len(rows) == 3 and rows[1]["flags"] == ["empty"] and "text" not in rows[0]

    for stdin in ([], ["input=-"]):  # input defaults to stdin
        monkeypatch.setattr("sys.stdin", io.StringIO("first\nsecond\n"))
        code, rows, _ = run(capsys, f"model={ckpt}", *stdin)
        assert code == 0 and [r["text"] for r in rows] == ["first", "second"]


@pytest.mark.parametrize(
    ("content", "suffix", "extra", "message"),
    [
        ("text\nhello\n", ".csv", ["column=body"], "column 'body' is not in the CSV header ['text']"),
        ('{"text": "a"}\n{oops\n', ".jsonl", [], "JSONL line 2: not valid JSON"),
        ('{"body": "a"}\n', ".jsonl", [], "JSONL line 1: no field 'text'"),
        ('["a"]\n', ".jsonl", [], "JSONL line 1: got a list; expected a JSON object"),
        ("a\n", ".txt", ["fallbacks=0.5"], "error: fallbacks=0.5: float value; expected a mapping"),
        ("a\n", ".txt", ["fallbacks={action: 0.5}"], "fallbacks.action must be"),
        ("a\n", ".txt", ["runtime=onnx"], "needs an export directory"),
        ("a\n", ".txt", ["runtime=tpu"], "error: runtime=tpu: unknown runtime; expected one of ['torch', 'onnx'"),
        ("a\n", ".txt", ["batch_size=0"], "error: batch_size=0: not positive; expected an integer >= 1"),
        ("a\n", ".txt", ["batch_size=many"], "error: batch_size=many: str value; expected an integer"),
    ],
)
def test_unusable_input_is_one_error_line(ckpt, tmp_path, capsys, content, suffix, extra, message) -> None:
    path = tmp_path / f"input{suffix}"
    path.write_text(content, encoding="utf-8")
    code, rows, err = run(capsys, f"model={ckpt}", f"input={path}", *extra)
    assert code == 1 and rows == [] and message in err and one_error_line(err), err
    code, _, err = run(capsys, f"model={ckpt}", f"input={tmp_path / 'missing.txt'}")
    assert code == 1 and f"input={tmp_path / 'missing.txt'}: no such input file" in err and one_error_line(err)


def test_bad_command_lines_name_the_option(capsys) -> None:
    code, _, err = run(capsys, "model=x", "batchsize=3")
    assert code == 1 and err.startswith("error: batchsize: unknown option; expected one of [") and one_error_line(err)
    assert "'batch_size'" in err  # the known options are listed
    code, _, err = run(capsys, "--model", "x", "messages.txt")  # the old argparse style
    assert code == 1 and err.startswith("error: --model: not a key=value option") and one_error_line(err)
    code, _, err = run(capsys, "input=messages.txt")
    assert code == 1 and err.startswith("error: model: missing required option; expected model=") and one_error_line(
        err)


@pytest.mark.parametrize("flag", ["help", "--help", "-h"])
def test_help_prints_the_usage(flag, capsys) -> None:
    assert main([flag]) == 0
    out, err = capsys.readouterr()
    assert "model=EXPORT_DIR_OR_CKPT" in out and "| `id_column` |" in out and err == ""


def test_missing_model_is_one_line_without_traceback(tmp_path) -> None:
    """Through the real entry points: `predict.py` and the `intentfusion-predict` console script (when installed)."""
    messages = tmp_path / "messages.txt"
    messages.write_text("hello\n", encoding="utf-8")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    script = Path(sys.executable).parent / "intentfusion-predict"
    commands = [[sys.executable, str(ROOT / "predict.py")]] + ([[str(script)]] if script.is_file() else [])
    for command, model in zip(commands, [tmp_path / "missing.ckpt", tmp_path / "missing_export"], strict=False):
        done = subprocess.run([*command, f"model={model}", f"input={messages}"], capture_output=True, text=True,
                              timeout=120, env=env)
        assert done.returncode == 1 and done.stdout == "", (command, done.stderr[-2000:])
        assert done.stderr.startswith(f"error: model={model}: no such export directory or checkpoint file; expected ")
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
