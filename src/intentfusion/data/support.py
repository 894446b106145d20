"""The embedded support corpus (docs/support_corpus.md): held-out phrasings, near-pair intents, implicit cues, entities,
out-of-scope messages and training-only label noise, generated offline and deterministically from a seed.

A message is ``[opener] [cues] <frame ∘ intent paraphrase> [entity mentions] [cues]``; each piece comes from a
`Pool` whose patterns are split once into train / val / test (`intentfusion.data.patterns.split_of`), and a split's
messages use only that split's frames, paraphrases, openers, mentions and products (their ids are in
``record["patterns"]``); the urgency / sentiment cues are the labels' vocabulary, shared by all splits (`SHARED_POOLS`).
Labels follow a rule table (urgency and sentiment from the cues, action from urgency, sentiment and whether the
intent's required entity is mentioned: `REQUIRED_ENTITY`); entity spans become the BIO tags of task ``slots``.
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

from intentfusion.data.patterns import SPLITS, Piece, Pool, fill, join
from intentfusion.data.slots import spans_to_bio
from intentfusion.data.support_cues import CUES, ENTITY_MENTIONS, OUT_OF_SCOPE
from intentfusion.data.support_intents import EXPRESSIONS, FRAMES, INTENT_GROUPS, INTENTS, NEAR_PAIRS, STATEMENTS
from intentfusion.data.support_values import EMAIL_DOMAINS, FIRST_NAMES, LAST_NAMES, MONTHS, OPENERS, PRODUCTS
from intentfusion.data.transforms import add_noisy_split

__all__ = ["LANGUAGES", "TASKS", "LABELS", "REQUIRED_ENTITY", "generate_split", "load_support", "tiny_backbone_corpus"]

LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr")
TASKS: tuple[str, ...] = ("intent", "urgency", "sentiment", "action", "slots")
LABELS: dict[str, tuple[str, ...]] = {
    "intent": INTENTS,
    "urgency": ("low", "medium", "high"),
    "sentiment": ("calm", "frustrated", "angry"),
    "action": ("auto_resolve", "request_more_info", "escalate_to_human"),
}
REQUIRED_ENTITY: dict[str, str | None] = {  # the detail an agent needs before acting (None: never asks)
    **dict.fromkeys(INTENT_GROUPS["subscription"], None),
    **dict.fromkeys(INTENT_GROUPS["refunds"] + INTENT_GROUPS["orders"], "order_id"),
    **{"duplicate_charge": "amount", "wrong_amount_charged": "amount", "update_payment_method": None},
    "invoice_request": "order_id",
    **dict.fromkeys(INTENT_GROUPS["cards"], "card_last4"),
    **dict.fromkeys(INTENT_GROUPS["account"], "email"),
    "technical_problem": "product",
}
PARTNER = {a: b for pair in NEAR_PAIRS for a, b in (pair, pair[::-1])}
P_URGENCY = {"high": 0.25, "low": 0.25, "medium": 0.5}
P_SENTIMENT = {"angry": 0.2, "frustrated": 0.25, "calm": 0.25, "none": 0.3}
P_DETAIL, P_EXTRA, P_OPENER, P_CUE_BEFORE = 0.6, 0.3, 0.5, 0.3
SHARED_POOLS = ("cue/",)  # the labels' own vocabulary (urgency / sentiment cues): every split draws from all of it
EXTRA_ENTITIES = ("date", "amount", "product")  # mentioned now and then, whatever the intent needs
FRACTIONS = (0.7, 0.15, 0.15)
_ELISION = re.compile(r"\b(de|que|je|me|le|la|ne|se) (?=[aeiouyéèêàâîôûh])", re.IGNORECASE)


@functools.cache
def _pool(name: str, patterns: tuple[str, ...]) -> Pool:
    """The pool of ``patterns`` (built once: its split parts are fixed)."""
    return Pool(name, patterns)


def _values(lang: str, rng: random.Random, split: str) -> dict[str, Callable[[], Piece]]:
    """Entity value generators (a Piece whose whole text is the entity) for one message."""

    def piece(label: str, text: str) -> Piece:
        return Piece(text, ((0, len(text), label),))

    def amount() -> str:
        value = f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}"
        if lang == "en":
            return rng.choice((f"${value}", f"{value} USD"))
        value = value.replace(".", ",")
        return rng.choice((f"{value} €", f"{value} EUR"))

    def date() -> str:
        month, day = rng.choice(MONTHS[lang]), rng.randint(1, 28)
        return {"en": f"{month} {day}", "es": f"{day} de {month}", "de": f"{day}. {month}", "fr": f"{day} {month}"}[
            lang
        ]

    def email() -> str:
        first = rng.choice(FIRST_NAMES[lang]).lower().translate(str.maketrans("áéíóúèçëü", "aeioueceu"))
        return f"{first}{rng.choice(('.', '_', ''))}{rng.choice(LAST_NAMES[lang])}@{rng.choice(EMAIL_DOMAINS[lang])}"

    products = _pool("product", PRODUCTS)
    return {
        "order_id": lambda: piece(
            "order_id", f"#{rng.choice('ABCDEFGHJK')}{rng.randint(1, 9)}-{rng.randint(10000, 99999)}"
        ),
        "amount": lambda: piece("amount", amount()),
        "date": lambda: piece("date", date()),
        "product": lambda: piece("product", products.draw(split, rng)[1]),
        "email": lambda: piece("email", email()),
        "card_last4": lambda: piece("card_last4", f"{rng.randint(0, 9999):04d}"),
    }


def _sentence(text: str, lang: str) -> str:
    """French elision and a capital first letter."""
    if lang == "fr":
        text = _ELISION.sub(lambda m: m.group(1)[:-1] + "'", text)
    return text[:1].upper() + text[1:]


def _choose(rng: random.Random, probs: dict[str, float]) -> str:
    return rng.choices(list(probs), weights=list(probs.values()))[0]


def _message(lang: str, intent: str, split: str, rng: random.Random) -> dict[str, Any]:
    """One labelled message of ``split`` (only that split's patterns), with its pattern ids and entity spans."""
    ids: list[str] = []

    def draw(name: str, patterns: Sequence[str]) -> str:
        shared = name.startswith(SHARED_POOLS)
        pid, pattern = _pool(name, patterns).draw(None if shared else split, rng)
        ids.append(pid)
        return pattern

    values = _values(lang, rng, split)
    kind = "statement" if intent in STATEMENTS else "request"
    frame = draw(f"frame/{lang}/{kind}", FRAMES[lang][kind])
    expression = draw(f"expr/{lang}/{intent}", EXPRESSIONS[lang][intent])
    core = Piece(_sentence(frame.replace("{X}", expression), lang))
    urgency, sentiment = _choose(rng, P_URGENCY), _choose(rng, P_SENTIMENT)
    before, after = [], []
    for label, key in ((urgency, f"urgency_{urgency}"), (sentiment, f"sentiment_{sentiment}")):
        if label not in ("medium", "none"):
            cue = Piece(draw(f"cue/{lang}/{key}", CUES[lang][key]))
            (before if rng.random() < P_CUE_BEFORE else after).append(cue)
    needed = REQUIRED_ENTITY[intent]
    mentioned = [needed] if needed is not None and rng.random() < P_DETAIL else []
    if rng.random() < P_EXTRA:
        mentioned.append(rng.choice([e for e in EXTRA_ENTITIES if e != needed]))
    mentions = [fill(draw(f"mention/{lang}/{e}", ENTITY_MENTIONS[lang][e]), {"value": values[e]}) for e in mentioned]
    opener = Piece(draw(f"opener/{lang}", OPENERS[lang])) if rng.random() < P_OPENER else Piece("")
    message = join([opener, *before, core, *mentions, *after])
    sentiment = "calm" if sentiment == "none" else sentiment
    if urgency == "high" or sentiment == "angry":
        action = "escalate_to_human"
    elif needed is not None and needed not in mentioned:
        action = "request_more_info"
    else:
        action = "auto_resolve"
    spans = [{"start": s, "end": e, "label": label} for s, e, label in message.spans]
    return {
        "text": message.text,
        "intent": intent,
        "urgency": urgency,
        "sentiment": sentiment,
        "action": action,
        "slots": spans_to_bio(message.text, spans, f"support/{split}"),
        "entities": spans,
        "language": lang,
        "patterns": ids,
        "is_oos": False,
    }


def _out_of_scope(lang: str, split: str, rng: random.Random) -> dict[str, Any]:
    """An out-of-scope message of ``split``: no label for any task."""
    pid, request = _pool(f"oos/{lang}", OUT_OF_SCOPE[lang]).draw(split, rng)
    ids = [pid]
    parts = [Piece(request)]
    if rng.random() < P_OPENER:
        opener_id, opener = _pool(f"opener/{lang}", OPENERS[lang]).draw(split, rng)
        parts.insert(0, Piece(opener))
        ids.append(opener_id)
    text = join(parts).text
    return {"text": text, **dict.fromkeys(TASKS), "language": lang, "patterns": ids, "is_oos": True}


def generate_split(
    split: str, n: int, seed: int = 0, languages: Sequence[str] = LANGUAGES, seen: set[str] | None = None
) -> list[dict[str, Any]]:
    """``n`` unique messages of ``split``, balanced over language x intent (round robin, shuffled)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}; expected one of {SPLITS}")
    rng = random.Random(f"{seed}/{split}")
    pairs = [(lang, intent) for lang in languages for intent in INTENTS]
    order = [pairs[i % len(pairs)] for i in range(n)]
    rng.shuffle(order)
    seen = set() if seen is None else seen
    out = []
    for lang, intent in order:
        for _ in range(200):
            record = _message(lang, intent, split, rng)
            if record["text"] not in seen:
                break
        seen.add(record["text"])
        out.append(record)
    return out


def _flip_labels(records: list[dict[str, Any]], rate: float, rng: random.Random) -> list[dict[str, Any]]:
    """Training-only annotation noise: each sequence label replaced with probability ``rate`` (an intent by its
    near partner half of the time, otherwise uniformly by another label); flipped tasks in ``noisy_labels``."""
    out = []
    for record in records:
        record, flipped = dict(record), []
        for task, labels in LABELS.items():
            if rng.random() >= rate:
                continue
            if task == "intent" and record[task] in PARTNER and rng.random() < 0.5:
                record[task] = PARTNER[record[task]]
            else:
                record[task] = rng.choice([label for label in labels if label != record[task]])
            flipped.append(task)
        record["noisy_labels"] = flipped
        out.append(record)
    return out


def load_support(
    n: int = 3600,
    seed: int = 0,
    languages: Sequence[str] = LANGUAGES,
    label_noise: float = 0.03,
    oos_share: float = 0.1,
    noise_p: float = 1.0,
    noise_seed: int = 1234,
) -> dict[str, list]:
    """Splits train / val / test (70/15/15 of ``n``, each from its own patterns), ``val_oos`` / ``test_oos``
    (``oos_share`` of val / test, out-of-scope, unlabelled), ``test_noisy`` (test with typos / casing / fillers,
    tags kept aligned); ``label_noise`` of the training labels flipped (`_flip_labels`)."""
    if not 0.0 <= label_noise < 1.0:
        raise ValueError(f"label_noise must be in [0, 1), got {label_noise!r}")
    unknown = [lang for lang in languages if lang not in LANGUAGES]
    if unknown or not languages:
        raise ValueError(f"languages {list(languages)}; expected a non-empty subset of {LANGUAGES}")
    smallest = math.ceil(len(INTENTS) / FRACTIONS[1])  # validation and test get every intent at least once
    if isinstance(n, bool) or not isinstance(n, int) or n < smallest:
        raise ValueError(f"n={n!r} is too small for {len(INTENTS)} intents per split; expected an int >= {smallest}")
    sizes = {"train": n - 2 * round(FRACTIONS[1] * n), "val": round(FRACTIONS[1] * n), "test": round(FRACTIONS[2] * n)}
    seen: set[str] = set()
    splits = {split: generate_split(split, size, seed, languages, seen) for split, size in sizes.items()}
    splits["train"] = _flip_labels(splits["train"], label_noise, random.Random(f"{seed}/label_noise"))
    for split in ("val", "test"):
        rng = random.Random(f"{seed}/{split}_oos")
        count = max(1, round(oos_share * sizes[split]))
        splits[f"{split}_oos"] = [_out_of_scope(languages[i % len(languages)], split, rng) for i in range(count)]
    return add_noisy_split(splits, "test", "test_noisy", p=noise_p, seed=noise_seed)


def tiny_backbone_corpus() -> list[str]:
    """The texts the tokenizers of ``builtin:tiny-xlmr`` / ``builtin:tiny-distilbert`` are trained on: 3000 messages
    of every split (seed 0), so that held-out phrasings tokenize like the rest; pass it as
    ``resolve_backbone(..., corpus=tiny_backbone_corpus)``."""
    return [r["text"] for split in load_support(3000, seed=0, noise_p=0.0).values() for r in split]
