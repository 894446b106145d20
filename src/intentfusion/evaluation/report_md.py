"""`report.md`: the tables a reviewer reads first, built from the suite's numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _f(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else ("—" if value is None else str(value))


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_f(v) for v in row) + " |" for row in rows] + [""]


def headline_table(task: str, splits: dict[str, Any]) -> list[str]:
    """Model vs majority vs uniform-random, clean vs noisy test: accuracy and macro-F1."""
    shown = [s for s in ("test", "test_noisy") if s in splits] or list(splits)[:1]
    header = ["", *[f"{s} {m}" for s in shown for m in ("acc", "macro-F1")]]
    rows = []
    for name, pick in (
        ("model", lambda r: r),
        ("majority class", lambda r: r["baselines"]["majority"]),
        ("uniform random", lambda r: r["baselines"]["uniform_random"]),
    ):
        rows.append([name, *[v for s in shown for v in (pick(splits[s])["accuracy"], pick(splits[s])["macro_f1"])]])
    return [f"### {task}", "", *table(header, rows)]


def token_tables(task: str, splits: dict[str, Any]) -> list[str]:
    """A token task: span precision / recall / F1 and token accuracy per split, and the test split per slot type."""
    lines = [f"### {task} (token task: spans, seqeval strict IOB2)", ""]
    rows = [[s, r["precision"], r["recall"], r["f1"], r["token_acc"], r["utterances"]] for s, r in splits.items()]
    lines += table(["split", "precision", "recall", "F1", "token acc", "utterances"], rows)
    test = splits.get("test")
    if test:
        per_type = sorted(test["per_type"].items(), key=lambda kv: -kv[1]["support"])
        rows = [[name, r["precision"], r["recall"], r["f1"], r["support"]] for name, r in per_type]
        lines += [f"Per slot type (test, {len(rows)} types):", ""]
        lines += table(["slot type", "precision", "recall", "F1", "support"], rows)
    return lines


def group_tables(groups: dict[str, dict[str, Any]]) -> list[str]:
    """Per test split, a row per metric group (source, slice, locale): each task's accuracy / span F1, exact match."""
    lines: list[str] = []
    for split, rows in groups.items():
        columns = list(dict.fromkeys(c for row in rows.values() for c in row))
        lines += [f"## Per group ({split}: each task type's headline metric: accuracy, span F1, subset accuracy)", ""]
        lines += table(["group", *columns], [[g, *(row.get(c) for c in columns)] for g, row in rows.items()])
    return lines


def render_report(suite: dict[str, Any], checkpoint: str, heads: Mapping[str, Any],
                  multi_seed: dict[str, Any] | None = None) -> str:
    """The whole report as Markdown: each task's tables as its type writes them (`heads[task].report_lines` of
    its section), then the groups, calibration, robustness and the task-specific sections."""
    lines = ["# Evaluation report", "", f"Checkpoint: `{checkpoint}`", ""]
    for task, head in heads.items():
        section = suite.get(head.report_section, {}).get(task)
        if section is not None:
            lines += head.report_lines(task, section)
    lines += group_tables(suite.get("groups", {}))
    lines += ["## Calibration (test; temperature fitted on validation)", ""]
    rows = []
    for task, per_task in suite["tasks"].items():
        test = per_task["splits"].get("test")
        if test:
            before, after = test["calibration"], test["calibration_scaled"]
            rows.append(
                [
                    task,
                    suite["temperatures"].get(task),
                    before["ece"],
                    after["ece"],
                    before["mce"],
                    before["nll"],
                    after["nll"],
                    before["brier"],
                    after["brier"],
                ]
            )
    lines += table(["task", "T", "ECE", "ECE (T)", "MCE", "NLL", "NLL (T)", "Brier", "Brier (T)"], rows)
    robust = [
        [t, *(v for m in ("accuracy", "macro_f1") for v in p["robustness"][m].values())]
        for t, p in suite["tasks"].items()
        if "robustness" in p
    ]
    if robust:
        lines += ["## Robustness: clean vs noisy test", ""]
        lines += table(["task", "acc clean", "acc noisy", "acc gap", "F1 clean", "F1 noisy", "F1 gap"], robust)
    if "fuzzy_intent" in suite:
        fz = suite["fuzzy_intent"]
        lines += [
            "## Fuzzy intent score",
            "",
            "Cosine similarity of predicted vs gold intent names (MiniLM). It rewards near-misses, including"
            " ones that route differently (e.g. activate vs deactivate card): read it next to accuracy.",
            "",
        ]
        lines += table(
            ["mean similarity", f"fuzzy accuracy (≥ {fz['threshold']})", "exact accuracy"],
            [[fz["mean_similarity"], fz["fuzzy_accuracy"], fz["exact_accuracy"]]],
        )
    if "business" in suite:
        cost = suite["business"]["cost"]
        lines += ["## Routing cost (action)", ""]
        lines += table(
            ["cost / message", "total", "false escalations", "false auto-resolves"],
            [[cost["cost_per_message"], cost["total_cost"], cost["false_escalations"], cost["false_auto_resolves"]]],
        )
        lines += table(
            ["confidence threshold", "coverage", "accuracy (covered)", "cost / message"],
            [
                [r["threshold"], r["coverage"], r["accuracy_covered"], r["cost_per_message"]]
                for r in suite["business"]["fallback_sweep"]
            ],
        )
    if "oos" in suite:
        lines += ["## Out-of-scope", ""]
        rows = [
            [policy, m.get("value"), m["in_scope_accuracy"], m["oos_recall"], m["oos_precision"]]
            for policy, m in suite["oos"].items()
        ]
        lines += table(["policy", "threshold", "in-scope acc", "OOS recall", "OOS precision"], rows)
    if multi_seed:
        lines += [f"## Mean ± std over {multi_seed['runs']} checkpoints", ""]
        lines += table(["metric", "mean", "std"], [[k, v["mean"], v["std"]] for k, v in multi_seed["metrics"].items()])
    lines += ["## Per-class reports", ""]
    for task, per_task in suite["tasks"].items():
        test = per_task["splits"].get("test")
        if test:
            rows = [[name, r["precision"], r["recall"], r["f1"], r["support"]] for name, r in test["per_class"].items()]
            lines += [f"### {task}", "", *table(["class", "precision", "recall", "F1", "support"], rows)]
    return "\n".join(lines)
