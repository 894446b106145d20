"""`predict.py`: text / CSV / JSONL / stdin in, JSONL out in input order, throughput on stderr, clear errors."""

from __future__ import annotations

import importlib.util
import io
import json
from pathlib import Path

import pytest
import torch

from .test_predictor import best_checkpoint

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("predict_cli", ROOT / "predict.py")
predict_cli = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(predict_cli)


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
    code = predict_cli.main(["--no-progress", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.strip()], err


def test_text_file_one_message_a_line(ckpt, tmp_path, capsys) -> None:
    lines = ["where is my order", "", "CANCEL NOW 😡", "¿dónde está mi pedido?"] * 5
    path = tmp_path / "messages.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, rows, err = run(capsys, "--model", ckpt, str(path), "--batch-size", "3")
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
    code, rows, _ = run(capsys, "--model", ckpt, str(csv_path), "--column", "body", "--id-column", "id",
                        "--distribution", "--fallback", "action=1.0:request_more_info")
    assert code == 0 and [(r["id"], r["text"]) for r in rows] == [("7", "late parcel, again"), ("8", 'refund "now"')]
    assert rows[0]["predictions"]["action"]["label"] == "request_more_info" and rows[0]["predictions"]["action"][
        "fallback"] is True
    assert set(rows[1]["predictions"]["urgency"]["distribution"]) == {"high", "low", "medium"}

    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"msg": "hello"}\n\n{"msg": null}\n{"msg": "bye"}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "--model", ckpt, str(jsonl), "--column", "msg", "--out", str(out), "--no-text")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and len(rows) == 3 and rows[1]["flags"] == ["empty"] and "text" not in rows[0]

    monkeypatch.setattr("sys.stdin", io.StringIO("first\nsecond\n"))
    code, rows, _ = run(capsys, "--model", ckpt)
    assert code == 0 and [r["text"] for r in rows] == ["first", "second"]


@pytest.mark.parametrize(
    ("content", "suffix", "extra", "message"),
    [
        ("text\nhello\n", ".csv", ["--column", "body"], "column 'body' is not in the CSV header ['text']"),
        ('{"text": "a"}\n{oops\n', ".jsonl", [], "JSONL line 2: not valid JSON"),
        ('{"body": "a"}\n', ".jsonl", [], "JSONL line 1: no field 'text'"),
        ('["a"]\n', ".jsonl", [], "JSONL line 1: expected an object, got list"),
        ("a\n", ".txt", ["--fallback", "action:0.5"], "expected TASK=THRESHOLD:LABEL"),
        ("a\n", ".txt", ["--runtime", "onnx"], "needs an export directory"),
    ],
)
def test_unusable_input_is_one_error_line(ckpt, tmp_path, capsys, content, suffix, extra, message) -> None:
    path = tmp_path / f"input{suffix}"
    path.write_text(content, encoding="utf-8")
    code, rows, err = run(capsys, "--model", ckpt, str(path), *extra)
    assert code == 2 and rows == [] and message in err and err.startswith("error: ")
    code, _, err = run(capsys, "--model", ckpt, str(tmp_path / "missing.txt"))
    assert code == 2 and "no such input file" in err
