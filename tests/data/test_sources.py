"""Loaders: counts and label sets on the real benchmarks (skipped without them), and every bad-input case."""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

import hydra
import pytest

from intentfusion.data.slots import bio_to_spans, spans_to_bio
from intentfusion.data.sources import (
    XLMT_LANGUAGES,
    DataNotFoundError,
    DataSourceError,
    load_atis,
    load_clinc150,
    load_snips,
    load_source,
    load_xlmt_sentiment,
)
from intentfusion.data.sources_files import load_table
from intentfusion.data.transforms import DataWarning, map_labels

from ..conftest import ROOT, make_cfg

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DATA = Path(os.environ.get("INTENTFUSION_DATA_DIR", ROOT.parent / "shared" / "data"))
BIO = re.compile(r"^(O|[BI]-\S+)$")


def _root(name: str) -> Path:
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path} (set INTENTFUSION_DATA_DIR)")
    return path


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


# ================================================================================= real data: CLINC150
@pytest.fixture(scope="module")
def clinc() -> dict:
    return load_clinc150(str(_root("clinc150")))


@pytest.fixture(scope="module")
def clinc_excl() -> dict:
    return load_clinc150(str(_root("clinc150")), oos="exclude")


def test_clinc150_oos_as_class_counts_and_labels(clinc) -> None:
    assert {k: len(v) for k, v in clinc.items()} == {
        "train": 15_100,
        "val": 3_100,
        "test": 5_500,
        "val_oos": 100,
        "test_oos": 1_000,
    }
    intents = Counter(r["intent"] for r in clinc["train"])
    assert len(intents) == 151 and intents["oos"] == 100
    assert set(Counter(intents.values())) == {100}  # 100 training examples per intent
    assert len({r["domain"] for r in clinc["train"]} - {"oos"}) == 10
    assert sum(r["is_oos"] for r in clinc["test"]) == 1_000
    assert all(r["intent"] == "oos" and r["domain"] == "oos" for r in clinc["test_oos"])
    assert all(r["source"] == "clinc150" for split in clinc.values() for r in split)


def test_clinc150_each_intent_has_one_domain(clinc) -> None:
    domain_of: dict[str, set] = {}
    for r in clinc["train"] + clinc["test"]:
        domain_of.setdefault(r["intent"], set()).add(r["domain"])
    assert all(len(d) == 1 for d in domain_of.values())
    per_domain = Counter(next(iter(d)) for i, d in domain_of.items() if i != "oos")
    assert set(per_domain.values()) == {15}


def test_clinc150_exclude_keeps_oos_only_in_oos_splits(clinc_excl) -> None:
    assert {k: len(v) for k, v in clinc_excl.items()} == {
        "train": 15_000,
        "val": 3_000,
        "test": 4_500,
        "val_oos": 100,
        "test_oos": 1_000,
    }
    assert "oos" not in {r["intent"] for s in ("train", "val", "test") for r in clinc_excl[s]}
    assert len({r["intent"] for r in clinc_excl["train"]}) == 150
    assert all(r["intent"] is None and r["domain"] is None and r["is_oos"] for r in clinc_excl["test_oos"])


def test_clinc150_domain_map_from_domains_json_matches_the_loader(clinc_excl) -> None:
    domains = json.loads((_root("clinc150") / "domains.json").read_text())
    mapped = map_labels(clinc_excl["test"], "intent", domains, new_task="coarse")
    assert all(r["coarse"] == r["domain"] for r in mapped)


def test_clinc150_bad_options(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="oos='keep'; expected 'class' or 'exclude'"):
        load_clinc150(str(tmp_path), oos="keep")
    assert "domain" not in load_clinc150(str(_root("clinc150")), domain_task=False)["train"][0]


# ================================================================================= real data: XLM-T
@pytest.fixture(scope="module")
def xlmt() -> dict:
    return load_xlmt_sentiment(str(_root("xlmt_sentiment")))


def test_xlmt_counts_per_language_and_labels(xlmt) -> None:
    for split, n in (("train", 1_839), ("val", 324), ("test", 870)):
        per_language = Counter(r["language"] for r in xlmt[split])
        assert per_language == dict.fromkeys(XLMT_LANGUAGES, n), split
    assert len(XLMT_LANGUAGES) == 8
    assert {r["sentiment"] for s in xlmt.values() for r in s} == {"negative", "neutral", "positive"}
    assert all(r["source"] == "xlmt_sentiment" for r in xlmt["test"])


def test_xlmt_language_subset_and_escape_decoding() -> None:
    root = str(_root("xlmt_sentiment"))
    two = load_xlmt_sentiment(root, ["english", "french"])
    assert {k: len(v) for k, v in two.items()} == {"train": 3_678, "val": 648, "test": 1_740}
    assert load_xlmt_sentiment(root, "english,french") == two
    raw = load_xlmt_sentiment(root, "english", unescape=False)
    assert sum("\\u2019" in r["text"] for r in raw["train"]) > 100
    assert not any("\\u2019" in r["text"] for r in two["train"])


def test_xlmt_unknown_language_lists_the_eight(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError) as e:
        load_xlmt_sentiment(str(tmp_path), ["english", "klingon"])
    msg = _one_line(e)
    assert "['klingon']" in msg and ", ".join(XLMT_LANGUAGES) in msg


# ================================================================================= real data: SNIPS / ATIS
@pytest.fixture(scope="module")
def snips() -> dict:
    return load_snips(str(_root("snips")))


@pytest.fixture(scope="module")
def atis() -> dict:
    with pytest.warns(DataWarning, match=r"atis: split 'test': masked .* 2 example.*'atis_day_name'"):
        return load_atis(str(_root("atis")))


def _aligned(splits: dict) -> None:
    for split in splits.values():
        for r in split:
            assert len(r["tokens"]) == len(r["slots"]) > 0
            assert r["text"] == " ".join(r["tokens"])
            assert all(BIO.match(t) for t in r["slots"])


def test_snips_counts_intents_and_alignment(snips) -> None:
    assert {k: len(v) for k, v in snips.items()} == {"train": 13_084, "val": 700, "test": 700}
    assert len({r["intent"] for r in snips["train"]}) == 7
    assert {r["intent"] for r in snips["test"]} == {r["intent"] for r in snips["train"]}
    _aligned(snips)
    assert snips["train"][0]["slots"][:3] == ["O", "O", "B-artist"]


def test_atis_first_policy(atis) -> None:
    assert {k: len(v) for k, v in atis.items()} == {"train": 4_478, "val": 500, "test": 893}
    assert not any("#" in (r["intent"] or "") for s in atis.values() for r in s)
    assert len({r["intent"] for r in atis["train"]}) == 17
    assert [r["intent"] for r in atis["test"]].count(None) == 2  # atis_day_name never occurs in train
    _aligned(atis)


def _slot_types(records: list) -> set[str]:
    return {tag[2:] for r in records for tag in r["slots"] if tag != "O"}


def test_snips_slots_are_one_bio_tag_per_word(snips) -> None:
    for split in snips.values():
        assert all(len(r["slots"]) == len(r["text"].split()) > 0 for r in split)
    assert len(_slot_types(snips["train"])) == 39
    assert _slot_types(snips["test"]) <= _slot_types(snips["train"])
    assert {"artist", "playlist", "timeRange", "spatial_relation"} <= _slot_types(snips["train"])
    for r in snips["train"]:  # valid BIO on the real data: tags -> spans -> tags is the identity
        spans = bio_to_spans(r["text"], r["slots"])
        assert spans_to_bio(r["text"], spans) == r["slots"]
        assert all(r["text"][s["start"] : s["end"]].split() for s in spans)


def test_atis_slots_are_one_bio_tag_per_word(atis) -> None:
    for split in atis.values():
        assert all(len(r["slots"]) == len(r["text"].split()) > 0 for r in split)
    assert len(_slot_types(atis["train"])) == 79
    assert _slot_types(atis["test"]) - _slot_types(atis["train"])  # a few test slot types never occur in train
    first = atis["train"][0]
    assert first["slots"][5] == "B-fromloc.city_name" and first["slots"][-2:] == ["B-round_trip", "I-round_trip"]


def test_atis_join_and_drop_policies() -> None:
    root = str(_root("atis"))
    with pytest.warns(DataWarning):
        joined = load_atis(root, multi_intent="join")
    assert {k: len(v) for k, v in joined.items()} == {"train": 4_478, "val": 500, "test": 893}
    train_intents = Counter(r["intent"] for r in joined["train"])
    assert train_intents["atis_flight#atis_airfare"] == 19 and len(train_intents) == 21
    with pytest.warns(DataWarning, match=r"atis/train: dropped 23 multi-intent example\(s\)"):
        dropped = load_atis(root, multi_intent="drop")
    assert {k: len(v) for k, v in dropped.items()} == {"train": 4_455, "val": 497, "test": 878}
    with pytest.raises(DataSourceError, match="multi_intent='all'"):
        load_atis(root, multi_intent="all")


def test_atis_unseen_test_intent_policies() -> None:
    root = str(_root("atis"))
    with pytest.raises(DataSourceError, match=r"'test' has label\(s\) never seen in 'train'.*atis_day_name"):
        load_atis(root, unknown_labels="error")
    with pytest.warns(DataWarning, match="dropped 2 example"):
        assert len(load_atis(root, unknown_labels="drop")["test"]) == 891


# ================================================================================= bad input: benchmarks
def _seq_layout(root: Path, rows: dict[str, list[tuple[str, str, str]]]) -> Path:
    for folder, items in rows.items():
        d = root / folder
        d.mkdir(parents=True)
        for name, idx in (("seq.in", 0), ("seq.out", 1), ("label", 2)):
            (d / name).write_text("".join(item[idx] + "\n" for item in items))
    return root


GOOD = [("play some jazz", "O O B-genre", "PlayMusic"), ("rain tomorrow", "O B-date", "GetWeather")]


def test_missing_benchmark_folders_name_path_and_layout(tmp_path: Path) -> None:
    for loader, expected in (
        (load_clinc150, "data_full.json"),
        (load_snips, "seq.in,seq.out,label"),
        (load_xlmt_sentiment, "train,val,test"),
        (load_atis, "{train,valid,test}"),
    ):
        with pytest.raises(DataNotFoundError) as e:
            loader(str(tmp_path / "nowhere"))
        msg = _one_line(e)
        assert f"{tmp_path / 'nowhere'}: folder not found; expected" in msg and expected in msg
        assert isinstance(e.value, FileNotFoundError)


def test_missing_seq_file_is_named(tmp_path: Path) -> None:
    root = _seq_layout(tmp_path / "snips", {"train": GOOD, "valid": GOOD, "test": GOOD})
    (root / "test" / "seq.out").unlink()
    with pytest.raises(DataNotFoundError, match=re.escape(f"{root / 'test' / 'seq.out'}: file not found")):
        load_snips(str(root))


def test_tiny_snips_layout_loads_and_valid_becomes_val(tmp_path: Path) -> None:
    root = _seq_layout(tmp_path / "snips", {"train": GOOD, "valid": GOOD[:1], "test": GOOD})
    out = load_snips(str(root))
    assert {k: len(v) for k, v in out.items()} == {"train": 2, "val": 1, "test": 2}
    assert out["val"][0] == {
        "text": "play some jazz",
        "intent": "PlayMusic",
        "tokens": ["play", "some", "jazz"],
        "slots": ["O", "O", "B-genre"],
        "source": "snips",
    }


def test_misaligned_slots_name_file_and_line(tmp_path: Path) -> None:
    bad = [*GOOD, ("book it now", "O O", "Book")]
    root = _seq_layout(tmp_path / "atis", {"train": bad, "valid": GOOD, "test": GOOD})
    with pytest.raises(DataSourceError) as e:
        load_atis(str(root))
    assert f"{root / 'train' / 'seq.out'}:3: 2 BIO tag(s) for 3 token(s)" in _one_line(e)


def test_tiny_atis_layout_exposes_slots(tmp_path: Path) -> None:
    text, tags = "show flights from new york to denver", "O O O B-fromloc I-fromloc O B-toloc"
    rows = [(text, tags, "atis_flight#atis_airfare")]
    root = _seq_layout(tmp_path / "atis", {"train": rows, "valid": rows, "test": rows})
    rec = load_atis(str(root))["test"][0]
    assert rec == {
        "text": "show flights from new york to denver",
        "intent": "atis_flight",
        "tokens": ["show", "flights", "from", "new", "york", "to", "denver"],
        "slots": ["O", "O", "O", "B-fromloc", "I-fromloc", "O", "B-toloc"],
        "source": "atis",
    }
    assert bio_to_spans(rec["text"], rec["slots"]) == [
        {"start": 18, "end": 26, "label": "fromloc"},
        {"start": 30, "end": 36, "label": "toloc"},
    ]


def test_invalid_bio_in_seq_out_names_file_and_line(tmp_path: Path) -> None:
    bad = [*GOOD, ("play it loud", "O I-genre O", "PlayMusic")]
    root = _seq_layout(tmp_path / "snips", {"train": GOOD, "valid": GOOD, "test": bad})
    with pytest.raises(DataSourceError) as e:
        load_snips(str(root))
    assert _one_line(e) == (
        f"{root / 'test' / 'seq.out'}:3: tag 2 'I-genre' follows 'O'; expected I-genre only after B-genre or "
        f"I-genre (bio_repair: true makes it B-genre)"
    )
    root = _seq_layout(
        tmp_path / "snips2", {"train": [("rain now", "O B-", "GetWeather")], "valid": GOOD, "test": GOOD}
    )
    with pytest.raises(DataSourceError, match=re.escape(f"{root / 'train' / 'seq.out'}:1: tag 2 'B-' is not a BIO")):
        load_snips(str(root))


def test_line_count_mismatch_names_the_files(tmp_path: Path) -> None:
    root = _seq_layout(tmp_path / "snips", {"train": GOOD, "valid": GOOD, "test": GOOD})
    (root / "train" / "label").write_text("PlayMusic\n")
    with pytest.raises(DataSourceError, match=r"line counts differ \(.*seq.in has 2, .*label has 1\)"):
        load_snips(str(root))


def test_empty_seq_lines_are_dropped_with_a_warning(tmp_path: Path) -> None:
    train = [*GOOD, ("  ", "", "PlayMusic")]
    root = _seq_layout(tmp_path / "snips", {"train": train, "valid": GOOD, "test": GOOD})
    with pytest.warns(DataWarning, match=r"snips/train: dropped 1 example\(s\) with empty"):
        assert len(load_snips(str(root))["train"]) == 2


def test_invalid_utf8_in_seq_in_names_the_line(tmp_path: Path) -> None:
    root = _seq_layout(tmp_path / "snips", {"train": GOOD, "valid": GOOD, "test": GOOD})
    (root / "valid" / "seq.in").write_bytes(b"play some jazz\nrain \xff\xfe tomorrow\n")
    with pytest.raises(DataSourceError) as e:
        load_snips(str(root))
    assert f"{root / 'valid' / 'seq.in'}:2: undecodable bytes" in _one_line(e)


def test_xlmt_bad_label_names_file_and_line(tmp_path: Path) -> None:
    d = tmp_path / "english"
    d.mkdir()
    for split in ("train", "val", "test"):
        (d / f"{split}_text.txt").write_text("good\nbad\n")
        (d / f"{split}_labels.txt").write_text("2\n0\n")
    assert len(load_xlmt_sentiment(str(tmp_path), "english")["train"]) == 2
    (d / "val_labels.txt").write_text("2\n3\n")
    expected = f"{d / 'val_labels.txt'}:2: label '3'; expected 0, 1 or 2"
    with pytest.raises(DataSourceError, match=re.escape(expected)):
        load_xlmt_sentiment(str(tmp_path), "english")
    (d / "val_labels.txt").write_text("2\n1\n")
    (d / "test_labels.txt").unlink()
    with pytest.raises(DataNotFoundError, match=r"test_labels.txt: file not found; expected <root>/<lang"):
        load_xlmt_sentiment(str(tmp_path), "english")


def test_clinc150_bad_json_and_missing_keys(tmp_path: Path) -> None:
    (tmp_path / "data_full.json").write_text('{"train": [["hi", "greet"]],\n "val": [}')
    with pytest.raises(DataSourceError, match=r"data_full.json:2: invalid JSON"):
        load_clinc150(str(tmp_path))
    (tmp_path / "data_full.json").write_text('{"train": [], "val": []}')
    with pytest.raises(DataSourceError, match=r"\['test', 'oos_train', 'oos_val', 'oos_test'\] missing"):
        load_clinc150(str(tmp_path))


# ================================================================================= load_table
def _csv(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _user_rows(n: int = 40) -> str:
    intents, sentiments = ["book_flight", "cancel", "baggage", "refund"], ["positive", "negative"]
    return "text,intent,sentiment\n" + "".join(
        f"message number {i} about {intents[i % 4]},{intents[i % 4]},{sentiments[i % 2]}\n" for i in range(n)
    )


def test_table_stratified_split_is_seeded(tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", _user_rows(40))
    a = load_table(path)
    assert {k: len(v) for k, v in a.items()} == {"train": 32, "val": 4, "test": 4}
    assert all(
        Counter(r["intent"] for r in a[s]) == dict.fromkeys(Counter(r["intent"] for r in a[s]), 1)
        for s in ("val", "test")
    )  # stratified: one of each of the 4 intents
    assert a == load_table(path) and a != load_table(path, seed=1)
    assert a["train"][0].keys() == {"text", "intent", "sentiment", "source"}
    assert a["train"][0]["source"] == "u"
    texts = [r["text"] for s in a.values() for r in s]
    assert len(set(texts)) == 40


def test_table_label_columns_forms(tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", _user_rows(40))
    renamed = load_table(path, label_columns={"topic": "intent"}, fractions=(0.8, 0.2, 0.0))
    assert set(renamed) == {"train", "val"} and set(renamed["train"][0]) == {"text", "topic", "source"}
    listed = load_table(path, label_columns=["sentiment"])
    assert set(listed["train"][0]) == {"text", "sentiment", "source"}


def test_table_jsonl_with_files_and_missing_labels(tmp_path: Path) -> None:
    rows = [
        {"text": "hi there", "intent": "greet", "n": 1},
        {"text": "bye", "intent": None, "n": 2},
        {"text": "yo", "n": 1},
    ]
    train = tmp_path / "train.jsonl"
    train.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    out = load_table(str(train), val=str(train), test=str(train), label_columns=["intent", "n"])
    assert [r["intent"] for r in out["test"]] == ["greet", None, None]
    assert [r["n"] for r in out["test"]] == ["1", "2", "1"]


def test_table_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError) as e:
        load_table(str(tmp_path / "absent.csv"))
    msg = _one_line(e)
    assert f"{tmp_path / 'absent.csv'}: file not found; expected a CSV/TSV file with a header row" in msg


def test_table_missing_column_lists_those_present(tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", "utterance,intent\nhello,greet\n")
    with pytest.raises(DataSourceError) as e:
        load_table(path)
    expected = "column 'text' (text_column) not found; expected one of the columns present: ['utterance', 'intent']"
    assert f"{path}: {expected}" in _one_line(e)
    missing_label = r"column 'label' \(label_columns.intent\) not found; expected one of the columns present: "
    missing_label += r"\['utterance', "
    with pytest.raises(DataSourceError, match=missing_label):
        load_table(path, text_column="utterance", label_columns={"intent": "label"})


def test_table_unseen_val_labels_per_policy(tmp_path: Path) -> None:
    train = _csv(tmp_path / "train.csv", "text,intent\nbook a flight,book\ncancel it,cancel\nnah,unknown\n")
    val = _csv(tmp_path / "val.csv", "text,intent\nbook one,book\nwhere is my bag,baggage\n")
    with pytest.raises(DataSourceError) as e:
        load_table(train, val=val)
    assert "split 'val' has label(s) never seen in 'train' (task 'intent': ['baggage'])" in _one_line(e)
    with pytest.warns(DataWarning, match="dropped 1 example"):
        dropped = load_table(train, val=val, unknown_labels="drop")
    assert [r["intent"] for r in dropped["val"]] == ["book"]
    with pytest.warns(DataWarning, match="masked"):
        masked = load_table(train, val=val, unknown_labels="mask")
    assert [r["intent"] for r in masked["val"]] == ["book", None]
    with pytest.warns(DataWarning, match="relabelled"):
        out = load_table(train, val=val, unknown_labels="unknown")
    assert [r["intent"] for r in out["val"]] == ["book", "unknown"]
    no_unknown = _csv(tmp_path / "t2.csv", "text,intent\nbook a flight,book\ncancel it,cancel\n")
    with pytest.raises(DataSourceError, match="needs an 'unknown' class"):
        load_table(no_unknown, val=val, unknown_labels="unknown")


def test_table_empty_texts_are_dropped_with_a_warning(tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", 'text,intent\nhello,greet\n"   ",greet\n,greet\nbye,leave\n')
    with pytest.warns(DataWarning, match=re.escape(f"{path}: dropped 2 example(s) with empty or whitespace")):
        out = load_table(path, val=path, test=path)
    assert [r["text"] for r in out["train"]] == ["hello", "bye"]


def test_table_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "u.csv"
    path.write_bytes(b"text,intent\nhello,greet\ncaf\xe9 au lait,order\n")
    with pytest.raises(DataSourceError) as e:
        load_table(str(path))
    assert f"{path}:3: undecodable bytes b'\\xe9' at column 4; expected UTF-8 text" in _one_line(e)
    jl = tmp_path / "u.jsonl"
    jl.write_bytes(b'{"text": "ok", "intent": "a"}\n{"text": "\xff", "intent": "b"}\n')
    with pytest.raises(DataSourceError, match=r"u.jsonl:2: undecodable bytes"):
        load_table(str(jl))


def test_table_wrong_field_count_names_the_line(tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", 'text,intent\nhello,greet\n"multi\nline",greet\nhi, there,greet\n')
    with pytest.raises(DataSourceError) as e:
        load_table(path)
    assert f"{path}:5: 3 field(s); expected 2 (text, intent)" in _one_line(e)
    tsv = _csv(tmp_path / "s.tsv", "text\tintent\nhello\tgreet\tpolite\n")
    with pytest.raises(DataSourceError, match=r"s.tsv:2: 3 field\(s\); expected 2 \(text, intent\)"):
        load_table(tsv)
    header_only = _csv(tmp_path / "h.csv", "text,intent\n")
    with pytest.raises(DataSourceError, match=r"h.csv: no example with a non-empty 'text'"):
        load_table(header_only)
    with pytest.raises(
        DataSourceError, match=r"no label column besides 'text' \(columns present: \['text'\]\); expected one column"
    ):
        load_table(_csv(tmp_path / "t.csv", "text\nhello\n"))
    dupes = _csv(tmp_path / "d.csv", "text,intent,intent\nhi,a,b\n")
    with pytest.raises(DataSourceError, match=r"d.csv:1: duplicate column name\(s\) \['intent'\]"):
        load_table(dupes)


def test_table_bad_jsonl_line_and_format(tmp_path: Path) -> None:
    jl = tmp_path / "u.jsonl"
    jl.write_text('{"text": "ok", "intent": "a"}\n{"text": "oops", \n')
    with pytest.raises(DataSourceError, match=r"u.jsonl:2: invalid JSON .*expected one JSON object per line"):
        load_table(str(jl))
    txt = _csv(tmp_path / "u.txt", "text,intent\n")
    with pytest.raises(DataSourceError, match=r"cannot tell the format from the extension '.txt'"):
        load_table(txt)
    with pytest.raises(DataSourceError, match=r"fractions=\[0.5, 0.5, 0.5\]"):
        load_table(_csv(tmp_path / "u.csv", _user_rows(8)), fractions=(0.5, 0.5, 0.5))


def _write_csv(path: Path, rows: list[list[str]]) -> str:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return str(path)


def _jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


SLOT_ROWS = [
    ("book a table at 7 pm", "book", "O O O O B-time I-time"),
    ("rain  tomorrow", "weather", "O B-date"),
    ("hello there", "greet", ""),
]


def test_table_csv_tags_column(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "u.csv", [["text", "intent", "tags"], *map(list, SLOT_ROWS)])
    out = load_table(path, val=path, test=path, token_columns={"slots": "tags"})
    assert out["train"][0] == {
        "text": "book a table at 7 pm",
        "intent": "book",
        "slots": ["O", "O", "O", "O", "B-time", "I-time"],
        "source": "u",
    }
    assert [r["slots"] for r in out["val"][1:]] == [["O", "B-date"], None]  # an empty cell: no annotation
    assert all(r.keys() == {"text", "intent", "slots", "source"} for r in out["test"])  # tags is no sequence task
    listed = load_table(path, val=path, test=path, label_columns=["intent"], token_columns=["tags"])
    assert listed["train"][0]["tags"] == out["train"][0]["slots"]


def test_table_tags_errors_name_file_line_and_column(tmp_path: Path) -> None:
    rows = [["text", "intent", "tags"], ["multi\nline text", "a", "O O O"], ["book it", "a", "O"]]
    path = _write_csv(tmp_path / "u.csv", rows)
    with pytest.raises(DataSourceError) as e:
        load_table(path, val=path, test=path, token_columns={"slots": "tags"})
    assert _one_line(e) == (
        f"{path}:4: column 'tags': 1 BIO tag(s) for 2 word(s); expected one tag per whitespace-separated word "
        f"of the text"
    )
    rows[2][2] = "O I-thing"
    path = _write_csv(tmp_path / "u.csv", rows)
    with pytest.raises(DataSourceError) as e:
        load_table(path, val=path, test=path, token_columns={"slots": "tags"})
    assert _one_line(e) == (
        f"{path}:4: column 'tags': tag 2 'I-thing' follows 'O'; expected I-thing only after B-thing or I-thing "
        f"(bio_repair: true makes it B-thing)"
    )
    fixed = load_table(path, val=path, test=path, token_columns={"slots": "tags"}, bio_repair=True)
    assert fixed["train"][1]["slots"] == ["O", "B-thing"]
    with pytest.raises(DataSourceError, match=r"column 'nope' \(token_columns.slots\) not found; expected one of"):
        load_table(path, token_columns={"slots": "nope"})


def test_table_csv_spans_column(tmp_path: Path) -> None:
    text = "book a table at 7 pm"
    spans = [{"start": 16, "end": 20, "label": "time"}]
    rows = [["text", "intent", "entities"], [text, "book", json.dumps(spans)], ["rain now", "weather", "[]"]]
    rows.append(["hi", "greet", ""])
    path = _write_csv(tmp_path / "u.csv", rows)
    out = load_table(path, val=path, test=path, token_columns={"slots": "entities"}, token_format="spans")
    assert [r["slots"] for r in out["test"]] == [["O", "O", "O", "O", "B-time", "I-time"], ["O", "O"], None]
    assert bio_to_spans(out["test"][0]["text"], out["test"][0]["slots"]) == spans
    assert out["test"][0].keys() == {"text", "intent", "slots", "source"}


def test_table_spans_errors_name_file_and_line(tmp_path: Path) -> None:
    opts = {"token_columns": {"slots": "entities"}, "token_format": "spans"}
    header = ["text", "intent", "entities"]
    cases = {
        '[{"start": 7, "end": 13, "label": "x"}]': "span 1 [7, 13) 'x' ('morrow') does not align to word boundaries",
        '[{"start": 0, "end": 4, "label": "a"}, {"start": 2, "end": 8, "label": "b"}]': "overlap",
        '[{"start": 5, "end": 99, "label": "d"}]': "is outside the text (length 13); expected 0 <= start < end <= 13",
        '[{"start": 5, "end": 13, "label": "d"}': "invalid JSON (Expecting ',' delimiter)",
        '{"start": 5, "end": 13, "label": "d"}': "a JSON dict",
    }
    for cell, expected in cases.items():
        path = _write_csv(tmp_path / "u.csv", [header, ["hi", "a", ""], ["rain tomorrow", "b", cell]])
        with pytest.raises(DataSourceError) as e:
            load_table(path, val=path, test=path, **opts)
        msg = _one_line(e)
        assert msg.startswith(f"{path}:3: column 'entities': ") and expected in msg, msg
    path = _write_csv(tmp_path / "u.csv", [header, ["rain tomorrow", "b", '[{"start": 7, "end": 9, "label": "x"}]']])
    assert load_table(path, val=path, test=path, bio_repair=True, **opts)["val"][0]["slots"] == ["O", "B-x"]


def test_table_jsonl_token_columns_both_forms_and_tokens_column(tmp_path: Path) -> None:
    rows = [
        {"text": "wake me at 6 am", "intent": "alarm", "tags": ["O", "O", "O", "B-time", "I-time"]},
        {"text": "rain tomorrow", "intent": "weather", "tags": "O B-date"},
        {"text": "hi", "intent": "greet", "tags": None},
        {"text": "bye", "intent": "leave"},
    ]
    path = _jsonl(tmp_path / "u.jsonl", rows)
    out = load_table(path, val=path, test=path, token_columns={"slots": "tags"})
    assert [r["slots"] for r in out["train"]] == [["O", "O", "O", "B-time", "I-time"], ["O", "B-date"], None, None]
    spans = [
        {"text": "wake me at 6 am", "intent": "alarm", "ents": [{"start": 11, "end": 15, "label": "time"}]},
        {"text": "rain tomorrow", "intent": "weather", "ents": '[{"start": 5, "end": 13, "label": "date"}]'},
        {"text": "hi", "intent": "greet", "ents": []},
    ]
    path = _jsonl(tmp_path / "s.jsonl", spans)
    out = load_table(path, val=path, test=path, token_columns={"slots": "ents"}, token_format="spans")
    assert [r["slots"] for r in out["val"]] == [["O", "O", "O", "B-time", "I-time"], ["O", "B-date"], ["O"]]
    tokens = [
        {"tokens": ["fly", "to", "new", "york"], "intent": "flight", "tags": "O O B-city I-city"},
        {"tokens": "rain   tomorrow", "intent": "weather", "tags": ["O", "B-date"]},
    ]
    path = _jsonl(tmp_path / "t.jsonl", tokens)
    out = load_table(path, val=path, test=path, tokens_column="tokens", token_columns={"slots": "tags"})
    assert out["test"] == [
        {"text": "fly to new york", "intent": "flight", "slots": ["O", "O", "B-city", "I-city"], "source": "t"},
        {"text": "rain tomorrow", "intent": "weather", "slots": ["O", "B-date"], "source": "t"},
    ]
    bad = _jsonl(tmp_path / "b.jsonl", [*tokens, {"tokens": ["new york"], "intent": "x", "tags": "B-city"}])
    with pytest.raises(DataSourceError) as e:
        load_table(bad, val=bad, test=bad, tokens_column="tokens", token_columns={"slots": "tags"})
    assert _one_line(e).startswith(f"{bad}:3: column 'tokens': tokens ['new york']; expected space-separated tokens")
    bad = _jsonl(tmp_path / "b.jsonl", [*rows[:2], {"text": "a b", "intent": "x", "tags": {"O": 1}}])
    with pytest.raises(DataSourceError, match=re.escape(f"{bad}:3: column 'tags': a JSON dict")):
        load_table(bad, val=bad, test=bad, token_columns={"slots": "tags"})


def test_table_token_options_are_checked(tmp_path: Path) -> None:
    path = _write_csv(tmp_path / "u.csv", [["text", "intent", "tags"], *map(list, SLOT_ROWS)])
    with pytest.raises(DataSourceError, match=r"token_format='bio'; expected one of \['tags', 'spans'\]"):
        load_table(path, token_columns={"slots": "tags"}, token_format="bio")
    with pytest.raises(DataSourceError, match=r"task\(s\) \['intent'\] in both label_columns and token_columns"):
        load_table(path, label_columns=["intent"], token_columns={"intent": "tags"})
    with pytest.raises(
        DataSourceError, match=r"split_by='slots' is a token task; expected a sequence task: \['intent'\]"
    ):
        load_table(path, token_columns={"slots": "tags"}, split_by="slots")


def test_table_token_tasks_only_split_at_random(tmp_path: Path, recwarn: pytest.WarningsRecorder) -> None:
    rows = [["text", "tags"]] + [[f"call number {i}", "O O B-n"] for i in range(20)]
    path = _write_csv(tmp_path / "u.csv", rows)
    out = load_table(path, token_columns={"slots": "tags"})
    assert {k: len(v) for k, v in out.items()} == {"train": 16, "val": 2, "test": 2}
    assert out == load_table(path, token_columns={"slots": "tags"})
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]
    assert out["val"][0].keys() == {"text", "slots", "source"}


def test_load_source_resolves_loaders_and_checks_options(tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", _user_rows(40))
    out = load_source("table", train=path, noise={"test_p": 1.0, "seed": 3})
    assert set(out) == {"train", "val", "test", "test_noisy"}
    with pytest.raises(DataSourceError, match=r"'tabel' not found; expected one of \['atis', 'clinc150'"):
        load_source("tabel", train=path)
    with pytest.raises(DataSourceError, match=r"unknown option\(s\) \['trian'\]; accepted: \['train'"):
        load_source("table", trian=path)
    with pytest.raises(DataSourceError, match=r"loader 'clinc150': missing a required argument: 'root'"):
        load_source("clinc150", oos="class")


# ================================================================================= Hydra: conf/data/csv.yaml
def test_csv_yaml_composes_and_sets_up(tmp_path: Path, cache_dir: Path) -> None:
    path = _csv(tmp_path / "user.csv", _user_rows(40))
    label_maps = "[{task:intent,mapping:{travel:[book_flight,baggage]},new_task:intent_coarse,default:money}]"
    cfg = make_cfg(
        tmp_path / "run",
        cache_dir,
        "data=csv",
        "tasks=intent_sentiment",
        f"data.source.train={path}",
        f"data.source.label_maps={label_maps}",
    )
    assert cfg.data.test_splits == ["test", "test_noisy"]
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    assert dm.label_names == {
        "intent": ["baggage", "book_flight", "cancel", "refund"],
        "sentiment": ["negative", "positive"],
    }
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 32, "val": 4, "test": 4, "test_noisy": 4}
    assert dm.test_splits == ["test", "test_noisy"]
    recs = dm.source()
    assert {(r["intent"], r["intent_coarse"]) for r in recs["train"]} == {
        ("book_flight", "travel"),
        ("baggage", "travel"),
        ("cancel", "money"),
        ("refund", "money"),
    }


def test_jsonl_yaml_token_columns(tmp_path: Path, cache_dir: Path) -> None:
    rows = [{"text": f"wake me at {i} am", "intent": "alarm", "tags": "O O O B-time I-time"} for i in range(10)]
    rows += [{"text": f"rain on day {i}", "intent": "weather", "tags": "O O B-date I-date"} for i in range(10)]
    path = _jsonl(tmp_path / "u.jsonl", rows)
    cfg = make_cfg(tmp_path / "run", cache_dir, "data=jsonl", f"data.source.train={path}")
    assert cfg.data.source.token_columns is None and cfg.data.source.token_format == "tags"
    assert cfg.data.source.tokens_column is None and cfg.data.source.bio_repair is False
    cfg = make_cfg(
        tmp_path / "run",
        cache_dir,
        "data=jsonl",
        f"data.source.train={path}",
        "data.source.token_columns={slots:tags}",
        "data.source.noise.test_p=0.0",
    )
    recs = hydra.utils.instantiate(cfg.data).source()
    assert {k: len(v) for k, v in recs.items()} == {"train": 16, "val": 2, "test": 2, "test_noisy": 2}
    assert all(len(r["slots"]) == len(r["text"].split()) == 5 - (r["intent"] == "weather") for r in recs["train"])
    assert recs["train"][0].keys() == {"text", "intent", "slots", "source"}
