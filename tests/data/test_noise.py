import random
import re

import pytest

from intentfusion.data.noise import EMOJIS, EMOTIONAL_MARKERS, NOISE_OPS, NoiseTransform, noisy_copy

TEXTS = [
    "Hello, please tell me where my order is, thank you.",
    "I want to cancel my subscription because I really do not use it anymore.",
    "Por favor, necesito ayuda con mi cuenta, gracias.",
    "Ich habe vielleicht ein Problem mit meiner Rechnung, danke.",
    "Bonjour, pourquoi ma commande est en retard ? Merci beaucoup.",
    "The app keeps crashing on my phone every single morning.",
    "Can you refund me? The item I received is broken.",
    "Where is my package? It should have arrived yesterday.",
] * 10


def test_same_seed_same_output_and_different_seed_differs():
    a = noisy_copy(TEXTS, p=1.0, seed=7)
    b = noisy_copy(TEXTS, p=1.0, seed=7)
    c = noisy_copy(TEXTS, p=1.0, seed=8)
    assert a == b
    assert a != c


def test_transform_is_deterministic_given_rng_state():
    t = NoiseTransform(p=0.7)
    out1 = [t(x, rng) for rng in [random.Random(3)] for x in TEXTS]
    out2 = [t(x, rng) for rng in [random.Random(3)] for x in TEXTS]
    assert out1 == out2


def test_p_zero_is_identity():
    assert noisy_copy(TEXTS, p=0.0, seed=1) == TEXTS
    t = NoiseTransform(p=0.0, ops=("casing",))
    rng = random.Random(0)
    assert all(t(x, rng) == x for x in TEXTS)


def test_p_one_changes_almost_every_text():
    out = noisy_copy(TEXTS, p=1.0, seed=0)
    changed = sum(a != b for a, b in zip(TEXTS, out, strict=True))
    assert changed >= 0.95 * len(TEXTS)


def test_p_half_changes_about_half():
    texts = TEXTS * 5
    out = noisy_copy(texts, p=0.5, seed=0)
    frac = sum(a != b for a, b in zip(texts, out, strict=True)) / len(texts)
    assert 0.35 < frac < 0.65


def test_casing_op_gives_all_caps_or_all_lower():
    t = NoiseTransform(ops=("casing",))
    rng = random.Random(0)
    results = [t(x, rng) for x in TEXTS]
    for x, y in zip(TEXTS, results, strict=True):
        assert y != x
        assert y in (x.upper(), x.lower())
    assert any(y == y.upper() for y in results) and any(y == y.lower() for y in results)


def _words(s: str) -> list[str]:
    return s.split(" ")


def test_typo_op_edits_one_or_two_long_words_by_one_char():
    t = NoiseTransform(ops=("typo",))
    rng = random.Random(0)
    for x in TEXTS:
        y = t(x, rng)
        assert y != x
        wx, wy = _words(x), _words(y)
        assert len(wx) == len(wy)
        diffs = [(a, b) for a, b in zip(wx, wy, strict=True) if a != b]
        assert 1 <= len(diffs) <= 2
        for a, b in diffs:
            assert sum(ch.isalpha() for ch in a) >= 4  # only words with >= 4 letters are touched
            assert abs(len(a) - len(b)) <= 1
            assert sorted(a) == sorted(b) or abs(len(a) - len(b)) == 1


def test_typo_leaves_short_words_only_text_unchanged():
    t = NoiseTransform(ops=("typo",))
    assert t("I am ok, you?", random.Random(0)) == "I am ok, you?"


def test_slang_op_abbreviates_and_adds_emotional_marker():
    t = NoiseTransform(ops=("slang",))
    rng = random.Random(0)
    outs = [t("please tell me what you think, thanks", rng) for _ in range(50)]
    assert any("pls" in o for o in outs)
    assert any(re.search(r"\bu\b", o) for o in outs)
    assert any("thx" in o for o in outs)
    for o in outs:
        assert any(m in o for m in EMOTIONAL_MARKERS)
    assert {m for o in outs for m in EMOTIONAL_MARKERS if m in o} == set(EMOTIONAL_MARKERS)


def test_slang_keeps_capitalization():
    t = NoiseTransform(ops=("slang",))
    outs = [t("Please help.", random.Random(s)) for s in range(30)]
    assert any(o.startswith("Pls") or o.startswith(("ugh, Pls", "smh, Pls")) for o in outs)


def test_emoji_op_adds_exactly_one_emoji():
    t = NoiseTransform(ops=("emoji",))
    rng = random.Random(0)
    inserted_inside = False
    for x in TEXTS:
        y = t(x, rng)
        found = [e for e in EMOJIS if e in y]
        assert len(found) == 1 and y.count(found[0]) == 1
        assert " ".join(y.replace(found[0], "").split()) == " ".join(x.split())
        inserted_inside |= not y.endswith(found[0])
    assert inserted_inside


def test_applies_one_or_two_ops():
    # casing + emoji only: at most one emoji, and both ops together must appear sometimes
    t = NoiseTransform(ops=("casing", "emoji"))
    rng = random.Random(0)
    kinds = set()
    for x in TEXTS:
        y = t(x, rng)
        has_emoji = any(e in y for e in EMOJIS)
        core = " ".join("".join(ch for ch in y if ch not in EMOJIS).split())
        cased = core in (x.upper(), x.lower())
        assert has_emoji or cased
        kinds.add((has_emoji, cased))
    assert kinds == {(True, False), (False, True), (True, True)}


def test_all_ops_used_by_default():
    assert NoiseTransform().ops == NOISE_OPS


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", True])
def test_bad_p_raises(p):
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        NoiseTransform(p=p)


def test_unknown_op_raises_naming_it_and_allowed():
    with pytest.raises(ValueError) as ei:
        NoiseTransform(ops=("typo", "shout"))
    msg = str(ei.value)
    assert "'shout'" in msg
    for op in NOISE_OPS:
        assert op in msg


def test_empty_ops_raises():
    with pytest.raises(ValueError, match="ops"):
        NoiseTransform(ops=())
