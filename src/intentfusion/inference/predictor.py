"""`Predictor`: labels + calibrated confidences for raw texts, from a checkpoint or an export directory.

    from intentfusion.inference import Predictor

    predictor = Predictor.from_checkpoint("logs/train/runs/<run>/checkpoints/<best>.ckpt")
    predictor = Predictor.from_export("exports/support-minilm")        # or runtime="onnx" / "onnx-int8" / "auto"
    predictor.predict(["where is my parcel??", "CANCEL MY ACCOUNT NOW"])
    # [{"predictions": {"intent": {"label": "order_status", "confidence": 0.93}, ...}, "flags": []}, ...]
    predictor.predict_one("hola, no puedo entrar en mi cuenta", return_distribution=True)
    # a model with a token task (`tasks.types: {slots: token}`) also gives its entities:
    # {"predictions": {"intent": {...}}, "entities": {"slots": [{"label": "city", "text": "new york",
    #   "start": 16, "end": 24, "confidence": 0.91}]}, "flags": []}

What it guarantees
------------------
* **The test-time predictions.** Texts are tokenized exactly as the data module does for the test split
  (`encode_texts`, the one tokenization path, with the training `max_length` read from the checkpoint's stored
  config), padded per batch with `pad_batch`, and run through the same network (`MultiTaskNet`, the module
  that training runs, same weights) under the training run's precision (`precision="auto"`: bf16
  autocast for a `bf16-mixed` run, else float32; but float32 on a device that only emulates bf16, where it is
  several times faster; an explicit `precision="bf16"` there runs bf16 and warns). Each task's type decodes
  its logits (`TaskType.decode`) into its JSON under the type's `output_key`: `sequence` the argmax label and
  its confidence; `multilabel` `{"labels": [{"label", "confidence"}]}`, every label at or over its threshold
  (chosen on validation), most confident first; `token` entities, below.
* **Entities (token tasks).** A model with token-level tasks adds `"entities": {task: [{"label", "text",
  "start", "end", "confidence"}, ...]}` to every result (sorted by `start`; `[]` for an empty text); the
  other tasks are under `"predictions"`. Each whitespace word takes the tag predicted on its first
  subword (as in training; a CRF head's Viterbi path over the words, the ONNX runtimes included, which read
  its transitions from `heads.safetensors`), BIO tags become spans (`TokenTask.decode`, lenient like
  `bio_to_spans(..., repair=True)`: an `I-x` after `O` starts an entity; the punctuation glued to the edge
  words is no part of an entity: `#48213?` -> `#48213`), and `confidence` is the lowest
  calibrated probability of the predicted tag over the entity's words. `start` / `end` are character offsets
  into the text as sent, `text[start:end] == entity["text"]`; when control characters were removed (flag
  `control_characters_removed`) the spans are found in the cleaned text and mapped back onto the text as sent,
  so an entity's text then includes the removed characters that lay inside it. Words past the token budget
  (flag `truncated`) are in no entity. Fallbacks apply to the tasks with one label per text (`sequence`).
* **Calibrated confidence.** softmax(logits / T) with the task's temperature T: an explicit input
  (`from_checkpoint(temperatures=...)`: by default the `temperatures.json` `evaluate.py` wrote next to the
  checkpoint; an export carries the ones it was calibrated with); T = 1 where there is none. `info["calibration"]`
  says which were used.
* **Fast by construction.** `torch.inference_mode`, texts sorted by token length and padded per batch
  (`batch_size`), results returned in input order; `compile=True` (torch runtime) runs the network through
  `torch.compile` (Inductor, dynamic shapes, frozen weights): each new shape class (batch of one, batch of many)
  compiles once, tens of seconds, then batches run faster (BENCHMARKS.md); very long strings are cut to
  `max_chars` characters before tokenizing (32 characters per token of budget, at least 1024), with the model
  still seeing its full budget; with an ONNX runtime, the predictor's own torch work runs on one thread, so
  that torch's thread pool does not compete with onnxruntime's for the cores.
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

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from intentfusion.data.alignment import subword_to_word, word_spans
from intentfusion.data.batching import pad_batch
from intentfusion.data.encoding import Encoded, encode_texts
from intentfusion.errors import CheckpointNotFoundError, ConfigError
from intentfusion.inference.loading import (
    check_fallbacks,
    load_checkpoint_net,
    load_export_config,
    quiet_transformers,
    read_temperatures,
)
from intentfusion.inference.runners import Runner, TorchRunner, autocast_dtype
from intentfusion.inference.runtimes import MAX_ACCURACY_DROP, fastest_runtime, get_runtime
from intentfusion.inference.text import EMPTY, TRUNCATED, check_texts, sanitize
from intentfusion.models.config import NetConfig
from intentfusion.models.net import MultiTaskNet, build_heads, upgrade_state_dict
from intentfusion.tasks import TextContext, task_type
from intentfusion.utils.hardware import serving_precision, torch_threads, warn_if_slow_bf16


def torch_runner(net: MultiTaskNet, precision: str, trained: str, device: str, compile: bool
                 ) -> tuple[Runner, str]:
    """A `TorchRunner` for `net` and the precision it runs (`"auto"`: `serving_precision` of the trained one)."""
    precision = serving_precision(trained, device) if precision == "auto" else precision
    warn_if_slow_bf16(precision, device, "Predictor precision")
    return TorchRunner(net, device, autocast_dtype(precision, device), compile=compile), precision


def export_heads(directory: Path, config: dict[str, Any]) -> dict[str, nn.Module]:
    """An export's task heads with their weights (a CRF's transitions, a multilabel task's thresholds), for
    decoding what a runtime other than torch computed (legacy key names upgraded)."""
    from safetensors.torch import load_file

    hidden = int(json.loads((directory / "encoder" / "config.json").read_text(encoding="utf-8"))["hidden_size"])
    heads = build_heads(NetConfig.from_export(config)[0], hidden, dropout=0.0)
    parts = upgrade_state_dict(load_file(str(directory / "heads.safetensors")))
    heads.load_state_dict({k.removeprefix("heads."): v for k, v in parts.items() if k.startswith("heads.")})
    return {task: head.eval() for task, head in heads.items()}


BESIDE = "beside"  # `from_checkpoint(temperatures=...)`: the `temperatures.json` next to the checkpoint


def calibration_of(spec: str | Path | Mapping[str, float] | None, checkpoint: Path, tasks: list[str]
                   ) -> tuple[dict[str, float], str]:
    """(temperatures per task, where they come from) for `Predictor.from_checkpoint(temperatures=spec)`."""
    if spec is None:
        return {}, "none (temperatures=None)"
    if isinstance(spec, Mapping):
        return {t: float(v) for t, v in spec.items() if t in tasks}, "given"
    path = checkpoint.parent / "temperatures.json" if spec == BESIDE else Path(spec)
    if not path.is_file():
        if spec == BESIDE:
            return {}, f"none (no {path}: evaluate.py writes it)"
        raise CheckpointNotFoundError(f"temperatures={spec}", "no such file", "a temperatures.json or None")
    return read_temperatures(path, tasks), str(path)


def _onto_sent(text: str, cleaned: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entities found in `cleaned` (`text` without some control characters) with their offsets onto `text`."""
    where = _positions(text, cleaned)
    for entity in entities:
        entity["start"], entity["end"] = where[entity["start"]], where[entity["end"] - 1] + 1
        entity["text"] = text[entity["start"] : entity["end"]]
    return entities


def _positions(text: str, cleaned: str) -> list[int]:
    """The index in `text` of each character of `cleaned`, which is `text` with some control characters removed
    (a removed character never equals a kept one, so the first match is the character itself)."""
    out, j = [], 0
    for char in cleaned:
        while text[j] != char:
            j += 1
        out.append(j)
        j += 1
    return out


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
        heads: Mapping[str, nn.Module] | None = None,
    ) -> None:
        """`heads`: the network's task heads (`net.heads`), which decode each task's logits (a CRF head needs its
        transitions, a multilabel head its thresholds); a task without one decodes with a fresh head of its type
        (`task_types`, default `sequence`)."""
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.runner, self.tokenizer = runner, tokenizer
        self.label_names = {t: list(n) for t, n in label_names.items()}
        self.tasks = list(self.label_names)
        given = dict(heads or {})
        types = {t: task_type((task_types or {}).get(t), t) for t in self.tasks}
        self.heads = {t: given[t] if t in given else types[t](self.label_names[t], 1) for t in self.tasks}
        self.task_types = {t: head.name for t, head in self.heads.items()}
        self.token_tasks = [t for t, head in self.heads.items() if head.per_token]  # logits per position
        self.offset_tasks = [t for t, head in self.heads.items() if head.needs_offsets]  # decoded over words
        self.max_length, self.batch_size = int(max_length), int(batch_size)
        self.max_chars = int(max_chars) if max_chars else max(1024, 32 * self.max_length)
        self.temperatures = {t: float((temperatures or {}).get(t, 1.0)) for t in self.tasks}
        self.fallbacks = check_fallbacks(fallbacks, self.label_names)
        single = [t for t, head in self.heads.items() if head.samples_by_class]  # one label + confidence
        if set(self.fallbacks) - set(single):
            raise ValueError(f"fallbacks: {sorted(set(self.fallbacks) - set(single))} have no single label; "
                             f"fallbacks apply to the tasks with one label per text {single}")
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_id = int(pad) if pad is not None else 0
        self.info = {"tasks": self.tasks, "max_length": self.max_length, **(info or {})}
        self._lock = threading.Lock()
        self._torch_threads = getattr(runner, "torch_threads", None)  # torch's threads while predicting

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
        temperatures: str | Path | Mapping[str, float] | None = BESIDE,
    ) -> Predictor:
        """From a training checkpoint (`weights_only=True`).

        `temperatures`, the calibration: `"beside"` (default) the `temperatures.json` that `evaluate.py` wrote
        next to the checkpoint, if there is one; a path to such a file; ``{task: T}``; or None (uncalibrated,
        T = 1). Which one was used is in `info["calibration"]`."""
        net, tokenizer, meta = load_checkpoint_net(path, cache_dir)
        runner, precision = torch_runner(net, precision, meta["precision"], device, compile)
        temps, calibration = calibration_of(temperatures, Path(path), list(meta["label_names"]))
        info = {"source": str(path), "format": "checkpoint", "runtime": "torch", "precision": precision,
                "compiled": compile, "backbone": meta["backbone"].get("name_or_path"), "calibration": calibration}
        return cls(runner, tokenizer, meta["label_names"], max_length=meta["max_length"], task_types=net.task_types,
                   temperatures=temps, fallbacks=fallbacks, batch_size=batch_size,
                   max_chars=max_chars, info=info, heads=net.heads)

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
        max_accuracy_drop: float = MAX_ACCURACY_DROP,
    ) -> Predictor:
        """From an export directory (safetensors + Hugging Face files + JSON; no Hydra, no training code).

        `runtime`: `torch` (safetensors weights), `onnx` (`model.onnx`), `onnx-int8` (`model.int8.onnx`),
        `onnx-fused` / `onnx-int8-fused` (the graphs with onnxruntime's transformer fusions), the ONNX ones with
        onnxruntime; `auto`: the fastest of those present whose accuracy drop measured at export is at most
        `max_accuracy_drop` (`intentfusion.inference.runtimes.fastest_runtime`); `torch` with `compile=True`, a
        device other than the CPU or a precision other than `auto` / `32` (the ONNX runtimes run fp32 on the CPU).
        `fallbacks=None` uses the export's own (if it was exported with some).
        `compile=True`: `torch.compile` the network (torch runtime only).
        """
        from intentfusion.models.backbone import load_encoder, load_tokenizer

        directory = Path(directory)
        config = load_export_config(directory)
        chosen_by = None
        if runtime != "auto":
            get_runtime(runtime)  # a `ConfigError` for an unknown name
        if runtime == "auto":  # the ONNX runtimes run fp32 on the CPU: asking for more means torch
            torch_only = compile or torch.device(device).type != "cpu" or precision not in ("auto", "32")
            runtime = "torch" if torch_only else fastest_runtime(directory, config, max_accuracy_drop)
            chosen_by = f"auto (fastest at export with an accuracy drop <= {max_accuracy_drop})"
        if compile and runtime != "torch":
            raise ConfigError("compile", f"compile=True with runtime={runtime!r}", "runtime=torch")
        label_names, tasks = config["label_names"], list(config["label_names"])
        tokenizer = load_tokenizer(str(directory / "encoder"))
        heads: Mapping[str, nn.Module] | None = None
        if runtime == "torch":
            from safetensors.torch import load_file

            with quiet_transformers():  # the export has no pooler weights (unused): no "MISSING pooler" report
                encoder = load_encoder(str(directory / "encoder"))
            net = MultiTaskNet.from_export(encoder, config)
            net.load_parts(load_file(str(directory / "heads.safetensors")), f"{directory}/heads.safetensors")
            runner, precision = torch_runner(net, precision, config.get("precision", "32"), device, compile)
            heads = net.heads
        else:
            spec = get_runtime(runtime)
            path = directory / spec.file
            if not path.is_file():
                made_with = spec.export_flags or f"runtimes=[{spec.name}]"
                raise CheckpointNotFoundError(str(path), "no such file", f"an export made with {made_with}")
            runner, precision = spec.runner(path, tasks, threads), "32"
            heads = export_heads(directory, config)
        info = {"source": str(directory), "format": "export", "runtime": runtime, "precision": precision,
                "compiled": compile, "backbone": config.get("backbone", {}).get("name_or_path"),
                "calibration": (f"{directory / 'temperatures.json'} (exported with the model)"
                                if config["temperatures"] else "none (exported without temperatures)")}
        if chosen_by:
            info["runtime_choice"] = chosen_by
        return cls(runner, tokenizer, label_names, max_length=config["max_length"],
                   task_types=NetConfig.from_export(config)[0].task_types, temperatures=config["temperatures"],
                   fallbacks=config.get("fallbacks") if fallbacks is None else fallbacks,
                   batch_size=batch_size, max_chars=max_chars, info=info, heads=heads)

    # ----------------------------------------------------------------------------------------- encoding
    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[bool]]:
        """Token ids as the data module makes them (`encode_texts`), strings over `max_chars` cut first."""
        encoded = self._encode(texts)
        return encoded.ids, encoded.truncated

    def _encode(self, texts: Sequence[str]) -> Encoded:
        """`encode_texts`, with the tokens' character offsets when a task is decoded over words."""
        return encode_texts(self.tokenizer, texts, self.max_length, self.max_chars, offsets=bool(self.offset_tasks))

    def _run(self, ids: list[list[int]]) -> dict[str, Any]:
        """Logits per task in input order; batches of `batch_size` texts sorted by length.

        Utterance-level tasks: one (N, C) tensor. Per-token tasks: a list of N tensors (T_i, C), each text's own
        `len(ids[i])` positions (special tokens included, padding cut off).
        """
        n = len(ids)
        out: dict[str, Any] = {t: [None] * n for t in self.token_tasks}
        whole = [t for t in self.tasks if t not in self.token_tasks]
        order = sorted(range(n), key=lambda i: len(ids[i]))  # stable, like the test loader
        for start in range(0, n, self.batch_size):
            chunk = order[start : start + self.batch_size]
            input_ids, mask = pad_batch([ids[i] for i in chunk], self.pad_id)
            logits = self.runner(input_ids, mask)
            for task in whole:
                if task not in out:
                    out[task] = logits[task].new_empty((n, *logits[task].shape[1:]))
                out[task][torch.as_tensor(chunk)] = logits[task]
            for task in self.token_tasks:
                for k, i in enumerate(chunk):
                    out[task][i] = logits[task][k, : len(ids[i])]
        for task in whole:  # no text ran
            out.setdefault(task, torch.empty(0, len(self.label_names[task])))
        return out

    def logits(self, texts: Sequence[str]) -> dict[str, Any]:
        """Raw logits per task for `texts` (controls stripped; empty texts are run too), in input order:
        (N, C) per utterance-level task, a list of (T_i, C) per per-token task (see `_run`)."""
        cleaned = [sanitize(t)[0] for t in check_texts(texts)]
        with self._lock, torch_threads(self._torch_threads):
            return self._run(self.tokenize(cleaned)[0])

    # ----------------------------------------------------------------------------------------- predict
    def predict(self, texts: Sequence[str], return_distribution: bool = False) -> list[dict[str, Any]]:
        """Per text: `{"predictions": {task: ...}, "flags": [...]}` in input order, each task's result as its type
        decodes it, under the type's `output_key`: a sequence task `{"label", "confidence"[, "distribution"][,
        "fallback", "model_label"]}` under "predictions", a multilabel task `{"labels": [{"label",
        "confidence"}]}` under "predictions", a token task's entities `[{"label", "text", "start", "end",
        "confidence"}]` under "entities" (see the module docstring)."""
        items = check_texts(texts)
        cleaned, flags = [], []
        for text in items:
            clean, text_flags = sanitize(text)
            cleaned.append(clean)
            flags.append(text_flags)
        run = [i for i, f in enumerate(flags) if EMPTY not in f]
        with self._lock, torch_threads(self._torch_threads):
            encoded = self._encode([cleaned[i] for i in run])
            logits = self._run(encoded.ids)
            contexts = [self._context(cleaned[i], encoded, k) for k, i in enumerate(run)]
            decoded = {t: head.decode(logits[t], contexts, self.temperatures[t], return_distribution)
                       for t, head in self.heads.items()}
        for k, i in enumerate(run):
            if encoded.truncated[k]:
                flags[i].append(TRUNCATED)
        results: list[dict[str, Any]] = []
        for i in range(len(items)):  # every text starts as an empty one: its type's empty result, the fallback
            result: dict[str, Any] = {"predictions": {}, "flags": flags[i]}
            for task, head in self.heads.items():
                result.setdefault(head.output_key, {})[task] = self._empty(task, return_distribution)
            results.append(result)
        for k, i in enumerate(run):
            for task, head in self.heads.items():
                value = decoded[task][k]
                if head.needs_offsets and cleaned[i] != items[i]:  # spans onto the text as sent
                    value = _onto_sent(items[i], cleaned[i], value)
                results[i][head.output_key][task] = self._with_fallback(task, value)
        return results

    def _context(self, text: str, encoded: Encoded, k: int) -> TextContext:
        """The k-th encoded text as the decoders need it (words and spans when a task is decoded over words)."""
        if not self.offset_tasks:
            return TextContext(text)
        spans = word_spans(text)
        return TextContext(text, spans, subword_to_word(encoded.offsets[k], spans))

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

    def _empty(self, task: str, distribution: bool) -> Any:
        """The defined output for an empty text: the type's empty result; with a fallback rule, the fallback
        label (confidence 0, `"fallback": true`)."""
        result = self.heads[task].empty(distribution)
        rule = self.fallbacks.get(task)
        if rule is not None:
            result.update(label=rule["fallback"], fallback=True)
        return result

    def __repr__(self) -> str:
        info = self.info
        return (f"Predictor({info.get('format')}={info.get('source')!r}, runtime={info.get('runtime')}, "
                f"tasks={self.tasks}, max_length={self.max_length}, batch_size={self.batch_size})")
