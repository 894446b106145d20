"""Word labels projected onto subwords (`intentfusion.data.alignment`) for WordPiece, Unigram (XLM-R) and
byte-level BPE (RoBERTa) tokenizers, on the ids `encode_texts` gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from intentfusion.data.alignment import align_labels, continuation_map, subword_to_word, word_spans
from intentfusion.data.encoding import encode_texts
from intentfusion.data.support import tiny_backbone_corpus
from intentfusion.models.backbone import load_tokenizer, resolve_backbone
from intentfusion.types import IGNORE_INDEX

TEXTS = [
    "book a table at 7 pm",
    "Where is order #48213?",
    "refund  €25.50 to jose.garcía@example.com please",
    "  Hola, ¿dónde está mi pedido #48213?  Gracias!!  ",
    "café 😀 ñandú 48213",
    "Hi,   I'm   here!!\tcall +34 600-123-456\nnow",
    "Ünïcödé ÀÉÎ naïve déjà-vu, ok?",
]
KINDS = ["wordpiece", "minilm", "xlmr", "bytelevel-trim", "bytelevel-notrim"]
TAGS = ["O", "B-ent", "I-ent", "B-other"]  # B-other has no I- tag: it continues as itself


def _bytelevel(trim_offsets: bool) -> Any:
    """A RoBERTa-style byte-level BPE tokenizer trained on 300 support messages."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(tiny_backbone_corpus()[:300], trainer=trainer)
    tok.post_processor = processors.RobertaProcessing(
        ("</s>", tok.token_to_id("</s>")), ("<s>", tok.token_to_id("<s>")), trim_offsets=trim_offsets
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        add_prefix_space=True,
    )


@pytest.fixture(scope="module")
def tokenizers(cache_dir: Path) -> dict[str, Any]:
    def tiny(name: str) -> Any:
        return load_tokenizer(resolve_backbone(name, cache_dir))

    return {
        "wordpiece": tiny("builtin:tiny-distilbert"),
        "minilm": tiny("builtin:minilm"),
        "xlmr": tiny("builtin:tiny-xlmr"),
        "bytelevel-trim": _bytelevel(trim_offsets=True),
        "bytelevel-notrim": _bytelevel(trim_offsets=False),
    }


def encode(tok: Any, texts: list[str], max_length: int) -> tuple[list[list[int]], list[list[tuple[int, int]]]]:
    """Ids and offsets of one truncating call, asserted to be the ids of `encode_texts` (the one path)."""
    enc = tok(texts, truncation=True, max_length=max_length, return_offsets_mapping=True)
    assert enc["input_ids"] == encode_texts(tok, texts, max_length)[0]
    return enc["input_ids"], [[tuple(o) for o in row] for row in enc["offset_mapping"]]


def covering(text: str, offsets: list[tuple[int, int]]) -> list[list[int]]:
    """Per word, the positions of the pieces that overlap its characters (an independent reference)."""
    return [
        [p for p, (s, e) in enumerate(offsets) if s < e and s < we and e > ws and text[s:e].strip()]
        for ws, we in word_spans(text)
    ]


def check_first_subwords(text: str, offsets: list[tuple[int, int]], aligned: list[int], missing: int) -> None:
    """`aligned` came from labels 1000 + word index: each surviving word's label sits once, on its first piece."""
    spans = word_spans(text)
    cover = covering(text, offsets)
    surviving = [w for w, c in enumerate(cover) if c]
    assert missing == len(spans) - len(surviving)
    assert sum(a != IGNORE_INDEX for a in aligned) == len(surviving)
    for w in surviving:
        (ws, we), at = spans[w], [p for p, a in enumerate(aligned) if a == 1000 + w]
        assert len(at) == 1, (text, w)
        s, e = offsets[at[0]]
        assert at[0] in cover[w] and s <= ws < e and not text[s:ws].strip(), (text, w, text[s:e])  # starts the word
        for q in cover[w]:  # an earlier piece (a marker) covers nothing of the word the labelled one lacks
            assert q >= at[0] or min(offsets[q][1], we) <= e, (text, w, q)


@pytest.mark.parametrize("kind", KINDS)
def test_each_word_label_lands_once_on_its_first_subword(tokenizers: dict[str, Any], kind: str) -> None:
    _, offsets = encode(tokenizers[kind], TEXTS, 64)
    for text, offs in zip(TEXTS, offsets, strict=True):
        labels = [1000 + w for w in range(len(word_spans(text)))]
        aligned, missing = align_labels(offs, word_spans(text), labels)
        assert len(aligned) == len(offs)
        assert missing == 0
        assert all(a == IGNORE_INDEX for a, o in zip(aligned, offs, strict=True) if o == (0, 0))  # specials
        check_first_subwords(text, offs, aligned, missing)


def test_xlmr_standalone_metaspace_piece_never_takes_the_label(tokenizers: dict[str, Any]) -> None:
    tok = tokenizers["xlmr"]
    ids, offsets = encode(tok, TEXTS, 64)
    found = 0
    for text, row, offs in zip(TEXTS, ids, offsets, strict=True):
        spans = word_spans(text)
        aligned, _ = align_labels(offs, spans, [1000 + w for w in range(len(spans))])
        words = subword_to_word(offs, spans)
        for p, piece in enumerate(tok.convert_ids_to_tokens(row)):
            if piece == "▁":
                found += 1
                s, e = offs[p]
                # its offsets are the first character of the piece after it, not zero-width nor the space
                assert e > s and offs[p + 1][0] == s and text[s:e].strip()
                assert aligned[p] == IGNORE_INDEX and words[p] is None
                assert aligned[p + 1] != IGNORE_INDEX and words[p + 1] is not None
    assert found >= 3  # digits, accents, emoji, "pm" start with a stand-alone "▁" here


@pytest.mark.parametrize("kind", ["bytelevel-trim", "bytelevel-notrim"])
def test_bytelevel_space_pieces_and_leading_space_offsets_are_handled(tokenizers: dict[str, Any], kind: str) -> None:
    tok = tokenizers[kind]
    ids, offsets = encode(tok, TEXTS, 64)
    space_pieces = leading_space = 0
    for text, row, offs in zip(TEXTS, ids, offsets, strict=True):
        spans = word_spans(text)
        aligned, _ = align_labels(offs, spans, [1000 + w for w in range(len(spans))])
        for p, piece in enumerate(tok.convert_ids_to_tokens(row)):
            s, e = offs[p]
            if piece == "Ġ":  # a stand-alone space piece: zero-width with trim_offsets, else the space itself
                space_pieces += 1
                assert (s == e) if kind == "bytelevel-trim" else text[s:e] == " "
                assert aligned[p] == IGNORE_INDEX
            if aligned[p] != IGNORE_INDEX and text[s].isspace():
                leading_space += 1
    assert space_pieces > 0
    assert (leading_space > 0) == (kind == "bytelevel-notrim")  # untrimmed offsets include the space before


@pytest.mark.parametrize("kind", KINDS)
def test_every_subword_continues_b_tags_as_i_tags(tokenizers: dict[str, Any], kind: str) -> None:
    cont = continuation_map(TAGS)
    _, offsets = encode(tokenizers[kind], TEXTS, 64)
    split_b = 0
    for text, offs in zip(TEXTS, offsets, strict=True):
        spans = word_spans(text)
        tags = [TAGS[1 + w % 3] if w % 4 else "O" for w in range(len(spans))]
        labels = [TAGS.index(t) for t in tags]
        aligned, _ = align_labels(offs, spans, labels, every_subword=True, continuation=cont)
        words = subword_to_word(offs, spans)
        for w, tag in enumerate(tags):
            got = [TAGS[aligned[p]] for p, x in enumerate(words) if x == w]
            rest = "I-ent" if tag == "B-ent" else tag
            assert got == [tag] + [rest] * (len(got) - 1), (text, w, got)
            split_b += tag == "B-ent" and len(got) > 1
        assert [a == IGNORE_INDEX for a in aligned] == [x is None for x in words]
    assert split_b > 0


@pytest.mark.parametrize("kind", KINDS)
def test_truncation_counts_the_words_it_cut(tokenizers: dict[str, Any], kind: str) -> None:
    max_length = 8
    _, offsets = encode(tokenizers[kind], TEXTS, max_length)
    assert any(encode_texts(tokenizers[kind], TEXTS, max_length)[1])
    total = 0
    for text, offs in zip(TEXTS, offsets, strict=True):
        spans = word_spans(text)
        aligned, missing = align_labels(offs, spans, [1000 + w for w in range(len(spans))])
        check_first_subwords(text, offs, aligned, missing)
        total += missing
    assert total > 0


@pytest.mark.parametrize("max_length", [64, 8])
@pytest.mark.parametrize("kind", KINDS)
def test_first_subword_predictions_round_trip_to_word_labels(
    tokenizers: dict[str, Any], kind: str, max_length: int
) -> None:
    _, offsets = encode(tokenizers[kind], TEXTS, max_length)
    for text, offs in zip(TEXTS, offsets, strict=True):
        spans = word_spans(text)
        labels = [(7 * w) % 5 for w in range(len(spans))]
        aligned, missing = align_labels(offs, spans, labels)
        predicted = [a if a != IGNORE_INDEX else 99 for a in aligned]  # junk where nothing is scored
        decoded: dict[int, int] = {}
        for p, w in enumerate(subword_to_word(offs, spans)):
            if w is not None:
                decoded.setdefault(w, predicted[p])
        kept = len(spans) - missing
        assert decoded == {w: labels[w] for w in range(kept)}  # truncation cuts the tail words only


def test_word_spans_match_split_words() -> None:
    for text in [*TEXTS, "", "   ", "one", "\ttab\nnew  line "]:
        spans = word_spans(text)
        assert [text[s:e] for s, e in spans] == text.split()


def test_hand_written_offsets_show_the_rules() -> None:
    text = "book  a pm"  # words (0, 4) (6, 7) (8, 10)
    offsets = [(0, 0), (0, 1), (0, 1), (1, 4), (4, 5), (5, 7), (8, 8), (8, 9), (9, 10), (0, 0)]
    # <s>, "▁" marker, "b", "ook", a space piece, "Ġa" with its leading space, zero-width "Ġ", "p", "m", </s>
    assert subword_to_word(offsets, word_spans(text)) == [None, None, 0, 0, None, 1, None, 2, 2, None]
    aligned, missing = align_labels(offsets, word_spans(text), [1, 0, 1])
    assert (aligned, missing) == ([-100, -100, 1, -100, -100, 0, -100, 1, -100, -100], 0)
    aligned, _ = align_labels(offsets, word_spans(text), [1, 0, 1], every_subword=True, continuation={1: 2})
    assert aligned == [-100, -100, 1, 2, -100, 0, -100, 1, 2, -100]
    assert align_labels(offsets[:4] + [(0, 0)], word_spans(text), [1, 0, 1])[1] == 2


def test_label_count_must_match_word_count() -> None:
    with pytest.raises(ValueError, match="2 labels for 3 words"):
        align_labels([(0, 0)], word_spans("a b c"), [0, 0])


def test_continuation_map_pairs_b_and_i_tags_that_both_exist() -> None:
    assert continuation_map(["O", "B-time", "I-time", "B-loc", "I-date", "B-date"]) == {1: 2, 5: 4}
    assert continuation_map(["O"]) == {}
