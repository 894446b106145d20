"""Items 5 and 7: the inference `Predictor` against `transformers.pipeline` and a naive loop, on one exported
MiniLM model and the same CLINC150 messages; msgs/s per batch size, single-message latency, peak RSS.

The model (made once, reused from `ctx.work_dir/inference`): a MiniLM checkpoint trained 20 steps on CLINC150
intents (speed does not depend on accuracy), exported with ONNX, fused ONNX and int8 of both; then a
`BertForSequenceClassification` built from the export's encoder (see `build_pipeline_model` for what differs)
for the pipeline and the loop.
Every variant runs in its own child process (`bench.infer_child`), with the same threads and messages.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shlex
import time
from pathlib import Path
from typing import Any

from bench.common import ChildRun, Context, Section, figure, ratio, run_child
from bench.machine import bound_figure, clinc_splits, flop_bound, token_lengths
from intentfusion.inference.runtimes import RUNTIMES
from intentfusion.utils.hardware import runs_bf16_natively

TRAIN = ["backbone=minilm", "data=clinc150", "tasks=intent_only", "phases=full", "trainer.max_steps=20",
         "trainer.num_sanity_val_steps=0", "logger=none", "test=false", "evaluate=false",
         "callbacks.progress_bar=null"]
MODEL = "MiniLM-L6 CLINC150-intent export (20 training steps)"
SIZES = [1, 8, 32, 128]
FULL = {"messages": 10_000, "latency": 300}
QUICK = {"messages": 200, "latency": 100}
POOLING = ("BertForSequenceClassification with the export's encoder and intent head; it pools tanh(dense([CLS] "
           "state)) with all-MiniLM-L6-v2's pretrained pooler where the predictor mean-pools (same FLOPs up to one "
           "384x384 matmul per message; labels differ)")


# --------------------------------------------------------------------------------------------- the model


def prepare(ctx: Context, log: Any = print) -> dict[str, Any]:
    """Checkpoint -> export (ONNX, fused, int8 of both) -> pipeline model, each made only when missing (or older
    than what it is made from); their paths, and in `steps` how each was made (commands, or that it was reused)."""
    root = Path(ctx.work_dir) / "inference"
    train_dir, export_dir, hf_dir = root / "train", root / "export", root / "hf-pipeline"
    train_cmd = [ctx.python, "train.py", *TRAIN, f"hydra.run.dir={train_dir}"]
    steps = {"train": f"{' '.join(train_cmd[1:])} (reused)", "export": f"export of {export_dir} (reused)",
             "pipeline_model": f"{hf_dir} (reused)"}

    def checkpoints() -> list[Path]:
        return sorted((train_dir / "checkpoints").glob("*.ckpt"), key=lambda p: p.stat().st_mtime)

    files = ("intentfusion.json", *(r.file for r in RUNTIMES.values() if r.file))
    if not all((export_dir / f).is_file() for f in files):
        if not checkpoints():
            log("[bench.inference] training a MiniLM checkpoint (20 steps) ...")
            run = run_child(train_cmd, ctx)
            steps["train"] = f"{shlex.join(run.args[1:])} ({run.seconds:.0f} s)"
            if not checkpoints():
                raise RuntimeError(f"{run.command} wrote no checkpoint under {train_dir}/checkpoints")
        log("[bench.inference] exporting it (ONNX, fused, int8) ...")
        # the parity check / int8 delta run on test_oos (1,000 texts) rather than the 5,500 of test: one minute
        run = run_child([ctx.python, "-m", "intentfusion.export", f"ckpt_path={checkpoints()[-1]}",
                         f"out={export_dir}", "onnx=true", "quantize=true", "fuse=true", "eval_split=test_oos",
                         "overwrite=true"],
                        ctx)
        steps["export"] = f"{shlex.join(run.args[1:])} ({run.seconds:.0f} s)"
    made = (export_dir / "intentfusion.json").stat().st_mtime
    if not (hf_dir / "config.json").is_file() or (hf_dir / "config.json").stat().st_mtime < made:
        log("[bench.inference] building the pipeline model ...")
        steps["pipeline_model"] = build_pipeline_model(export_dir, hf_dir)["note"]
    config = json.loads((export_dir / "intentfusion.json").read_text())
    if steps["export"].endswith("(reused)"):
        steps["export"] = (f"-m intentfusion.export ckpt_path={config.get('source_checkpoint')} out={export_dir} "
                           "onnx=true quantize=true fuse=true eval_split=test_oos (reused)")
    return {"export": export_dir, "hf": hf_dir, "config": config, "steps": steps,
            **{name: (export_dir / r.file).is_file() for name, r in RUNTIMES.items() if r.file}}


def build_pipeline_model(export_dir: Path, out: Path, task: str = "intent") -> dict[str, Any]:
    """A `BertForSequenceClassification` with the export's encoder and `task` head, saved to `out`.

    Differs from the predictor's network in the pooling only: intentfusion mean-pools the token states (and has
    no pooler), BERT classifies `tanh(dense(state of [CLS]))`; the pooler gets all-MiniLM-L6-v2's pretrained
    pooler weights (never fine-tuned here). Same encoder weights, same head weights, same FLOPs up to one
    384 x 384 matmul per message; the labels can differ (the parent reports the agreement).
    """
    import torch
    from safetensors.torch import load_file
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from bench.machine import minilm_dir

    encoder = export_dir / "encoder"
    config = BertConfig.from_pretrained(encoder)
    if config.model_type != "bert":
        raise ValueError(f"{encoder}: a {config.model_type} encoder; the pipeline baseline is built for BERT")
    labels = json.loads((export_dir / "labels.json").read_text())[task]
    config.num_labels = len(labels)
    config.id2label, config.label2id = dict(enumerate(labels)), {n: i for i, n in enumerate(labels)}
    model = BertForSequenceClassification(config).eval()
    encoder_state = load_file(str(next(encoder.glob("*.safetensors"))))
    result = model.bert.load_state_dict(encoder_state, strict=False)
    if [k for k in result.missing_keys if not k.startswith("pooler.")] or result.unexpected_keys:
        raise ValueError(f"{encoder}: encoder weights do not fit BertModel: {result}")
    heads = load_file(str(export_dir / "heads.safetensors"))
    with torch.no_grad():
        model.classifier.weight.copy_(heads[f"heads.{task}.linear.weight"])
        model.classifier.bias.copy_(heads[f"heads.{task}.linear.bias"])
    pooler = "random (seeded) pooler"
    source = Path(minilm_dir()) / "model.safetensors"
    if source.is_file() and config.hidden_size == 384:
        pretrained = load_file(str(source))
        with torch.no_grad():
            model.bert.pooler.dense.weight.copy_(pretrained["pooler.dense.weight"])
            model.bert.pooler.dense.bias.copy_(pretrained["pooler.dense.bias"])
        pooler = "all-MiniLM-L6-v2's pretrained pooler"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(out)
    note = (f"BertForSequenceClassification at {out}: encoder and {task} head copied from the export, {pooler}; "
            "CLS pooler + tanh instead of the predictor's mean pooling")
    (out / "BENCH_NOTE.txt").write_text(note + "\n")
    return {"path": out, "note": note}


# --------------------------------------------------------------------------------------------- data


def messages(ctx: Context, n: int) -> tuple[list[str], str]:
    """`n` CLINC150 messages: test (4,500) + test_oos (1,000) + val (3,000) + val_oos (100), shuffled (seed 0),
    cycled past 8,600 (10,000: 1,400 repeats); with a short description of what they are."""
    splits = clinc_splits(ctx)
    pool = splits["test"] + splits["test_oos"] + splits["val"] + splits["val_oos"]
    random.Random(0).shuffle(pool)
    texts = [pool[i % len(pool)] for i in range(n)]
    cycled = f", cycled: {n - len(pool)} repeats" if n > len(pool) else ""
    return texts, f"{n} CLINC150 messages (seeded shuffle of test+test_oos+val+val_oos, {len(pool)} unique{cycled})"


# --------------------------------------------------------------------------------------------- measuring


def variants(prep: dict[str, Any]) -> list[dict[str, Any]]:
    """What is compared: key, child variant, model directory, batch sizes, and a description."""
    export, hf = str(prep["export"]), str(prep["hf"])
    precision = str(prep["config"].get("precision", "32"))
    out = [{"key": "predictor_fp32", "variant": "predictor:torch:32", "model": export, "sizes": SIZES,
            "what": "Predictor.from_export(runtime='torch', precision='32')"},
           {"key": "predictor_compiled", "variant": "predictor:torch:32:compile", "model": export, "sizes": SIZES,
            "what": "Predictor.from_export(runtime='torch', precision='32', compile=True) (compiled in the warm-up)"}]
    if not precision.startswith("32"):
        out.append({"key": "predictor_default", "variant": "predictor:torch:auto", "model": export, "sizes": SIZES,
                    "what": f"Predictor.from_export() defaults (precision='auto'; exported as {precision!r})"})
    if importlib.util.find_spec("onnxruntime") is not None:
        onnx = [("predictor_onnx", "onnx", "onnxruntime, fp32"),
                ("predictor_int8", "onnx-int8", "dynamic int8 weights"),
                ("predictor_onnx_fused", "onnx-fused", "onnxruntime transformer fusions, fp32"),
                ("predictor_int8_fused", "onnx-int8-fused", "transformer fusions, dynamic int8 weights")]
        out += [{"key": key, "variant": f"predictor:{runtime}:32", "model": export, "sizes": SIZES,
                 "what": f"Predictor.from_export(runtime='{runtime}') ({what})"}
                for key, runtime, what in onnx if prep[runtime]]
    if runs_bf16_natively("cpu"):  # bf16 is worth serving here: both tools in bf16 too
        out += [{"key": "predictor_bf16", "variant": "predictor:torch:bf16", "model": export, "sizes": SIZES,
                 "what": "Predictor.from_export(runtime='torch', precision='bf16') (bf16 autocast)"},
                {"key": "pipeline_bf16", "variant": "pipeline:bfloat16", "model": hf, "sizes": SIZES,
                 "what": "transformers.pipeline('text-classification', dtype=bfloat16), truncation=True, max_length"}]
    out += [{"key": "pipeline", "variant": "pipeline", "model": hf, "sizes": SIZES,
             "what": "transformers.pipeline('text-classification', dtype=float32), truncation=True, max_length"},
            {"key": "naive", "variant": "naive", "model": hf, "sizes": [1],
             "what": "naive loop: tokenizer(text) -> model(**inputs) -> softmax -> argmax, one message at a time"}]
    return out


def measure_all(ctx: Context, prep: dict[str, Any], texts_file: Path, plan: dict[str, Any], log: Any = print
                ) -> tuple[dict[str, list[ChildRun]], dict[str, str]]:
    """Every variant `ctx.reps` times, one fresh child process each, round-robin (noise spreads evenly).
    Returns the runs per variant and, for variants whose child failed (then dropped), the error's tail."""
    max_length = int(prep["config"]["max_length"])
    runs: dict[str, list[ChildRun]] = {}
    failed: dict[str, str] = {}
    for rep in range(ctx.reps):
        for v in variants(prep):
            if v["key"] in failed:
                continue
            out = Path(ctx.work_dir) / "inference" / f"result-{v['key']}.json"
            args = [ctx.python, "-m", "bench.infer_child", v["variant"], v["model"], texts_file, out,
                    "--batch-sizes", ",".join(map(str, v["sizes"])), "--reps", "1", "--latency", plan["latency"],
                    "--single", plan["single"], "--threads", ctx.threads, "--max-length", max_length]
            log(f"[bench.inference] rep {rep + 1}/{ctx.reps}: {v['key']}")
            try:
                runs.setdefault(v["key"], []).append(run_child(args, ctx, result_file=out, timeout=3600))
            except RuntimeError as e:
                failed[v["key"]] = " ".join(str(e).split())[-400:]
                runs.pop(v["key"], None)
    return runs, failed


def agreement(a: list[str], b: list[str]) -> str:
    """Share of identical labels on the common prefix of two label lists, e.g. "97.5% of 200"."""
    n = min(len(a), len(b))
    return f"{sum(x == y for x, y in zip(a[:n], b[:n], strict=True)) / n:.1%} of {n}" if n else "n/a"


def run(ctx: Context) -> Section:
    """The inference section (items 5 and 7): msgs/s, latency and peak RSS of every variant, and the ratios."""
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    prep = prepare(ctx)
    plan = QUICK if ctx.quick else FULL
    plan = {**plan, "single": min(plan["messages"], 2_000)}
    texts, data = messages(ctx, plan["messages"])
    texts_file = Path(ctx.work_dir) / "inference" / f"messages-{len(texts)}.json"
    texts_file.write_text(json.dumps(texts))
    lengths = token_lengths(texts, str(prep["export"] / "encoder"), int(prep["config"]["max_length"]))
    runs, failed = measure_all(ctx, prep, texts_file, plan)
    bound = flop_bound(ctx)
    max_length = int(prep["config"]["max_length"])
    figures: dict[str, dict[str, Any]] = {}
    env = f"OMP_NUM_THREADS={ctx.threads} MKL_NUM_THREADS={ctx.threads} TOKENIZERS_PARALLELISM=false"
    for v in [v for v in variants(prep) if v["key"] in runs]:
        results = [r.result for r in runs[v["key"]]]
        common = {"command": f"{env} {shlex.join(runs[v['key']][0].args)}", "model": f"{MODEL}; {v['what']}",
                  "max_length": max_length, "threads": ctx.threads, "precision": results[0]["precision"],
                  "runtime": results[0]["runtime"]}
        for size in v["sizes"]:
            n = plan["single"] if size == 1 else len(texts)
            figures[f"{v['key']}.b{size}"] = figure(
                f"inference.{v['key']}.msgs_per_s.b{size}", f"{v['key']}: msgs/s at batch size {size}", "msgs/s",
                [r["msgs_per_s"][str(size)][0] for r in results], data=data if n == len(texts) else
                f"the first {n} of the {data}", batch_size=size,
                cpu_ms_per_msg=sum(r["cpu_ms_per_msg"][str(size)][0] for r in results) / len(results), **common)
        for q in ("p50", "p95"):
            figures[f"{v['key']}.{q}"] = figure(
                f"inference.{v['key']}.latency_{q}", f"{v['key']}: {q} latency of one message", "ms",
                [r["latency_ms"][q][0] for r in results], data=f"the first {plan['latency']} of the {data}",
                batch_size=1, **common)
        figures[f"{v['key']}.rss"] = figure(
            f"inference.{v['key']}.peak_rss", f"{v['key']}: peak RSS of the child process (imports, model, all "
            "measurements)", "MB", [r.peak_rss_mb for r in runs[v["key"]]], data=data, batch_size=max(v["sizes"]),
            **common)
        figures[f"{v['key']}.load"] = figure(
            f"inference.{v['key']}.load_s", f"{v['key']}: model load time in the child", "s",
            [r["load_s"] for r in results], data="-", batch_size=None, **common)
        if v["variant"].endswith(":compile"):
            figures[f"{v['key']}.warmup"] = figure(
                f"inference.{v['key']}.warmup_s", f"{v['key']}: warm-up wall time (torch.compile: every batch "
                "size, then single messages)", "s", [r["warmup_s"] for r in results], data="-", batch_size=None,
                **common)
    for dtype in ("float32", "bfloat16"):
        figures[f"bound.{dtype}"] = {**bound_figure(bound, dtype), "id": f"inference.flop_bound.{dtype}"}
    ratios = make_ratios(figures)
    labels = {k: runs[k][0].result["labels"] for k in runs}
    ref = labels.get("predictor_fp32", [])
    notes = [
        f"Model: {MODEL}; export {prep['export']} (precision {prep['config'].get('precision')!r}, max_length "
        f"{max_length}); pipeline/naive model {prep['hf']}: {POOLING}.",
        f"Messages: {data}; mean {sum(lengths) / len(lengths):.2f} tokens (max {max(lengths)}); batch size 1 "
        f"throughput over the first {plan['single']}, latency over the first {plan['latency']}.",
        "Every figure: one fresh child process per repetition (variants interleaved), warm-up first, "
        f"{ctx.threads} torch/onnxruntime intra-op threads; fp32 everywhere except predictor_int8*, the *_bf16 "
        "variants (only on a CPU with native bf16) and predictor_default (`precision='auto'`: the export's own, "
        "or fp32 where bf16 is only emulated: "
        f"{runs['predictor_default'][0].result['precision'] if 'predictor_default' in runs else '-'} here). "
        "cpu_ms_per_msg: CPU time of all threads per message.",
        "Identical intent labels vs predictor_fp32: " + ", ".join(
            f"{k} {agreement(ref, labels[k])}" for k in labels if k != "predictor_fp32")
        + f"; naive vs pipeline {agreement(labels.get('pipeline', []), labels.get('naive', []))} (same model). "
        "The model was "
        "trained 20 steps, so its logits are near ties: label agreement across precisions is a weak signal.",
        f"The FLOP bound (machine section): {bound['flops_per_message'] / 1e6:.0f} MFLOP per message at "
        f"{bound['mean_tokens']:.2f} tokens, GFLOP/s measured on the model's GEMM shapes at batch 32.",
        f"Load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after (other jobs share the "
        f"{os.cpu_count()} cores: absolute numbers are noisy, compare ratios). With more than one thread on a busy "
        "machine, torch's OpenMP threads spin-wait for each other (cpu_ms_per_msg balloons; onnxruntime is "
        f"immune): OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset (active)')} here, PASSIVE avoids it.",
        *[f"model, {k}: {v}" for k, v in prep["steps"].items()],
        *[f"FAILED (left out): {k}: {why}" for k, why in failed.items()],
        f"Section wall time {time.perf_counter() - start:.0f} s.",
    ]
    return {"title": "Inference: Predictor vs transformers pipeline vs naive loop (CLINC150, MiniLM)",
            "figures": list(figures.values()), "ratios": ratios, "notes": notes}


def make_ratios(f: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The section's ratios, for the variants that ran."""
    fp32 = "predictor (torch fp32)"
    wanted = [("inference.predictor_vs_pipeline.b32", f"{fp32} / pipeline msgs/s at batch 32", "predictor_fp32.b32",
               "pipeline.b32", 2.0),
              ("inference.predictor_compiled_vs_pipeline.b32", "predictor (torch fp32, compile=True) / pipeline "
               "msgs/s at batch 32", "predictor_compiled.b32", "pipeline.b32", 2.0)]
    wanted += [("inference.predictor_bf16_vs_pipeline_bf16.b32", "predictor (torch bf16 autocast) / pipeline (bf16 "
                "weights) msgs/s at batch 32", "predictor_bf16.b32", "pipeline_bf16.b32", 2.0)]
    wanted += [("inference.predictor_int8_fused_vs_pipeline.b32", "predictor_int8_fused / pipeline msgs/s at batch 32",
                "predictor_int8_fused.b32", "pipeline.b32", 3.0),
               ("inference.predictor_onnx_fused_vs_pipeline.b32", "predictor_onnx_fused / pipeline msgs/s at batch 32",
                "predictor_onnx_fused.b32", "pipeline.b32", 2.0)]
    wanted += [(f"inference.{key}_vs_pipeline.b32", f"{key} / pipeline msgs/s at batch 32", f"{key}.b32",
                "pipeline.b32", None)
               for key in ("predictor_onnx", "predictor_int8", "predictor_default", "predictor_bf16")]
    wanted += [(f"inference.predictor_vs_pipeline.b{size}", f"{fp32} / pipeline msgs/s at batch {size}",
                f"predictor_fp32.b{size}", f"pipeline.b{size}", None) for size in (1, 8, 128)]
    wanted += [
        ("inference.predictor_b32_vs_naive", f"{fp32} at batch 32 / naive loop msgs/s", "predictor_fp32.b32",
         "naive.b1", None),
        ("inference.pipeline_vs_predictor.p50", "single-message p50 latency: pipeline / predictor (torch fp32; > 1: "
         "predictor faster)", "pipeline.p50", "predictor_fp32.p50", None),
        ("inference.predictor_fp32_of_bound.b32", f"{fp32} msgs/s at batch 32 / FLOP bound (float32)",
         "predictor_fp32.b32", "bound.float32", None),
        ("inference.predictor_compiled_of_bound.b32", "predictor (torch fp32, compile=True) msgs/s at batch 32 / "
         "FLOP bound (float32)", "predictor_compiled.b32", "bound.float32", None),
        ("inference.predictor_bf16_of_bound.b32", "predictor (torch bf16 autocast) msgs/s at batch 32 / FLOP bound "
         "(bfloat16)", "predictor_bf16.b32", "bound.bfloat16", None),
        ("inference.predictor_rss_vs_pipeline", f"peak RSS: {fp32} / pipeline", "predictor_fp32.rss",
         "pipeline.rss", None),
    ]
    return [ratio(key, what, f[num], f[den], target=target) for key, what, num, den, target in wanted
            if num in f and den in f]
