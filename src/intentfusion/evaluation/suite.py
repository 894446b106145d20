"""The full evaluation of one model on every split of its data: numbers, plots, predictions.

`evaluate_model` runs inference once per split, then computes per task and split: accuracy, macro/weighted F1,
per-class report, confusion matrix, majority and uniform-random baselines; calibration (ECE, MCE, NLL, Brier)
before and after a temperature fitted on the validation split; the fuzzy intent score; the routing cost of the
`action` task with a confidence-threshold fallback sweep; out-of-scope metrics under both policies; and the
clean-vs-noisy robustness gap.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from intentfusion.evaluation.business import routing_cost, threshold_fallback_sweep
from intentfusion.evaluation.calibration import (
    apply_temperature,
    calibration_metrics,
    fit_temperature,
    reliability_diagram,
)
from intentfusion.evaluation.metrics import task_report
from intentfusion.evaluation.oos import apply_threshold, choose_oos_threshold, oos_metrics, oos_threshold_curve
from intentfusion.evaluation.span_metrics import span_report
from intentfusion.phases.artifacts import save_confusion_matrices
from intentfusion.types import IGNORE_INDEX

SplitOutputs = dict[str, Any]  # {"logits": {task: (N, ...)}, "labels": {task: (N, ...)}}


@torch.inference_mode()
def collect_outputs(model: torch.nn.Module, loader: Iterable[dict[str, Any]], forward_context: Any) -> SplitOutputs:
    """Logits of every example of a split, in dataset order, under the trainer's precision context."""
    model.eval()
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
    return {
        "logits": {task: _cat_padded(parts, 0.0)[perm] for task, parts in logits.items()},
        "labels": {task: _cat_padded(parts, IGNORE_INDEX)[perm] for task, parts in labels.items()},
    }


def _cat_padded(parts: list[torch.Tensor], fill: float) -> torch.Tensor:
    """Batches concatenated; per-token outputs (B, T, ...) of different lengths T right-padded with `fill`."""
    if parts[0].ndim < 2 or (parts[0].ndim == 2 and parts[0].dtype.is_floating_point):  # (B,) or (B, C)
        return torch.cat(parts)
    longest = max(p.shape[1] for p in parts)
    return torch.cat([nn.functional.pad(p, [0, 0] * (p.ndim - 2) + [0, longest - p.shape[1]], value=fill)
                      for p in parts])


def _task_column(outputs: SplitOutputs, task: str) -> tuple[torch.Tensor, torch.Tensor]:
    return outputs["logits"][task], outputs["labels"][task]


def evaluate_model(
    outputs: dict[str, SplitOutputs],
    label_names: dict[str, list[str]],
    train_labels: dict[str, torch.Tensor],
    out_dir: Path,
    options: dict[str, Any],
    heads: Mapping[str, torch.nn.Module] | None = None,
) -> dict[str, Any]:
    """Every metric of the suite from per-split outputs; writes PNGs under `out_dir` and returns the numbers.

    The classification report, calibration and the task-specific sections cover the `sequence` tasks; a token
    task (a `heads[task]` of type `token`) gets its span report per split under `token_tasks`, decoded by its
    head (Viterbi with a CRF).
    """
    heads = dict(heads or {})
    types = {t: getattr(heads.get(t), "task_type", "sequence") for t in label_names}
    results: dict[str, Any] = {"tasks": {}, "temperatures": {}}
    token = {t: names for t, names in label_names.items() if types[t] == "token"}
    if token:
        results["token_tasks"] = {
            t: {"splits": _span_reports(outputs, t, names, heads[t])} for t, names in token.items()
        }
    label_names = {t: names for t, names in label_names.items() if types[t] == "sequence"}
    out_dir.mkdir(parents=True, exist_ok=True)
    for task, names in label_names.items():
        per_task: dict[str, Any] = {"splits": {}}
        if "val" in outputs and (outputs["val"]["labels"][task] != IGNORE_INDEX).any():
            val_logits, val_gold = _task_column(outputs["val"], task)
            results["temperatures"][task] = fit_temperature(val_logits, val_gold)
        temperature = results["temperatures"].get(task, 1.0)
        for split, split_out in outputs.items():
            if split.endswith("_oos") or split == "val":
                continue
            logits, gold = _task_column(split_out, task)
            if not (gold != IGNORE_INDEX).any():
                continue
            report = task_report(logits, gold, names, train_targets=train_labels[task])
            report["calibration"] = calibration_metrics(logits, gold)
            report["calibration_scaled"] = calibration_metrics(apply_temperature(logits, temperature), gold)
            per_task["splits"][split] = report
            if split == "test":
                reliability_diagram(
                    logits, gold, out_dir / f"reliability_{task}.png", title=f"{task} (test)", temperature=temperature
                )
                keep = gold != IGNORE_INDEX
                save_confusion_matrices({task: (logits.argmax(-1)[keep], gold[keep])}, label_names, out_dir)
        if "test" in per_task["splits"] and "test_noisy" in per_task["splits"]:
            clean, noisy = per_task["splits"]["test"], per_task["splits"]["test_noisy"]
            per_task["robustness"] = {
                metric: {"clean": clean[metric], "noisy": noisy[metric], "gap": clean[metric] - noisy[metric]}
                for metric in ("accuracy", "macro_f1")
            }
        results["tasks"][task] = per_task
    _task_specific(results, outputs, label_names, out_dir, options)
    return results


def group_metrics(metrics: Mapping[str, float], task_types: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Per test split and metric group (a source, a slice, a locale): each task's headline number (accuracy of a
    sequence task, span F1 of a token task) and the exact match, from the logged ``<split>/<group>/...`` keys."""
    wanted = {t: "acc" if kind == "sequence" else "f1" for t, kind in task_types.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 4 and parts[0].startswith("test") and wanted.get(parts[2]) == parts[3]:
            out.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
        elif len(parts) == 3 and parts[0].startswith("test") and parts[2] == "exact_match":
            out.setdefault(parts[0], {}).setdefault(parts[1], {})["exact_match"] = value
    return {split: dict(sorted(groups.items())) for split, groups in out.items()}


@torch.inference_mode()
def _span_reports(outputs: dict[str, SplitOutputs], task: str, names: list[str], head: torch.nn.Module
                  ) -> dict[str, Any]:
    """`span_report` of a token task on every split that labels it (validation included)."""
    reports = {}
    for split, split_out in outputs.items():
        logits, gold = _task_column(split_out, task)
        keep = gold != IGNORE_INDEX
        if bool(keep.any()):
            reports[split] = span_report(head.predict(logits, keep), gold, names)
    return reports


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
        results["oos"] = _oos(outputs, label_names["intent"], out_dir)


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


def _oos(outputs: dict[str, SplitOutputs], names: list[str], out_dir: Path) -> dict[str, Any]:
    """OOS as a class (when the model has one) and max-softmax thresholding chosen on validation."""
    test_logits, test_gold = oos_queries(outputs, "test", names)
    out: dict[str, Any] = {}
    oos_index = names.index("oos") if "oos" in names else len(names)
    if "oos" in names:
        out["as_class"] = oos_metrics([names[i] for i in test_logits.argmax(-1).tolist()], test_gold)
    val_logits, val_gold = oos_queries(outputs, "val", names)
    val_is_oos = torch.tensor([g == "oos" for g in val_gold])
    if val_is_oos.any() and not val_is_oos.all():
        val_max = val_logits.softmax(-1).max(-1).values
        correct = torch.tensor([names[i] == g for i, g in zip(val_logits.argmax(-1).tolist(), val_gold, strict=True)])
        t = choose_oos_threshold(val_max, val_is_oos)
        probs = test_logits.softmax(-1)
        pred_idx = apply_threshold(probs, t, oos_index)
        pred = ["oos" if i >= len(names) else names[i] for i in pred_idx.tolist()]
        out["threshold"] = {"value": t, **oos_metrics(pred, test_gold)}
        oos_threshold_curve(val_max, val_is_oos, correct, out_dir / "oos_threshold.png", chosen_threshold=t)
    return out


def write_predictions(
    path: Path,
    texts: dict[str, list[str]],
    outputs: dict[str, SplitOutputs],
    label_names: dict[str, list[str]],
    temperatures: dict[str, float],
    entities: dict[str, list[dict[str, Any]]] | None = None,
) -> None:
    """`predictions.jsonl`: split, text, and per task the gold label, prediction and calibrated confidence.

    `label_names` holds the `sequence` tasks to write; `entities` (``{split: [{task: {"gold", "predicted"}}
    per text]}``) adds each token task's gold and predicted entities to its rows."""
    tasks = list(label_names)
    with open(path, "w", encoding="utf-8") as f:
        for split, split_out in outputs.items():
            probs = {t: apply_temperature(split_out["logits"][t], temperatures.get(t, 1.0)).softmax(-1) for t in tasks}
            for i, text in enumerate(texts[split]):
                row: dict[str, Any] = {"split": split, "text": text}
                for task in tasks:
                    conf, pred = probs[task][i].max(-1)
                    gold = int(split_out["labels"][task][i])
                    row[task] = {
                        "gold": label_names[task][gold] if gold != IGNORE_INDEX else None,
                        "predicted": label_names[task][int(pred)],
                        "confidence": round(float(conf), 4),
                    }
                if entities and split in entities:
                    row["entities"] = entities[split][i]
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
