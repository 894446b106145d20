"""The export directory: `export(ckpt_path, out, ...)` writes it. The command line (`python -m intentfusion.export`,
`intentfusion.export.main`) adds the checkpoint's evaluation split, rebuilt from its run config.

See the package docstring for the options and the files.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from intentfusion.inference.export.card import find_metrics, model_card
from intentfusion.inference.export.onnx import ExportError
from intentfusion.inference.export.parity import EvalSource, accuracy, compare, entity_agreement, sample_texts
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
           fallbacks: dict | None = None, metrics: str | None = None, eval_data: EvalSource = sample_texts,
           cache_dir: str | None = None, overwrite: bool = False, log: Any = print) -> dict[str, Any]:
    """Write the export directory `out` (see the package docstring); returns the report (also in
    `export_report.json`). `runtimes`: registered runtimes to build and check (`intentfusion.inference.runtimes`)
    besides those the flags ask for (`onnx`; `quantize`: int8; `fuse`: transformer fusions; both: fused int8).
    `eval_data` gives the texts (and labels) each runtime is checked on, from the checkpoint's run config: the
    built-in sample texts by default, a split of the training data with `intentfusion.export.checkpoint_split`."""
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
                          eval_data=eval_data, log=log)
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
                  eval_data: EvalSource, log: Any) -> None:
    """Build the runtimes `names` (`intentfusion.inference.runtimes`, each after the one it requires) into `tmp`
    and check each against the PyTorch model on `eval_data`: parity (logits, labels, entities),
    accuracy delta (when the split has labels), msgs/s at batch `SERVING_BATCH` on this machine. Fills
    `config["runtimes"]` (what `runtime="auto"` chooses from, with each file's description) and the report's
    section per runtime name and `runtimes`."""
    label_names, tasks = meta["label_names"], list(meta["label_names"])
    texts, labels, report["eval_data"] = eval_data(meta["config"], label_names, net.task_types)
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
        out: dict[str, Any] = {"parity": compare(reference, logits, entities, net.heads), "msgs_per_s": speed}
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
