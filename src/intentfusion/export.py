"""Export a checkpoint as a self-contained directory: `python -m intentfusion.export ckpt_path=... out=DIR`.

Options (`key=value`, OmegaConf syntax):

| key | default | what |
|---|---|---|
| `ckpt_path` | required | the `.ckpt` written by `train.py` (loaded with `weights_only=True`) |
| `out` | required | the export directory (written atomically; an existing one needs `overwrite=true`) |
| `onnx` | false | also `model.onnx`: the whole multi-task model, dynamic batch and sequence axes |
| `quantize` | false | also `model.int8.onnx`: onnxruntime dynamic int8 quantization (implies `onnx=true`) |
| `exporter` | dynamo | `dynamo` (`torch.onnx.export(dynamo=True)`, the supported path) or `legacy` (TorchScript) |
| `opset` | null | ONNX opset (null: the exporter's default) |
| `fallbacks` | null | default confidence fallbacks stored in the export (see below) |
| `metrics` | null | a `metrics.json` for the model card (null: found next to / above the checkpoint) |
| `eval_split` | test | split of the checkpoint's data used for the ONNX parity check and the int8 accuracy delta |
| `cache_dir` | null | where builtin tiny backbones are looked for (null: the training run's) |
| `overwrite` | false | replace an existing `out` directory |

Fallbacks: `'fallbacks={action: {threshold: 0.7, fallback: request_more_info}}'` (quote it for the shell).

The directory (everything a `Predictor.from_export` needs; no Hydra config, no pickles):

    encoder/            encoder + tokenizer, Hugging Face format (`save_pretrained`, safetensors)
    heads.safetensors   task heads, and the BiLSTM branch / label fusion when the model uses them
    labels.json         {task: [label, ...]} (class index = position)
    temperatures.json   {task: T} fitted by evaluate.py (softmax(logits / T) is the calibrated confidence)
    intentfusion.json   format version, pooling, active parts, max_length, precision, fallbacks, provenance
    README.md           model card: tasks, labels, metrics, usage, ONNX parity and int8 accuracy delta
    export_report.json  the ONNX parity / int8 numbers
    model.onnx, model.int8.onnx   with onnx=true / quantize=true

ONNX: `torch.onnx.export(dynamo=True)` (torch.export + onnxscript) exports this model with torch 2.13, the
BiLSTM branch included (`OnnxGraph` runs it without packed sequences); the legacy TorchScript exporter works
too (and is ~10x faster to export) but is deprecated upstream. The parity check runs both runtimes on the
evaluation split and reports the max abs difference of the logits and the share of identical labels.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import torch

from intentfusion.errors import one_line
from intentfusion.inference.loading import EXPORT_FORMAT, EXPORT_VERSION, check_fallbacks, load_checkpoint_net
from intentfusion.inference.model import MultiTaskNet, OnnxGraph
from intentfusion.inference.predictor import ONNX_FILES, Predictor
from intentfusion.inference.runners import OnnxRunner, TorchRunner
from intentfusion.utils.cli import parse_options

IGNORE_INDEX = -100
DEFAULTS: dict[str, Any] = {
    "ckpt_path": None,
    "out": None,
    "onnx": False,
    "quantize": False,
    "exporter": "dynamo",
    "opset": None,
    "fallbacks": None,
    "metrics": None,
    "eval_split": "test",
    "cache_dir": None,
    "overwrite": False,
}
# used for the parity check when the checkpoint's data cannot be rebuilt
SAMPLE_TEXTS = [
    "where is my order? it was due last week",
    "I was charged twice this month, please refund",
    "CANCEL MY SUBSCRIPTION NOW",
    "no puedo entrar en mi cuenta desde ayer",
    "Meine Lieferung ist immer noch nicht da!!",
    "le site plante quand je paie 😡",
    "hi",
]


class ExportError(ValueError):
    """A bad export request (missing option, existing directory, ...)."""


# --------------------------------------------------------------------------------------------- ONNX


def export_onnx(net: MultiTaskNet, tokenizer: Any, path: Path, exporter: str = "dynamo", opset: int | None = None
                ) -> tuple[dict[str, Any], float]:
    """Write `net` as ONNX: inputs `input_ids`, `attention_mask` (int64, dynamic batch x sequence), one logits
    output per task (named after it). Returns (its description for `intentfusion.json`, seconds taken)."""
    graph = OnnxGraph(net).eval()
    sample = tokenizer(["where is my order, it is late", "refund"], padding=True, return_tensors="pt")
    args = (sample["input_ids"], sample["attention_mask"])
    names = {"input_names": ["input_ids", "attention_mask"], "output_names": list(net.tasks)}
    started = time.perf_counter()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "torchvision is not installed" and the like
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if exporter == "dynamo":
                batch, seq = torch.export.Dim("batch", min=1), torch.export.Dim("sequence", min=1)
                axes = {"input_ids": {0: batch, 1: seq}, "attention_mask": {0: batch, 1: seq}}
                program = torch.onnx.export(graph, args, dynamo=True, dynamic_shapes=axes, opset_version=opset,
                                            external_data=False, verbose=False, **names)
                program.save(str(path))
            elif exporter == "legacy":
                axes = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
                axes.update({t: {0: "batch"} for t in net.tasks})
                torch.onnx.export(graph, args, str(path), dynamo=False, dynamic_axes=axes,
                                  opset_version=opset or 17, **names)
            else:
                raise ExportError(f"exporter={exporter!r}: expected 'dynamo' or 'legacy'")
    finally:
        quiet.setLevel(level)
    import onnx

    model = onnx.load(str(path))
    return {
        "file": path.name,
        "exporter": exporter,
        "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=None),
        "inputs": ["input_ids", "attention_mask"],
        "outputs": list(net.tasks),
    }, round(time.perf_counter() - started, 1)


def quantize_onnx(src: Path, dst: Path) -> dict[str, Any]:
    """onnxruntime dynamic quantization: int8 weights (MatMul/Gemm/...), activations quantized on the fly."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its "consider pre-processing" hint: tried, it changes nothing for this model
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return {"file": dst.name, "method": "onnxruntime.quantization.quantize_dynamic (QInt8 weights)",
            "size_mb": round(dst.stat().st_size / 2**20, 2), "fp32_size_mb": round(src.stat().st_size / 2**20, 2)}


# --------------------------------------------------------------------------------------------- evaluation


def eval_split(config: dict | None, label_names: dict[str, list[str]], split: str
               ) -> tuple[list[str], torch.Tensor | None, str]:
    """(texts, labels (N, tasks) or None, where from) of the checkpoint's `split`; sample texts when the data
    cannot be rebuilt (no stored config, data files missing, ...)."""
    if not config or "data" not in config:
        return SAMPLE_TEXTS, None, "built-in sample texts (the checkpoint stores no data config)"
    try:
        import hydra

        datamodule = hydra.utils.instantiate(config["data"], label_names=label_names)
        datamodule.setup("test")
        data = datamodule.splits[split]
    except Exception as e:  # any failure to rebuild the data only costs the accuracy numbers
        return SAMPLE_TEXTS, None, f"built-in sample texts ({split!r} split unavailable: {' '.join(str(e).split())})"
    return data.texts, data.labels, f"the checkpoint's {split!r} split ({len(data.texts)} texts)"


def accuracy(logits: dict[str, torch.Tensor], labels: torch.Tensor, tasks: list[str]) -> dict[str, float]:
    """Accuracy per task over the labelled examples."""
    out = {}
    for j, task in enumerate(tasks):
        gold = labels[:, j]
        keep = gold != IGNORE_INDEX
        if keep.any():
            out[task] = float((logits[task].argmax(-1)[keep] == gold[keep]).float().mean())
    return out


def compare(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Max abs logit difference and share of equal argmax labels, per task and overall."""
    per_task = {}
    for task, ref in reference.items():
        per_task[task] = {
            "max_abs_diff": float((ref - other[task]).abs().max()) if len(ref) else 0.0,
            "label_agreement": float((ref.argmax(-1) == other[task].argmax(-1)).float().mean()) if len(ref) else 1.0,
        }
    return {
        "max_abs_diff": max((p["max_abs_diff"] for p in per_task.values()), default=0.0),
        "label_agreement": min((p["label_agreement"] for p in per_task.values()), default=1.0),
        "tasks": per_task,
    }


# --------------------------------------------------------------------------------------------- model card


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
            acc, f1 = vals.get("acc"), vals.get("f1_macro")
            lines.append(f"| {split} | {task} | {acc:.3f} | {f1:.3f} |" if acc is not None and f1 is not None
                         else f"| {split} | {task} | {acc} | {f1} |")
    if "best/val/score" in metrics:
        lines += ["", f"Best validation score (mean macro-F1 over tasks): {metrics['best/val/score']:.4f}"]
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
        f"One shared encoder (`{config['backbone'].get('name_or_path')}`, {config['pooling']} pooling) with one "
        f"linear head per task; active extra parts: {parts}. Inputs are truncated to {config['max_length']} tokens.",
        "",
        "## Tasks and labels",
        "",
        "| task | labels | temperature |",
        "|---|---|---|",
    ]
    for task, names in labels.items():
        t = temps.get(task)
        lines.append(f"| {task} | {', '.join(f'`{n}`' for n in names)} | {f'{t:.3f}' if t else '1 (not calibrated)'} |")
    lines += ["", "Confidence = softmax(logits / temperature), the temperature fitted on validation by `evaluate.py`"
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
                  f"difference {p['max_abs_diff']:.2e}, identical labels {100 * p['label_agreement']:.2f} %."]
    if "int8" in report:
        q = report["int8"]
        lines += ["", f"`model.int8.onnx`: {q['method']}, {q['size_mb']} MB (fp32 {q['fp32_size_mb']} MB); "
                  f"identical labels vs fp32 {100 * q['parity']['label_agreement']:.2f} %."]
        if q.get("accuracy"):
            lines += ["", "| task | fp32 accuracy | int8 accuracy | delta |", "|---|---|---|---|"]
            for task, acc in q["accuracy"]["fp32"].items():
                a8 = q["accuracy"]["int8"][task]
                lines.append(f"| {task} | {acc:.4f} | {a8:.4f} | {a8 - acc:+.4f} |")
    lines += [
        "",
        "## Usage",
        "",
        "```python",
        "from intentfusion.inference import Predictor",
        "",
        f"predictor = Predictor.from_export({str(out)!r})  # runtime=\"onnx\" / \"onnx-int8\" for onnxruntime",
        "predictor.predict([\"where is my parcel??\"], return_distribution=True)",
        "```",
        "",
        "```bash",
        f".venv/bin/python predict.py --model {out} messages.txt --out predictions.jsonl",
        f".venv/bin/python -m intentfusion.serve export_dir={out}   # demo page on http://127.0.0.1:8000",
        "```",
        "",
        "## Files",
        "",
        "`encoder/` (Hugging Face encoder + tokenizer), `heads.safetensors` (heads, BiLSTM, fusion), `labels.json`, "
        "`temperatures.json`, `intentfusion.json` (task config), `export_report.json`"
        + (", `model.onnx`" if "onnx" in report else "") + (", `model.int8.onnx`" if "int8" in report else "") + ".",
        "",
        "## Limitations",
        "",
        "Trained on the data named in the checkpoint's config; predictions outside its languages and domains are "
        "unreliable. Texts longer than the token budget are truncated (flagged `truncated`).",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------- export


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in ("intentfusion", "torch", "transformers", "tokenizers"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def export(ckpt_path: str | Path, out: str | Path, *, onnx: bool = False, quantize: bool = False,
           exporter: str = "dynamo", opset: int | None = None, fallbacks: dict | None = None,
           metrics: str | None = None, eval_split_name: str = "test", cache_dir: str | None = None,
           overwrite: bool = False, log: Any = print) -> dict[str, Any]:
    """Write the export directory `out` (see the module docstring); returns the report (also in
    `export_report.json`)."""
    ckpt, out = Path(ckpt_path), Path(out)
    onnx = bool(onnx or quantize)
    if exporter not in ("dynamo", "legacy"):
        raise ExportError(f"exporter={exporter!r}: expected 'dynamo' or 'legacy'")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ExportError(f"out={out} exists and is not empty; pass overwrite=true to replace it")
    net, tokenizer, meta = load_checkpoint_net(ckpt, cache_dir)
    label_names, tasks = meta["label_names"], list(meta["label_names"])
    fallbacks = check_fallbacks(fallbacks, label_names)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        net.encoder.save_pretrained(str(tmp / "encoder"))
        tokenizer.save_pretrained(str(tmp / "encoder"))
        from safetensors.torch import save_file

        save_file(net.parts_state_dict(), str(tmp / "heads.safetensors"), metadata={"format": "pt"})
        (tmp / "labels.json").write_text(json.dumps(label_names, indent=2, ensure_ascii=False))
        (tmp / "temperatures.json").write_text(json.dumps(meta["temperatures"], indent=2, sort_keys=True))
        config: dict[str, Any] = {
            "format": EXPORT_FORMAT,
            "format_version": EXPORT_VERSION,
            "tasks": tasks,
            **net.parts_config,
            "active_parts": {"bilstm": net.bilstm is not None, "fusion": net.fusion is not None},
            "max_length": meta["max_length"],
            "precision": meta["precision"],
            "backbone": meta["backbone"],
            "fallbacks": fallbacks or None,
            "source_checkpoint": str(ckpt.resolve()),
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(),
            "onnx": None,
        }
        report: dict[str, Any] = {"checkpoint": str(ckpt.resolve())}
        if onnx:
            texts, labels, where = eval_split(meta["config"], label_names, eval_split_name)
            report["eval_data"] = where
            log(f"[export] ONNX ({exporter}) ...")
            config["onnx"], seconds = export_onnx(net, tokenizer, tmp / ONNX_FILES["onnx"], exporter, opset)
            common = {"max_length": meta["max_length"]}
            torch_logits = Predictor(TorchRunner(net), tokenizer, label_names, **common).logits(texts)
            onnx_logits = Predictor(OnnxRunner(tmp / ONNX_FILES["onnx"], tasks), tokenizer, label_names,
                                    **common).logits(texts)
            report["onnx"] = {**config["onnx"], "export_seconds": seconds,
                              "parity": compare(torch_logits, onnx_logits)}
            log(f"[export] ONNX parity: max abs logit diff {report['onnx']['parity']['max_abs_diff']:.2e}, "
                f"identical labels {100 * report['onnx']['parity']['label_agreement']:.2f} %")
            if quantize:
                log("[export] int8 quantization ...")
                q = quantize_onnx(tmp / ONNX_FILES["onnx"], tmp / ONNX_FILES["onnx-int8"])
                int8_logits = Predictor(OnnxRunner(tmp / ONNX_FILES["onnx-int8"], tasks), tokenizer, label_names,
                                        **common).logits(texts)
                q["parity"] = compare(torch_logits, int8_logits)
                if labels is not None:
                    fp32, int8 = accuracy(torch_logits, labels, tasks), accuracy(int8_logits, labels, tasks)
                    q["accuracy"] = {"fp32": fp32, "int8": int8, "delta": {t: int8[t] - fp32[t] for t in fp32}}
                    log("[export] int8 accuracy delta: "
                        + ", ".join(f"{t} {d:+.4f}" for t, d in q["accuracy"]["delta"].items()))
                config["onnx"]["int8"] = {k: q[k] for k in ("file", "method", "size_mb")}
                report["int8"] = q
        (tmp / "intentfusion.json").write_text(json.dumps(config, indent=2, ensure_ascii=False))
        (tmp / "export_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
        metrics_data, metrics_path = find_metrics(ckpt, metrics)
        card_config = {**config, "label_names": label_names, "temperatures": meta["temperatures"]}
        (tmp / "README.md").write_text(model_card(card_config, report, metrics_data, metrics_path, ckpt, out))
        readable = tmp.stat().st_mode & 0o444  # safetensors writes 0600 files: follow the directory's umask
        for path in tmp.rglob("*"):
            path.chmod(path.stat().st_mode | readable)
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"[export] wrote {out}")
    return report


def main(argv: list[str] | None = None) -> int:
    """`python -m intentfusion.export ckpt_path=... out=DIR [onnx=true] [quantize=true] ...`"""
    args = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in args):
        print(__doc__)
        return 0
    try:
        opts = parse_options(args, DEFAULTS)
        for key in ("ckpt_path", "out"):
            if not opts[key]:
                raise ExportError(f"{key}=... is required (usage: python -m intentfusion.export ckpt_path=X out=DIR)")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        export(opts["ckpt_path"], opts["out"], onnx=opts["onnx"], quantize=opts["quantize"],
               exporter=opts["exporter"], opset=opts["opset"], fallbacks=opts["fallbacks"],
               metrics=opts["metrics"], eval_split_name=opts["eval_split"], cache_dir=opts["cache_dir"],
               overwrite=opts["overwrite"])
    except (ExportError, FileNotFoundError, ValueError, ImportError) as err:
        print(one_line(err), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
