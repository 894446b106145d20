"""bench.report: results JSON -> Markdown, spliced into BENCHMARKS.md without touching the hand-written rest."""

from __future__ import annotations

from bench.common import figure, ratio, stats
from bench.report import BEGIN, END, number, render, splice, update_benchmarks_md


def _results() -> dict:
    ours = figure("train_if", "intentfusion samples/s", "samples/s", [100, 120, 110], command="python train.py x",
                  model="minilm", batch_size=16, max_length=64, threads=2)
    theirs = figure("train_hf", "HF Trainer samples/s", "samples/s", [50, 55, 60], command="python -m bench.hf_trainer",
                    model="minilm", batch_size=16, max_length=64, threads=2)
    return {"date": "2026-11-23", "quick": True, "command": "python -m bench --quick", "git": "abc123",
            "machine": {"cpu": "cpu", "cores": 2, "threads": 2, "torch": "2.13.0", "transformers": "5"},
            "sections": [{"title": "Training", "figures": [ours, theirs],
                          "ratios": [ratio("r", "intentfusion / HF", ours, theirs, target=1.0)], "notes": ["a note"]}]}


def test_stats_and_ratio_use_the_repetitions():
    assert stats([1, 2, 6]) == {"mean": 3.0, "min": 1.0, "max": 6.0, "n": 3}
    results = _results()
    r = results["sections"][0]["ratios"][0]
    assert r["value"] == 110 / 55 and r["met"] is True and r["of"] == ["train_if", "train_hf"]


def test_render_has_headline_tables_commands_and_notes():
    text = render(_results(), "bench/results/2026-11-23.json")
    assert text.startswith(BEGIN) and text.endswith(END)
    assert "| intentfusion / HF | 2 | ≥ 1 | yes |" in text
    assert "| intentfusion samples/s (`train_if`) | 110 | 100 | 120 | samples/s | 3 |" in text
    assert "python -m bench.hf_trainer" in text and "- a note" in text
    assert "quick run, 2026-11-23" in text


def test_splice_replaces_only_the_generated_block(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\nIntro.\n\n## Hand-written\n\nkeep me\n")
    update_benchmarks_md(path, _results(), "r.json")
    first = path.read_text()
    assert first.index("Intro.") < first.index(BEGIN) < first.index("## Hand-written") and "keep me" in first
    results = _results()
    results["date"] = "2027-01-01"
    update_benchmarks_md(path, results, "r.json")
    second = path.read_text()
    assert second.count(BEGIN) == 1 and "2027-01-01" in second and "2026-11-23" not in second
    assert splice(second, "X").count("keep me") == 1


def test_number_formats_for_readers():
    assert number(None) == "–" and number(float("nan")) == "–"
    assert number(12345.6) == "12,346" and number(0.01234) == "0.0123"
