"""Item 6: what this CPU can do (matmul GFLOP/s) and what the model needs (FLOPs per message): a msgs/s bound.

FLOPs per message come from `torch.utils.flop_counter.FlopCounterMode` on a forward of the inference network
(MiniLM encoder + mean pooling + a 151-way intent head) at the mean token length of the CLINC150 test
messages. The counter has no formula for the CPU SDPA kernel (`_scaled_dot_product_flash_attention_for_cpu`),
so the count runs on the eager attention implementation (the same matmuls, as `bmm`); `analytic_flops` is
the closed form it must equal (tested in `tests/bench/test_machine.py`).

The bound: msgs/s <= (matmul GFLOP/s) / (GFLOP per message), with the GFLOP/s of this CPU measured on the
model's own GEMM shapes (tokens of a 32-message batch x 384 x 384 / 1536) and, as the peak, on a big square.
"""

from __future__ import annotations

import math
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from bench.common import Context, Section, figure, ratio

BATCH = 32  # messages per batch the model-shaped GEMMs are sized for (the required ratio's batch size)
SQUARE = 1024  # the big square matmul (the CPU's peak)
NUM_LABELS = 151  # CLINC150 intents + oos as a class
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
COMMAND = "{python} -c 'from bench.common import Context; from bench.machine import run; run(Context(quick={quick}))'"
_CACHE: dict[tuple, dict[str, Any]] = {}


# --------------------------------------------------------------------------------------------- data


def clinc_splits(ctx: Context) -> dict[str, list[str]]:
    """CLINC150 texts per split, oos kept apart (`test` 4,500 in-scope, `test_oos` 1,000, `val`, `val_oos`)."""
    from intentfusion.data.sources import load_clinc150

    data = load_clinc150(str(Path(ctx.data_dir) / "clinc150"), oos="exclude", domain_task=False)
    return {split: [r["text"] for r in records] for split, records in data.items()}


@lru_cache(maxsize=4)
def _tokenizer(path: str) -> Any:
    from intentfusion.models.backbone import load_tokenizer

    return load_tokenizer(path)


def minilm_dir() -> str:
    """The offline all-MiniLM-L6-v2 directory (`conf/backbone/minilm.yaml`)."""
    from intentfusion.models.backbone import minilm_path

    return str(minilm_path())


def token_lengths(texts: list[str], tokenizer_dir: str | None = None, max_length: int = 64) -> list[int]:
    """Tokens per text (special tokens included, capped at `max_length` as the predictor truncates)."""
    ids = _tokenizer(tokenizer_dir or minilm_dir())(texts, truncation=False, verbose=False)["input_ids"]
    return [min(len(row), max_length) for row in ids]


# --------------------------------------------------------------------------------------------- FLOPs


def analytic_flops(config: Any, length: int, num_labels: int) -> int:
    """FLOPs of one message of `length` tokens: 2 x MACs of the linear layers (Q, K, V, O, FFN in and out)
    + attention scores and values (2 x 2 x L^2 x hidden per layer) + the head (2 x hidden x labels)."""
    h, i, n = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return n * (2 * length * (4 * h * h + 2 * h * i) + 4 * length * length * h) + 2 * h * num_labels


def model_flops(config: Any, length: int, num_labels: int) -> int:
    """FLOPs of one forward at batch 1 and `length` tokens, counted by `FlopCounterMode` (eager attention)."""
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModel

    from intentfusion.models.config import NetConfig
    from intentfusion.models.net import MultiTaskNet

    config = type(config).from_dict(config.to_dict())
    config._attn_implementation = "eager"  # the CPU SDPA kernel has no flop formula; eager runs the same matmuls
    net = MultiTaskNet(NetConfig(config.name_or_path, {"intent": [str(k) for k in range(num_labels)]}),
                       AutoModel.from_config(config))
    ids = torch.ones(1, length, dtype=torch.long)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net(ids, torch.ones_like(ids))
    return int(counter.get_total_flops())


def flops_at(config: Any, mean_length: float, num_labels: int) -> float:
    """FLOPs per message at a fractional mean length: linear between the counts at floor and ceil."""
    lo, hi = math.floor(mean_length), math.ceil(mean_length)
    f_lo = model_flops(config, lo, num_labels)
    return float(f_lo) if hi == lo else f_lo + (mean_length - lo) * (model_flops(config, hi, num_labels) - f_lo)


# --------------------------------------------------------------------------------------------- GFLOP/s


def matmul_gflops(m: int, k: int, n: int, dtype: torch.dtype, seconds: float = 0.3, blocks: int = 10) -> float:
    """GFLOP/s of `(m x k) @ (k x n)` in `dtype` at the current torch thread count: the best of `blocks` timed
    blocks taking `seconds` in all (the best block is the least disturbed by other processes on the cores)."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    out = torch.empty(m, n, dtype=dtype)
    start = time.perf_counter()
    torch.matmul(a, b, out=out)  # warm-up (and the kernel choice), timed to size the blocks
    iters = max(1, round(seconds / blocks / (time.perf_counter() - start)))
    best = 0.0
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(iters):
            torch.matmul(a, b, out=out)
        best = max(best, 2 * m * k * n * iters / (time.perf_counter() - start) / 1e9)
    return best


def model_shapes(config: Any, tokens: int) -> dict[str, tuple[int, int, int, int]]:
    """The encoder's GEMMs for `tokens` rows: name -> (m, k, n, how many per layer)."""
    h, i = config.hidden_size, config.intermediate_size
    return {"qkvo": (tokens, h, h, 4), "ffn_in": (tokens, h, i, 1), "ffn_out": (tokens, i, h, 1)}


def flop_bound(ctx: Context) -> dict[str, Any]:
    """Measured GFLOP/s (per dtype: the model's GEMMs, FLOP-weighted; a big square), FLOPs per message and the
    msgs/s bounds; cached per process (the inference section reuses the machine section's measurement)."""
    key = (ctx.quick, ctx.reps, ctx.threads, str(ctx.data_dir))
    if key in _CACHE:
        return _CACHE[key]
    from transformers import AutoConfig

    splits = clinc_splits(ctx)
    texts = splits["test"] + splits["test_oos"]
    lengths = token_lengths(texts)
    mean_len = sum(lengths) / len(lengths)
    config = AutoConfig.from_pretrained(minilm_dir())
    flops = flops_at(config, mean_len, NUM_LABELS)
    tokens = round(BATCH * mean_len)
    shapes = model_shapes(config, tokens)
    seconds = 0.15 if ctx.quick else 0.6
    work = {s: 2 * m * k * n * c for s, (m, k, n, c) in shapes.items()}

    def model_rate(per: dict[str, list[float]], r: int) -> float:  # the GEMM mix: total FLOPs / total time
        return sum(work.values()) / sum(work[s] / per[s][r] for s in shapes)

    threads = torch.get_num_threads()
    rates: dict[str, dict[str, list[float]]] = {}
    try:
        for name, dtype in DTYPES.items():
            per: dict[str, list[float]] = {s: [] for s in [*shapes, "square"]}
            one: dict[str, list[float]] = {s: [] for s in shapes}  # the same GEMMs on one thread
            for _ in range(ctx.reps):
                torch.set_num_threads(ctx.threads)
                for s, (m, k, n, _count) in shapes.items():
                    per[s].append(matmul_gflops(m, k, n, dtype, seconds))
                per["square"].append(matmul_gflops(SQUARE, SQUARE, SQUARE, dtype, seconds))
                if ctx.threads > 1:
                    torch.set_num_threads(1)
                    for s, (m, k, n, _count) in shapes.items():
                        one[s].append(matmul_gflops(m, k, n, dtype, seconds / 2))
            per["model"] = [model_rate(per, r) for r in range(ctx.reps)]
            if ctx.threads > 1:
                per["model_1thread"] = [model_rate(one, r) for r in range(ctx.reps)]
            rates[name] = per
    finally:
        torch.set_num_threads(threads)
    # what the machine does with up to ctx.threads threads: one thread can beat two when other jobs hold a core
    best = {d: [max(vals) for vals in zip(*(rates[d][k] for k in ("model", "model_1thread") if k in rates[d]),
                                           strict=True)] for d in DTYPES}
    result = {
        "mean_tokens": mean_len, "messages": len(texts), "flops_per_message": flops, "tokens_per_gemm": tokens,
        "shapes": {s: list(v[:3]) for s, v in shapes.items()}, "gflops": rates,
        "bound": {d: {"model": [r * 1e9 / flops for r in best[d]],
                      "square": [r * 1e9 / flops for r in rates[d]["square"]]} for d in DTYPES},
        "data": "CLINC150 test (4,500 in-scope) + test_oos (1,000), MiniLM tokenizer, max_length 64",
        "command": COMMAND.format(python=ctx.python, quick=ctx.quick),
        "threads": ctx.threads,
    }
    _CACHE[key] = result
    return result


def bound_figure(bound: dict[str, Any], dtype: str, kind: str = "model") -> dict[str, Any]:
    """The msgs/s bound as a figure (values per repetition of the GFLOP/s measurement)."""
    what = "the model's GEMM shapes, best thread count" if kind == "model" else f"a {SQUARE}^3 matmul"
    return figure(f"machine.bound_msgs_per_s.{dtype}.{kind}", f"FLOP bound on msgs/s ({dtype}, GFLOP/s of {what})",
                  "msgs/s", bound["bound"][dtype][kind], command=bound["command"],
                  model="all-MiniLM-L6-v2 + intent head", data=bound["data"], batch_size=BATCH, max_length=64,
                  threads=bound["threads"], dtype=dtype, gflop_per_message=bound["flops_per_message"] / 1e9)


def run(ctx: Context) -> Section:
    """The machine section: matmul GFLOP/s (float32, bfloat16), FLOPs per message, msgs/s bounds."""
    start = time.perf_counter()
    b = flop_bound(ctx)
    setup = {"command": b["command"], "threads": ctx.threads, "batch_size": BATCH, "max_length": 64}
    figures = []
    for dtype in DTYPES:
        for shape, values in b["gflops"][dtype].items():
            dims = "mix" if shape.startswith("model") else "x".join(map(str, b["shapes"].get(shape, [SQUARE] * 3)))
            fig_setup = {**setup, "threads": 1} if shape == "model_1thread" else setup
            figures.append(figure(f"machine.gflops.{dtype}.{shape}", f"torch.matmul GFLOP/s, {dtype}, {shape} "
                                  f"(m x k x n = {dims})", "GFLOP/s", values, model="torch.matmul",
                                  data="random matrices", dtype=dtype, **fig_setup))
    flop_fig = figure("machine.gflop_per_message", "model GFLOP per message at the mean CLINC150 test length",
                      "GFLOP", [b["flops_per_message"] / 1e9], model="all-MiniLM-L6-v2 + intent head (151)",
                      data=b["data"], mean_tokens=b["mean_tokens"], **setup)
    bounds = [bound_figure(b, d, k) for d in DTYPES for k in ("model", "square")]
    config = {"hidden": 384, "intermediate": 1536, "layers": 6}
    notes = [
        f"Mean tokens per message {b['mean_tokens']:.2f} over {b['messages']} CLINC150 test messages "
        f"(special tokens included); FLOPs per message {b['flops_per_message'] / 1e6:.1f} M "
        f"(FlopCounterMode, eager attention; MiniLM {config}).",
        f"Model-shaped GEMMs have {b['tokens_per_gemm']} rows (= {BATCH} messages x mean length, no padding); "
        "'model' is their FLOP-weighted rate and the basis of the bound (per repetition the better of "
        f"{ctx.threads} threads and 'model_1thread': on a busy machine one thread can beat two); 'square' is the "
        "CPU's peak on a big matmul.",
        "The bound ignores everything but the matmuls (tokenization, softmax, layer norms, GELU, padding): a real "
        "forward reaches a fraction of it.",
        f"Load average when measured: {os.getloadavg()[0]:.2f} (other jobs share the {os.cpu_count()} cores).",
        f"Section wall time {time.perf_counter() - start:.1f} s.",
    ]
    ratios = [ratio("machine.bf16_vs_fp32", "bfloat16 / float32 FLOP bound (the model's GEMMs, best thread count)",
                    bounds[2], bounds[0])]
    return {"title": "Machine: matmul throughput and the FLOP bound", "figures": [*figures, flop_fig, *bounds],
            "ratios": ratios, "notes": notes}
