"""`MultiTaskModule` loss and metrics with partially labelled batches: masking, class weights, per-group
metrics (tiny backbone, no training)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import hydra
import pytest
import torch
from torch.nn import functional as F

from intentfusion.models.module import MultiTaskModule
from intentfusion.types import IGNORE_INDEX

from ..conftest import make_cfg

LABELS = {"intent": ["book", "cancel", "refund"], "sentiment": ["negative", "positive"]}
M = IGNORE_INDEX


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path):
    cfg = make_cfg(tmp_path_factory.mktemp("module"), cache_dir, "tasks=intent_sentiment", "phases=full")

    def make(**kw) -> MultiTaskModule:
        torch.manual_seed(0)
        return hydra.utils.instantiate(cfg.model, label_names=LABELS, **kw)

    return make


def _by_task(rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """A batch's labels per task from an (N, tasks) matrix written row by row."""
    return {task: rows[:, j] for j, task in enumerate(LABELS)}


def _logits(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {task: torch.randn(n, len(names), generator=g) for task, names in LABELS.items()}


# ================================================================================= loss
def test_task_without_labels_adds_nothing_to_the_loss(build) -> None:
    module = build()
    logits = _logits(6)
    intent = torch.tensor([0, 1, 2, 0, 1, 2])
    total, parts, counts = module.loss(logits, {"intent": intent, "sentiment": torch.full((6,), M)})
    assert parts["sentiment"] == 0 and counts == {"intent": 6, "sentiment": 0}
    assert total == pytest.approx(float(F.cross_entropy(logits["intent"], intent)), abs=1e-6)  # task A alone
    with_b, _, _ = module.loss(logits, {"intent": intent, "sentiment": torch.tensor([0, 1, 0, 1, 0, 1])})
    assert with_b > total


def test_each_task_averages_over_its_own_labelled_examples(build) -> None:
    module = build()
    logits = _logits(6, seed=1)
    labels = torch.tensor([[0, M], [2, M], [1, M], [M, 1], [M, 0], [M, 1]])  # rows 0-2 source A, 3-5 source B
    total, parts, _ = module.loss(logits, _by_task(labels))
    intent = F.cross_entropy(logits["intent"][:3], labels[:3, 0])
    sentiment = F.cross_entropy(logits["sentiment"][3:], labels[3:, 1])
    assert parts["intent"] == pytest.approx(float(intent), abs=1e-6)
    assert parts["sentiment"] == pytest.approx(float(sentiment), abs=1e-6)
    assert total == pytest.approx(float(intent + sentiment), abs=1e-6)


def test_class_weights_scale_each_example_by_its_class(build) -> None:
    weights = [0.5, 1.0, 1.5]
    module = build(class_weights={"intent": weights})
    logits = _logits(5, seed=2)
    labels = torch.tensor([[0, 1], [2, 0], [2, M], [1, 1], [M, 0]])
    _, parts, _ = module.loss(logits, _by_task(labels))
    keep = labels[:, 0] != M
    per_example = F.cross_entropy(logits["intent"][keep], labels[keep, 0], reduction="none")
    expected = (torch.tensor(weights)[labels[keep, 0]] * per_example).sum() / keep.sum()
    assert parts["intent"] == pytest.approx(float(expected), abs=1e-6)
    unweighted = F.cross_entropy(logits["sentiment"], labels[:, 1], ignore_index=M)
    assert parts["sentiment"] == pytest.approx(float(unweighted), abs=1e-6)
    assert module.hparams["class_weights"] == {"intent": weights}  # saved with the checkpoint
    with pytest.raises(ValueError, match=r"class_weights\['intent'\]: 2 weight\(s\); expected one per label"):
        module.set_class_weights({"intent": [1.0, 1.0]})


def test_class_weights_are_taken_over_from_the_datamodule_at_setup(build) -> None:
    module = build()
    module._trainer = SimpleNamespace(datamodule=SimpleNamespace(class_weights={"sentiment": [0.8, 1.2]}))
    try:
        module.setup("fit")
    finally:
        module._trainer = None
    assert module.class_weights["sentiment"].tolist() == pytest.approx([0.8, 1.2])
    assert module.hparams["class_weights"] == {"sentiment": pytest.approx([0.8, 1.2])}
    given = build(class_weights={"intent": [1.0, 2.0, 3.0]})
    given._trainer = SimpleNamespace(datamodule=SimpleNamespace(class_weights={"sentiment": [0.8, 1.2]}))
    given.setup("fit")  # weights given at construction win
    given._trainer = None
    assert list(given.class_weights) == ["intent"]


# ================================================================================= metrics
def _eval(module: MultiTaskModule, logits: dict[str, torch.Tensor], labels: torch.Tensor, **extra) -> None:
    n = labels.shape[0]
    module.forward = lambda input_ids, attention_mask: logits
    ids = torch.ones(n, 3, dtype=torch.long)
    module._eval_step({"input_ids": ids, "attention_mask": ids, "labels": _by_task(labels), "split": "val", **extra})


def _computed(module: MultiTaskModule, task: str, group: str | None = None) -> dict[str, float]:
    computed = module.metric_sets[("val", group)].tasks[task].compute()
    return {name: float(v) for name, v in computed.items() if v.ndim == 0}


def _updated(module: MultiTaskModule) -> set[tuple[str, str | None, str]]:
    return {(split, group, task) for (split, group), metrics in module.metric_sets.items()
            for task, collection in metrics.tasks.items() if collection["acc"].update_called}


def test_metrics_of_a_task_ignore_examples_without_its_label(build) -> None:
    sentiment_rows = torch.tensor([[M, 1], [M, 0], [M, 1], [M, 1]])
    logits_b = _logits(4, seed=3)
    only_b = build()
    _eval(only_b, logits_b, sentiment_rows)
    mixed = build()
    a_rows = torch.tensor([[0, M], [1, M], [2, M]])
    logits_a = _logits(3, seed=4)
    _eval(mixed, logits_a, a_rows)  # A-only examples: their sentiment predictions must not count
    _eval(mixed, logits_b, sentiment_rows)
    assert _computed(mixed, "sentiment") == _computed(only_b, "sentiment")
    gold = sentiment_rows[:, 1]
    assert _computed(only_b, "sentiment")["acc"] == pytest.approx(
        float((logits_b["sentiment"].argmax(-1) == gold).float().mean())
    )
    intent_acc = float((logits_a["intent"].argmax(-1) == a_rows[:, 0]).float().mean())
    assert _computed(mixed, "intent")["acc"] == pytest.approx(intent_acc)
    confusion = mixed.metric_sets[("val", None)].tasks["sentiment"].compute()["confusion"]
    assert confusion.sum(1).tolist() == torch.bincount(gold, minlength=2).tolist()  # rows: the gold labels


def test_group_metrics_cover_the_groups_labelled_examples(build) -> None:
    module = build()
    labels = torch.tensor([[0, M], [1, M], [2, M], [M, 1], [M, 0], [M, 0]])
    logits = _logits(6, seed=5)
    groups = {
        "intents": torch.tensor([True, True, True, False, False, False]),
        "moods": torch.tensor([False, False, False, True, True, True]),
        "english": torch.tensor([False, True, False, False, True, False]),
        "nobody": torch.zeros(6, dtype=torch.bool),
    }
    _eval(module, logits, labels, groups=groups)
    assert {k for k in _updated(module) if k[1] is not None} == {
        ("val", "intents", "intent"), ("val", "moods", "sentiment"), ("val", "english", "intent"),
        ("val", "english", "sentiment")}
    english_sentiment = float(logits["sentiment"][4].argmax() == 0)
    assert _computed(module, "sentiment", "english")["acc"] == pytest.approx(english_sentiment)
    assert _computed(module, "sentiment", "moods") == _computed(module, "sentiment")

    logged: dict[str, float] = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    module._log_epoch_metrics()
    assert {"val/intents/intent/acc", "val/moods/sentiment/f1_macro", "val/english/sentiment/acc"} <= set(logged)
    assert "val/intents/sentiment/acc" not in logged
    base = (logged["val/intent/f1_macro"] + logged["val/sentiment/f1_macro"]) / 2
    assert logged["val/score"] == pytest.approx(base)  # the score stays the mean over the tasks
    assert not any(k.endswith("/score") and k != "val/score" for k in logged)


def test_a_split_without_a_tasks_labels_logs_no_metric_for_it(build) -> None:
    module = build()
    _eval(module, _logits(3, seed=6), torch.tensor([[0, M], [1, M], [2, M]]))  # like CLINC150's test_oos
    logged: dict[str, float] = {}
    module.log = lambda name, value, **kw: logged.__setitem__(name, float(value))
    module._log_epoch_metrics()
    assert "val/intent/acc" in logged and not any(k.startswith("val/sentiment/") for k in logged)
    assert logged["val/score"] == pytest.approx(logged["val/intent/f1_macro"])  # not dragged down by a 0
