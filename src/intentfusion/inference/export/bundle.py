"""The export directory: `export(ckpt_path, out, ...)` writes it, `main(argv)` is the command line.

See the package docstring (`python -m intentfusion.inference.export help`) for the options and the files.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from intentfusion.errors import CheckpointNotFoundError, exit_on_user_error
from intentfusion.inference.export.card import find_metrics, model_card
from intentfusion.inference.export.onnx import ExportError
from intentfusion.inference.export.parity import accuracy, compare, entity_agreement, eval_split
from intentfusion.inference.loading import EXPORT_FORMAT, EXPORT_VERSION, check_fallbacks, load_checkpoint_net
from intentfusion.inference.predictor import Predictor
from intentfusion.inference.runners import TorchRunner
from intentfusion.inference.runtimes import (
    EXPORT_FLAG_RUNTIMES,
    RUNTIMES,
    SERVING_BATCH,
    BuildContext,
    Runtime,
    get_runtime,
)
from intentfusion.utils.cli import parse_options, user_errors_from, wants_help

DEFAULTS: dict[str, Any] = {
    "ckpt_path": None,
    "out": None,
    "onnx": False,
    "quantize": False,
    "fuse": False,
    "runtimes": [],
    "exporter": "dynamo",
    "opset": None,
    "fallbacks": None,
    "metrics": None,
    "eval_split": "test",
    "cache_dir": None,
    "overwrite": False,
}
TYPES: dict[str, type] = {"ckpt_path": str, "out": str, "opset": int, "fallbacks": dict, "metrics": str,
                          "cache_dir": str, "runtimes": list}
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
           fuse: bool = False, runtimes: Sequence[str] = (), exporter: str = "dynamo", opset: int | None = None,
           fallbacks: dict | None = None, metrics: str | None = None, eval_split_name: str = "test",
           cache_dir: str | None = None, overwrite: bool = False, log: Any = print) -> dict[str, Any]:
    """Write the export directory `out` (see the module docstring); returns the report (also in
    `export_report.json`). `runtimes`: registered runtimes to build and check (`intentfusion.inference.runtimes`)
    besides those the flags ask for (`onnx`; `quantize`: int8; `fuse`: transformer fusions; both: fused int8)."""
    ckpt, out = Path(ckpt_path), Path(out)
    names = {get_runtime(name).name for name in runtimes}
    for flag, on in (("onnx", onnx), ("quantize", quantize), ("fuse", fuse)):
        names.update(EXPORT_FLAG_RUNTIMES[flag] if on else ())
    if quantize and fuse:
        names.add("onnx-int8-fused")
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
            **net.export_config,  # `net`: the NetConfig, `active_parts`
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
        if names - {"torch"}:
            runtime_files(net, tokenizer, meta, tmp, config, report, sorted(names), exporter=exporter, opset=opset,
                          eval_split_name=eval_split_name, log=log)
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


def _timed(predictor: Predictor, texts: list[str]) -> tuple[dict[str, Any], float]:
    """(`predictor.logits(texts)`, messages per second), after a warm-up batch."""
    predictor.logits(texts[:SERVING_BATCH])
    started = time.perf_counter()
    logits = predictor.logits(texts)
    return logits, len(texts) / max(time.perf_counter() - started, 1e-9)


def runtime_files(net: Any, tokenizer: Any, meta: dict[str, Any], tmp: Path, config: dict[str, Any],
                  report: dict[str, Any], names: Sequence[str], *, exporter: str, opset: int | None,
                  eval_split_name: str, log: Any) -> None:
    """Build the runtimes `names` (`intentfusion.inference.runtimes`, each after the one it requires) into `tmp`
    and check each against the PyTorch model on the evaluation split: parity (logits, labels, entities),
    accuracy delta (when the split has labels), msgs/s at batch `SERVING_BATCH` on this machine. Fills
    `config["runtimes"]` (what `runtime="auto"` chooses from, with each file's description) and the report's
    section per runtime name and `runtimes`."""
    label_names, tasks = meta["label_names"], list(meta["label_names"])
    texts, labels, report["eval_data"] = eval_split(meta["config"], label_names, net.task_types, eval_split_name)
    common = {"max_length": meta["max_length"], "task_types": net.task_types, "heads": net.heads,  # heads: decoding
              "batch_size": SERVING_BATCH}
    torch_predictor = Predictor(TorchRunner(net), tokenizer, label_names, **common)
    reference, torch_speed = _timed(torch_predictor, texts)
    torch_results = torch_predictor.predict(texts) if torch_predictor.offset_tasks else []  # entities
    reference_accuracy = accuracy(reference, labels, net.heads) if labels is not None else None
    runtimes: dict[str, dict[str, Any]] = {"torch": {"file": None, "msgs_per_s": torch_speed, "accuracy_drop": 0.0,
                                                     "label_agreement": 1.0, "texts": len(texts)}}

    def check(runtime: Runtime) -> dict[str, Any]:
        predictor = Predictor(runtime.runner(tmp / runtime.file, tasks, None), tokenizer, label_names, **common)
        logits, speed = _timed(predictor, texts)
        entities = entity_agreement(torch_results, predictor.predict(texts)) if torch_results else None
        out: dict[str, Any] = {"parity": compare(reference, logits, entities), "msgs_per_s": speed}
        drop, delta = None, {}
        if reference_accuracy is not None:
            got = accuracy(logits, labels, net.heads)
            delta = {t: got[t] - reference_accuracy[t] for t in got}
            out["accuracy"] = {"torch": reference_accuracy, "runtime": got, "delta": delta}
            drop = max(0.0, -min(delta.values(), default=0.0))
        p = out["parity"]
        runtimes[runtime.name] = {"file": runtime.file, "msgs_per_s": speed, "accuracy_drop": drop,
                                  "label_agreement": p["label_agreement"], "texts": len(texts)}
        log(f"[export] {runtime.name}: max abs logit diff {p['max_abs_diff']:.2e}, identical labels "
            f"{100 * p['label_agreement']:.2f} %" + (f", identical entities {100 * p['entity_agreement']:.2f} %"
                                                     if "entity_agreement" in p else "")
            + (", accuracy delta " + ", ".join(f"{t} {d:+.4f}" for t, d in delta.items()) if delta else "")
            + f", {speed:.0f} msgs/s (PyTorch {torch_speed:.0f})")
        return out

    context = BuildContext(net, tokenizer, tmp, {"exporter": exporter, "opset": opset}, log)
    described: dict[str, dict[str, Any]] = {}
    for runtime in [RUNTIMES[n] for n in RUNTIMES if n in names]:  # registration order: required ones first
        if runtime.build is None:
            continue
        if runtime.requires is not None and runtime.requires not in described:
            raise ExportError(f"runtimes={list(names)}", f"{runtime.name} is built from {runtime.requires}",
                              f"{runtime.requires} among the runtimes")
        described[runtime.name] = runtime.build(context, runtime)
        report[runtime.name] = {**described[runtime.name], **check(runtime)}
    config["onnx"] = described.get("onnx")
    config["runtimes"] = report["runtimes"] = {
        name: {**record, "description": described.get(name)} for name, record in runtimes.items()}


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
        export(ckpt, opts["out"], onnx=opts["onnx"], quantize=opts["quantize"], fuse=opts["fuse"],
               runtimes=opts["runtimes"], exporter=opts["exporter"],
               opset=opts["opset"], fallbacks=opts["fallbacks"], metrics=opts["metrics"],
               eval_split_name=opts["eval_split"], cache_dir=opts["cache_dir"], overwrite=opts["overwrite"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
