"""The export directory: `export(ckpt_path, out, ...)` writes it, `main(argv)` is the command line.

See the package docstring (`python -m intentfusion.inference.export help`) for the options and the files.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

from intentfusion.errors import CheckpointNotFoundError, exit_on_user_error
from intentfusion.inference.export.card import find_metrics, model_card
from intentfusion.inference.export.onnx import ExportError, export_onnx, quantize_onnx
from intentfusion.inference.export.parity import accuracy, compare, entity_agreement, eval_split
from intentfusion.inference.loading import EXPORT_FORMAT, EXPORT_VERSION, check_fallbacks, load_checkpoint_net
from intentfusion.inference.predictor import ONNX_FILES, Predictor
from intentfusion.inference.runners import OnnxRunner, TorchRunner
from intentfusion.utils.cli import parse_options, user_errors_from, wants_help

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
TYPES: dict[str, type] = {"ckpt_path": str, "out": str, "opset": int, "fallbacks": dict, "metrics": str,
                          "cache_dir": str}
USAGE = "python -m intentfusion.inference.export ckpt_path=X.ckpt out=DIR"


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
        raise ExportError(f"exporter={exporter!r}", "unknown exporter", "'dynamo' or 'legacy'")
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ExportError(f"out={out}", "exists and is not empty",
                          "a new or empty directory, or overwrite=true to replace it")
    net, tokenizer, meta = load_checkpoint_net(ckpt, cache_dir)
    net = net.merged()  # adapters (peft) merged into the encoder: the bundle loads with plain transformers
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
            "active_parts": {"bilstm": net.bilstm_active, "fusion": net.fusion_active},
            "max_length": meta["max_length"],
            "precision": meta["precision"],
            "backbone": meta["backbone"],
            "peft": {**meta["peft"], "merged": True} if meta["peft"] else None,
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
            common = {**common, "task_types": net.task_types, "heads": net.heads}  # heads: token decoding
            torch_predictor = Predictor(TorchRunner(net), tokenizer, label_names, **common)
            onnx_predictor = Predictor(OnnxRunner(tmp / ONNX_FILES["onnx"], tasks), tokenizer, label_names, **common)
            torch_logits, onnx_logits = torch_predictor.logits(texts), onnx_predictor.logits(texts)
            # token tasks: also the decoded entities, text by text
            torch_results = torch_predictor.predict(texts) if torch_predictor.token_tasks else []

            def entities(other: Predictor) -> dict[str, float] | None:
                return entity_agreement(torch_results, other.predict(texts)) if torch_results else None

            report["onnx"] = {**config["onnx"], "export_seconds": seconds,
                              "parity": compare(torch_logits, onnx_logits, entities(onnx_predictor))}
            log(f"[export] ONNX parity: max abs logit diff {report['onnx']['parity']['max_abs_diff']:.2e}, "
                f"identical labels {100 * report['onnx']['parity']['label_agreement']:.2f} %"
                + (f", identical entities {100 * report['onnx']['parity']['entity_agreement']:.2f} %"
                   if torch_results else ""))
            if quantize:
                log("[export] int8 quantization ...")
                q = quantize_onnx(tmp / ONNX_FILES["onnx"], tmp / ONNX_FILES["onnx-int8"])
                int8_predictor = Predictor(OnnxRunner(tmp / ONNX_FILES["onnx-int8"], tasks), tokenizer, label_names,
                                           **common)
                int8_logits = int8_predictor.logits(texts)
                q["parity"] = compare(torch_logits, int8_logits, entities(int8_predictor))
                if labels is not None:
                    fp32, int8 = accuracy(torch_logits, labels, net.heads), accuracy(int8_logits, labels, net.heads)
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


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    """`python -m intentfusion.inference.export ckpt_path=... out=DIR [onnx=true] [quantize=true] ...`: 0 on
    success; a user error ends the process with exit code 1 and one `error:` line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_help(args):
        print(sys.modules[__package__].__doc__)
        return 0
    opts = parse_options(args, DEFAULTS, types=TYPES, required=("ckpt_path", "out"), usage=USAGE)
    ckpt = Path(opts["ckpt_path"])
    if not ckpt.is_file():
        raise CheckpointNotFoundError(f"ckpt_path={ckpt}", "no such checkpoint file", "a .ckpt written by train.py")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with user_errors_from(ValueError, ImportError):  # bad fallbacks, not an intentfusion checkpoint, no onnx extra
        export(ckpt, opts["out"], onnx=opts["onnx"], quantize=opts["quantize"], exporter=opts["exporter"],
               opset=opts["opset"], fallbacks=opts["fallbacks"], metrics=opts["metrics"],
               eval_split_name=opts["eval_split"], cache_dir=opts["cache_dir"], overwrite=opts["overwrite"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
