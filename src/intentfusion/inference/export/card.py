"""The export's model card (`README.md`): tasks, labels, temperatures, the training run's metrics, ONNX numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from intentfusion.inference.runtimes import MAX_ACCURACY_DROP, SERVING_BATCH


def find_metrics(ckpt: Path, explicit: str | None = None) -> tuple[dict[str, Any] | None, Path | None]:
    """The `metrics.json` for the card: `explicit`, else the nearest one next to / above the checkpoint (the
    training run's), preferring one that names this checkpoint."""
    if explicit:
        path = Path(explicit)
        return json.loads(path.read_text()), path
    candidates = [d / "metrics.json" for d in (ckpt.parent, ckpt.parent.parent, ckpt.parent.parent.parent)]
    found = [p for p in candidates if p.is_file()]
    for path in found:
        data = json.loads(path.read_text())
        if data.get("checkpoint") and Path(data["checkpoint"]).resolve() == ckpt.resolve():
            return data, path
    if found:
        return json.loads(found[0].read_text()), found[0]
    return None, None


def _metrics_table(data: dict[str, Any], ckpt: Path) -> list[str]:
    metrics = data.get("metrics", {})
    lines = []
    named = data.get("checkpoint")
    if named and Path(named).resolve() != ckpt.resolve():
        lines += [f"> Note: these metrics are for `{Path(named).name}`, not for the exported checkpoint.", ""]
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for key, value in metrics.items():
        parts = key.split("/")
        if len(parts) == 3 and parts[0].startswith("test") and isinstance(value, int | float):
            rows.setdefault((parts[0], parts[1]), {})[parts[2]] = float(value)
    if rows:
        lines += ["| split | task | accuracy | macro-F1 |", "|---|---|---|---|"]
        for (split, task), vals in sorted(rows.items()):
            acc, f1 = vals.get("acc", vals.get("token_acc")), vals.get("f1_macro", vals.get("f1"))
            lines.append(f"| {split} | {task} | {acc:.3f} | {f1:.3f} |" if acc is not None and f1 is not None
                         else f"| {split} | {task} | {acc} | {f1} |")
        if any("f1_macro" not in vals and "f1" in vals for vals in rows.values()):
            lines += ["", "Token tasks: token accuracy and span F1 (seqeval, strict IOB2) in these columns."]
    if "best/val/score" in metrics:
        lines += ["", "Best validation score (the mean over tasks of each task type's score metric: macro-F1, span F1, "
                  f"micro-F1): {metrics['best/val/score']:.4f}"]
    return lines


def model_card(config: dict[str, Any], report: dict[str, Any], metrics: dict | None, metrics_path: Path | None,
               ckpt: Path, out: Path) -> str:
    """The export's README.md."""
    labels, temps = config["label_names"], config["temperatures"]
    parts = ", ".join(p for p, on in config["active_parts"].items() if on) or "none"
    lines = [
        f"# intentfusion model: {', '.join(labels)}",
        "",
        f"Multi-task utterance classifier exported from `{ckpt}` on {config['created']}.",
        f"One shared encoder (`{config['backbone'].get('name_or_path')}`, {config['net']['pooling']} pooling) with "
        f"one head per task; active extra parts: {parts}. Inputs are truncated to {config['max_length']} tokens.",
        "",
        "## Tasks and labels",
        "",
        "| task | type | labels | temperature |",
        "|---|---|---|---|",
    ]
    types = config["net"]["task_types"]
    for task, names in labels.items():
        t = temps.get(task)
        lines.append(f"| {task} | {types.get(task, 'sequence')} | {', '.join(f'`{n}`' for n in names)} | "
                     f"{f'{t:.3f}' if t else '1 (not calibrated)'} |")
    lines += ["", "Confidence = softmax(logits / temperature) (a multilabel task: a sigmoid per label, decided at the "
              "thresholds chosen on validation), the temperature fitted on validation by `evaluate.py`"
              + (" (no `temperatures.json` was found: run `evaluate.py` before exporting for calibrated "
                 "confidences)." if not temps else ".")]
    if config.get("fallbacks"):
        lines += ["", "Default fallbacks (label replaced when the calibrated confidence is below the threshold): "
                  + "; ".join(f"{t}: < {r['threshold']} -> `{r['fallback']}`" for t, r in config["fallbacks"].items())]
    lines += ["", "## Evaluation", ""]
    if metrics:
        lines += [f"From `{metrics_path}`:", "", *_metrics_table(metrics, ckpt)]
    else:
        lines += ["No `metrics.json` was found next to or above the checkpoint."]
    if "onnx" in report:
        p = report["onnx"]["parity"]
        lines += ["", "## ONNX", "",
                  f"`model.onnx` ({report['onnx']['exporter']} exporter, opset {report['onnx']['opset']}; dynamic "
                  "batch and sequence axes). Parity with PyTorch on " + report["eval_data"] + f": max abs logit "
                  f"difference {p['max_abs_diff']:.2e}, identical labels {100 * p['label_agreement']:.2f} %"
                  + (f", identical entities {100 * p['entity_agreement']:.2f} % of texts" if "entity_agreement" in p
                     else "") + "."]
    for key in [k for k in report.get("runtimes") or {} if k not in ("torch", "onnx")]:
        label = key
        q = report[key]
        size = f", {q['size_mb']} MB (fp32 {q['fp32_size_mb']} MB)" if "size_mb" in q else ""
        fused = (", fused operators: " + ", ".join(f"{op} {n}" for op, n in q["fused_operators"].items())
                 if q.get("fused_operators") else "")
        lines += ["", f"`{q['file']}`: {q.get('method', label)}{size}{fused}; identical labels vs PyTorch "
                  f"{100 * q['parity']['label_agreement']:.2f} %, max abs logit difference "
                  f"{q['parity']['max_abs_diff']:.2e}."]
        if q.get("accuracy"):
            lines += ["", f"| task | PyTorch accuracy | {label} accuracy | delta |", "|---|---|---|---|"]
            for task, acc in q["accuracy"]["torch"].items():
                got = q["accuracy"]["runtime"][task]
                lines.append(f"| {task} | {acc:.4f} | {got:.4f} | {got - acc:+.4f} |")
    if report.get("runtimes"):
        lines += ["", "Runtimes, measured at export on " + report["eval_data"] + f", batch {SERVING_BATCH}, on the "
                  f"exporting machine (`runtime=\"auto\"` runs the fastest with an accuracy drop of at most "
                  f"{100 * MAX_ACCURACY_DROP:g} point):", "",
                  "| runtime | msgs/s | accuracy drop | identical labels |", "|---|---|---|---|"]
        for name, r in report["runtimes"].items():
            drop = "–" if r["accuracy_drop"] is None else f"{r['accuracy_drop']:.4f}"
            lines.append(f"| `{name}` | {r['msgs_per_s']:.0f} | {drop} | {100 * r['label_agreement']:.2f} % |")
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from intentfusion.inference import Predictor",
        "",
        f"predictor = Predictor.from_export({str(out)!r})  # runtime=\"auto\": the fastest runtime exported",
        "predictor.predict([\"where is my parcel??\"], return_distribution=True)",
        "```",
        "",
        "```bash",
        f".venv/bin/python predict.py model={out} input=messages.txt out=predictions.jsonl",
        f".venv/bin/python -m intentfusion.serve export_dir={out}   # demo page on http://127.0.0.1:8000",
        "```",
        "",
        "## Files",
        "",
        "`encoder/` (Hugging Face encoder + tokenizer), `heads.safetensors` (heads, BiLSTM, fusion), `labels.json`, "
        "`temperatures.json`, `intentfusion.json` (task config), `export_report.json`"
        + "".join(f", `{r['file']}`" for r in (report.get("runtimes") or {}).values() if r["file"])
        + ".",
        "",
        "## Limitations",
        "",
        "Trained on the data named in the checkpoint's config; predictions outside its languages and domains are "
        "unreliable. Texts longer than the token budget are truncated (flagged `truncated`).",
        "",
    ]
    return "\n".join(lines)
