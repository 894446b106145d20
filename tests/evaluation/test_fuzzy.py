"""Fuzzy intent score with the offline MiniLM: exact matches score 1, different intents lower, thresholds."""

from __future__ import annotations

import pytest

from intentfusion.evaluation.fuzzy import FuzzyIntentScorer, humanise

LABELS = ["activate_card", "deactivate_card", "order_status", "report_lost_card", "reportStolenCard", "oos"]
ACTIVATE, DEACTIVATE, ORDER, LOST, STOLEN, OOS = range(6)


@pytest.fixture(scope="module")
def scorer() -> FuzzyIntentScorer:
    return FuzzyIntentScorer()


@pytest.mark.parametrize(
    ("label", "text"),
    [
        ("report_lost_card", "report lost card"),
        ("reportLostCard", "report lost card"),
        ("HTTPErrorCode", "http error code"),
        ("card-arrival", "card arrival"),
        ("oos", "out of scope"),
        ("OOS", "out of scope"),
        ("balance", "balance"),
    ],
)
def test_humanise(label: str, text: str) -> None:
    assert humanise(label) == text


def test_exact_matches_score_one(scorer: FuzzyIntentScorer) -> None:
    result = scorer.score([0, 1, 2, 5], [0, 1, 2, 5], LABELS, threshold=1.0)
    assert result["mean_similarity"] == pytest.approx(1.0)
    assert result["fuzzy_accuracy"] == 1.0 and result["exact_accuracy"] == 1.0 and result["n"] == 4


def test_different_intents_score_lower(scorer: FuzzyIntentScorer) -> None:
    unrelated = scorer.score([ORDER], [ACTIVATE], LABELS)["mean_similarity"]
    antonym = scorer.score([DEACTIVATE], [ACTIVATE], LABELS)["mean_similarity"]
    assert unrelated < 0.5
    # the documented pitfall: the opposite action embeds much closer than an unrelated intent
    assert unrelated < antonym < 1.0


def test_threshold_behaviour(scorer: FuzzyIntentScorer) -> None:
    similarity = float(scorer.similarity_matrix(LABELS)[LOST, STOLEN])
    assert 0.0 < similarity < 1.0
    # one exact hit and one near-miss (lost vs stolen card)
    pred, gold = [ACTIVATE, STOLEN], [ACTIVATE, LOST]
    below = scorer.score(pred, gold, LABELS, threshold=similarity - 1e-4)
    above = scorer.score(pred, gold, LABELS, threshold=similarity + 1e-4)
    assert below["fuzzy_accuracy"] == 1.0 and above["fuzzy_accuracy"] == 0.5
    assert below["exact_accuracy"] == above["exact_accuracy"] == 0.5
    assert below["mean_similarity"] == pytest.approx((1.0 + similarity) / 2)


def test_ignore_index_and_errors(scorer: FuzzyIntentScorer) -> None:
    result = scorer.score([ORDER, ACTIVATE], [-100, ACTIVATE], LABELS)
    assert result["n"] == 1 and result["mean_similarity"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"\[9\]"):
        scorer.score([9], [0], LABELS)


def test_label_embeddings_cached(scorer: FuzzyIntentScorer, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    encode = scorer.model.encode
    monkeypatch.setattr(scorer.model, "encode", lambda *a, **k: calls.append(a) or encode(*a, **k))
    labels = ["open_account", "close_account"]
    first = scorer.similarity_matrix(labels)
    scorer.score([0, 1], [1, 1], labels)
    assert scorer.similarity_matrix(labels) is first
    assert len(calls) == 1
    assert calls[0][0] == ["open account", "close account"]
