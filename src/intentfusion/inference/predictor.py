"""`Predictor`: labels + calibrated confidences for raw texts, from a checkpoint or an export directory.

    from intentfusion.inference import Predictor

    predictor = Predictor.from_checkpoint("logs/train/runs/<run>/checkpoints/<best>.ckpt")
    predictor = Predictor.from_export("exports/support-minilm")               # or runtime="onnx" / "onnx-int8"
    predictor.predict(["where is my parcel??", "CANCEL MY ACCOUNT NOW"])
    # [{"predictions": {"intent": {"label": "order_status", "confidence": 0.93}, ...}, "flags": []}, ...]
    predictor.predict_one("hola, no puedo entrar en mi cuenta", return_distribution=True)

What it guarantees
------------------
* **The test-time predictions.** Texts are tokenized exactly as the data module does for the test split
  (`encode_texts`, the one tokenization path, with the training `max_length` read from the checkpoint's stored
  config), padded per batch with `pad_batch`, and run through the same network (`MultiTaskNet`, the module
  that training runs, same weights) under the training run's precision (`precision="auto"`: bf16
  autocast for a `bf16-mixed` run, else float32; but float32 on a device that only emulates bf16, where it is
  several times faster; an explicit `precision="bf16"` there runs bf16 and warns). Each task's head type
  decodes its logits (`sequence`: the argmax label).
* **Calibrated confidence.** softmax(logits / T) with the task's temperature T from `temperatures.json` (written
  next to the checkpoint by `evaluate.py`, copied into an export); T = 1 where there is none.
* **Fast by construction.** `torch.inference_mode`, texts sorted by token length and padded per batch
  (`batch_size`), results returned in input order; `compile=True` (torch runtime) runs the network through
  `torch.compile` (Inductor, dynamic shapes, frozen weights): each new shape class (batch of one, batch of many)
  compiles once, tens of seconds, then batches run faster (BENCHMARKS.md); very long strings are cut to
  `max_chars` characters before tokenizing (32 characters per token of budget, at least 1024), with the model
  still seeing its full budget.
* **Robust inputs.** Non-strings raise a `TypeError` naming the index; control characters are stripped; empty
  or whitespace-only texts are not run and get the task's fallback label (or null) with confidence 0. Every
  result carries `flags` (see `intentfusion.inference.text`).
* **Fallbacks.** `fallbacks={"action": {"threshold": 0.7, "fallback": "request_more_info"}}` replaces a task's
  label by the fallback when its calibrated confidence is below the threshold; the result then says
  `"fallback": true` and keeps the model's own label as `"model_label"`. (Tasks with a rule always carry
  `"fallback"`.)
* **Thread-safe.** Calls are serialised by a lock (the fast tokenizers are not re-entrant).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from intentfusion.data.batching import pad_batch
from intentfusion.data.encoding import encode_texts
from intentfusion.errors import CheckpointNotFoundError, ConfigError
from intentfusion.inference.loading import check_fallbacks, load_checkpoint_net, load_export_config, quiet_transformers
from intentfusion.inference.runners import OnnxRunner, Runner, TorchRunner, autocast_dtype
from intentfusion.inference.text import EMPTY, TRUNCATED, check_texts, sanitize
from intentfusion.models.heads import head_type
from intentfusion.models.net import MultiTaskNet
from intentfusion.utils.hardware import serving_precision, warn_if_slow_bf16

RUNTIMES = ("torch", "onnx", "onnx-int8")
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}


def rounded(value: Any, digits: int = 4) -> Any:
    """`value` (a result, nested dicts / lists) with every float rounded, for compact JSON."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def torch_runner(net: MultiTaskNet, precision: str, trained: str, device: str, compile: bool
                 ) -> tuple[Runner, str]:
    """A `TorchRunner` for `net` and the precision it runs (`"auto"`: `serving_precision` of the trained one)."""
    precision = serving_precision(trained, device) if precision == "auto" else precision
    warn_if_slow_bf16(precision, device, "Predictor precision")
    return TorchRunner(net, device, autocast_dtype(precision, device), compile=compile), precision


# --------------------------------------------------------------------------------------------- predictor


class Predictor:
    """Labels, calibrated confidences and flags for raw texts (see the module docstring)."""

    def __init__(
        self,
        runner: Runner,
        tokenizer: Any,
        label_names: dict[str, list[str]],
        *,
        max_length: int,
        task_types: dict[str, str] | None = None,
        temperatures: dict[str, float] | None = None,
        fallbacks: dict[str, Any] | None = None,
        batch_size: int = 64,
        max_chars: int | None = None,
        info: dict[str, Any] | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.runner, self.tokenizer = runner, tokenizer
        self.label_names = {t: list(n) for t, n in label_names.items()}
        self.tasks = list(self.label_names)
        self.heads = {t: head_type(t, (task_types or {}).get(t, "sequence")) for t in self.tasks}
        self.max_length, self.batch_size = int(max_length), int(batch_size)
        self.max_chars = int(max_chars) if max_chars else max(1024, 32 * self.max_length)
        self.temperatures = {t: float((temperatures or {}).get(t, 1.0)) for t in self.tasks}
        self.fallbacks = check_fallbacks(fallbacks, self.label_names)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0
        self.info = {"tasks": self.tasks, "max_length": self.max_length, **(info or {})}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------------------- constructors
    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        *,
        batch_size: int = 64,
        fallbacks: dict[str, Any] | None = None,
        precision: str = "auto",
        device: str = "cpu",
        cache_dir: str | Path | None = None,
        max_chars: int | None = None,
        compile: bool = False,
    ) -> Predictor:
        """From a training checkpoint (`weights_only=True`); temperatures from `temperatures.json` beside it."""
        net, tokenizer, meta = load_checkpoint_net(path, cache_dir)
        runner, precision = torch_runner(net, precision, meta["precision"], device, compile)
        info = {"source": str(path), "format": "checkpoint", "runtime": "torch", "precision": precision,
                "compiled": compile, "backbone": meta["backbone"].get("name_or_path")}
        return cls(runner, tokenizer, meta["label_names"], max_length=meta["max_length"], task_types=net.task_types,
                   temperatures=meta["temperatures"], fallbacks=fallbacks, batch_size=batch_size,
                   max_chars=max_chars, info=info)

    @classmethod
    def from_export(
        cls,
        directory: str | Path,
        *,
        runtime: str = "torch",
        batch_size: int = 64,
        fallbacks: dict[str, Any] | None = None,
        precision: str = "auto",
        device: str = "cpu",
        threads: int | None = None,
        max_chars: int | None = None,
        compile: bool = False,
    ) -> Predictor:
        """From an export directory (safetensors + Hugging Face files + JSON; no Hydra, no training code).

        `runtime`: `torch` (safetensors weights), `onnx` (`model.onnx`) or `onnx-int8` (`model.int8.onnx`),
        the ONNX ones with onnxruntime. `fallbacks=None` uses the export's own (if it was exported with some).
        `compile=True`: `torch.compile` the network (torch runtime only).
        """
        from intentfusion.models.backbone import load_encoder, load_tokenizer

        directory = Path(directory)
        config = load_export_config(directory)
        if runtime not in RUNTIMES:
            raise ConfigError("runtime", f"{runtime!r} is not a runtime", f"one of {RUNTIMES}")
        if compile and runtime != "torch":
            raise ConfigError("compile", f"compile=True with runtime={runtime!r}", "runtime=torch")
        label_names, tasks = config["label_names"], list(config["label_names"])
        tokenizer = load_tokenizer(str(directory / "encoder"))
        if runtime == "torch":
            from safetensors.torch import load_file

            with quiet_transformers():  # the export has no pooler weights (unused): no "MISSING pooler" report
                encoder = load_encoder(str(directory / "encoder"))
            net = MultiTaskNet.from_parts_config(encoder, label_names, config)
            net.load_parts(load_file(str(directory / "heads.safetensors")), f"{directory}/heads.safetensors")
            runner, precision = torch_runner(net, precision, config.get("precision", "32"), device, compile)
        else:
            onnx_path = directory / ONNX_FILES[runtime]
            if not onnx_path.is_file():
                flag = "onnx=true" if runtime == "onnx" else "onnx=true quantize=true"
                raise CheckpointNotFoundError(str(onnx_path), "no such file", f"an export made with {flag}")
            runner, precision = OnnxRunner(onnx_path, tasks, threads), "32"
        info = {"source": str(directory), "format": "export", "runtime": runtime, "precision": precision,
                "compiled": compile, "backbone": config.get("backbone", {}).get("name_or_path")}
        return cls(runner, tokenizer, label_names, max_length=config["max_length"],
                   task_types=config.get("task_types"), temperatures=config["temperatures"],
                   fallbacks=config.get("fallbacks") if fallbacks is None else fallbacks,
                   batch_size=batch_size, max_chars=max_chars, info=info)

    # ----------------------------------------------------------------------------------------- encoding
    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids as the data module makes them (`encode_texts`), strings over `max_chars` cut first."""
        return encode_texts(self.tokenizer, texts, self.max_length, self.max_chars)

    def _run(self, ids: list[list[int]]) -> dict[str, torch.Tensor]:
        """Logits per task, (N, ...) in input order; batches of `batch_size` texts sorted by length."""
        rows: dict[str, list[torch.Tensor | None]] = {t: [None] * len(ids) for t in self.tasks}
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # stable, like the test loader
        for start in range(0, len(ids), self.batch_size):
            chunk = order[start : start + self.batch_size]
            input_ids, mask = pad_batch([ids[i] for i in chunk], self.pad_id)
            logits = self.runner(input_ids, mask)
            for task in self.tasks:
                for k, i in enumerate(chunk):
                    rows[task][i] = logits[task][k]
        return {t: torch.stack(r) if r else torch.empty(0, len(self.label_names[t])) for t, r in rows.items()}

    def logits(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Raw logits per task for `texts` (controls stripped; empty texts are run too), in input order."""
        cleaned = [sanitize(t)[0] for t in check_texts(texts)]
        with self._lock:
            return self._run(self.tokenize(cleaned)[0])

    # ----------------------------------------------------------------------------------------- predict
    def predict(self, texts: Sequence[str], return_distribution: bool = False) -> list[dict[str, Any]]:
        """Per text: `{"predictions": {task: {"label", "confidence"[, "distribution"][, "fallback",
        "model_label"]}}, "flags": [...]}`, in input order."""
        items = check_texts(texts)
        cleaned, flags = [], []
        for text in items:
            clean, text_flags = sanitize(text)
            cleaned.append(clean)
            flags.append(text_flags)
        run = [i for i, f in enumerate(flags) if EMPTY not in f]
        with self._lock:
            ids, truncated = self.tokenize([cleaned[i] for i in run])
            logits = self._run(ids)
        for k, i in enumerate(run):
            if truncated[k]:
                flags[i].append(TRUNCATED)
        decoded = {
            t: head.decode(logits[t], self.label_names[t], self.temperatures[t], return_distribution)
            for t, head in self.heads.items()
        }
        results: list[dict[str, Any]] = [
            {"predictions": self._empty(return_distribution), "flags": flags[i]} for i in range(len(items))
        ]
        for k, i in enumerate(run):
            results[i]["predictions"] = {t: self._with_fallback(t, decoded[t][k]) for t in self.tasks}
        return results

    def predict_one(self, text: str, return_distribution: bool = False) -> dict[str, Any]:
        """`predict([text])[0]`; a `TypeError` when `text` is not a str."""
        if not isinstance(text, str):
            raise TypeError(f"text is {type(text).__name__}, expected str")
        return self.predict([text], return_distribution)[0]

    def _with_fallback(self, task: str, result: dict[str, Any]) -> dict[str, Any]:
        """A decoded result with the task's fallback rule applied (when it has one)."""
        rule = self.fallbacks.get(task)
        if rule is not None:
            low = result["confidence"] < rule["threshold"]
            result["fallback"] = low
            if low:
                result["model_label"], result["label"] = result["label"], rule["fallback"]
        return result

    def _empty(self, distribution: bool) -> dict[str, Any]:
        """The defined output for an empty text: the fallback label (or None), confidence 0."""
        out = {}
        for task in self.tasks:
            rule = self.fallbacks.get(task)
            result: dict[str, Any] = {"label": rule["fallback"] if rule else None, "confidence": 0.0}
            if distribution:
                result["distribution"] = None
            if rule is not None:
                result["fallback"] = True
            out[task] = result
        return out

    def __repr__(self) -> str:
        info = self.info
        return (f"Predictor({info.get('format')}={info.get('source')!r}, runtime={info.get('runtime')}, "
                f"tasks={self.tasks}, max_length={self.max_length}, batch_size={self.batch_size})")
