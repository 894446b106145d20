"""Behaviour of the shared record transforms: cleaning, label maps, unseen labels, noise, `prepare`."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from intentfusion.data.noise import noisy_copy
from intentfusion.data.slots import validate_bio
from intentfusion.data.sources import DataSourceError, load_snips
from intentfusion.data.transforms import (
    DataWarning,
    add_noisy_split,
    augment_train,
    clean_texts,
    map_labels,
    prepare,
    resolve_unseen_labels,
    subsample,
    unescape_unicode,
)

from ..conftest import ROOT

DATA = Path(os.environ.get("INTENTFUSION_DATA_DIR", ROOT.parent / "shared" / "data"))

TEXTS = [
    "please refund my order because it never arrived",
    "where is my package, I ordered it last week",
    "thank you for the quick help with my account",
    "I cannot log in to my account since yesterday",
    "can you tell me something about your premium plan",
    "my invoice shows the wrong amount for this month",
]


def _records(n: int = 60) -> list[dict]:
    intents = ["refund", "order_status", "account", "account", "plans", "billing"]
    return [
        {"text": f"{TEXTS[i % 6]} {i}", "intent": intents[i % 6], "sentiment": "calm" if i % 2 else None}
        for i in range(n)
    ]


@pytest.fixture
def splits() -> dict[str, list[dict]]:
    return {"train": _records(60), "val": _records(12), "test": _records(30)}


# ------------------------------------------------------------------------------------------ cleaning
def test_clean_texts_drops_empty_and_whitespace_with_a_counted_warning() -> None:
    recs = [{"text": "ok"}, {"text": ""}, {"text": "   \t"}, {"text": None}, {"text": "  spaced  "}, {"x": 1}]
    with pytest.warns(DataWarning, match=r"my\.csv: dropped 4 example\(s\) with empty or whitespace-only"):
        kept = clean_texts(recs, "my.csv")
    assert [r["text"] for r in kept] == ["ok", "spaced"]
    assert recs[4]["text"] == "  spaced  "  # input untouched


def test_clean_texts_is_silent_when_nothing_is_dropped(recwarn: pytest.WarningsRecorder) -> None:
    assert clean_texts([{"text": "a"}], "x") == [{"text": "a"}]
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


def test_unescape_unicode_decodes_literal_escapes_only() -> None:
    assert unescape_unicode("I\\u2019m here\\u002c ok") == "I\u2019m here, ok"
    assert unescape_unicode("no escapes \\n here") == "no escapes \\n here"


# ------------------------------------------------------------------------------------------ label maps
def test_map_labels_new_task_keeps_both_levels() -> None:
    recs = _records(12)
    before = copy.deepcopy(recs)
    mapping = {
        "refund": "money",
        "billing": "money",
        "order_status": "orders",
        "account": "account",
        "plans": "sales",
    }
    out = map_labels(recs, "intent", mapping, new_task="intent_coarse")
    assert recs == before
    assert [r["intent"] for r in out] == [r["intent"] for r in recs]
    assert [r["intent_coarse"] for r in out] == [mapping[r["intent"]] for r in recs]


def test_map_labels_replaces_the_task_without_new_task_and_keeps_missing_labels_missing() -> None:
    recs = _records(6)
    out = map_labels(recs, "sentiment", {"calm": "neutral"})
    assert [r["sentiment"] for r in out] == [None, "neutral"] * 3
    assert "sentiment_coarse" not in out[0]


def test_map_labels_accepts_the_grouped_domains_json_layout() -> None:
    grouped = {"money": ["refund", "billing"], "other": ["order_status", "account", "plans"]}
    out = map_labels(_records(6), "intent", grouped)
    assert {r["intent"] for r in out} == {"money", "other"}
    with pytest.raises(DataSourceError, match="'refund' is listed under both 'a' and 'b'"):
        map_labels(_records(6), "intent", {"a": ["refund"], "b": ["refund"]})


def test_map_labels_core_list_with_default() -> None:
    out = map_labels(_records(6), "intent", ["refund", "billing"], new_task="core", default="other")
    assert [r["core"] for r in out] == ["refund", "other", "other", "other", "other", "billing"]


def test_map_labels_missing_labels_raise_a_listing_error() -> None:
    with pytest.raises(DataSourceError) as e:
        map_labels(_records(6), "intent", {"refund": "money", "billing": "money"}, new_task="coarse")
    msg = str(e.value)
    assert "'intent'" in msg and "['account', 'order_status', 'plans']" in msg and "no default" in msg
    assert "\n" not in msg


def test_map_labels_unknown_task_names_the_keys_present() -> None:
    with pytest.raises(DataSourceError, match=r"task 'topic' not found.*'intent'"):
        map_labels(_records(6), "topic", {"a": "b"})


# ------------------------------------------------------------------------------------------ unseen labels
@pytest.fixture
def unseen() -> dict[str, list[dict]]:
    train = [{"text": "a", "intent": "x"}, {"text": "b", "intent": "y"}, {"text": "c", "intent": "unknown"}]
    test = [{"text": "d", "intent": "x"}, {"text": "e", "intent": "z"}, {"text": "f", "intent": None}]
    return {"train": train, "val": [dict(r) for r in test[:1]], "test": test}


def test_unseen_error_lists_the_labels(unseen) -> None:
    with pytest.raises(
        DataSourceError,
        match=r"my_data: split 'test' has label\(s\) never seen in 'train' "
        r"\(task 'intent': \['z'\]\)",
    ):
        resolve_unseen_labels(unseen, ["intent"], "error", where="my_data")


def test_unseen_mask_drop_unknown(unseen) -> None:
    with pytest.warns(DataWarning, match=r"masked the label of 1 example"):
        masked = resolve_unseen_labels(unseen, ["intent"], "mask")
    assert [r["intent"] for r in masked["test"]] == ["x", None, None] and masked["test"][1]["text"] == "e"
    with pytest.warns(DataWarning, match=r"dropped 1 example"):
        dropped = resolve_unseen_labels(unseen, ["intent"], "drop")
    assert [r["text"] for r in dropped["test"]] == ["d", "f"]
    with pytest.warns(DataWarning, match="relabelled as 'unknown'"):
        relabelled = resolve_unseen_labels(unseen, ["intent"], "unknown")
    assert [r["intent"] for r in relabelled["test"]] == ["x", "unknown", None]
    assert unseen["test"][1]["intent"] == "z"


def test_unseen_unknown_needs_an_unknown_training_class(unseen) -> None:
    unseen["train"] = unseen["train"][:2]
    with pytest.raises(DataSourceError, match="needs an 'unknown' class.*expected unknown_labels 'mask' or 'drop'"):
        resolve_unseen_labels(unseen, ["intent"], "unknown")


def test_unseen_rejects_an_unknown_policy(unseen) -> None:
    with pytest.raises(DataSourceError, match=r"'ignore' is not a policy.*\['error', 'unknown', 'drop'"):
        resolve_unseen_labels(unseen, ["intent"], "ignore")


# ------------------------------------------------------------------------------------------ noise
def test_noisy_split_is_deterministic_and_label_preserving(splits) -> None:
    a = add_noisy_split(splits, p=1.0, seed=7)
    b = add_noisy_split(splits, p=1.0, seed=7)
    c = add_noisy_split(splits, p=1.0, seed=8)
    noisy = a["test_noisy"]
    assert noisy == b["test_noisy"] and noisy != c["test_noisy"]
    assert len(noisy) == len(splits["test"])
    assert sum(n["text"] != r["text"] for n, r in zip(noisy, splits["test"], strict=True)) >= 0.9 * len(noisy)
    for n, r in zip(noisy, splits["test"], strict=True):
        assert {k: v for k, v in n.items() if k != "text"} == {k: v for k, v in r.items() if k != "text"}
    assert "test_noisy" not in splits and a["test"] is splits["test"]


def test_noisy_split_p0_is_a_copy_and_custom_source(splits) -> None:
    out = add_noisy_split(splits, source_split="val", name="val_noisy", p=0.0)
    assert out["val_noisy"] == splits["val"]


def _slot_records() -> list[dict]:
    rows = [
        ("book a table at 7 pm", "O O O O B-time I-time"),
        ("add sabrina salerno to the grime instrumentals playlist", "O B-artist I-artist O O B-playlist I-playlist O"),
        ("will it snow in mt on june 13 2038", "O O B-condition O B-state O B-timeRange I-timeRange I-timeRange"),
    ]
    return [
        {
            "text": text,
            "intent": "x",
            "tokens": text.split(),
            "slots": tags.split(),
            "position": [str(i) for i in range(len(tags.split()))],  # each word's original index
        }
        for text, tags in rows
    ]


def test_a_record_with_slots_keeps_one_tag_per_word_after_noise_for_many_seeds() -> None:
    recs = _slot_records()
    changed = 0
    for seed in range(100):
        for r, n in zip(recs, add_noisy_split({"test": recs}, p=1.0, seed=seed)["test_noisy"], strict=True):
            words = n["text"].split()
            assert n["text"] == " ".join(words) and n["tokens"] == words
            assert len(n["slots"]) == len(words) == len(n["position"]) and n["intent"] == "x"
            validate_bio(n["slots"], "test_noisy")
            kept = [i for i, pos in enumerate(n["position"]) if pos != "O"]
            assert [n["position"][i] for i in kept] == r["position"]  # original words in order, none lost
            assert [n["slots"][i] for i in kept] == r["slots"]  # ... with exactly their tags
            for i, pos in enumerate(n["position"]):
                if pos == "O":  # an inserted word: tagged O, never inside an entity
                    assert n["slots"][i] == "O"
                    assert i + 1 == len(words) or not n["slots"][i + 1].startswith("I-")
            changed += n["text"] != r["text"]
    assert changed >= 0.95 * 100 * len(recs)
    assert recs == _slot_records()  # input untouched


def test_noisy_split_blanks_lists_that_cannot_be_kept_aligned() -> None:
    rec = {
        "text": "book a table for two",
        "intent": "Book",
        "tokens": "book a table for two".split(),
        "slots": ["O", "O", "O", "O", "B-n"],
        "scores": [1, 2, 3, 4, 5],  # one entry per word, but not strings: no tag for an inserted word
        "pairs": ["a", "b"],  # not one entry per word
    }
    out = add_noisy_split({"test": [rec]}, p=1.0, seed=3)["test_noisy"][0]
    assert out["text"] != rec["text"] and out["intent"] == "Book"
    assert out["tokens"] == out["text"].split() and len(out["slots"]) == len(out["tokens"])
    assert out["scores"] is None and out["pairs"] is None


def test_records_without_word_labels_are_noised_exactly_as_before() -> None:
    plain = [{"text": t, "intent": "x"} for t in TEXTS]
    unlabelled = [{"text": "book a table for two", "intent": "x", "tokens": None, "slots": None}]
    misaligned = [{"text": "book a table for two", "intent": "x", "slots": ["O", "B-n"]}]
    recs = [*plain, *_slot_records(), *unlabelled, *misaligned]
    for seed in (0, 7, 1234):
        expected = noisy_copy([r["text"] for r in recs], 1.0, seed)  # the text-only path, unchanged
        noisy = add_noisy_split({"test": recs}, p=1.0, seed=seed)["test_noisy"]
        for i in [*range(len(plain)), len(recs) - 2, len(recs) - 1]:
            assert noisy[i]["text"] == expected[i]
        assert noisy[-2]["tokens"] is None and noisy[-2]["slots"] is None
        assert noisy[-1]["slots"] is None  # today's behaviour: a list that does not fit the text is blanked


def test_augmented_copies_of_slot_records_keep_their_tags_aligned() -> None:
    recs = _slot_records() * 10
    out = augment_train({"train": recs}, p=1.0, seed=2)["train"]
    extra = out[len(recs) :]
    assert len(extra) >= 0.9 * len(recs)
    for e in extra:
        assert e["augmented"] and len(e["slots"]) == len(e["text"].split()) == len(e["tokens"])
        validate_bio(e["slots"], "augmented")


def test_noisy_snips_test_split_has_every_slot_list_present_and_aligned() -> None:
    root = DATA / "snips"
    if not root.is_dir():
        pytest.skip(f"benchmark data not found at {root} (set INTENTFUSION_DATA_DIR)")
    snips = load_snips(str(root))
    noisy = add_noisy_split(snips, p=1.0, seed=1234)["test_noisy"]
    assert len(noisy) == len(snips["test"])
    assert sum(n["text"] != r["text"] for n, r in zip(noisy, snips["test"], strict=True)) >= 0.95 * len(noisy)
    for n, r in zip(noisy, snips["test"], strict=True):
        assert n["slots"] is not None and len(n["slots"]) == len(n["text"].split()) == len(n["tokens"])
        validate_bio(n["slots"], "snips/test_noisy")
        assert [t for t in n["slots"] if t != "O"] == [t for t in r["slots"] if t != "O"]
        assert n["intent"] == r["intent"]


def test_noisy_split_missing_source_split(splits) -> None:
    with pytest.raises(DataSourceError, match=r"split 'dev' not found; splits: \['test', 'train', 'val"):
        add_noisy_split(splits, source_split="dev")


def test_augment_train_adds_labelled_noisy_copies(splits) -> None:
    out = augment_train(splits, p=0.5, seed=1)
    train = out["train"]
    n = len(splits["train"])
    assert train[:n] == splits["train"]
    extra = train[n:]
    assert 0.3 * n <= len(extra) <= 0.7 * n
    originals = {r["text"]: r for r in splits["train"]}
    assert all(e["augmented"] and e["text"] not in originals for e in extra)
    assert out == augment_train(splits, p=0.5, seed=1)
    assert {e["intent"] for e in extra} <= {r["intent"] for r in splits["train"]}
    assert augment_train(splits, p=0.0) is splits
    assert out["test"] is splits["test"]


# ------------------------------------------------------------------------------------------ prepare
def test_prepare_applies_label_maps_then_noise(splits) -> None:
    out = prepare(
        splits,
        label_maps=[{"task": "intent", "mapping": ["refund", "billing"], "new_task": "core", "default": "other"}],
        noise={"test_p": 1.0, "train_p": 1.0, "seed": 5},
    )
    assert set(out) == {"train", "val", "test", "test_noisy"}
    assert all("core" in r for split in out.values() for r in split)
    assert [r["core"] for r in out["test_noisy"]] == [r["core"] for r in out["test"]]
    assert len(out["train"]) > len(splits["train"])
    assert prepare(splits) == splits
    assert "test_noisy" not in prepare(splits, noise={"test_p": None})


def test_prepare_rejects_bad_specs(splits) -> None:
    with pytest.raises(DataSourceError, match="expected keys task, mapping"):
        prepare(splits, label_maps=[{"task": "intent", "map": {}}])
    with pytest.raises(DataSourceError, match=r"noise: unknown key\(s\) \['p'\]"):
        prepare(splits, noise={"p": 1.0})


def test_subsample_keeps_class_shares_order_and_is_seeded():
    records = [{"text": f"t{i}", "intent": "a" if i < 80 else "b"} for i in range(100)]
    sub = subsample(records, 10, seed=3, stratify="intent")
    assert [r["intent"] for r in sub].count("b") == 2
    assert sub == sorted(sub, key=lambda r: int(r["text"][1:]))
    assert sub == subsample(records, 10, seed=3, stratify="intent")
    assert sub != subsample(records, 10, seed=4, stratify="intent")
    assert subsample(records, 500) == records


def test_prepare_subset_before_noise_and_rejects_unknown_split():
    splits = {s: [{"text": f"hello there {i}", "intent": str(i % 5)} for i in range(50)] for s in ("train", "test")}
    out = prepare(splits, subset={"train": 10, "test": 20, "seed": 1}, noise={"test_p": 1.0})
    assert len(out["train"]) == 10 and len(out["test"]) == 20 and len(out["test_noisy"]) == 20
    assert sorted({r["intent"] for r in out["train"]}) == ["0", "1", "2", "3", "4"]
    with pytest.raises(ValueError, match="subset: split 'val' not found"):
        prepare(splits, subset={"val": 5})
