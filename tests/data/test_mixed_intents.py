"""Multi-intent data (MixATIS / MixSNIPS): the AGIF-format reader (round trip, bad lines with file:line), the
published composition recipe (sizes, distinct intents, connectors, no leakage), the loader and its hub copy."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import datasets
import pytest
from datasets import Dataset, DatasetDict

from intentfusion.data.mixed_intents import (
    CLEAN_TRAIN_SIZES,
    CONNECTORS,
    Utterance,
    check_disjoint,
    compose,
    read_mixed,
    write_mixed,
)
from intentfusion.data.sources import load_source
from intentfusion.errors import DataError, DataSourceError, one_line
from tests.data.test_sources_hub import HubRecorder

DATA = Path(os.environ.get("INTENTFUSION_DATA_DIR", Path(__file__).resolve().parents[2] / "../shared/data"))
# single-intent "queries" per intent: words and their BIO tags
QUERIES = {  # the third query of each intent is held out (dev/test), sharing its keyword with the first two
    "book": [("book a table for two", "O O O O B-people"), ("book a table in rome", "O O O O B-city"),
             ("book a table tonight", "O O O B-time")],
    "weather": [("weather in paris", "O O B-city"), ("weather for tomorrow", "O O B-time"),
                ("weather for new york", "O O B-city I-city")],
    "play": [("play some jazz", "O O B-genre"), ("play songs by adele", "O O O B-artist"),
             ("play rock music", "O B-genre O")],
    "rate": [("rate this novel five", "O O O B-rating"), ("rate it four stars", "O O B-rating O"),
             ("rate the novel two", "O O O B-rating")],
}


def singles(n_copies: int = 1, intents: dict | None = None) -> list[Utterance]:
    return [Utterance(tuple(text.split()), tuple(tags.split()), (intent,))
            for intent, queries in (intents or QUERIES).items() for text, tags in queries] * n_copies


def write_corpus(root: Path, split_queries: dict[str, dict]) -> Path:
    """A single-intent corpus in the SNIPS/ATIS layout: <root>/{train,valid,test}/{seq.in,seq.out,label}."""
    for folder, queries in split_queries.items():
        (root / folder).mkdir(parents=True)
        rows = [(text, tags, intent) for intent, qs in queries.items() for text, tags in qs]
        for name, col in (("seq.in", 0), ("seq.out", 1), ("label", 2)):
            (root / folder / name).write_text("".join(f"{r[col]}\n" for r in rows))
    return root


def toy_mix(tmp_path: Path) -> tuple[Path, Path]:
    """(mix folder with dev.txt / test.txt composed from held-out queries, the single-intent corpus folder)."""
    train = {i: q[:2] for i, q in QUERIES.items()}
    held = {i: q[2:] for i, q in QUERIES.items()}
    corpus = write_corpus(tmp_path / "toy", {"train": train, "valid": held, "test": held})
    mix = tmp_path / "toymix"
    mix.mkdir()
    held_out = singles(intents=held)
    write_mixed(mix / "dev.txt", compose(held_out, {1: 4, 2: 8}, seed=1))
    write_mixed(mix / "test.txt", compose(held_out, {1: 4, 2: 8, 3: 4}, seed=2))
    return mix, corpus


# ------------------------------------------------------------------------------------------ the reader
def test_write_then_read_gives_the_same_utterances(tmp_path: Path) -> None:
    utterances = compose(singles(), {1: 5, 2: 10, 3: 5}, seed=3)
    write_mixed(tmp_path / "x.txt", utterances)
    back = read_mixed(tmp_path / "x.txt")
    assert [(u.tokens, u.tags, u.intents) for u in back] == [(u.tokens, u.tags, u.intents) for u in utterances]
    assert back[1].where == f"{tmp_path / 'x.txt'}:{len(utterances[0].tokens) + 3}"  # its first word's line


@pytest.mark.parametrize(("text", "line", "what"), [
    ("list O\nflights O\nB-x extra tag\natis_flight\n", 3, "3 field(s) 'B-x extra tag'"),
    ("list O\nflights\natis_flight\n\n", 3, "'atis_flight' right after an intents line"),  # a tag missing
    ("list O\nflights O\n\n", 3, "a blank line ends an utterance that has no intents line"),
    ("list O\nflights O\n", 2, "the file ends inside an utterance"),
    ("atis_flight\n", 1, "1 field(s) 'atis_flight'"),
    ("\nlist O\nboston I-city\natis_flight\n", 2, "tag 2 'I-city' follows 'O'"),
])
def test_a_bad_line_is_named_by_file_and_line(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = tmp_path / "dev.txt"
    path.write_text(text)
    with pytest.raises(DataSourceError) as e:
        read_mixed(path)
    message = one_line(e.value)
    assert message.startswith(f"error: {path}:{line}: ") and what in message and "\n" not in message


# ------------------------------------------------------------------------------------------ the recipe
def test_composition_follows_the_published_recipe() -> None:
    sizes = {1: 300, 2: 900, 3: 600}
    out = compose(singles(), sizes, seed=0)
    assert Counter(len(u.intents) for u in out) == sizes
    texts = {" ".join(t.split()) for qs in QUERIES.values() for t, _ in qs}
    connectors = Counter()
    for u in out:
        assert len(set(u.intents)) == len(u.intents)  # components of different intents
        assert len(u.tokens) == len(u.tags)
        rest = u.text
        for _ in range(len(u.intents) - 1):  # strip the components back off, counting connectors
            head = next(t for t in texts if rest.startswith(t + " "))
            rest = rest[len(head) + 1:]
            connector = next(c for c in sorted(CONNECTORS, key=len, reverse=True)
                             if rest.startswith(" ".join(c) + " ") and rest[len(" ".join(c)) + 1:].split()
                             and any(rest[len(" ".join(c)) + 1:].startswith(t) for t in texts))
            connectors[connector] += 1
            rest = rest[len(" ".join(connector)) + 1:]
        assert rest in texts
    total = sum(connectors.values())
    assert set(connectors) == set(CONNECTORS) and all(abs(n / total - 0.25) < 0.04 for n in connectors.values())
    intents = Counter(i for u in out for i in u.intents)
    assert all(abs(n / sum(intents.values()) - 0.25) < 0.04 for n in intents.values())  # drawn uniformly
    assert compose(singles(), sizes, seed=0) == out and compose(singles(), sizes, seed=1) != out


def test_composition_leaves_out_held_out_texts_and_refuses_leaks() -> None:
    held = "weather in paris"
    out = compose(singles(), {1: 200, 2: 200}, seed=0, exclude=[held])
    assert all(held not in u.text for u in out)
    with pytest.raises(DataSourceError, match="train vs test: 1 utterance"):
        check_disjoint(out, dev=[], test=[out[0]])
    with pytest.raises(DataSourceError, match="train_sizes.5: 5 intents per utterance from 4 intents") as e:
        compose(singles(), {4: 1, 5: 1}, seed=0)
    assert "between 1 and 4" in str(e.value)


# ------------------------------------------------------------------------------------------ the loader
def test_the_loader_composes_train_and_reads_dev_and_test(tmp_path: Path) -> None:
    mix, corpus = toy_mix(tmp_path)
    splits = load_source("mixed_intents", root=str(mix), name="toymix", components=str(corpus),
                         train_sizes={1: 20, 2: 40, 3: 20}, noise={"test_p": None})
    assert {s: len(r) for s, r in splits.items()} == {"train": 80, "val": 12, "test": 16}
    record = next(r for r in splits["test"] if r["intent_count"] == "3_intents")
    assert len(record["intent"]) == 3 and isinstance(record["intent"], tuple)
    assert len(record["tokens"]) == len(record["slots"])
    assert splits["train"][0]["provenance"].startswith(f"composed from {corpus}/train")
    assert "seed 0" in splits["train"][0]["provenance"]
    held = {" ".join(t.split()) for qs in QUERIES.values() for t, _ in qs[2:]}
    assert not any(h in r["text"] for r in splits["train"] for h in held)  # no held-out query in train

    (mix / "train.txt").write_text((mix / "dev.txt").read_text())  # an original training file is read as is
    with pytest.raises(DataSourceError, match="train vs dev"):
        load_source("mixed_intents", root=str(mix), name="toymix", noise={"test_p": None})


def test_a_sequence_intent_is_refused_naming_the_task_types(tmp_path: Path) -> None:
    mix, corpus = toy_mix(tmp_path)
    with pytest.raises(DataSourceError) as e:
        load_source("mixed_intents", root=str(mix), name="toymix", components=str(corpus),
                    train_sizes={1: 4}, task_types={"intent": "sequence"})
    assert one_line(e.value).startswith("error: tasks.types.intent=sequence: toymix utterances carry several")


def test_a_label_set_under_a_single_label_type_names_the_task_types() -> None:
    from intentfusion.tasks import SequenceTask

    with pytest.raises(DataError, match=r"tasks.types.intent: .*label sets \(e.g. \['a', 'b'\]\)"):
        SequenceTask.label_set("intent", {"train": [{"intent": ("a", "b")}]})


def test_the_hub_copy_is_read_with_the_same_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  cfg_factory) -> None:
    import hydra

    rows = {"text": [["play", "jazz", "and", "rain", "today"], ["rate", "it", "five"]],
            "slot": [["O", "B-genre", "O", "O", "B-time"], ["O", "O", "B-rating"]],
            "intent": ["PlayMusic#GetWeather", "RateBook"]}
    recorder = HubRecorder(DatasetDict({s: Dataset.from_dict(rows) for s in ("train", "validation", "test")}))
    monkeypatch.setattr(datasets, "load_dataset", recorder)
    cfg = cfg_factory("data=mixsnips", f"paths.data_dir={tmp_path}", "tasks=multi_intent_slots")
    out = hydra.utils.instantiate(cfg.data.source)(task_types={"intent": "multilabel", "slots": "token"})
    assert recorder.calls[0][:2] == ("LightChen2333/OpenSLU", None)
    assert recorder.calls[0][2]["data_files"]["train"] == "mix-snips/train/*.parquet"
    assert [(r["intent"], r["intent_count"]) for r in out["train"]] == [
        (("GetWeather", "PlayMusic"), "2_intents"), (("RateBook",), "1_intent")]
    assert out["test"][0]["provenance"].startswith("the original test split from load_dataset('LightChen2333")


# ------------------------------------------------------------------------------------------ the real sets
@pytest.mark.skipif(not (DATA / "mixatis_clean").is_dir() or not (DATA / "atis").is_dir(),
                    reason="needs ../shared/data/mixatis_clean and atis")
def test_mixatis_is_composed_from_the_atis_training_split_at_the_clean_sizes(cfg_factory) -> None:
    import hydra

    cfg = cfg_factory("data=mixatis", "tasks=multi_intent_slots")
    with pytest.warns(UserWarning, match="atis_day_name"):  # in MixATIS test, absent from ATIS train
        splits = hydra.utils.instantiate(cfg.data.source)(task_types={"intent": "multilabel", "slots": "token"})
    counts = Counter(len(r["intent"]) for r in splits["train"])
    assert counts == CLEAN_TRAIN_SIZES["mixatis"]
    assert {len(splits["val"]), len(splits["test"])} == {759, 828}
    assert Counter(r["intent_count"] for r in splits["test"]) == {"1_intent": 143, "2_intents": 485, "3_intents": 200}
    train = {r["text"] for r in splits["train"]}
    assert not train & {r["text"] for s in ("val", "test") for r in splits[s]}
