"""The full evaluation of one model on every split of its data: numbers, plots, predictions.

`evaluate_model` runs inference once per split, then computes per task and split: accuracy, macro/weighted F1,
per-class report, confusion matrix, majority and uniform-random baselines; calibration (ECE, MCE, NLL, Brier)
before and after a temperature fitted on the validation split; the fuzzy intent score; the routing cost of the
`action` task with a confidence-threshold fallback sweep; out-of-scope metrics under both policies; and the
clean-vs-noisy robustness gap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from intentfusion.evaluation.business import routing_cost, threshold_fallback_sweep
from intentfusion.evaluation.context import ReportContext
from intentfusion.evaluation.oos import choose_oos_threshold, oos_metrics, oos_threshold_curve
from intentfusion.types import IGNORE_INDEX
from intentfusion.utils.rounding import rounded

SplitOutputs = dict[str, Any]  # {"logits": {task: (N, ...)}, "labels": {task: (N, ...)}}


@torch.inference_mode()
def collect_outputs(model: torch.nn.Module, loader: Iterable[dict[str, Any]], forward_context: Any) -> SplitOutputs:
    """Logits and labels of every example of a split, in dataset order, under the trainer's precision context;
    a per-token task's batches right-padded to the split's longest (logits with 0, labels with -100)."""
    model.eval()
    per_token = {t for t, head in getattr(model, "net", model).heads.items() if head.per_token}
    logits: dict[str, list[torch.Tensor]] = {}
    labels: dict[str, list[torch.Tensor]] = {}
    order = []
    for batch in loader:
        with forward_context():
            out = model(batch["input_ids"].to(model.device), batch["attention_mask"].to(model.device))
        for task, value in out.items():
            logits.setdefault(task, []).append(value.float().cpu())
            labels.setdefault(task, []).append(batch["labels"][task])
        order.append(batch["idx"])
    perm = torch.argsort(torch.cat(order))
    join = lambda task, parts, fill: (_cat_padded(parts, fill) if task in per_token else torch.cat(parts))[perm]  # noqa: E731
    return {
        "logits": {task: join(task, parts, 0.0) for task, parts in logits.items()},
        "labels": {task: join(task, parts, IGNORE_INDEX) for task, parts in labels.items()},
    }


def _cat_padded(parts: list[torch.Tensor], fill: float) -> torch.Tensor:
    """(B, T, ...) batches of different lengths T concatenated, right-padded with `fill`."""
    longest = max(p.shape[1] for p in parts)
    return torch.cat([nn.functional.pad(p, [0, 0] * (p.ndim - 2) + [0, longest - p.shape[1]], value=fill)
                      for p in parts])


def _task_column(outputs: SplitOutputs, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    return outputs["logits"][task], outputs["labels"][task]


def evaluate_model(
    outputs: dict[str, SplitOutputs],
    heads: Mapping[str, Any],
    train_labels: dict[str, torch.Tensor],
    out_dir: Path,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Every metric of the suite from per-split outputs; writes PNGs under `out_dir` and returns the numbers.

    Each task's section comes from its type (`heads[task].report`, under the type's `report_section`: `tasks`
    for the sequence tasks, `token_tasks`, `multilabel_tasks`); temperatures fitted there land in
    `temperatures`. Then the sections that look at particular tasks: the fuzzy intent score, the routing cost
    of `action`, out-of-scope detection (sequence tasks named `intent` / `action`).
    """
    results: dict[str, Any] = {"tasks": {}, "temperatures": {}}
    out_dir.mkdir(parents=True, exist_ok=True)
    context = ReportContext(None, out_dir, options, results["temperatures"])
    for task, head in heads.items():
        context.train_labels = train_labels.get(task)
        per_split = {split: _task_column(split_out, task) for split, split_out in outputs.items()}
        results.setdefault(head.report_section, {})[task] = head.report(task, per_split, context)
    classes = {t: h.labels for t, h in heads.items() if h.samples_by_class}  # one label per example
    _task_specific(results, outputs, classes, out_dir, options)
    return results


def group_metrics(metrics: Mapping[str, float], heads: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per test split and metric group (a source, a slice, a locale): each task's headline number (its type's
    `headline_metric`: accuracy of a sequence task, span F1 of a token task, ...) and the exact match, from the
    logged ``<split>/<group>/...`` keys."""
    wanted = {t: head.headline_metric for t, head in heads.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 4 and parts[0].startswith("test") and wanted.get(parts[2]) == parts[3]:
            out.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
        elif len(parts) == 3 and parts[0].startswith("test") and parts[2] == "exact_match":
            out.setdefault(parts[0], {}).setdefault(parts[1], {})["exact_match"] = value
    return {split: dict(sorted(groups.items())) for split, groups in out.items()}


def _task_specific(
    results: dict[str, Any],
    outputs: dict[str, SplitOutputs],
    label_names: dict[str, list[str]],
    out_dir: Path,
    options: dict[str, Any],
) -> None:
    """Fuzzy intent score, routing cost of `action`, and out-of-scope detection, where they apply."""
    tasks = list(label_names)
    test = outputs.get("test")
    if test is None:
        return
    if "intent" in tasks and options.get("fuzzy", True):
        from intentfusion.evaluation.fuzzy import FuzzyIntentScorer

        logits, gold = _task_column(test, "intent")
        scorer = FuzzyIntentScorer()
        results["fuzzy_intent"] = scorer.score(
            logits.argmax(-1), gold, label_names["intent"], threshold=options.get("fuzzy_threshold", 0.8)
        )
    if "action" in tasks and set(label_names["action"]) >= {"escalate_to_human", "auto_resolve"}:
        logits, gold = _task_column(test, "action")
        keep = gold != IGNORE_INDEX
        names = label_names["action"]
        pred = [names[i] for i in logits.argmax(-1)[keep].tolist()]
        gold_names = [names[i] for i in gold[keep].tolist()]
        cost = options.get("cost_matrix")
        results["business"] = {
            "cost": routing_cost(pred, gold_names, cost_matrix=cost, labels=names),
            "fallback_sweep": threshold_fallback_sweep(
                logits[keep].softmax(-1),
                gold[keep],
                names,
                cost_matrix=cost,
                fallback=options.get("fallback", "request_more_info"),
            ),
        }
    if "intent" in tasks and ("oos" in label_names["intent"] or "test_oos" in outputs):
        from intentfusion.oos import oos_scorer

        scorers = [oos_scorer(name)().fit(None) for name in options.get("oos_scorers") or ["max_softmax"]]
        results["oos"] = _oos(outputs, label_names["intent"], out_dir, scorers)


def oos_queries(outputs: dict[str, SplitOutputs], split: str, names: list[str]) -> tuple[torch.Tensor, list[str]]:
    """Intent logits and gold names (`oos` for out-of-scope) of `split` and its `<split>_oos` companion, each
    query counted once.

    `<split>` contributes its examples labelled with an intent (another source's examples, without one, are
    left out). `<split>_oos` holds the out-of-scope queries; it is joined only when `<split>` has none labelled
    `oos`: with CLINC150's `oos=class` the test split already holds the same queries as class `oos`.
    """
    parts = []
    if split in outputs:
        logits, gold = _task_column(outputs[split], "intent")
        keep = gold != IGNORE_INDEX
        parts.append((logits[keep], [names[g] for g in gold[keep].tolist()]))
    companion = f"{split}_oos"
    if companion in outputs and not any("oos" in p[1] for p in parts):
        logits = outputs[companion]["logits"]["intent"]
        parts.append((logits, ["oos"] * len(logits)))
    if not parts:
        return torch.empty(0, len(names)), []
    return torch.cat([p[0] for p in parts]), [g for p in parts for g in p[1]]


def _oos(outputs: dict[str, SplitOutputs], names: list[str], out_dir: Path, scorers: Sequence[Any]
         ) -> dict[str, Any]:
    """OOS as a class (when the model has one, policy `as_class`) and, per out-of-scope scorer (`scorers`:
    `intentfusion.oos.OOSScorer` instances), a threshold on its in-scope score chosen on validation (policy: the
    scorer's name; under the threshold a message is out of scope), with its curve (`oos_threshold.png` for
    `max_softmax`, `oos_threshold_<name>.png` for the others)."""
    from intentfusion.oos import ScorerInputs

    test_logits, test_gold = oos_queries(outputs, "test", names)
    out: dict[str, Any] = {}
    oos_index = names.index("oos") if "oos" in names else len(names)
    if "oos" in names:
        out["as_class"] = oos_metrics([names[i] for i in test_logits.argmax(-1).tolist()], test_gold)
    val_logits, val_gold = oos_queries(outputs, "val", names)
    val_is_oos = torch.tensor([g == "oos" for g in val_gold])
    if not val_is_oos.any() or val_is_oos.all():
        return out
    correct = torch.tensor([names[i] == g for i, g in zip(val_logits.argmax(-1).tolist(), val_gold, strict=True)])
    for scorer in scorers:
        val_scores = scorer.score(ScorerInputs(val_logits)).float()
        t = choose_oos_threshold(val_scores, val_is_oos)
        scores = scorer.score(ScorerInputs(test_logits)).float()
        pred_idx = torch.where(scores < t, torch.full_like(scores, oos_index, dtype=torch.long), test_logits.argmax(-1))
        pred = ["oos" if i >= len(names) else names[i] for i in pred_idx.tolist()]
        out[scorer.name] = {"value": t, **oos_metrics(pred, test_gold)}
        png = "oos_threshold.png" if scorer.name == "max_softmax" else f"oos_threshold_{scorer.name}.png"
        oos_threshold_curve(val_scores, val_is_oos, correct, out_dir / png, chosen_threshold=t)
    return out


def write_predictions(
    path: Path,
    texts: dict[str, list[str]],
    outputs: dict[str, SplitOutputs],
    heads: Mapping[str, Any],
    temperatures: dict[str, float],
    contexts: Mapping[str, Sequence[Any]],
) -> None:
    """`predictions.jsonl`: split, text, and per task its gold and predicted result as its type decodes it
    (the Predictor's JSON: a label and calibrated confidence, entities, a label set), under the type's
    `output_key` (`predictions` / `entities`). `contexts`: per split, each text's `TextContext`."""
    with open(path, "w", encoding="utf-8") as f:
        for split, split_out in outputs.items():
            decoded, gold = {}, {}
            for task, head in heads.items():
                logits, labels = split_out["logits"][task], split_out["labels"][task]
                if head.per_token:  # each text's real positions
                    logits = [logits[i, : len(c.words)] for i, c in enumerate(contexts[split])]
                decoded[task] = head.decode(logits, contexts[split], temperatures.get(task, 1.0))
                gold[task] = [head.gold(labels[i], c) for i, c in enumerate(contexts[split])]
            for i, text in enumerate(texts[split]):
                row: dict[str, Any] = {"split": split, "text": text}
                for task, head in heads.items():
                    row.setdefault(head.output_key, {})[task] = {"gold": gold[task][i], "predicted": decoded[task][i]}
                f.write(json.dumps(rounded(row), ensure_ascii=False) + "\n")
