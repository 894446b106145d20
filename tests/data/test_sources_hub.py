"""`data=hf` (`load_hf`) on local data sets built with `datasets`, and the presets' local-first, hub-second fallback.

Nothing here touches the network: the data sets are written with `save_to_disk` / `to_parquet`, and the hub calls
of the presets are checked by their arguments on a patched `datasets.load_dataset`.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import datasets
import hydra
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value

from intentfusion.data.sources import load_source
from intentfusion.data.sources_hub import hub_call, load_hf, open_dataset
from intentfusion.errors import DataNotFoundError, DataSourceError, one_line

INTENTS = ["book_flight", "cancel", "weather"]
TAGS = ["O", "B-city", "I-city", "B-date"]
PHRASES = {
    "book_flight": ("fly me to {c} {d}", "book a flight to {c} {d}"),
    "cancel": ("cancel my trip to {c} {d}", "drop the booking for {c} {d}"),
    "weather": ("weather in {c} {d}", "will it rain in {c} {d}"),
}
CITIES, DAYS = ["paris", "new york", "rome"], ["today", "monday", "friday"]


def _rows(n: int) -> dict[str, list]:
    """``n`` utterances: text, intent (ClassLabel id), tokens and BIO tags (ClassLabel ids)."""
    cols: dict[str, list] = {"text": [], "intent": [], "tokens": [], "tags": []}
    for i in range(n):
        intent = INTENTS[i % 3]
        city, day = CITIES[(i // 3) % 3], DAYS[(i // 9) % 3]
        text = PHRASES[intent][(i // 27) % 2].format(c=city, d=day)
        words = text.split()
        tags = ["O"] * len(words)
        start = words.index(city.split()[0])
        tags[start] = "B-city"
        for k in range(1, len(city.split())):
            tags[start + k] = "I-city"
        tags[words.index(day)] = "B-date"
        cols["text"].append(text)
        cols["intent"].append(INTENTS.index(intent))
        cols["tokens"].append(words)
        cols["tags"].append([TAGS.index(t) for t in tags])
    return cols


FEATURES = Features(
    {
        "text": Value("string"),
        "intent": ClassLabel(names=INTENTS),
        "tokens": List(Value("string")),
        "tags": List(ClassLabel(names=TAGS)),
    }
)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """A save_to_disk folder with splits `training` and `dev` (no test)."""
    path = tmp_path / "saved"
    DatasetDict(
        training=Dataset.from_dict(_rows(120), features=FEATURES), dev=Dataset.from_dict(_rows(30), features=FEATURES)
    ).save_to_disk(str(path))
    return path


@pytest.fixture
def parquet(tmp_path: Path) -> dict[str, str]:
    """Parquet files per split, train and validation."""
    files = {}
    for split, n in (("train", 120), ("validation", 30)):
        files[split] = str(tmp_path / f"{split}.parquet")
        Dataset.from_dict(_rows(n), features=FEATURES).to_parquet(files[split])
    return files


# ============================================================================================ load_hf
def test_save_to_disk_classlabels_become_names_split_map_and_carved_test(saved: Path) -> None:
    out = load_hf(str(saved), splits={"train": "training", "val": "dev"}, label_columns={"intent": "intent"},
                  fractions=[0.8, 0.0, 0.2], seed=3)
    assert set(out) == {"train", "val", "test"}
    assert (len(out["train"]), len(out["val"]), len(out["test"])) == (96, 30, 24)  # 20 % of 120 carved off
    assert {r["intent"] for r in out["train"]} == set(INTENTS)  # ClassLabel ids -> names
    assert out["train"][0].keys() == {"text", "intent", "source"}
    again = load_hf(str(saved), splits={"train": "training", "val": "dev"}, label_columns={"intent": "intent"},
                    fractions=[0.8, 0.0, 0.2], seed=3, keep_columns=["tokens"])
    assert [r["text"] for r in again["test"]] == [r["text"] for r in out["test"]]  # the split seed decides
    assert all(r["tokens"] == r["text"].split() for r in again["train"])  # keep_columns: carried as they are


def test_parquet_data_files_with_token_lists_and_tag_classlabels(parquet: dict[str, str]) -> None:
    out = load_hf("parquet", data_files=parquet, label_columns={"intent": "intent"},
                  token_columns={"slots": "tags"}, tokens_column="tokens")
    assert set(out) == {"train", "val", "test"}  # validation -> val by name; test carved (10 %)
    rec = next(r for r in out["val"] if "new york" in r["text"])
    assert rec["slots"][rec["text"].split().index("new"):][:2] == ["B-city", "I-city"]
    assert all(len(r["slots"]) == len(r["text"].split()) for split in out.values() for r in split)
    one = load_hf(parquet["train"], label_columns=["intent"])  # a single file: split train, val/test carved
    assert {k: len(v) for k, v in one.items()} == {"train": 96, "val": 12, "test": 12}


def test_bad_columns_splits_and_paths_are_one_line(saved: Path, tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as e:
        load_hf(str(saved), splits={"train": "training"}, label_columns={"intent": "label"})
    assert one_line(e.value).startswith(f"error: {saved}[training]: column 'label' (label_columns.intent) not found")
    with pytest.raises(DataSourceError, match=r"data.source.splits: split\(s\) \{'val': 'valid'\} not in"):
        load_hf(str(saved), splits={"train": "training", "val": "valid"})
    with pytest.raises(DataSourceError, match=r"has no split 'train' \(splits: \['training', 'dev'\]\)"):
        load_hf(str(saved))
    with pytest.raises(DataNotFoundError, match=r"data.source.path=.*missing.parquet"):
        load_hf(str(tmp_path / "missing.parquet"))


def test_offline_hub_id_fails_in_one_line_naming_the_call() -> None:
    with pytest.raises(DataNotFoundError) as e:
        open_dataset("clinc/clinc_oos", "plus")
    line = one_line(e.value)
    assert line.startswith("error: data.source.path=clinc/clinc_oos: the Hugging Face hub is unreachable")
    assert "load_dataset('clinc/clinc_oos', 'plus')" in line and "\n" not in line


def test_hf_yaml_trains_tiny_end_to_end(cfg_factory, saved: Path, parquet: dict[str, str]) -> None:
    from intentfusion.train import train

    common = ["data=hf", "phases=full", "hparams.epochs=2", "hparams.batch_size=16",
              "hparams.lr=2e-3", "trainer.precision=32", "data.source.noise.test_p=0.0"]
    metrics = train(cfg_factory(*common, "tasks=intent_only", f"data.source.path={saved}",
                                "data.source.splits={train:training,val:dev}",
                                "data.source.label_columns={intent:intent}", name="saved"))
    assert {"test/intent/acc", "val/score"} <= set(metrics)
    cfg = cfg_factory(*common, "tasks=intent_slots", "data.source.path=parquet",
                      f"data.source.data_files={{train:{parquet['train']},validation:{parquet['validation']}}}",
                      "data.source.label_columns={intent:intent}", "data.source.token_columns={slots:tags}",
                      "data.source.tokens_column=tokens", name="parquet")
    dm = hydra.utils.instantiate(cfg.data, task_types=dict(cfg.tasks.types))
    dm.setup()
    assert dm.label_names["intent"] == sorted(INTENTS) and set(dm.label_names["slots"]) == set(TAGS)
    assert {"test/slots/f1", "test/exact_match"} <= set(train(cfg))


# ============================================================================================ presets
class HubRecorder:
    """A stand-in for `datasets.load_dataset` that records its calls and returns a prepared DatasetDict."""

    def __init__(self, data: DatasetDict) -> None:
        self.data, self.calls = data, []

    def __call__(self, path: str, name: str | None = None, **kwargs: Any) -> DatasetDict:
        self.calls.append((path, name, kwargs))
        return self.data


def _seq_dataset() -> DatasetDict:
    cols = _rows(30)
    plain = {"text": cols["tokens"], "slot": [[TAGS[k] for k in row] for row in cols["tags"]],
             "intent": [INTENTS[k] for k in cols["intent"]]}
    return DatasetDict({s: Dataset.from_dict(plain) for s in ("train", "validation", "test")})


def _compose_source(cfg_factory, data: str, data_dir: Path) -> Any:
    cfg = cfg_factory(f"data={data}", f"paths.data_dir={data_dir}", "tasks=intent_slots")
    return hydra.utils.instantiate(cfg.data.source)


def test_preset_reads_the_local_copy_first_and_the_hub_second(cfg_factory, tmp_path: Path, monkeypatch) -> None:
    recorder = HubRecorder(_seq_dataset())
    monkeypatch.setattr(datasets, "load_dataset", recorder)
    local = tmp_path / "local"
    for folder in ("train", "valid", "test"):
        (local / "snips" / folder).mkdir(parents=True)
        (local / "snips" / folder / "seq.in").write_text("play queen\n")
        (local / "snips" / folder / "seq.out").write_text("O B-artist\n")
        (local / "snips" / folder / "label").write_text("PlayMusic\n")
    out = _compose_source(cfg_factory, "snips", local)()
    assert recorder.calls == [] and out["train"][0]["slots"] == ["O", "B-artist"]  # the local copy, no hub call

    out = _compose_source(cfg_factory, "snips", tmp_path / "empty")()
    files = {s: f"snips/{s}/*.parquet" for s in ("train", "validation", "test")}
    hub_args = {"revision": "refs/convert/parquet", "data_files": files}
    assert recorder.calls == [("LightChen2333/OpenSLU", None, hub_args)]
    assert {k: len(v) for k, v in out.items()} == {"train": 30, "val": 30, "test": 30, "test_noisy": 30}
    rec = out["train"][0]
    assert rec["text"] == " ".join(_rows(1)["tokens"][0]) and rec["intent"] == "book_flight"
    assert rec["slots"] == [TAGS[k] for k in _rows(1)["tags"][0]]

    recorder.calls.clear()
    _compose_source(cfg_factory, "atis", tmp_path / "empty")()
    assert recorder.calls[0][0] == "LightChen2333/OpenSLU" and "atis/train/*.parquet" in str(recorder.calls[0][2])


def test_clinc150_and_xlmt_presets_from_the_hub(cfg_factory, tmp_path: Path, monkeypatch) -> None:
    names = ["book_flight", "oos", "weather"]
    feats = Features({"text": Value("string"), "intent": ClassLabel(names=names)})
    rows = {"text": ["fly me to rome", "what is love", "rain today?"], "intent": [0, 1, 2]}
    recorder = HubRecorder(DatasetDict({s: Dataset.from_dict(rows, features=feats)
                                        for s in ("train", "validation", "test")}))
    monkeypatch.setattr(datasets, "load_dataset", recorder)
    domains = {"travel": ["book_flight"], "utility": ["weather"]}
    opened = []

    def urlopen(url: str, timeout: float) -> io.BytesIO:
        opened.append(url)
        return io.BytesIO(json.dumps(domains).encode())

    monkeypatch.setattr("urllib.request.urlopen", urlopen)
    cfg = cfg_factory("data=clinc150", f"paths.data_dir={tmp_path}", "tasks=intent_domain")
    out = hydra.utils.instantiate(cfg.data.source)()
    assert recorder.calls == [("clinc/clinc_oos", "plus", {"revision": None, "data_files": None})]
    assert opened == ["https://raw.githubusercontent.com/clinc/oos-eval/master/data/domains.json"]
    assert [(r["intent"], r["domain"], r["is_oos"]) for r in out["train"]] == [
        ("book_flight", "travel", False), ("weather", "utility", False), ("oos", "oos", True)]
    assert [r["text"] for r in out["test_oos"]] == ["what is love"]

    tweets = Features({"text": Value("string"), "label": ClassLabel(names=["negative", "neutral", "positive"])})
    recorder.data = DatasetDict({s: Dataset.from_dict({"text": ["meh", "great"], "label": [1, 2]}, features=tweets)
                                 for s in ("train", "validation", "test")})
    recorder.calls.clear()
    cfg = cfg_factory("data=xlmt_sentiment", f"paths.data_dir={tmp_path}", "data.source.languages=[french,german]")
    out = hydra.utils.instantiate(cfg.data.source)()
    assert [c[2]["data_files"]["train"] for c in recorder.calls] == ["french/train/*.parquet", "german/train/*.parquet"]
    assert [(r["sentiment"], r["language"]) for r in out["train"]] == [
        ("neutral", "french"), ("positive", "french"), ("neutral", "german"), ("positive", "german")]


def test_preset_offline_without_local_copy_names_both_ways(tmp_path: Path) -> None:
    hub = {"path": "LightChen2333/OpenSLU", "revision": "refs/convert/parquet", "data_files": {"train": "x"}}
    with pytest.raises(DataNotFoundError) as e:
        load_source("snips", root=str(tmp_path / "snips"), hub=hub)
    line = one_line(e.value)
    assert line.startswith(f"error: {tmp_path / 'snips'}: folder not found, and the hub copy is not reachable")
    assert "{train,valid,test}/{seq.in,seq.out,label}" in line  # the local layout
    assert "load_dataset('LightChen2333/OpenSLU', revision='refs/convert/parquet')" in line  # the hub way
    assert hub_call("a/b", "c") == "load_dataset('a/b', 'c')"
