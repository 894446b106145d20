"""`trainer=ddp_cpu`: two gloo processes train exactly what one process trains with gradient accumulation 2.

What is compared, and why it is meaningful: our `LengthGroupedBatchSampler` cuts one seeded global order of
batches of `hparams.batch_size` and gives rank r the batches r, r+2, r+4, ... So DDP optimizer step k averages
the gradients of global batches 2k and 2k+1. A single process with the same batch size and
`accumulate_grad_batches=2` sums the gradients of the same two batches, each loss divided by 2: the same
update. The run covers two phases of the five-phase plan (frozen heads on cached features, then progressive
unfreezing of the top two layer groups), driven by `PhaseCallback` in both processes. Dropout is switched off
(heads and a copy of the tiny encoder with zero dropout), because the two set-ups draw their dropout masks from
differently positioned RNG streams. The final weights (`last.ckpt`) must agree to float tolerance, the step
counts must be equal (each rank saw half of the batches), and the weights must have moved far more than the
tolerance (the comparison is not trivially satisfied).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from intentfusion.models.backbone import resolve_backbone
from intentfusion.train import train

from .conftest import ROOT, make_cfg

TOLERANCE = 1e-5  # measured: ~3.5e-7 (reduction order); the top layer moves by ~1e-2


def _tiny_without_dropout(tmp_path: Path, cache_dir: Path) -> Path:
    built = Path(resolve_backbone("builtin:tiny-xlmr", cache_dir))
    copy = tmp_path / "tiny-xlmr-nodropout"
    shutil.copytree(built, copy)
    config = json.loads((copy / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


@pytest.mark.parametrize("peft", ["none", "lora"])
def test_ddp_cpu_matches_single_process_with_gradient_accumulation(peft: str, tmp_path: Path, cache_dir: Path) -> None:
    encoder = _tiny_without_dropout(tmp_path, cache_dir)
    plan = [
        f"backbone.name_or_path={encoder}",
        f"peft={peft}",  # lora: adapters frozen in phase 1 and inactive parts give DDP unused parameters
        *(["peft.dropout=0.0"] if peft == "lora" else []),
        "phases=five",
        "hparams.epochs=1",
        "trainer.max_epochs=2",  # phases 1 (frozen, cached features) and 2 (progressive unfreezing)
        "model.head_dropout=0.0",
        "data.source.n=480",  # 336 training examples: 28 batches of 12, an even number
        "hparams.batch_size=12",
        "hparams.lr=2e-3",
        "trainer.precision=32",
        "test=false",
    ]
    ddp_dir = tmp_path / "ddp"
    cmd = [
        sys.executable,
        str(ROOT / "train.py"),
        "trainer=ddp_cpu",
        *plan,
        f"hydra.run.dir={ddp_dir}",
        f"paths.cache_dir={cache_dir}",
        "logger=none",
        "callbacks.progress_bar=null",
        "trainer.enable_progress_bar=false",
        "+trainer.enable_model_summary=false",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=400, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert "Starting with 2 processes" in result.stdout + result.stderr  # really two gloo ranks

    single_cfg = make_cfg(tmp_path / "single", cache_dir, *plan, "trainer.accumulate_grad_batches=2")
    train(single_cfg)

    ddp = torch.load(ddp_dir / "checkpoints" / "last.ckpt", weights_only=True)
    single = torch.load(tmp_path / "single" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ddp["epoch"] == single["epoch"] == 1
    assert ddp["global_step"] == single["global_step"] == 2 * 14  # 14 steps of 2 x 12 examples per epoch
    assert ddp["state_dict"].keys() == single["state_dict"].keys()
    diff = {k: (ddp["state_dict"][k].float() - v.float()).abs().max().item() for k, v in single["state_dict"].items()}
    worst = max(diff, key=diff.get)
    assert diff[worst] < TOLERANCE, f"{worst}: {diff[worst]}"

    init = load_file(str(encoder / "model.safetensors"))
    if peft == "lora":  # only the adapters of the encoder are saved; B starts at 0
        top = [v for k, v in single["state_dict"].items() if ".layer.3." in k and "lora_B" in k]
        moved = max(v.float().abs().max().item() for v in top)
    else:
        top = [k for k in single["state_dict"] if k.startswith("net.encoder.encoder.layer.3.")]
        moved = max(
            (single["state_dict"][k].float() - init[k.removeprefix("net.encoder.")].float()).abs().max().item()
            for k in top
            if k.removeprefix("net.encoder.") in init
        )
    assert moved > 100 * TOLERANCE  # phase 2 trained the unfrozen top layer in both set-ups
    rows = [json.loads((ddp_dir / "phases" / p / "val_metrics.json").read_text()) for p in ("1_frozen", "2_unfreeze")]
    assert rows[0]["trainable_params"] < rows[1]["trainable_params"]  # the phase callback ran under DDP
