"""Time to a good model (`--full` only): full CLINC150, the HF script's 3-epoch accuracy as the bar.

What a researcher waits for: the training seconds until each tool first reaches the in-scope validation
accuracy that the plain HF `Trainer` script (`bench.hf_trainer`) has after 3 epochs at lr 1e-4, batch 32,
max_length 64 (its first repetition fixes that target). intentfusion runs `RECIPE`, its fastest recipe
chosen on validation (BENCHMARKS.md, "Time to a good model"), and stops at the target. Both validate every
quarter epoch on the full validation split (3,000 in-scope + 100 oos queries; in-scope accuracy: an in-scope
query predicted `oos` counts as wrong) with the clock stopped, and report the in-scope test accuracy of the
weights they stopped with. fp32 and the same thread count for both.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bench.common import Context, Section, figure
from bench.training import MODEL, Plan, Runner, final_accuracy, maybe_figure, maybe_ratio, time_to

PLAN = Plan(train=15_100, val=3_100, warmup=0, timed=0, evals_per_epoch=4, cache_train=0, timeout=3600,
            batch_size=32, max_length=64, lr=1e-4, epochs=3, whole=True)
RECIPE = {"phases": "warm_start", "lr": 2e-4, "epochs": 2}  # chosen on validation: BENCHMARKS.md
IN_SCOPE = "val/in_scope/intent/acc"  # the slice `data.slices.in_scope` (is_oos false) of the intent task


def recipe_overrides(target: float, plan: Plan = PLAN) -> tuple[str, ...]:
    """`train.py` overrides of the recipe runs: the in-scope slice, validation as ``plan`` says, stop at target."""
    return ("+data.slices={in_scope:{is_oos:false}}",
            f"+trainer.val_check_interval={plan.eval_every}", f"+callbacks.bench_probe.metric={IN_SCOPE}",
            f"+callbacks.bench_probe.stop_at={target}")


def run(ctx: Context) -> Section:
    """HF first (its 3-epoch accuracy is the target), then intentfusion's recipe; ``ctx.reps`` times each."""
    section: Section = {"title": "Time to a good model: full CLINC150", "figures": [], "ratios": [], "notes": []}
    if not ctx.full:
        section["notes"].append("skipped: runs with `python -m bench --full` (about 9 min a repetition here)")
        return section
    runner = Runner(ctx, PLAN, name="time_to_model")
    recipe = Runner(ctx, replace(PLAN, lr=RECIPE["lr"]), name="time_to_model")  # batch and length as HF's
    hf_args = ("--eval-every", str(PLAN.eval_every), "--metric", "in_scope_accuracy", "--test")
    runs: dict[str, list[Any]] = {"hf": [runner.hf("hf", 0, "intent", *hf_args)], "if": []}
    target = final_accuracy(runs["hf"][0].result)
    for rep in range(ctx.reps):
        if rep:
            runs["hf"].append(runner.hf("hf", rep, "intent", *hf_args))
        runs["if"].append(recipe.intentfusion("if", rep, *recipe_overrides(target), phases=RECIPE["phases"],
                                              epochs=RECIPE["epochs"], test=True))
    setup = dict(model=MODEL, data=PLAN.data(), max_length=PLAN.max_length, threads=ctx.threads,
                 precision="32-true (fp32)", target_val_in_scope_acc=round(target, 4), eval_every_steps=PLAN.eval_every)
    what = {"hf": f"HF Trainer, lr {PLAN.lr}, batch {PLAN.batch_size}, {PLAN.epochs} epochs",
            "if": f"intentfusion phases={RECIPE['phases']}, lr {RECIPE['lr']}, batch {PLAN.batch_size}, "
                  f"1 + {RECIPE['epochs']} epochs"}
    figs = {key: maybe_figure(
        f"ttm_{key}", f"time to in-scope val accuracy {target:.4f}: {what[key]}", "s",
        [time_to(r.result, target) for r in runs[key]], command=runs[key][0].command, cap="its epochs",
        batch_size=PLAN.batch_size, last_val_acc=[round(r.result["points"][-1]["acc"], 4) for r in runs[key]],
        process_wall_s=[round(r.wall_s, 1) for r in runs[key]], **setup) for key in runs}
    tests = {
        "hf": [r.result["info"]["test_acc"] for r in runs["hf"]],
        "if": [r.result["test"]["test/in_scope/intent/acc"] for r in runs["if"]],
    }
    test_figs = [figure(f"ttm_test_{key}", f"in-scope test accuracy of the final weights: {what[key]}", "acc",
                        tests[key], command=runs[key][0].command, batch_size=PLAN.batch_size, **setup)
                 for key in runs]
    section["figures"] += [*figs.values(), *test_figs]
    section["ratios"].append(maybe_ratio("ttm", "time to a good model, full CLINC150: HF Trainer / intentfusion",
                                         figs["hf"], figs["if"], target=2.0))
    curves = {key: [(p["step"], round(p["t"], 1), round(p["acc"], 4)) for p in runs[key][0].result["points"]]
              for key in runs}
    section["notes"] += [
        f"Target = the in-scope val accuracy of the HF script at the end of epoch {PLAN.epochs} of its first "
        f"repetition ({target:.4f}). Time = training clock (validation, process start, model loading and "
        "tokenization excluded for both; process_wall_s has the rest) at the first validation at or above it; "
        "the recipe's heads-only epoch encodes the training set once inside that clock.",
        "Validation curves of the first repetition (step, training s, in-scope val acc): "
        + "; ".join(f"{key}: {curve}" for key, curve in curves.items()),
    ]
    return section
