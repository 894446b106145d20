"""MASSIVE: the bracket annotation, a fixture in the release's format, the locale filter, the hub copy and the
per-locale table of the evaluation report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from intentfusion.data.massive import load_massive, parse_annotation
from intentfusion.data.slots import bio_to_spans
from intentfusion.errors import DataSourceError, one_line

# (scenario, intent, annot_utt) per locale, in the release's annotation style
UTTERANCES = {
    "en-US": [
        ("alarm", "alarm_set", "wake me up at [time : {n} am] {d}"),
        ("alarm", "alarm_set", "set an alarm for [time : {n} pm]"),
        ("weather", "weather_query", "what is the weather in [place_name : {c}] [date : {d}]"),
        ("weather", "weather_query", "will it rain [date : {d}] in [place_name : {c}]"),
        ("play", "play_music", "play some [artist_name : {a}] please"),
        ("play", "play_music", "put on [artist_name : {a}]'s latest album"),
    ],
    "de-DE": [
        ("alarm", "alarm_set", "weck mich um [time : {n} uhr] {d}"),
        ("alarm", "alarm_set", "stell einen wecker auf [time : {n} uhr]"),
        ("weather", "weather_query", "wie ist das wetter in [place_name : {c}] [date : {d}]"),
        ("weather", "weather_query", "regnet es [date : {d}] in [place_name : {c}]"),
        ("play", "play_music", "spiel etwas von [artist_name : {a}]"),
        ("play", "play_music", "spiel [artist_name : {a}] bitte"),
    ],
}
FILL = {"n": ["five", "six", "seven"], "d": ["tomorrow", "monday"], "c": ["paris", "new york", "rome"],
        "a": ["queen", "the beatles", "adele"]}


def _fill(template: str, i: int) -> str:
    return template.format(**{k: v[(i // (k2 + 1)) % len(v)] for k2, (k, v) in enumerate(FILL.items())})


def write_release(root: Path, per_locale: int = 60) -> Path:
    """``<root>/data/<locale>.jsonl`` as in amazon-massive-dataset-1.0 (partition train/dev/test, utt, annot_utt)."""
    (root / "data").mkdir(parents=True)
    for locale, templates in UTTERANCES.items():
        lines = []
        for i in range(per_locale):
            scenario, intent, template = templates[i % len(templates)]
            annot = _fill(template, i)
            partition = "train" if i % 10 < 7 else ("dev" if i % 10 < 8 else "test")
            row = {"id": str(i), "locale": locale, "partition": partition, "scenario": scenario, "intent": intent,
                   "utt": parse_annotation(annot, "")[0], "annot_utt": annot, "worker_id": "7"}
            if locale != "en-US":
                row["slot_method"] = [{"slot": "time", "method": "translation"}]
                row["judgments"] = [{"worker_id": "3", "intent_score": 1, "slots_score": 1, "grammar_score": 4,
                                     "spelling_score": 2, "language_identification": "target"}]
            lines.append(json.dumps(row, ensure_ascii=False))
        (root / "data" / f"{locale}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_parse_annotation_gives_text_and_spans() -> None:
    text, spans = parse_annotation("wake me up at [time : nine am] [date : tomorrow]", "x")
    assert text == "wake me up at nine am tomorrow"
    assert [(text[s["start"]:s["end"]], s["label"]) for s in spans] == [("nine am", "time"), ("tomorrow", "date")]
    text, spans = parse_annotation("put on [artist_name : adele]'s album", "x")
    assert text == "put on adele 's album" and text[spans[0]["start"]:spans[0]["end"]] == "adele"
    text, spans = parse_annotation("[time : 午前九時]に起こして", "x")  # no spaces in the script: one is inserted
    assert text == "午前九時 に起こして" and spans == [{"start": 0, "end": 4, "label": "time"}]
    assert parse_annotation("olly quiet", "x") == ("olly quiet", [])
    with pytest.raises(DataSourceError, match=r"^f.jsonl:3: unbalanced bracket in 'wake \[time : nine'"):
        parse_annotation("wake [time : nine", "f.jsonl:3")


def test_release_fixture_gives_intents_scenarios_bio_and_the_locale_filter(tmp_path: Path) -> None:
    root = write_release(tmp_path / "massive")
    out = load_massive(str(root), locales=["en-US"])
    assert {k: len(v) for k, v in out.items()} == {"train": 42, "val": 6, "test": 12}
    assert {r["locale"] for rs in out.values() for r in rs} == {"en-US"}
    rec = next(r for r in out["train"] if r["text"].startswith("what is the weather in new york"))
    assert (rec["intent"], rec["scenario"]) == ("weather_query", "weather")
    assert rec["slots"][:7] == ["O", "O", "O", "O", "O", "B-place_name", "I-place_name"]
    for r in out["train"]:  # the BIO tags give back the annotated spans
        assert [s["label"] for s in bio_to_spans(r["text"], r["slots"])] == [
            s["label"] for s in parse_annotation(_annot_of(root, r), "")[1]]
    both = load_massive(str(root), locales="en-US,de-DE")
    assert {r["locale"] for r in both["test"]} == {"en-US", "de-DE"} and len(both["train"]) == 84
    with pytest.raises(DataSourceError) as e:
        load_massive(str(root), locales=["en-XX"])
    assert one_line(e.value).startswith("error: data.source.locales: unknown locale(s) ['en-XX']; expected 'all' or")
    with pytest.raises(FileNotFoundError, match=r"fr-FR.jsonl: file not found; expected <root>/data/<locale>.jsonl"):
        load_massive(str(root), locales=["fr-FR"])
    path = root / "data" / "de-DE.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], lines[2].replace('"train"', '"training"'), *lines[3:]]) + "\n")
    with pytest.raises(DataSourceError, match=rf"^{path}:3: partition 'training'; expected one of \['train', 'dev'"):
        load_massive(str(root), locales=["de-DE"])
    path.write_text("\n".join([lines[0].replace("[time :", "[time"), *lines[1:]]) + "\n")
    with pytest.raises(DataSourceError, match=rf"^{path}:1: unbalanced bracket"):
        load_massive(str(root), locales=["de-DE"])


def _annot_of(root: Path, record: dict[str, Any]) -> str:
    for line in (root / "data" / f"{record['locale']}.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["utt"] == record["text"]:
            return row["annot_utt"]
    raise AssertionError(record["text"])


def test_hub_copy_per_locale_with_classlabels(tmp_path: Path, monkeypatch) -> None:
    feats = Features({"locale": Value("string"), "annot_utt": Value("string"),
                      "intent": ClassLabel(names=["alarm_set", "play_music"]),
                      "scenario": ClassLabel(names=["alarm", "play"])})
    calls = []

    def load_dataset(path: str, name: str | None = None, **kwargs: Any) -> DatasetDict:
        calls.append((path, kwargs["revision"], kwargs["data_files"]["train"]))
        locale = kwargs["data_files"]["train"].split("/")[0]
        rows = {"locale": [locale] * 2, "annot_utt": ["wake me at [time : six]", "play [artist_name : adele]"],
                "intent": [0, 1], "scenario": [0, 1]}
        return DatasetDict({s: Dataset.from_dict(rows, features=feats) for s in ("train", "validation", "test")})

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    hub = {"path": "AmazonScience/massive", "revision": "refs/convert/parquet",
           "data_files": {s: f"{{config}}/{s}/*.parquet" for s in ("train", "validation", "test")}}
    out = load_massive(str(tmp_path / "absent"), locales=["de-DE", "ja-JP"], hub=hub)
    assert calls == [("AmazonScience/massive", "refs/convert/parquet", "de-DE/train/*.parquet"),
                     ("AmazonScience/massive", "refs/convert/parquet", "ja-JP/train/*.parquet")]
    assert [(r["intent"], r["scenario"], r["slots"], r["locale"]) for r in out["val"][:2]] == [
        ("alarm_set", "alarm", ["O", "O", "O", "B-time"], "de-DE"),
        ("play_music", "play", ["O", "B-artist_name"], "de-DE"),
    ]


def test_massive_trains_with_a_locale_table_in_the_report(cfg_factory, tmp_path: Path) -> None:
    from intentfusion.train import train

    root = write_release(tmp_path / "data" / "massive", per_locale=120)
    cfg = cfg_factory("data=massive", f"paths.data_dir={tmp_path / 'data'}", "tasks=intent_scenario_slots",
                      "data.source.locales=[en-US,de-DE]", "phases=full", "hparams.epochs=2", "hparams.batch_size=16",
                      "hparams.lr=2e-3", "trainer.precision=32", "evaluate=true", "data.test_splits=[test]")
    assert root.is_dir()
    metrics = train(cfg)
    for locale in ("en-US", "de-DE"):
        assert {f"test/{locale}/intent/acc", f"test/{locale}/slots/f1", f"test/{locale}/exact_match"} <= set(metrics)
    report = (Path(cfg.paths.output_dir) / "eval" / "report.md").read_text()
    assert "## Per group (test: each task type's headline metric" in report
    assert "| group | intent | scenario | slots | exact_match |" in report
    assert "| de-DE |" in report and "| en-US |" in report
