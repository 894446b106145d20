"""`evaluation.suite`: per-task outputs, out-of-scope queries counted once (a small CLINC150-shaped fixture)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from intentfusion.evaluation.suite import evaluate_model, oos_queries
from intentfusion.tasks import SequenceTask
from intentfusion.types import IGNORE_INDEX

NAMES = ["book", "cancel", "oos"]  # CLINC150 with oos=class: `oos` is one more intent


def _split(gold: list[int], seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"logits": {"intent": torch.randn(len(gold), len(NAMES), generator=g)},
            "labels": {"intent": torch.tensor(gold)}}


def _clinc_like(oos: str) -> dict[str, dict]:
    """test holds 4 in-scope + (oos=class) the 3 OOS queries; test_oos holds the same 3 OOS queries again."""
    oos_gold = [2, 2, 2] if oos == "class" else [IGNORE_INDEX] * 3
    test = _split([0, 1, 0, 1] + ([2, 2, 2] if oos == "class" else []), seed=0)
    val = _split([0, 1, 1, 0] + ([2, 2] if oos == "class" else []), seed=1)
    outputs = {"test": test, "val": val, "test_oos": _split(oos_gold, seed=2), "val_oos": _split(oos_gold[:2], seed=3)}
    if oos == "class":  # the very queries of `test`, as CLINC150's loader builds them
        outputs["test_oos"]["logits"]["intent"] = test["logits"]["intent"][4:]
    return outputs


def test_oos_queries_of_a_split_that_already_holds_them_are_counted_once() -> None:
    logits, gold = oos_queries(_clinc_like("class"), "test", NAMES)
    assert gold.count("oos") == 3 and len(gold) == 7 and logits.shape == (7, 3)


def test_oos_queries_join_the_companion_split_when_the_split_has_none() -> None:
    outputs = _clinc_like("exclude")
    logits, gold = oos_queries(outputs, "test", NAMES[:2])
    assert gold == ["book", "cancel", "book", "cancel", "oos", "oos", "oos"]
    assert torch.equal(logits[4:], outputs["test_oos"]["logits"]["intent"])


def test_examples_without_an_intent_label_are_not_taken_for_oos() -> None:
    outputs = {"test": _split([0, IGNORE_INDEX, 1, IGNORE_INDEX], seed=4)}  # another source's examples: no intent
    _, gold = oos_queries(outputs, "test", NAMES[:2])
    assert gold == ["book", "cancel"]


def test_suite_reports_n_oos_equal_to_the_distinct_oos_test_queries(tmp_path: Path) -> None:
    outputs = _clinc_like("class")
    train = {"intent": torch.tensor([0, 1, 2, 0, 1, 2])}
    suite = evaluate_model(outputs, {"intent": SequenceTask(NAMES, 4)}, train, tmp_path, {"fuzzy": False})
    assert suite["oos"]["as_class"]["n_oos"] == 3 and suite["oos"]["as_class"]["n_in_scope"] == 4
    assert suite["oos"]["max_softmax"]["n_oos"] == 3


def test_a_token_task_gets_its_span_report_per_split_and_in_report_md(tmp_path: Path) -> None:
    from intentfusion.evaluation.report_md import render_report
    from intentfusion.tasks import TokenTask

    tags = ["O", "B-city", "B-time", "I-time"]
    M = IGNORE_INDEX
    gold = torch.tensor([[M, 0, 1, M, 0, 2, 3], [M, 1, 0, 0, M, M, M]])  # first subwords only
    pred = gold.clamp(min=0).clone()
    pred[1, 1] = 0  # the second utterance's city is missed
    logits = torch.nn.functional.one_hot(pred, len(tags)).float() * 5
    outputs = {split: {"logits": {"intent": torch.randn(2, 2), "slots": logits},
                       "labels": {"intent": torch.tensor([0, 1]), "slots": gold}} for split in ("val", "test")}
    heads = {"intent": SequenceTask(["book", "cancel"], 4), "slots": TokenTask(tags, 4)}
    suite = evaluate_model(outputs, heads, {"intent": torch.tensor([0, 1])}, tmp_path, {"fuzzy": False})
    test = suite["token_tasks"]["slots"]["splits"]["test"]
    assert (test["precision"], test["recall"]) == pytest.approx((1.0, 2 / 3)) and test["utterances"] == 2
    assert test["per_type"]["city"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert "slots" not in suite["tasks"] and "intent" in suite["tasks"]
    report = render_report(suite, "x.ckpt", heads)
    assert "### slots (token task" in report and "| city |" in report
