"""One measured inference process (run by `bench.inference` through `run_child`, one per variant).

    python -m bench.infer_child VARIANT MODEL_DIR MESSAGES_JSON OUT_JSON --batch-sizes 1,8,32,128 --reps 1 \
        --latency 300 --single 2000 --threads 2 --max-length 64

VARIANT: `predictor:<runtime>:<precision>` (`Predictor.from_export(runtime=..., precision=...)`; `precision`
`auto` is the export's own), `pipeline` (`transformers.pipeline("text-classification")` on MODEL_DIR, float32)
or `naive` (the seed notebook's loop over MODEL_DIR: tokenize one message, `model(**inputs)`, softmax, argmax).

Per repetition: msgs/s over all messages at every batch size (batch size 1: over the first `--single`), then the
latency of single messages (predict_one / the pipeline on one text / one naive step) over the first `--latency`
messages. Before timing, every path runs once on a few messages (warm-up). The intent labels (of the longest
run, first repetition) are written too, so the parent can compare variants on their common prefix.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Batch = Callable[[Sequence[str], int], list[str]]  # (texts, batch size) -> intent labels
One = Callable[[str], str]


def load_predictor(model: str, runtime: str, precision: str, threads: int, compile: bool = False
                   ) -> tuple[Batch, One, dict[str, Any]]:
    """The intentfusion `Predictor` of an export directory (label of the first task)."""
    from intentfusion.inference import Predictor

    predictor = Predictor.from_export(model, runtime=runtime, precision=precision, threads=threads, compile=compile)
    task = predictor.tasks[0]

    def batch(texts: Sequence[str], size: int) -> list[str]:
        predictor.batch_size = size
        return [r["predictions"][task]["label"] for r in predictor.predict(texts)]

    def one(text: str) -> str:
        return predictor.predict_one(text)["predictions"][task]["label"]

    return batch, one, {"precision": predictor.info["precision"], "runtime": runtime}


def load_pipeline(model: str, max_length: int, dtype: str = "float32") -> tuple[Batch, One, dict[str, Any]]:
    """`transformers.pipeline("text-classification")` with weights in `dtype`, truncating to `max_length`."""
    import torch
    from transformers import pipeline

    pipe = pipeline("text-classification", model=model, device="cpu", dtype=getattr(torch, dtype))
    kwargs = {"truncation": True, "max_length": max_length}

    def batch(texts: Sequence[str], size: int) -> list[str]:
        return [r["label"] for r in pipe(list(texts), batch_size=size, **kwargs)]

    def one(text: str) -> str:
        return pipe(text, **kwargs)[0]["label"]

    return batch, one, {"precision": "32" if dtype == "float32" else dtype, "runtime": "torch (transformers pipeline)"}


def load_naive(model: str, max_length: int) -> tuple[Batch, One, dict[str, Any]]:
    """The seed notebook's loop: one message at a time through the tokenizer and the model, softmax, argmax."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSequenceClassification.from_pretrained(model, dtype=torch.float32).eval()
    labels = net.config.id2label

    def one(text: str) -> str:
        inputs = tokenizer(text, return_tensors="pt", truncation=True, max_length=max_length)
        with torch.no_grad():
            logits = net(**inputs).logits
        probs = torch.softmax(logits, dim=-1)
        return labels[int(probs.argmax(-1))]

    def batch(texts: Sequence[str], size: int) -> list[str]:
        if size != 1:
            raise ValueError("the naive loop runs one message at a time")
        return [one(t) for t in texts]

    return batch, one, {"precision": "32", "runtime": "torch (naive loop)"}


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) with linear interpolation (statistics.quantiles, inclusive)."""
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def measure(batch: Batch, one: One, texts: list[str], sizes: list[int], reps: int, latency: int, single: int
            ) -> dict[str, Any]:
    """msgs/s (and CPU ms per message, all threads) per batch size and p50/p95 single-message latency (ms), one
    value per repetition; batch size 1 runs over the first `single` messages only. `warmup_s`: the warm-up's wall
    time (where `torch.compile` compiles)."""
    warmup = time.perf_counter()
    for size in sizes:  # warm-up: one batch of every size, and a few single messages
        batch(texts[: max(size, 4)], size)
    for text in texts[:5]:
        one(text)
    warmup_s = time.perf_counter() - warmup
    rate: dict[str, list[float]] = {str(s): [] for s in sizes}
    cpu_ms: dict[str, list[float]] = {str(s): [] for s in sizes}
    labels: list[str] = []
    p50: list[float] = []
    p95: list[float] = []
    for _ in range(reps):
        for size in sizes:
            some = texts if size > 1 else texts[:single]
            start, cpu = time.perf_counter(), time.process_time()
            out = batch(some, size)
            rate[str(size)].append(len(some) / (time.perf_counter() - start))
            cpu_ms[str(size)].append(1000 * (time.process_time() - cpu) / len(some))
            labels = out if len(out) > len(labels) else labels
        times = []
        for text in texts[:latency]:
            start = time.perf_counter()
            one(text)
            times.append(1000 * (time.perf_counter() - start))
        p50.append(percentile(times, 0.5))
        p95.append(percentile(times, 0.95))
    return {"msgs_per_s": rate, "cpu_ms_per_msg": cpu_ms, "latency_ms": {"p50": p50, "p95": p95},
            "labels": labels, "warmup_s": warmup_s}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("variant")
    parser.add_argument("model")
    parser.add_argument("messages", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--single", type=int, default=0, help="messages for batch size 1 (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    texts = json.loads(args.messages.read_text())
    start = time.perf_counter()
    kind, *parts = args.variant.split(":")
    if kind == "predictor":  # predictor:RUNTIME:PRECISION[:compile]
        runtime, precision, *flags = parts
        batch, one, info = load_predictor(args.model, runtime, precision, args.threads, compile="compile" in flags)
    elif kind == "pipeline":  # pipeline[:DTYPE]
        batch, one, info = load_pipeline(args.model, args.max_length, *parts)
    elif args.variant == "naive":
        batch, one, info = load_naive(args.model, args.max_length)
    else:
        raise SystemExit(f"unknown variant {args.variant!r}")
    load_s = time.perf_counter() - start
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    result = measure(batch, one, texts, sizes, args.reps, args.latency, args.single or len(texts))
    args.out.write_text(json.dumps({**result, **info, "load_s": load_s, "messages": len(texts),
                                    "torch_threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
