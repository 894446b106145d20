"""The `multilabel` task type: reading label sets (JSONL lists, `a#b`, hub `Sequence(ClassLabel)`), thresholds chosen
on validation, metrics against sklearn, training, the Predictor's label sets, ONNX parity and resume."""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, hamming_loss

from intentfusion.data.datamodule import MultiTaskDataModule
from intentfusion.data.sources import load_source
from intentfusion.evaluation.multilabel import choose_thresholds, set_metrics
from intentfusion.inference import Predictor
from intentfusion.tasks import MultiLabelTask
from intentfusion.types import IGNORE_INDEX

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
CLAUSES = {
    "book": ["book a table for two", "reserve a table tonight", "book me a table"],
    "cancel": ["cancel my order", "cancel the subscription", "please cancel it"],
    "refund": ["refund my money", "i want a refund", "give me my money back"],
    "track": ["where is my parcel", "track my package", "where is my delivery"],
}


def requests_jsonl(path: Path, n: int = 240, seed: int = 0, as_string: bool = False) -> Path:
    """Messages of one or two requests (`<a> and <b>`) with their intent sets (`["book", "cancel"]`, or with
    `as_string` `"book#cancel"`)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        intents = sorted(rng.sample(sorted(CLAUSES), rng.choice([1, 1, 2])))
        text = " and ".join(rng.choice(CLAUSES[i]) for i in intents)
        rows.append({"text": text, "intents": "#".join(intents) if as_string else intents})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def multilabel_overrides(path: Path) -> list[str]:
    return ["data=jsonl", f"data.source.train={path}", "tasks=intent_only", "tasks.names=[intents]",
            "tasks.types={intents: multilabel}",
            "hparams.lr=3e-3", "hparams.batch_size=16", "trainer.precision=32", "data.test_splits=[test]"]


# ------------------------------------------------------------------------------------------ thresholds, metrics
def test_thresholds_are_the_f1_best_per_label_and_default_without_positives() -> None:
    probs = torch.tensor([[0.30, 0.2, 0.9], [0.10, 0.1, 0.8], [0.35, 0.3, 0.4], [0.05, 0.2, 0.7]])
    target = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 0, 0], [0, 0, 1]])
    chosen = choose_thresholds(probs, target)
    # label 0: anything in (0.10, 0.30] separates it; of those the one closest to 0.5 is 0.30
    # label 1: no positive example -> 0.5; label 2: (0.4, 0.7] separates it, closest to 0.5 is 0.5
    assert chosen.tolist() == pytest.approx([0.30, 0.5, 0.5])
    assert set_metrics(probs, target, chosen)["subset_acc"] == 1.0
    assert set_metrics(probs, target, torch.full((3,), 0.5))["subset_acc"] == 0.5  # 0.5 misses label 0


def test_set_metrics_agree_with_sklearn_on_the_same_arrays() -> None:
    generator = torch.Generator().manual_seed(0)
    probs = torch.rand(200, 6, generator=generator)
    target = (torch.rand(200, 6, generator=generator) < 0.3).long()
    thresholds = torch.tensor([0.2, 0.3, 0.5, 0.5, 0.6, 0.8])
    pred = (probs >= thresholds).long().numpy()
    got = {k: float(v) for k, v in set_metrics(probs, target, thresholds).items()}
    assert got["f1_micro"] == pytest.approx(f1_score(target.numpy(), pred, average="micro"), abs=1e-6)
    assert got["f1_macro"] == pytest.approx(f1_score(target.numpy(), pred, average="macro", zero_division=0), abs=1e-6)
    assert got["subset_acc"] == pytest.approx(accuracy_score(target.numpy(), pred), abs=1e-6)
    assert got["hamming"] == pytest.approx(hamming_loss(target.numpy(), pred), abs=1e-6)


def test_loss_is_bce_over_the_labelled_examples_and_class_weights_weight_the_positives() -> None:
    head = MultiLabelTask(["a", "b", "c"], hidden_size=4, dropout=0.0)
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.3, 0.2, -0.4], [9.0, 9.0, 9.0]])
    target = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [IGNORE_INDEX] * 3])  # the third has no label
    summed, count = head.loss(logits, target)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:2], target[:2], reduction="none")
    assert int(count) == 2 and float(summed) == pytest.approx(float(expected.mean(-1).sum()))
    head.set_class_weight([1.0, 3.0, 1.0])
    weighted, _ = head.loss(logits, target)
    assert float(weighted) > float(summed)  # label b's positive (second row) counts three times


# ------------------------------------------------------------------------------------------ reading label sets
def test_jsonl_lists_and_hash_joined_strings_read_the_same(tmp_path: Path, cache_dir: Path) -> None:
    lists = requests_jsonl(tmp_path / "lists.jsonl")
    joined = requests_jsonl(tmp_path / "joined.jsonl", as_string=True)
    types = {"intents": "multilabel"}
    read = [load_source("table", train=str(p), task_types=types) for p in (lists, joined)]
    pairs = [{split: [(r["text"], r["intents"]) for r in recs] for split, recs in splits.items()} for splits in read]
    assert pairs[0] == pairs[1]
    assert all(isinstance(r["intents"], tuple) and r["intents"] for r in read[0]["train"])  # a set, not word-aligned
    csv = tmp_path / "requests.csv"
    csv.write_text("text,intents\nbook a table and cancel my order,book;cancel\nwhere is my parcel,track\n")
    rows = load_source("table", train=str(csv), val=str(csv), test=str(csv), task_types=types, label_separator=";")
    assert {tuple(r["intents"]) for s in rows.values() for r in s} == {("book", "cancel"), ("track",)}


def test_the_task_declaration_alone_makes_a_jsonl_column_of_lists_load(cfg_factory, tmp_path: Path) -> None:
    import hydra

    cfg = cfg_factory(*multilabel_overrides(requests_jsonl(tmp_path / "r.jsonl")))
    dm = hydra.utils.instantiate(cfg.data, task_types=dict(cfg.tasks.types))
    dm.setup()
    assert dm.label_names == {"intents": sorted(CLAUSES)}
    labels = dm.splits["train"].labels["intents"]
    assert labels.shape == (len(dm.splits["train"]), 4) and set(labels.unique().tolist()) == {0.0, 1.0}
    assert dm.summary()["train"]["labels"]["intents"]["book"] == int(labels[:, 0].sum())


def test_a_multilabel_cell_that_is_no_label_list_names_its_line(tmp_path: Path) -> None:
    from intentfusion.errors import DataSourceError

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "intents": ["book"]}\n{"text": "yo", "intents": {"a": 1}}\n')
    with pytest.raises(DataSourceError, match=r"bad.jsonl:2: column 'intents'"):
        load_source("table", train=str(bad), task_types={"intents": "multilabel"})


def test_hub_sequence_of_class_labels_becomes_a_label_set(tmp_path: Path, cache_dir: Path) -> None:
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "intents": datasets.Sequence(datasets.ClassLabel(names=["book", "cancel"]))})
    rows = {"text": ["book a table and cancel my order", "book a table", "cancel it"] * 4,
            "intents": [[0, 1], [0], [1]] * 4}
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)}).save_to_disk(tmp_path / "ds")
    splits = load_source("hf", path=str(tmp_path / "ds"), task_types={"intents": "multilabel"},
                         fractions=[0.5, 0.25, 0.25])
    assert {tuple(r["intents"]) for s in splits.values() for r in s} == {("book", "cancel"), ("book",), ("cancel",)}


# ------------------------------------------------------------------------------------------ training and serving
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> tuple[Path, dict, Path]:
    from intentfusion.train import train
    from tests.conftest import make_cfg

    root = tmp_path_factory.mktemp("multilabel")
    data = requests_jsonl(root / "requests.jsonl", n=320)
    cfg = make_cfg(root / "run", cache_dir, *multilabel_overrides(data), "phases=full", "hparams.epochs=6",
                   "evaluate=true")
    metrics = train(cfg)
    return Path(cfg.paths.output_dir), metrics, data


def test_training_learns_the_sets_with_thresholds_chosen_on_validation(trained) -> None:
    out, metrics, _ = trained
    wanted = {"val/intents/f1_micro", "val/intents/subset_acc", "test/intents/hamming", "test/exact_match"}
    assert wanted <= set(metrics)
    assert metrics["val/score"] == pytest.approx(metrics["val/intents/f1_micro"])
    assert metrics["test/intents/subset_acc"] > 0.8 and metrics["test/intents/f1_micro"] > 0.9
    suite = json.loads((out / "eval" / "metrics.json").read_text())["suite"]
    section = suite["multilabel_tasks"]["intents"]
    assert set(section["thresholds"]) == set(CLAUSES) and section["splits"]["test"]["with_several_labels"] > 0
    ckpt = torch.load(metrics_checkpoint(out), weights_only=True)
    thresholds = ckpt["state_dict"]["net.heads.intents.thresholds"]
    assert thresholds.tolist() == pytest.approx(list(section["thresholds"].values()))
    assert "### intents (multilabel" in (out / "eval" / "report.md").read_text()
    row = json.loads((out / "eval" / "predictions.jsonl").read_text().splitlines()[0])
    written = row["predictions"]["intents"]
    assert set(written) == {"gold", "predicted"} and "labels" in written["gold"] and "labels" in written["predicted"]


def metrics_checkpoint(out: Path) -> Path:
    return Path(json.loads((out / "metrics.json").read_text())["checkpoint"])


def test_the_predictor_returns_each_label_over_its_threshold_with_a_confidence(trained) -> None:
    out, _, _ = trained
    predictor = Predictor.from_checkpoint(metrics_checkpoint(out))
    rows = [json.loads(line) for line in (out / "eval" / "predictions.jsonl").read_text().splitlines()]
    several = [r for r in rows if r["split"] == "test" and len(r["predictions"]["intents"]["gold"]["labels"]) > 1]
    texts = [r["text"] for r in several] + ["track my package", ""]
    results = predictor.predict(texts)
    probs = predictor.logits(texts)["intents"].sigmoid()
    thresholds = predictor.heads["intents"].thresholds
    for result, row in zip(results[:-1], probs[:-1], strict=True):
        labels = result["predictions"]["intents"]["labels"]
        expected = sorted(((name, float(p)) for name, p, t in zip(sorted(CLAUSES), row, thresholds, strict=True)
                           if p >= t), key=lambda lp: -lp[1])
        assert [i["label"] for i in labels] == [name for name, _ in expected]  # most confident first
        assert [i["confidence"] for i in labels] == pytest.approx([p for _, p in expected], abs=1e-5)
    right = [{i["label"] for i in r["predictions"]["intents"]["labels"]} == {g["label"] for g in row["predictions"][
        "intents"]["gold"]["labels"]} for r, row in zip(results, several, strict=False)]
    assert len(right) >= 5 and sum(right) / len(right) >= 0.7  # messages with two requests get both back
    assert [i["label"] for i in results[-2]["predictions"]["intents"]["labels"]] == ["track"]
    assert results[-1]["predictions"]["intents"] == {"labels": []} and "empty" in results[-1]["flags"]


@pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime / onnxscript missing")
def test_onnx_export_keeps_the_label_sets(trained, tmp_path: Path) -> None:
    from intentfusion.export import export

    out, _, _ = trained
    report = export(metrics_checkpoint(out), tmp_path / "export", onnx=True, log=lambda *_: None)
    parity = report["onnx"]["parity"]
    assert parity["max_abs_diff"] < 1e-3 and report["onnx"]["accuracy"]["delta"]["intents"] == pytest.approx(0.0)
    texts = [json.loads(line)["text"] for line in (out / "eval" / "predictions.jsonl").read_text().splitlines()]
    torch_sets = Predictor.from_export(tmp_path / "export").predict(texts)
    onnx_sets = Predictor.from_export(tmp_path / "export", runtime="onnx").predict(texts)
    labels = lambda results: [[i["label"] for i in r["predictions"]["intents"]["labels"]] for r in results]  # noqa: E731
    assert labels(onnx_sets) == labels(torch_sets) and any(len(s) > 1 for s in labels(torch_sets))


def test_parity_compares_label_sets_not_the_top_label() -> None:
    from intentfusion.inference.export import compare

    head = MultiLabelTask(["a", "b", "c"], hidden_size=4, dropout=0.0)
    head.thresholds.copy_(torch.tensor([0.5, 0.5, 0.9]))
    reference = {"intents": torch.tensor([[3.0, 1.0, -2.0], [2.0, -1.0, -3.0]])}  # sets {a, b} and {a}
    other = {"intents": torch.tensor([[3.0, -1.0, -2.0], [2.0, -1.0, 1.9]])}  # {a} (b lost) and {a} (c: 0.87 < 0.9)
    assert compare(reference, other)["label_agreement"] == 1.0  # the argmax agrees everywhere ...
    assert compare(reference, other, heads={"intents": head})["label_agreement"] == 0.5  # ... one set does not


@pytest.mark.parametrize("stop", ["trainer.max_epochs=1"])  # the boundary between phase 1 and phase 2
def test_resume_across_a_phase_boundary_equals_the_uninterrupted_run(cfg_factory, tmp_path: Path, stop: str) -> None:
    from intentfusion.train import train

    common = [*multilabel_overrides(requests_jsonl(tmp_path / "r.jsonl", n=160)), "phases=five", "hparams.epochs=2",
              "trainer.deterministic=true", "test=false"]
    whole = train(cfg_factory(*common, name="whole"))
    stopped = cfg_factory(*common, stop, name="stopped")
    train(stopped)
    last = Path(stopped.paths.output_dir) / "checkpoints" / "last.ckpt"
    resumed = cfg_factory(*common, f"ckpt_path={last}", name="resumed")
    metrics = train(resumed)
    expected, got = (torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                     for name in ("whole", "resumed"))
    assert expected.keys() == got.keys() and "net.heads.intents.thresholds" in got
    for key in expected:
        assert torch.allclose(expected[key], got[key], atol=1e-6), key
    assert metrics["val/intents/f1_micro"] == pytest.approx(whole["val/intents/f1_micro"], abs=1e-6)


def test_weighted_sampling_refuses_a_multilabel_task(cache_dir: Path) -> None:
    from intentfusion.errors import DataError

    source = lambda: {}  # noqa: E731
    with pytest.raises(DataError, match="weighted_sampling.*multilabel task"):
        MultiTaskDataModule(source, ["intents"], "builtin:tiny-xlmr", str(cache_dir),
                            task_types={"intents": "multilabel"}, weighted_sampling="intents")


def test_label_sets_with_a_label_unseen_in_train_follow_the_unknown_labels_policy() -> None:
    from intentfusion.data.transforms import resolve_unseen_labels

    splits = {"train": [{"text": "a", "intent": ["book", "cancel"]}],
              "test": [{"text": "b", "intent": ["book"]}, {"text": "c", "intent": ["book", "day_name"]}]}
    with pytest.warns(UserWarning, match="masked the label of 1 example"):
        masked = resolve_unseen_labels(splits, [], "mask", set_tasks=["intent"])
    assert [r["intent"] for r in masked["test"]] == [["book"], None]
    with pytest.warns(UserWarning, match="dropped 1 example"):
        assert len(resolve_unseen_labels(splits, [], "drop", set_tasks=["intent"])["test"]) == 1


ATIS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "atis"


@pytest.mark.skipif(not (ATIS / "train" / "label").is_file(), reason="no ATIS data in ../shared/data")
def test_atis_intents_become_label_sets_from_the_task_declaration_alone(cfg_factory) -> None:
    import hydra

    cfg = cfg_factory("data=atis", "tasks=atis_multilabel", f"paths.data_dir={ATIS.parent}")
    dm = hydra.utils.instantiate(cfg.data, task_types=dict(cfg.tasks.types))
    dm.setup()
    intents = dm.splits["test"].labels["intent"]
    labelled = (intents != IGNORE_INDEX).all(-1)
    assert int((intents[labelled].sum(-1) > 1).sum()) == 15  # ATIS test's multi-intent queries, scored as sets
    assert int((~labelled).sum()) == 2  # atis_day_name: unseen in train, masked
    assert dm.task_types == {"intent": "multilabel", "slots": "token"} and "atis_flight" in dm.label_names["intent"]


def test_label_sets_survive_noise_subsets_and_unknown_labels(tmp_path: Path) -> None:
    data = requests_jsonl(tmp_path / "r.jsonl", n=200)
    types = {"intents": "multilabel"}
    noisy = load_source("table", train=str(data), task_types=types, noise={"test_p": 1.0, "train_p": 0.5, "seed": 3})
    assert [r["intents"] for r in noisy["test_noisy"]] == [r["intents"] for r in noisy["test"]]  # not word-aligned
    assert any(r["text"] != c["text"] for r, c in zip(noisy["test_noisy"], noisy["test"], strict=True))
    assert all(r["intents"] for r in noisy["train"])  # noisy training copies keep theirs too
    small = load_source("table", train=str(data), task_types=types, subset={"train": 40, "stratify": "intents"})
    assert len(small["train"]) == 40
    val = tmp_path / "val.jsonl"
    val.write_text('{"text": "book a table", "intents": ["book"]}\n{"text": "hi", "intents": ["book", "greet"]}\n')
    with pytest.warns(UserWarning, match="masked the label of 1 example"):
        masked = load_source("table", train=str(data), val=str(val), task_types=types, unknown_labels="mask")
    assert [r["intents"] for r in masked["val"]] == [("book",), None]


def test_a_source_without_a_typed_column_labels_no_such_task(tmp_path: Path, cache_dir: Path) -> None:
    from functools import partial

    multi = requests_jsonl(tmp_path / "multi.jsonl", n=120)
    single = tmp_path / "single.jsonl"
    single.write_text("\n".join(json.dumps({"text": f"where is parcel {i}", "intent": "track"}) for i in range(60)))
    sources = {"multi": partial(load_source, "table", train=str(multi)),
               "single": partial(load_source, "table", train=str(single), label_columns=["intent"])}
    dm = MultiTaskDataModule(None, ["intents", "intent"], "builtin:tiny-xlmr", str(cache_dir), sources=sources,
                             task_types={"intents": "multilabel"}, test_splits=["test"])
    dm.setup()
    assert dm.source_tasks == {"multi": ["intents"], "single": ["intent"]}
    labels = dm.splits["train"].labels["intents"]
    assert int((labels == IGNORE_INDEX).all(-1).sum()) == int((dm.splits["train"].source == 1).sum())
