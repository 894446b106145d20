"""Embedded, seeded generator of multilingual customer-support messages (en / es / de / fr).

Each message is composed of::

    [opener] [pre-phrases] <intent core sentence> [post-phrases] [closer]

where the optional urgency phrase and the optional sentiment phrase are each placed either before
(pre) or after (post) the core.  Core sentences come from >= 8 templates per intent and language,
with slot fillers (products, order numbers such as ``#48213``, amounts, dates, plan names, device
names, e-mail addresses, ...).  For intents that need a detail there are templates *with* and
*without* that detail.  Urgency / sentiment markers and detail presence are drawn independently of
the intent (and of each other); intent and language are balanced.

Label rule table (all labels except ``intent`` are a function of surface markers in the text;
the marker phrases are listed per language in ``URGENCY_MARKERS`` / ``SENTIMENT_MARKERS``):

============  ==========================================================  =====================
task          rule (first matching row wins)                              label
============  ==========================================================  =====================
urgency       text contains a high-urgency phrase ("This is urgent.",     high
              "...asap.", "...right now.", "...immediately.", ...)
urgency       text contains a low-urgency phrase ("No rush.",             low
              "Whenever you can is fine.", "Take your time with this.")
urgency       no urgency phrase                                           medium
sentiment     text contains an angry phrase ("This is unacceptable.",     angry
              "Worst service ever.", "I'm absolutely furious.", ...)
sentiment     text contains a frustrated phrase ("This is the second      frustrated
              time I ask about this.", "I'm still waiting for a reply.")
sentiment     a calm/polite phrase ("I appreciate your help.") or none    calm
action        urgency == high  OR  sentiment == angry                     escalate_to_human
action        the intent's required detail is missing from the text       request_more_info
              (see table below)
action        otherwise                                                   auto_resolve
============  ==========================================================  =====================

Required detail per intent (``DETAIL_REQUIRED`` / ``DETAIL_PATTERNS``):

=================  ==================  =====================================================
intent             required detail     surface form (regex in ``DETAIL_PATTERNS``)
=================  ==================  =====================================================
refund_request     order_number        ``#`` + 5 digits, e.g. ``#48213``
order_status       order_number        ``#48213``
shipping_delay     order_number        ``#48213``
billing_issue      amount              ``$49.99`` (en) / ``49,99 €`` (es, de, fr)
account_access     email               ``maria.lopez@gmail.com``
technical_problem  device              a device name from ``DEVICES`` (``iPhone 14``, ``Pixel 8``)
cancellation       plan                a plan name from ``PLANS`` (``Premium``, ``Family``, ...)
general_question   (none)              never needs more info
=================  ==================  =====================================================

Marker draw probabilities: urgency high 0.28 / low 0.30 / none 0.42; sentiment angry 0.22 /
frustrated 0.30 / calm phrase 0.25 / none 0.23; detail present 0.5 (intents that need one).
Every generated text is unique (collisions are re-drawn), so splits never share a text.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable

from intentfusion.data.noise import NoiseTransform
from intentfusion.data.support_phrases import (  # noqa: F401  -- public tables, re-exported
    _CLOSERS,
    _DATE_FORMATS,
    _EMAIL_DOMAINS,
    _FILLERS,
    _FIRST_NAMES,
    _LAST_NAMES,
    _MONTHS,
    _OPENERS,
    CORE_TEMPLATES,
    DETAIL_PATTERNS,
    DETAIL_REQUIRED,
    DEVICES,
    PLANS,
    SENTIMENT_MARKERS,
    URGENCY_MARKERS,
)

__all__ = [
    "TASKS",
    "LABELS",
    "LANGUAGES",
    "INTENTS",
    "URGENCY_MARKERS",
    "SENTIMENT_MARKERS",
    "DETAIL_REQUIRED",
    "DETAIL_PATTERNS",
    "DEVICES",
    "PLANS",
    "CORE_TEMPLATES",
    "generate_support",
    "tiny_backbone_corpus",
    "split_support",
    "load_support",
]

TASKS: tuple[str, ...] = ("intent", "urgency", "sentiment", "action")
INTENTS: tuple[str, ...] = (
    "refund_request",
    "billing_issue",
    "account_access",
    "technical_problem",
    "order_status",
    "cancellation",
    "shipping_delay",
    "general_question",
)
LABELS: dict[str, tuple[str, ...]] = {
    "intent": INTENTS,
    "urgency": ("low", "medium", "high"),
    "sentiment": ("calm", "frustrated", "angry"),
    "action": ("auto_resolve", "request_more_info", "escalate_to_human"),
}
LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr")

_P_URGENCY = {"high": 0.28, "low": 0.30, "medium": 0.42}
_P_SENTIMENT = {"angry": 0.22, "frustrated": 0.30, "calm": 0.25, "none": 0.23}
_P_DETAIL = 0.5
_P_OPENER = 0.55
_P_CLOSER = 0.5
_P_URGENCY_PRE = 0.3
_P_SENTIMENT_PRE = 0.35


_SLOT_RE = re.compile(r"\{(\w+)\}")


def _amount(lang: str, rng: random.Random) -> str:
    value = rng.randint(5, 400) + rng.choice((0.0, 0.99, 0.49, 0.5, rng.randint(1, 98) / 100))
    if lang == "en":
        return f"${value:.2f}"
    return f"{value:.2f}".replace(".", ",") + " €"


def _email(lang: str, rng: random.Random) -> str:
    first = rng.choice(_FIRST_NAMES[lang]).lower()
    first = first.translate(str.maketrans("áéíóúèçë", "aeiouece"))
    sep = rng.choice((".", "_", ""))
    suffix = rng.choice(("", "", str(rng.randint(1, 99))))
    return f"{first}{sep}{rng.choice(_LAST_NAMES[lang])}{suffix}@{rng.choice(_EMAIL_DOMAINS[lang])}"


def _date(lang: str, rng: random.Random) -> str:
    return _DATE_FORMATS[lang].format(month=rng.choice(_MONTHS[lang]), day=rng.randint(1, 28))


_GENERATED_SLOTS: dict[str, Callable[[str, random.Random], str]] = {
    "order": lambda lang, rng: f"#{rng.randint(10000, 99999)}",
    "amount": _amount,
    "email": _email,
    "date": _date,
    "device": lambda lang, rng: rng.choice(DEVICES),
    "plan": lambda lang, rng: rng.choice(PLANS),
    "name": lambda lang, rng: rng.choice(_FIRST_NAMES[lang]),
}


def _fill(template: str, lang: str, rng: random.Random) -> str:
    def sub(m: re.Match[str]) -> str:
        slot = m.group(1)
        if slot in _GENERATED_SLOTS:
            return _GENERATED_SLOTS[slot](lang, rng)
        return rng.choice(_FILLERS[lang][slot])

    return _SLOT_RE.sub(sub, template)


def _choose(rng: random.Random, probs: dict[str, float]) -> str:
    return rng.choices(list(probs), weights=list(probs.values()))[0]


def _check_languages(languages: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(languages, str):
        languages = (languages,)
    languages = tuple(languages)
    if not languages:
        raise ValueError(f"languages must be a non-empty tuple of codes from {LANGUAGES}, got ()")
    for lang in languages:
        if lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r} in languages; expected codes from {LANGUAGES}")
    if len(set(languages)) != len(languages):
        raise ValueError(f"languages must not contain duplicates, got {languages}")
    return languages


def _draw_record(lang: str, intent: str, rng: random.Random) -> dict:
    urgency = _choose(rng, _P_URGENCY)
    sentiment_draw = _choose(rng, _P_SENTIMENT)
    needed = DETAIL_REQUIRED[intent]
    has_detail = needed is None or rng.random() < _P_DETAIL
    core = _fill(rng.choice(CORE_TEMPLATES[lang][intent]["complete" if has_detail else "missing"]), lang, rng)

    pre: list[str] = []
    post: list[str] = []
    if urgency != "medium":
        phrase = rng.choice(URGENCY_MARKERS[lang][urgency])
        (pre if rng.random() < _P_URGENCY_PRE else post).append(phrase)
    if sentiment_draw != "none":
        phrase = rng.choice(SENTIMENT_MARKERS[lang][sentiment_draw])
        (pre if rng.random() < _P_SENTIMENT_PRE else post).append(phrase)
    rng.shuffle(pre)
    rng.shuffle(post)

    parts: list[str] = []
    if rng.random() < _P_OPENER:
        parts.append(rng.choice(_OPENERS[lang]))
    parts += pre + [core] + post
    if rng.random() < _P_CLOSER:
        parts.append(_fill(rng.choice(_CLOSERS[lang]), lang, rng))

    sentiment = "calm" if sentiment_draw == "none" else sentiment_draw
    if urgency == "high" or sentiment == "angry":
        action = "escalate_to_human"
    elif not has_detail:
        action = "request_more_info"
    else:
        action = "auto_resolve"
    return {
        "text": " ".join(parts),
        "intent": intent,
        "urgency": urgency,
        "sentiment": sentiment,
        "action": action,
        "language": lang,
    }


def generate_support(n: int = 3000, seed: int = 0, languages: tuple[str, ...] = LANGUAGES) -> list[dict]:
    """Generate ``n`` unique, labelled support messages (deterministic given ``seed``).

    records: {"text", "intent", "urgency", "sentiment", "action", "language"}.  Languages and
    intents are balanced (round-robin over all language x intent pairs, then shuffled); the other
    labels follow the rule table in the module docstring.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int (number of records), got {n!r}")
    languages = _check_languages(languages)
    rng = random.Random(seed)
    pairs = [(lang, intent) for lang in languages for intent in INTENTS]
    rng.shuffle(pairs)
    slots = [pairs[i % len(pairs)] for i in range(n)]
    rng.shuffle(slots)

    records: list[dict] = []
    seen: set[str] = set()
    max_tries = 1000
    for lang, intent in slots:
        for _ in range(max_tries):
            rec = _draw_record(lang, intent, rng)
            if rec["text"] not in seen:
                break
        else:  # pragma: no cover - only reachable for absurdly large n
            raise RuntimeError(f"could not draw a unique text for ({lang}, {intent}) after {max_tries} tries")
        seen.add(rec["text"])
        records.append(rec)
    return records


def tiny_backbone_corpus() -> list[str]:
    """The texts the tokenizers of ``builtin:tiny-xlmr`` / ``builtin:tiny-distilbert`` are trained on.

    3000 generated support messages (seed 0); pass it as ``resolve_backbone(..., corpus=tiny_backbone_corpus)``.
    """
    return [r["text"] for r in generate_support(3000, seed=0)]


def _split_sizes(n: int, fractions: tuple[float, float, float]) -> tuple[int, int, int]:
    n_val = int(round(fractions[1] * n))
    n_test = int(round(fractions[2] * n))
    return n - n_val - n_test, n_val, n_test


def _check_fractions(fractions: tuple[float, float, float]) -> tuple[float, float, float]:
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be three numbers (train, val, test), got {fractions!r}") from None
    if len(fr) != 3 or any(not 0.0 < f < 1.0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(
            f"fractions must be three numbers in (0, 1) (train, val, test) that sum to 1, got {fractions!r}"
        )
    return fr  # type: ignore[return-value]


def split_support(
    records: list[dict],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    stratify_by: str = "intent",
) -> dict[str, list[dict]]:
    """Stratified train/val/test split (sklearn ``train_test_split`` with ``stratify``).

    Returns ``{"train", "val", "test"}`` with sizes ``n - round(f_val*n) - round(f_test*n)``,
    ``round(f_val*n)``, ``round(f_test*n)``; records are shallow-copied.
    """
    from sklearn.model_selection import train_test_split

    fr = _check_fractions(fractions)
    if not records:
        raise ValueError("records must be a non-empty list of dicts")
    if any(stratify_by not in r for r in records):
        raise ValueError(
            f"stratify_by={stratify_by!r} is not a key of every record; expected one of {sorted(records[0])}"
        )
    counts = Counter(r[stratify_by] for r in records)
    n = len(records)
    n_train, n_val, n_test = _split_sizes(n, fr)
    k = len(counts)
    if min(n_train, n_val, n_test) < k or min(counts.values()) < 3:
        raise ValueError(
            f"records (n={n}) too small to stratify by {stratify_by!r} with fractions={fractions}: "
            f"need >= {k} records per split (one per class) and >= 3 per class; got split sizes "
            f"{(n_train, n_val, n_test)} and smallest class count {min(counts.values())}"
        )
    records = [dict(r) for r in records]
    try:
        rest, test = train_test_split(
            records, test_size=n_test, stratify=[r[stratify_by] for r in records], random_state=seed
        )
        train, val = train_test_split(rest, test_size=n_val, stratify=[r[stratify_by] for r in rest], random_state=seed)
    except ValueError as e:
        raise ValueError(f"records cannot be stratified by {stratify_by!r} with fractions={fractions}: {e}") from e
    return {"train": train, "val": val, "test": test}


def _min_n_for_split(fractions: tuple[float, float, float], n_classes: int) -> int:
    n = n_classes
    while True:
        if min(_split_sizes(n, fractions)) >= n_classes and n // n_classes >= 3:
            return n
        n += 1


def load_support(
    n: int = 3000,
    seed: int = 0,
    languages: tuple[str, ...] = LANGUAGES,
    noise_p: float = 1.0,
    noise_seed: int = 1234,
) -> dict[str, list[dict]]:
    """Generate + split (70/15/15, stratified by intent), plus ``"test_noisy"``.

    ``test_noisy`` is the test split with ``NoiseTransform(p=noise_p)`` applied to each text using
    one ``random.Random(noise_seed)`` (same labels, same order as ``test``).
    """
    if isinstance(noise_p, bool) or not isinstance(noise_p, (int, float)) or not 0.0 <= noise_p <= 1.0:
        raise ValueError(f"noise_p must be a probability in [0, 1], got {noise_p!r}")
    fractions = (0.7, 0.15, 0.15)
    min_n = _min_n_for_split(fractions, len(INTENTS))
    if isinstance(n, bool) or not isinstance(n, int) or n < min_n:
        raise ValueError(
            f"n={n!r} is too small to stratify {len(INTENTS)} intents into train/val/test {fractions}; "
            f"expected an int n >= {min_n}"
        )
    splits = split_support(generate_support(n, seed=seed, languages=languages), fractions, seed=seed)
    transform = NoiseTransform(p=noise_p)
    rng = random.Random(noise_seed)
    splits["test_noisy"] = [{**r, "text": transform(r["text"], rng)} for r in splits["test"]]
    return splits
