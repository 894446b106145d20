"""The embedded support corpus: held-out patterns by id, entity spans in every language, OOS without labels, the
configured label-noise rate, determinism."""

from __future__ import annotations

import pytest

from intentfusion.data.slots import bio_to_spans
from intentfusion.data.support import LABELS, LANGUAGES, REQUIRED_ENTITY, SHARED_POOLS, TASKS, load_support
from intentfusion.data.support_intents import INTENTS, NEAR_PAIRS


@pytest.fixture(scope="module")
def corpus() -> dict:
    return load_support(3000, seed=0)


def test_no_pattern_of_test_or_val_occurs_in_another_split(corpus: dict) -> None:
    ids = {split: {p for r in corpus[split] for p in r["patterns"]} for split in ("train", "val", "test")}
    held_out = {split: {p for p in split_ids if not p.startswith(SHARED_POOLS)} for split, split_ids in ids.items()}
    assert not held_out["train"] & held_out["test"] and not held_out["train"] & held_out["val"]
    assert not held_out["val"] & held_out["test"]
    assert {p.split("/")[0] for p in held_out["test"]} >= {"frame", "expr", "mention", "opener"}
    assert {p for p in ids["test"] if p.startswith("cue/")} <= ids["train"]  # the labels' cue vocabulary is shared
    texts = {split: {r["text"] for r in corpus[split]} for split in ("train", "val", "test")}
    assert not texts["train"] & texts["test"]


def test_entity_spans_match_the_text_and_the_tags_in_every_language(corpus: dict) -> None:
    seen = set()
    for record in corpus["train"] + corpus["test"]:
        for entity in record["entities"]:
            assert (
                record["text"][entity["start"] : entity["end"]].strip()
                == record["text"][entity["start"] : entity["end"]]
            )
            seen.add((record["language"], entity["label"]))
        assert bio_to_spans(record["text"], record["slots"]) == record["entities"]
    assert {lang for lang, _ in seen} == set(LANGUAGES)
    assert {label for _, label in seen} == {"order_id", "amount", "date", "product", "email", "card_last4"}


def test_labels_follow_the_rules_and_oos_carries_none(corpus: dict) -> None:
    for record in corpus["test"]:
        needed = REQUIRED_ENTITY[record["intent"]]
        missing = needed is not None and needed not in {e["label"] for e in record["entities"]}
        if record["urgency"] == "high" or record["sentiment"] == "angry":
            assert record["action"] == "escalate_to_human"
        else:
            assert record["action"] == ("request_more_info" if missing else "auto_resolve")
    assert len(INTENTS) >= 20 and len(NEAR_PAIRS) >= 5
    for split in ("val_oos", "test_oos"):
        assert corpus[split] and all(r["is_oos"] and all(r[t] is None for t in TASKS) for r in corpus[split])
    assert {r["text"] for r in corpus["test_oos"]}.isdisjoint({r["text"] for r in corpus["train"]})


def test_label_noise_is_training_only_and_at_the_configured_rate() -> None:
    noisy = load_support(6000, seed=1, label_noise=0.1)
    flips = [t for r in noisy["train"] for t in r["noisy_labels"]]
    for task in LABELS:
        assert abs(flips.count(task) / len(noisy["train"]) - 0.1) < 0.025
    assert all("noisy_labels" not in r for r in noisy["test"] + noisy["val"])
    clean = load_support(3000, seed=0, label_noise=0.0)
    assert not any(r["noisy_labels"] for r in clean["train"])
    assert load_support(600, seed=4)["test"] == load_support(600, seed=4)["test"]  # deterministic
