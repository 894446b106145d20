import random
import re

import pytest

from intentfusion.data.noise import (
    EMOJIS,
    EMOTIONAL_MARKERS,
    FILLER_WORDS,
    NOISE_OPS,
    SLANG,
    WORD_NOISE_OPS,
    NoiseTransform,
    noisy_copy,
    noisy_words,
)
from intentfusion.data.slots import validate_bio

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


# ------------------------------------------------------------------------------------ plain-text regression
PLAIN = [
    "please refund my order because it never arrived",
    "where is my package, I ordered it last week",
    "thank you for the quick help with my account",
    "Can you refund me? The item I received is broken.",
    "Por favor, necesito ayuda con mi cuenta, gracias.",
]


def test_plain_texts_are_noised_exactly_as_before_the_word_aligned_path() -> None:
    # literals produced by noise.py before `noisy_words` existed
    assert noisy_copy(PLAIN, 1.0, 0) == [
        "PLEASE REFUND MY ORRDER BECUSE IT NEVER ARRIVED",
        "where is my package, I ordered it last week??",
        "ty for the quick help with my account!!!",
        "ugh, CAN U REFUND ME? THE ITEM I RECEIVED IS BROKEN.",
        "Por favvor, necesito ayuda con mi cuneta, gracias.",
    ]
    assert noisy_copy(PLAIN, 1.0, 7) == [
        "please refund my order because it never arrived 😩",
        "where is my package, I ordered it last week!!!",
        "thank you for the quick help wtih my account",
        "Can u refund me? The iteem I received is broken!!!",
        "Por favor, necesito ayuda con mi cuenta, gacias. 🤔",
    ]


# ------------------------------------------------------------------------------------ word-aligned noise
SENTENCES = [
    ("add sabrina salerno to the grime instrumentals playlist", "O B-artist I-artist O O B-playlist I-playlist O"),
    ("book a table at 7 pm please", "O O O O B-time I-time O"),
    ("will it snow in mt on june 13 2038", "O O B-condition O B-state O B-timeRange I-timeRange I-timeRange"),
    ("Thanks , I really want you to play Blue Suede Shoes", "O O O O O O O O B-track I-track I-track"),
]


def _one_edit_apart(original: str, noisy: str) -> bool:
    """Equal up to casing, a SLANG abbreviation, a trailing marker and one swapped/dropped/doubled letter."""
    a, b = original.lower(), noisy.lower()
    for marker in ("!!!", "??"):
        b = b.removesuffix(marker) if not a.endswith(marker) else b
    if a == b or b == SLANG.get(a):
        return True
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    short, long_ = sorted((a, b), key=len)
    return len(long_) == len(short) + 1 and any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def _noised_many(seeds: range = range(200)):
    for seed in seeds:
        rng = random.Random(seed)
        for text, tags in SENTENCES:
            words, slots = text.split(), tags.split()
            position = [str(i) for i in range(len(words))]  # tags each word with its original index
            out, realigned = noisy_words(words, {"slots": slots, "position": position}, 1.0, rng)
            yield words, slots, out, realigned


def test_noisy_words_keep_one_tag_per_word_for_many_seeds() -> None:
    changed = 0
    for words, _, out, realigned in _noised_many():
        assert len(realigned["slots"]) == len(out) == len(realigned["position"])
        assert all(w and not any(ch.isspace() for ch in w) for w in out)
        assert " ".join(out).split() == out
        changed += out != words
    assert changed >= 0.95 * 200 * len(SENTENCES)


def test_original_words_survive_in_order_with_their_exact_tags() -> None:
    for words, slots, out, realigned in _noised_many():
        kept = [i for i, pos in enumerate(realigned["position"]) if pos != "O"]
        assert [realigned["position"][i] for i in kept] == [str(i) for i in range(len(words))]
        assert [realigned["slots"][i] for i in kept] == slots
        for j, i in enumerate(kept):
            assert _one_edit_apart(words[j], out[i]), (words[j], out[i])


def test_inserted_words_are_tagged_o_and_never_split_an_entity() -> None:
    inserted_kinds = set()
    for _, _, out, realigned in _noised_many():
        validate_bio(realigned["slots"], "noisy")
        for i, pos in enumerate(realigned["position"]):
            if pos != "O":
                continue
            assert realigned["slots"][i] == "O"
            assert i + 1 == len(out) or not realigned["slots"][i + 1].startswith("I-")
            word = out[i].rstrip(",!?")  # a marker may be glued to the last word
            if word in EMOJIS:
                inserted_kinds.add("emoji")
            elif word.lower() in ("", *EMOTIONAL_MARKERS):
                inserted_kinds.add("marker")
            else:
                assert any(_one_edit_apart(f, word) for f in FILLER_WORDS), out[i]  # a filler, maybe typo'd
                inserted_kinds.add("filler")
    assert inserted_kinds == {"filler", "emoji", "marker"}


def test_noisy_words_use_only_one_word_slang_and_every_op() -> None:
    words = "thank you please tell me if you are okay".split()
    outs = [noisy_words(words, {}, 1.0, random.Random(s), ops=("slang",))[0] for s in range(40)]
    assert any("pls" in o and "u" in o and "r" in o and "ok" in o for o in outs)
    assert all("ty" not in o for o in outs)  # "thank you" -> "ty" would merge two words
    assert set(WORD_NOISE_OPS) == {*NOISE_OPS, "filler"}
    cased = noisy_words(words, {}, 1.0, random.Random(0), ops=("casing",))[0]
    assert cased == [w.upper() for w in words]


def test_noisy_words_are_deterministic_and_p_zero_is_identity() -> None:
    words, tags = SENTENCES[0][0].split(), {"slots": SENTENCES[0][1].split()}
    assert noisy_words(words, tags, 1.0, random.Random(5)) == noisy_words(words, tags, 1.0, random.Random(5))
    assert noisy_words(words, tags, 0.0, random.Random(5)) == (words, tags)


def test_noisy_words_reject_tags_that_do_not_match_the_words() -> None:
    with pytest.raises(ValueError, match=r"tags 'slots': 1 tag\(s\) for 2 word\(s\)"):
        noisy_words(["a", "b"], {"slots": ["O"]}, 1.0, random.Random(0))
    with pytest.raises(ValueError, match="unknown noise op 'shout'"):
        noisy_words(["a"], {}, 1.0, random.Random(0), ops=("shout",))
