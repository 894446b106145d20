import time
from collections import Counter

import pytest

from intentfusion.data.support import (
    CORE_TEMPLATES,
    DETAIL_PATTERNS,
    DETAIL_REQUIRED,
    LABELS,
    LANGUAGES,
    SENTIMENT_MARKERS,
    TASKS,
    URGENCY_MARKERS,
    generate_support,
    load_support,
    split_support,
)

KEYS = {"text", "intent", "urgency", "sentiment", "action", "language"}
DETAIL_SLOTS = {
    "order_number": "{order}",
    "amount": "{amount}",
    "email": "{email}",
    "device": "{device}",
    "plan": "{plan}",
}


@pytest.fixture(scope="module")
def records():
    return generate_support(3000, seed=0)


@pytest.fixture(scope="module")
def splits():
    return load_support(3000, seed=0)


def test_generate_3000_is_fast():
    t0 = time.perf_counter()
    recs = generate_support(3000, seed=5)
    assert time.perf_counter() - t0 < 2.0
    assert len(recs) == 3000


def test_public_constants():
    assert TASKS == ("intent", "urgency", "sentiment", "action")
    assert LABELS["intent"] == (
        "refund_request",
        "billing_issue",
        "account_access",
        "technical_problem",
        "order_status",
        "cancellation",
        "shipping_delay",
        "general_question",
    )
    assert LABELS["urgency"] == ("low", "medium", "high")
    assert LABELS["sentiment"] == ("calm", "frustrated", "angry")
    assert LABELS["action"] == ("auto_resolve", "request_more_info", "escalate_to_human")


def test_deterministic_for_seed():
    a = generate_support(400, seed=1)
    b = generate_support(400, seed=1)
    c = generate_support(400, seed=2)
    assert a == b
    assert a != c
    assert len({r["text"] for r in a} & {r["text"] for r in c}) < 40


def test_record_schema_and_label_values(records):
    assert len(records) == 3000
    for r in records:
        assert set(r) == KEYS
        assert isinstance(r["text"], str) and r["text"].strip()
        for task in TASKS:
            assert r[task] in LABELS[task]
        assert r["language"] in LANGUAGES


def test_texts_are_unique(records):
    texts = [r["text"] for r in records]
    assert len(set(texts)) == len(texts)


def test_languages_present_and_balanced(records):
    counts = Counter(r["language"] for r in records)
    assert set(counts) == {"en", "es", "de", "fr"}
    assert max(counts.values()) - min(counts.values()) <= 8


def test_language_subset():
    recs = generate_support(200, seed=3, languages=("en", "de"))
    assert {r["language"] for r in recs} == {"en", "de"}


def test_every_label_present_and_balanced(records):
    lines = []
    for task in TASKS:
        counts = Counter(r[task] for r in records)
        assert set(counts) == set(LABELS[task]), task
        dist = {lab: counts[lab] / len(records) for lab in LABELS[task]}
        lines.append(f"{task}: " + ", ".join(f"{k}={v:.1%}" for k, v in dist.items()))
        assert min(dist.values()) >= 0.10, (task, dist)
    print("\nlabel distribution (n=3000, seed=0)\n" + "\n".join(lines))
    intents = Counter(r["intent"] for r in records)
    assert max(intents.values()) - min(intents.values()) <= 8


def _detect(text: str, markers: dict[str, tuple[str, ...]]) -> set[str]:
    low = text.lower()
    return {level for level, phrases in markers.items() for ph in phrases if ph.lower() in low}


def test_rule_table_holds_on_every_record(records):
    for r in records:
        lang, text = r["language"], r["text"]
        urg = _detect(text, URGENCY_MARKERS[lang])
        assert len(urg) <= 1, text
        urgency = urg.pop() if urg else "medium"
        sent = _detect(text, SENTIMENT_MARKERS[lang])
        assert len(sent) <= 1, text
        sentiment = sent.pop() if sent else "calm"
        needed = DETAIL_REQUIRED[r["intent"]]
        has_detail = needed is None or bool(DETAIL_PATTERNS[needed].search(text))
        if urgency == "high" or sentiment == "angry":
            action = "escalate_to_human"
        elif not has_detail:
            action = "request_more_info"
        else:
            action = "auto_resolve"
        assert (r["urgency"], r["sentiment"], r["action"]) == (urgency, sentiment, action), text


def test_markers_of_other_languages_do_not_leak(records):
    for r in records[:600]:
        for lang in LANGUAGES:
            if lang != r["language"]:
                assert not _detect(r["text"], URGENCY_MARKERS[lang] | SENTIMENT_MARKERS[lang]), r["text"]


def test_request_more_info_occurs_for_every_detail_intent(records):
    for intent, needed in DETAIL_REQUIRED.items():
        actions = Counter(r["action"] for r in records if r["intent"] == intent)
        if needed is None:
            assert actions["request_more_info"] == 0
        else:
            assert actions["request_more_info"] > 0.1 * sum(actions.values()), intent


def test_markers_independent_of_intent(records):
    for intent in LABELS["intent"]:
        sub = [r for r in records if r["intent"] == intent]
        high = sum(r["urgency"] == "high" for r in sub) / len(sub)
        angry = sum(r["sentiment"] == "angry" for r in sub) / len(sub)
        assert 0.18 < high < 0.40, intent
        assert 0.12 < angry < 0.33, intent


def test_template_variety():
    for lang in LANGUAGES:
        for intent in LABELS["intent"]:
            t = CORE_TEMPLATES[lang][intent]
            assert len(t["complete"]) + len(t["missing"]) >= 6, (lang, intent)
            assert len(set(t["complete"]) | set(t["missing"])) == len(t["complete"]) + len(t["missing"])
            needed = DETAIL_REQUIRED[intent]
            if needed is None:
                assert not t["missing"]
            else:
                assert len(t["complete"]) >= 3 and len(t["missing"]) >= 3, (lang, intent)
                slot = DETAIL_SLOTS[needed]
                assert all(slot in tpl for tpl in t["complete"]), (lang, intent)
                assert not any(slot in tpl for tpl in t["missing"]), (lang, intent)


def test_texts_are_diverse(records):
    for lang in LANGUAGES:
        for intent in LABELS["intent"]:
            sub = [r["text"] for r in records if r["language"] == lang and r["intent"] == intent]
            # first 4 words differ a lot (openers, pre-phrases, templates)
            assert len({" ".join(t.split()[:4]) for t in sub}) >= 0.4 * len(sub), (lang, intent)


def test_split_sizes_and_disjoint(splits):
    assert len(splits["train"]) == 2100
    assert len(splits["val"]) == 450
    assert len(splits["test"]) == 450
    tr, va, te = ({r["text"] for r in splits[k]} for k in ("train", "val", "test"))
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert len(tr | va | te) == 3000


def test_split_is_stratified_by_intent(splits):
    for intent in LABELS["intent"]:
        props = [sum(r["intent"] == intent for r in splits[k]) / len(splits[k]) for k in ("train", "val", "test")]
        assert max(props) - min(props) <= 0.02, (intent, props)


def test_split_support_stratify_by_other_task(records):
    s = split_support(records, stratify_by="action", seed=4)
    for lab in LABELS["action"]:
        props = [sum(r["action"] == lab for r in s[k]) / len(s[k]) for k in ("train", "val", "test")]
        assert max(props) - min(props) <= 0.02


def test_test_noisy_same_labels_and_order(splits):
    test, noisy = splits["test"], splits["test_noisy"]
    assert len(test) == len(noisy)
    for a, b in zip(test, noisy, strict=True):
        assert {k: v for k, v in a.items() if k != "text"} == {k: v for k, v in b.items() if k != "text"}
    changed = sum(a["text"] != b["text"] for a, b in zip(test, noisy, strict=True))
    assert changed >= 0.9 * len(test)


def test_load_support_deterministic_and_noise_seeded(splits):
    again = load_support(3000, seed=0)
    assert again == splits
    other_noise = load_support(3000, seed=0, noise_seed=99)
    assert other_noise["test"] == splits["test"]
    assert other_noise["test_noisy"] != splits["test_noisy"]


def test_noise_p_zero_is_identity():
    s = load_support(400, seed=2, noise_p=0.0)
    assert s["test_noisy"] == s["test"]


def test_bad_language():
    with pytest.raises(ValueError, match=r"language.*'it'.*languages.*expected") as ei:
        generate_support(100, languages=("en", "it"))
    assert "'en', 'es', 'de', 'fr'" in str(ei.value)
    with pytest.raises(ValueError, match="languages"):
        load_support(100, languages=())


def test_bad_n():
    with pytest.raises(ValueError, match=r"n must be a positive int"):
        generate_support(0)
    with pytest.raises(ValueError, match=r"n=20 is too small to stratify.*n >= \d+"):
        load_support(20)
    with pytest.raises(ValueError, match=r"too small to stratify"):
        split_support(generate_support(20, seed=0))


@pytest.mark.parametrize("fractions", [(0.7, 0.2, 0.2), (0.5, 0.5), (1.0, 0.0, 0.0), ("a", 0.5, 0.5)])
def test_bad_fractions(records, fractions):
    with pytest.raises(ValueError, match=r"fractions must be three numbers"):
        split_support(records, fractions=fractions)


def test_bad_stratify_by(records):
    with pytest.raises(ValueError, match=r"stratify_by='colour'"):
        split_support(records, stratify_by="colour")


def test_bad_noise_p():
    with pytest.raises(ValueError, match=r"noise_p must be a probability in \[0, 1\]"):
        load_support(200, noise_p=2.0)
