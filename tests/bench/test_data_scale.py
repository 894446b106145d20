"""The scale bench's synthetic data: deterministic, one valid BIO tag per word, the intents it promises."""

from __future__ import annotations

from bench.data_scale import INTENTS, synthetic
from intentfusion.data.slots import validate_bio


def test_synthetic_data_is_deterministic_and_valid_bio() -> None:
    data = synthetic(2_000, seed=3)
    assert data == synthetic(2_000, seed=3) and data != synthetic(2_000, seed=4)
    assert len(data["text"]) == len(data["intent"]) == len(data["tags"]) == 2_000
    for text, tags in zip(data["text"], data["tags"], strict=True):
        assert 4 <= len(text.split()) == len(tags) <= 16
        validate_bio(tags, "synthetic")
    assert len(set(data["intent"])) == INTENTS
    assert sum(t != "O" for tags in data["tags"] for t in tags) > 2_000  # slots are there
