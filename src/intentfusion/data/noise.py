"""Reusable, seeded text-noise augmentation (typos, casing, slang, emoji, filler words).

Two paths: `NoiseTransform` / `noisy_copy` noise a plain text (words may be added, merged or dropped);
`noisy_words` noises a list of words that carries one tag per word (BIO slot tags) and keeps the tags aligned.
Every random decision is drawn from the ``random.Random`` passed in, so the output is fully
deterministic given the rng state.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Mapping, Sequence

from intentfusion.data.slots import OUTSIDE

__all__ = [
    "NOISE_OPS",
    "WORD_NOISE_OPS",
    "EMOJIS",
    "EMOTIONAL_MARKERS",
    "FILLER_WORDS",
    "SLANG",
    "NoiseTransform",
    "noisy_copy",
    "noisy_words",
]

NOISE_OPS: tuple[str, ...] = ("typo", "casing", "slang", "emoji")
WORD_NOISE_OPS: tuple[str, ...] = (*NOISE_OPS, "filler")  # the ops of `noisy_words`

EMOJIS: tuple[str, ...] = ("😊", "😡", "🙏", "😤", "👍", "😭", "🤔", "🔥", "💸", "📦", "😩", "🙄")

EMOTIONAL_MARKERS: tuple[str, ...] = ("!!!", "??", "ugh", "smh")

# Spoken-style words that `noisy_words` inserts (tagged O); "pls" as in SLANG.
FILLER_WORDS: tuple[str, ...] = ("um", "uh", "like", "hey", "pls", "hmm", "so", "well")

# Abbreviations (multilingual); keys are matched case-insensitively on word boundaries.
SLANG: dict[str, str] = {
    # English
    "please": "pls",
    "thank you": "ty",
    "thanks": "thx",
    "you": "u",
    "your": "ur",
    "are": "r",
    "because": "bc",
    "before": "b4",
    "really": "rly",
    "tomorrow": "tmrw",
    "message": "msg",
    "people": "ppl",
    "something": "smth",
    "okay": "ok",
    "information": "info",
    # Spanish
    "por favor": "porfa",
    "gracias": "grax",
    "por qué": "xq",
    "porque": "xq",
    "también": "tmb",
    "mensaje": "msj",
    "que": "q",
    # German
    "vielleicht": "vllt",
    "danke": "dnk",
    "nicht": "nich",
    "ich habe": "hab",
    "eigentlich": "eig",
    # French
    "s'il vous plaît": "svp",
    "s'il te plaît": "stp",
    "beaucoup": "bcp",
    "pourquoi": "pk",
    "quelque chose": "qqch",
    "aujourd'hui": "auj",
    "merci": "mrc",
}

_SLANG_RE = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(k) for k in sorted(SLANG, key=len, reverse=True)) + r")(?!\w)",
    re.IGNORECASE,
)
_LONG_WORD_RE = re.compile(r"[^\W\d_]{4,}")
# The SLANG entries that replace one word by one word (the only ones `noisy_words` may use).
_WORD_SLANG: dict[str, str] = {k: v for k, v in SLANG.items() if " " not in k and " " not in v}
_WORD_SLANG_RE = re.compile(
    r"(?<!\w)(" + "|".join(re.escape(k) for k in sorted(_WORD_SLANG, key=len, reverse=True)) + r")(?!\w)",
    re.IGNORECASE,
)


def _typo(text: str, rng: random.Random) -> str:
    words = list(_LONG_WORD_RE.finditer(text))
    if not words:
        return text
    chosen = rng.sample(words, min(len(words), rng.randint(1, 2)))
    # Edit right-to-left so earlier match offsets stay valid.
    for m in sorted(chosen, key=lambda m: m.start(), reverse=True):
        w = m.group(0)
        i = rng.randrange(len(w) - 1)
        kind = rng.choice(("swap", "drop", "duplicate"))
        if kind == "swap" and w[i] == w[i + 1]:
            kind = "duplicate"
        if kind == "swap":
            new = w[:i] + w[i + 1] + w[i] + w[i + 2 :]
        elif kind == "drop":
            new = w[:i] + w[i + 1 :]
        else:
            new = w[:i] + w[i] + w[i:]
        text = text[: m.start()] + new + text[m.end() :]
    return text


def _casing(text: str, rng: random.Random) -> str:
    variants = [text.upper(), text.lower()]
    rng.shuffle(variants)
    return variants[0] if variants[0] != text else variants[1]


def _match_case(src: str, repl: str) -> str:
    if src.isupper() and len(src) > 1:
        return repl.upper()
    if src[:1].isupper():
        return repl[:1].upper() + repl[1:]
    return repl


def _slang(text: str, rng: random.Random) -> str:
    def sub(m: re.Match[str]) -> str:
        src = m.group(0)
        if rng.random() < 0.8:
            return _match_case(src, SLANG[src.lower()])
        return src

    text = _SLANG_RE.sub(sub, text)
    marker = rng.choice(EMOTIONAL_MARKERS)
    if marker in ("!!!", "??"):
        return text.rstrip(" .!?") + marker
    if rng.random() < 0.5:
        return f"{marker}, {text}"
    return f"{text} {marker}"


def _emoji(text: str, rng: random.Random) -> str:
    e = rng.choice(EMOJIS)
    tokens = text.split(" ")
    if rng.random() < 0.5 or len(tokens) < 2:
        return f"{text} {e}"
    tokens.insert(rng.randrange(1, len(tokens)), e)
    return " ".join(tokens)


_OPS = {"typo": _typo, "casing": _casing, "slang": _slang, "emoji": _emoji}


def _checked(p: float, ops: tuple[str, ...] | str, allowed: Sequence[str]) -> tuple[float, tuple[str, ...]]:
    """``(p, ops)`` validated: ``p`` a probability, ``ops`` a non-empty tuple of names from ``allowed``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    if isinstance(ops, str):
        ops = (ops,)
    ops = tuple(ops)
    if not ops:
        raise ValueError(f"ops must name at least one op; allowed: {', '.join(allowed)}")
    for op in ops:
        if op not in allowed:
            raise ValueError(f"unknown noise op {op!r} in ops; allowed: {', '.join(allowed)}")
    return float(p), ops


class NoiseTransform:
    """With probability ``p`` apply 1–2 randomly chosen noise ops (from ``ops``) to a text.

    Ops: ``typo`` (swap/drop/duplicate adjacent characters in 1–2 words of >= 4 letters),
    ``casing`` (ALL CAPS or all lower), ``slang`` (abbreviations such as please→pls plus an
    emotional marker like "!!!", "ugh", "smh", "??"), ``emoji`` (append or insert one emoji).
    Deterministic given the ``random.Random`` passed to ``__call__``.
    """

    def __init__(self, p: float = 1.0, ops: tuple[str, ...] = NOISE_OPS) -> None:
        self.p, self.ops = _checked(p, ops, NOISE_OPS)

    def __repr__(self) -> str:
        return f"NoiseTransform(p={self.p}, ops={self.ops})"

    def __call__(self, text: str, rng: random.Random) -> str:
        """Return a noisy version of ``text`` (or ``text`` itself with probability 1 - p)."""
        if rng.random() >= self.p:
            return text
        k = rng.randint(1, min(2, len(self.ops)))
        for op in rng.sample(self.ops, k):
            text = _OPS[op](text, rng)
        return text


def noisy_copy(texts: list[str], p: float, seed: int) -> list[str]:
    """Apply ``NoiseTransform(p)`` to every text, in order, with one ``random.Random(seed)``."""
    transform = NoiseTransform(p=p)
    rng = random.Random(seed)
    return [transform(t, rng) for t in texts]


# ------------------------------------------------------------------------------------ word-aligned noise
class _TaggedWords:
    """Words being noised, each with the index of the original word it came from (None: an inserted word)."""

    def __init__(self, words: Sequence[str], continues_span: Sequence[bool]) -> None:
        self.words = list(words)
        self.origins: list[int | None] = list(range(len(words)))
        self.continues_span = continues_span  # per original word: some tag list has I-x there

    def insertion_points(self) -> list[int]:
        """Positions where a new word may go: anywhere except right before a word that continues an entity."""
        return [
            k for k, origin in enumerate([*self.origins, None]) if origin is None or not self.continues_span[origin]
        ]

    def insert(self, k: int, word: str) -> None:
        self.words.insert(k, word)
        self.origins.insert(k, None)

    def rewrite(self, edit: Callable[[str, random.Random], str], rng: random.Random) -> None:
        """Apply a text op that never adds or removes whitespace to the words joined by single spaces."""
        edited = edit(" ".join(self.words), rng).split(" ")
        if len(edited) == len(self.words):
            self.words = edited


def _typo_words(tw: _TaggedWords, rng: random.Random) -> None:
    tw.rewrite(_typo, rng)  # edits letters inside 1–2 words only


def _casing_words(tw: _TaggedWords, rng: random.Random) -> None:
    tw.rewrite(_casing, rng)


def _slang_words(tw: _TaggedWords, rng: random.Random) -> None:
    def sub(m: re.Match[str]) -> str:
        src = m.group(0)
        return _match_case(src, _WORD_SLANG[src.lower()]) if rng.random() < 0.8 else src

    tw.words = [_WORD_SLANG_RE.sub(sub, w) for w in tw.words]
    marker = rng.choice(EMOTIONAL_MARKERS)
    if marker in ("!!!", "??"):
        tw.words[-1] = tw.words[-1].rstrip(".!?") + marker
    elif rng.random() < 0.5 and 0 in tw.insertion_points():
        tw.insert(0, f"{marker},")
    else:
        tw.insert(len(tw.words), marker)


def _emoji_words(tw: _TaggedWords, rng: random.Random) -> None:
    e = rng.choice(EMOJIS)
    inner = [k for k in tw.insertion_points() if 0 < k < len(tw.words)]
    if rng.random() < 0.5 or not inner:
        tw.insert(len(tw.words), e)
    else:
        tw.insert(rng.choice(inner), e)


def _filler_words(tw: _TaggedWords, rng: random.Random) -> None:
    for _ in range(rng.randint(1, 2)):
        tw.insert(rng.choice(tw.insertion_points()), rng.choice(FILLER_WORDS))


_WORD_OPS: dict[str, Callable[[_TaggedWords, random.Random], None]] = {
    "typo": _typo_words,
    "casing": _casing_words,
    "slang": _slang_words,
    "emoji": _emoji_words,
    "filler": _filler_words,
}


def noisy_words(
    words: Sequence[str],
    tags_by_key: Mapping[str, Sequence[str]],
    p: float,
    rng: random.Random,
    ops: tuple[str, ...] = WORD_NOISE_OPS,
) -> tuple[list[str], dict[str, list[str]]]:
    """Noise ``words`` (a text's ``split()``) so that every tag list in ``tags_by_key`` stays one tag per word.

    With probability ``p``, 1–2 ops from ``ops`` (`WORD_NOISE_OPS`): ``typo`` (a swapped/dropped/duplicated
    letter inside 1–2 words), ``casing`` (all caps or all lower), ``slang`` (one-word SLANG abbreviations only,
    plus an emotional marker glued to the last word or inserted as a word), ``emoji`` (inserted as a word),
    ``filler`` (1–2 `FILLER_WORDS` inserted). No word is split or merged; an inserted word is tagged ``O`` and
    never goes right before an ``I-x`` tag (it would break that entity). Returns the noisy words and each tag
    list realigned to them; the inputs are left untouched.
    """
    p, ops = _checked(p, ops, WORD_NOISE_OPS)
    for key, tags in tags_by_key.items():
        if len(tags) != len(words):
            raise ValueError(f"tags '{key}': {len(tags)} tag(s) for {len(words)} word(s); expected one per word")
    continues_span = [any(str(tags[i]).startswith("I-") for tags in tags_by_key.values()) for i in range(len(words))]
    tw = _TaggedWords(words, continues_span)
    if words and rng.random() < p:
        for op in rng.sample(ops, rng.randint(1, min(2, len(ops)))):
            _WORD_OPS[op](tw, rng)
    realigned = {key: [tags[i] if i is not None else OUTSIDE for i in tw.origins] for key, tags in tags_by_key.items()}
    return tw.words, realigned
