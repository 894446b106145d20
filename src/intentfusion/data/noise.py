"""Reusable, seeded text-noise augmentation (typos, casing, slang, emoji).

Every random decision is drawn from the ``random.Random`` passed in, so the output is fully
deterministic given the rng state.
"""

from __future__ import annotations

import math
import random
import re

__all__ = ["NOISE_OPS", "EMOJIS", "EMOTIONAL_MARKERS", "SLANG", "NoiseTransform", "noisy_copy"]

NOISE_OPS: tuple[str, ...] = ("typo", "casing", "slang", "emoji")

EMOJIS: tuple[str, ...] = ("😊", "😡", "🙏", "😤", "👍", "😭", "🤔", "🔥", "💸", "📦", "😩", "🙄")

EMOTIONAL_MARKERS: tuple[str, ...] = ("!!!", "??", "ugh", "smh")

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


class NoiseTransform:
    """With probability ``p`` apply 1–2 randomly chosen noise ops (from ``ops``) to a text.

    Ops: ``typo`` (swap/drop/duplicate adjacent characters in 1–2 words of >= 4 letters),
    ``casing`` (ALL CAPS or all lower), ``slang`` (abbreviations such as please→pls plus an
    emotional marker like "!!!", "ugh", "smh", "??"), ``emoji`` (append or insert one emoji).
    Deterministic given the ``random.Random`` passed to ``__call__``.
    """

    def __init__(self, p: float = 1.0, ops: tuple[str, ...] = NOISE_OPS) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or math.isnan(p) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        if isinstance(ops, str):
            ops = (ops,)
        ops = tuple(ops)
        if not ops:
            raise ValueError(f"ops must name at least one op; allowed: {', '.join(NOISE_OPS)}")
        for op in ops:
            if op not in _OPS:
                raise ValueError(f"unknown noise op {op!r} in ops; allowed: {', '.join(NOISE_OPS)}")
        self.p = float(p)
        self.ops = ops

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
