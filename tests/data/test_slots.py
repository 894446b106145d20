"""BIO tags <-> character spans: round trips, repair, and every error with its file:line and what was expected."""

from __future__ import annotations

import pytest

from intentfusion.data.alignment import word_spans
from intentfusion.data.slots import (
    bio_to_spans,
    check_tag_count,
    check_tags,
    repair_bio,
    spans_to_bio,
    validate_bio,
)
from intentfusion.errors import DataSourceError, UserError

TEXT = "book a table at 7 pm for  tomorrow night"  # two spaces before "tomorrow"
WHERE = "data/train.jsonl:7"


def _msg(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and isinstance(e.value, DataSourceError) and isinstance(e.value, UserError)
    return msg


def _span(text: str, phrase: str, label: str) -> dict:
    start = text.index(phrase)
    return {"start": start, "end": start + len(phrase), "label": label}


def test_word_spans_follow_whitespace() -> None:
    assert word_spans(" a  bc\td ") == [(1, 2), (4, 6), (7, 8)]
    assert [TEXT[s:e] for s, e in word_spans(TEXT)] == TEXT.split()


def test_spans_to_bio_and_back() -> None:
    spans = [_span(TEXT, "table", "thing"), _span(TEXT, "7 pm", "time"), _span(TEXT, "tomorrow night", "date")]
    tags = spans_to_bio(TEXT, spans)
    assert tags == ["O", "O", "B-thing", "O", "B-time", "I-time", "O", "B-date", "I-date"]
    assert len(tags) == len(TEXT.split())
    assert bio_to_spans(TEXT, tags) == spans
    assert [TEXT[s["start"] : s["end"]] for s in bio_to_spans(TEXT, tags)] == ["table", "7 pm", "tomorrow night"]
    assert spans_to_bio(TEXT, list(reversed(spans))) == tags  # any order in, sorted out
    assert spans_to_bio(TEXT, []) == ["O"] * 9 and bio_to_spans(TEXT, ["O"] * 9) == []


def test_adjacent_entities_and_text_edges_round_trip() -> None:
    text = "paris london rome"
    spans = [{"start": 0, "end": 5, "label": "city"}, {"start": 6, "end": 12, "label": "city"}]
    spans.append({"start": 13, "end": 17, "label": "city"})
    tags = spans_to_bio(text, spans)
    assert tags == ["B-city", "B-city", "B-city"]
    assert bio_to_spans(text, tags) == spans
    joined = [{"start": 0, "end": 17, "label": "trip"}]
    assert spans_to_bio(text, joined) == ["B-trip", "I-trip", "I-trip"]
    assert bio_to_spans(text, ["B-trip", "I-trip", "I-trip"]) == joined


def test_bio_round_trip_on_tags() -> None:
    text = "wake me up at 6 am on the 14th"
    tags = ["O", "O", "O", "O", "B-time", "I-time", "O", "B-date", "I-date"]
    assert spans_to_bio(text, bio_to_spans(text, tags)) == tags


def test_tag_count_mismatch_names_where() -> None:
    with pytest.raises(DataSourceError) as e:
        bio_to_spans("book a table", ["O", "O"], WHERE)
    assert _msg(e) == (
        f"{WHERE}: 2 BIO tag(s) for 3 word(s); expected one tag per whitespace-separated word of the text"
    )
    with pytest.raises(DataSourceError, match=r"^x.csv:3: 4 BIO tag\(s\) for 3 word\(s\)"):
        check_tag_count("book a table", ["O"] * 4, "x.csv:3")
    with pytest.raises(DataSourceError, match=r"^x.csv:3: 1 BIO tag\(s\) for 3 word\(s\)"):
        check_tags("book a table", ["O"], "x.csv:3", repair=True)  # repair does not fix a count


def test_invalid_bio_names_where_and_the_tag() -> None:
    with pytest.raises(DataSourceError) as e:
        validate_bio(["O", "I-time", "I-time"], WHERE)
    assert _msg(e) == (
        f"{WHERE}: tag 2 'I-time' follows 'O'; expected I-time only after B-time or I-time "
        f"(bio_repair: true makes it B-time)"
    )
    with pytest.raises(DataSourceError, match=rf"^{WHERE}: tag 1 'I-x' follows the start; expected I-x only"):
        validate_bio(["I-x"], WHERE)
    with pytest.raises(DataSourceError, match=rf"^{WHERE}: tag 2 'I-date' follows 'B-time'"):
        bio_to_spans("7 pm", ["B-time", "I-date"], WHERE)
    for bad in ("X", "B-", "b-time", "I"):
        with pytest.raises(DataSourceError) as e:
            validate_bio(["O", bad], WHERE)
        assert (
            _msg(e)
            == f"{WHERE}: tag 2 {bad!r} is not a BIO tag; expected O, B-<type> or I-<type> (type without whitespace)"
        )
    validate_bio(["B-a", "I-a", "B-b", "O", "B-a", "I-a"], WHERE)  # valid: no error
    validate_bio([], WHERE)


def test_repair_bio() -> None:
    assert repair_bio(["O", "I-time", "I-time", "I-date", "B-x", "I-x"]) == [
        "O",
        "B-time",
        "I-time",
        "B-date",
        "B-x",
        "I-x",
    ]
    tags = ["I-a", "O"]
    assert repair_bio(tags) == ["B-a", "O"] and tags == ["I-a", "O"]  # input untouched
    assert bio_to_spans("7 pm", ["I-time", "I-time"], repair=True) == [{"start": 0, "end": 4, "label": "time"}]
    with pytest.raises(DataSourceError, match=rf"^{WHERE}: tag 1 'X' is not a BIO tag"):
        repair_bio(["X"], WHERE)


def test_unaligned_span_is_an_error_or_snapped_with_repair() -> None:
    text = "rain tomorrow morning"
    cut = {"start": 7, "end": 13, "label": "date"}  # "morrow"
    with pytest.raises(DataSourceError) as e:
        spans_to_bio(text, [cut], WHERE)
    assert _msg(e) == (
        f"{WHERE}: span 1 [7, 13) 'date' ('morrow') does not align to word boundaries; expected a span that starts "
        f"at a word's start and ends at a word's end (bio_repair: true snaps it to the words it overlaps: [5, 13))"
    )
    assert spans_to_bio(text, [cut], WHERE, repair=True) == ["O", "B-date", "O"]
    across = {"start": 2, "end": 16, "label": "x"}  # "in tomorrow mo"
    assert spans_to_bio(text, [across], repair=True) == ["B-x", "I-x", "I-x"]
    with pytest.raises(DataSourceError, match=r"span 1 \[2, 16\) 'x' \('in tomorrow mo'\) does not align"):
        spans_to_bio(text, [across])
    trailing = {"start": 5, "end": 14, "label": "date"}  # "tomorrow " (a trailing space)
    with pytest.raises(DataSourceError, match="does not align to word boundaries"):
        spans_to_bio(text, [trailing])
    assert spans_to_bio(text, [trailing], repair=True) == ["O", "B-date", "O"]


def test_overlapping_spans() -> None:
    text = "fly to new york city"
    a, b = {"start": 7, "end": 15, "label": "city"}, {"start": 11, "end": 20, "label": "place"}
    with pytest.raises(DataSourceError) as e:
        spans_to_bio(text, [b, a], WHERE)
    assert _msg(e) == (
        f"{WHERE}: span 2 [7, 15) 'city' and span 1 [11, 20) 'place' overlap; expected spans that do not overlap"
    )
    with pytest.raises(DataSourceError, match="overlap"):
        spans_to_bio(text, [a, b], WHERE, repair=True)  # repair does not fix an overlap
    nested = [{"start": 7, "end": 20, "label": "city"}, {"start": 11, "end": 15, "label": "x"}]
    with pytest.raises(DataSourceError, match=r"span 1 \[7, 20\) 'city' and span 2 \[11, 15\) 'x' overlap"):
        spans_to_bio(text, nested, WHERE)
    same_word = [{"start": 7, "end": 8, "label": "a"}, {"start": 8, "end": 10, "label": "b"}]  # "n" + "ew"
    with pytest.raises(DataSourceError) as e:
        spans_to_bio(text, same_word, WHERE, repair=True)
    assert _msg(e) == (
        f"{WHERE}: span 2 [8, 10) 'b' shares a word with another span once snapped to words; "
        f"expected spans that do not overlap"
    )


def test_span_outside_the_text() -> None:
    text = "rain today"  # 10 characters
    for start, end in ((-1, 4), (5, 11), (5, 5), (6, 5)):
        with pytest.raises(DataSourceError) as e:
            spans_to_bio(
                text, [{"start": 0, "end": 4, "label": "w"}, {"start": start, "end": end, "label": "d"}], WHERE
            )
        assert _msg(e) == (
            f"{WHERE}: span 2 [{start}, {end}) 'd' is outside the text (length 10); expected 0 <= start < end <= 10"
        )
        with pytest.raises(DataSourceError, match="is outside the text"):
            spans_to_bio(text, [{"start": start, "end": end, "label": "d"}], WHERE, repair=True)


def test_malformed_spans_and_spans_over_whitespace_only() -> None:
    text = "rain  today"
    for bad in (
        {"start": 0, "end": 4},
        {"start": "0", "end": 4, "label": "x"},
        [0, 4, "x"],
        {"start": True, "end": 4, "label": "x"},
    ):
        with pytest.raises(DataSourceError) as e:
            spans_to_bio(text, [bad], WHERE)
        assert _msg(e).startswith(f"{WHERE}: span 1 is ") and _msg(e).endswith(
            '; expected {"start": int, "end": int, "label": str}'
        )
    for label in ("", "two words", "O"):
        with pytest.raises(DataSourceError) as e:
            spans_to_bio(text, [{"start": 0, "end": 4, "label": label}], WHERE)
        assert _msg(e) == f"{WHERE}: span 1 has label {label!r}; expected a non-empty label without whitespace"
    with pytest.raises(DataSourceError) as e:
        spans_to_bio(text, [{"start": 4, "end": 6, "label": "gap"}], WHERE, repair=True)
    assert _msg(e) == f"{WHERE}: span 1 [4, 6) 'gap' covers no word ('  '); expected a span over one or more words"
