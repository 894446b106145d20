"""Input checks and sanitising for what users send, before anything reaches the tokenizer.

* `check_texts` turns the input into a list of `str` or raises a `TypeError` that names the bad item's index
  (a `str` passed where a list is expected, `None`, numbers, bytes, ...), instead of an error from deep inside
  the tokenizer.
* `sanitize` removes control characters (C0/C1 controls other than whitespace, and lone UTF-16 surrogates,
  which the Rust tokenizers cannot even encode) and flags empty / whitespace-only texts. Text without control
  characters is returned unchanged, so its tokenization (and prediction) is exactly the one of training and
  testing. (Very long texts are cut by the predictor, which knows the token budget.)

Flags name what happened to a text; they are reported with its prediction.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

EMPTY = "empty"  # empty or whitespace-only: the model is not run, labels are the fallbacks (or null)
TRUNCATED = "truncated"  # the model saw only the beginning (characters cut and/or tokens over max_length)
CONTROL_CHARS = "control_characters_removed"  # control characters / lone surrogates were stripped

# C0 and C1 controls except the whitespace ones (\t \n \v \f \r, U+0085), and lone surrogates.
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")


def check_texts(texts: Any) -> list[str]:
    """`texts` as a list of strings; a clear `TypeError` (naming the index) for anything else."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, got a single str; use predict_one(text) for one message")
    if isinstance(texts, bytes | bytearray) or not isinstance(texts, Iterable):
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"texts[{i}] is {type(text).__name__}, expected str")
    return out


def sanitize(text: str) -> tuple[str, list[str]]:
    """(text without control characters, flags): `CONTROL_CHARS` when some were removed, `EMPTY` when nothing
    but whitespace is left. Cutting long texts is the predictor's job (it knows the token budget)."""
    cleaned = _CONTROL.sub("", text)
    flags = [CONTROL_CHARS] if len(cleaned) != len(text) else []
    if not cleaned.strip():
        flags.append(EMPTY)
    return cleaned, flags
