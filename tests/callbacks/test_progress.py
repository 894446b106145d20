"""The line progress bar that redirected runs (SLURM, CI, nohup) print instead of the rich bar."""

from __future__ import annotations

import re
import sys
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from torch.utils.data import DataLoader, TensorDataset

from intentfusion.callbacks import progress
from intentfusion.callbacks.progress import LineProgress, format_duration, progress_bar


class Tiny(L.LightningModule):
    """A linear regression that logs `train/loss` per step and `val/score` per validation."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.losses: dict[int, float] = {}  # global step after the batch -> its loss

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.layer(x), y)
        self.log("train/loss", loss, prog_bar=True)
        self.losses[self.global_step + 1] = loss.item()
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/score", 1.0 / (1.0 + torch.nn.functional.mse_loss(self.layer(x), y)))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def loader(n: int) -> DataLoader:
    g = torch.Generator().manual_seed(n)
    return DataLoader(TensorDataset(torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)), batch_size=4)


def fit(bar: LineProgress, *callbacks: L.Callback, **trainer_kwargs) -> Tiny:
    """Two epochs of ten steps each, two validation batches after each and two sanity-check batches first."""
    module = Tiny()
    kwargs = dict(max_epochs=2, num_sanity_val_steps=2, logger=False, enable_checkpointing=False)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, enable_model_summary=False, callbacks=[bar, *callbacks], **kwargs | trainer_kwargs
    )
    trainer.fit(module, loader(40), loader(8))
    return module


def lines(out: str, kind: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"{kind} ")]


@pytest.mark.parametrize("tty", [True, False])
def test_the_factory_picks_the_rich_bar_on_a_terminal_and_the_line_printer_otherwise(monkeypatch, tty):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    bar = progress_bar(every_n_steps=7, refresh_rate=3)
    if tty:
        assert isinstance(bar, RichProgressBar) and bar.refresh_rate == 3
    else:
        assert isinstance(bar, LineProgress) and bar.every_n_steps == 7


def test_a_redirected_run_prints_a_line_every_n_steps_and_one_per_validation(capsys):
    module = fit(LineProgress(every_n_steps=4))
    out = capsys.readouterr().out
    steps, vals = lines(out, "train"), lines(out, "val")

    assert len(steps) == 5  # steps 4, 8, ..., 20
    assert len(vals) == 2  # one per epoch; the sanity check printed none
    for k, line in zip([4, 8, 12, 16, 20], steps, strict=True):
        assert f"| step {k}/20 |" in line
        assert f"| loss {module.losses[k]:.4f} |" in line
        assert re.search(r"\| \d+m\d\ds elapsed, ETA \d+m\d\ds$", line)
        assert "| phase - |" in line
    assert "epoch 1/2" in steps[0] and "epoch 1/2" in steps[1] and "epoch 2/2" in steps[-1]
    assert "val/score -" in steps[0]  # no validation has run yet

    assert "epoch 1/2" in vals[0] and "step 10/20" in vals[0]
    assert "epoch 2/2" in vals[1] and "step 20/20" in vals[1] and "ETA 0m00s" in vals[1]
    for line in vals:
        assert re.search(r"\| val/score 0\.\d{4} \|", line)
    score_after_epoch_1 = re.search(r"val/score (\S+)", vals[0]).group(1)
    assert f"val/score {score_after_epoch_1}" in steps[3]  # step 16, in epoch 2, shows the last validation's score


def test_the_eta_is_the_time_per_step_so_far_times_the_steps_left(capsys, monkeypatch):
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(progress, "time", SimpleNamespace(monotonic=lambda: clock.now))

    class ThreeSecondSteps(L.Callback):
        def on_train_batch_start(self, *args) -> None:
            clock.now += 3.0

    fit(LineProgress(every_n_steps=4), ThreeSecondSteps())
    out = capsys.readouterr().out
    assert lines(out, "train")[0].endswith("| 0m12s elapsed, ETA 0m48s")  # step 4 of 20
    assert lines(out, "val")[0].endswith("| 0m30s elapsed, ETA 0m30s")  # step 10 of 20


def test_the_line_names_the_current_phase_of_a_phased_module(capsys, monkeypatch):
    monkeypatch.setattr(Tiny, "phase_state", SimpleNamespace(phase=SimpleNamespace(name="frozen")), raising=False)
    fit(LineProgress(every_n_steps=2), max_epochs=1, limit_train_batches=2)
    out = capsys.readouterr().out
    assert "| phase frozen |" in lines(out, "train")[0] and "| phase frozen |" in lines(out, "val")[0]


def test_the_sanity_check_prints_nothing(capsys):
    class Spy(L.Callback):
        def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.out = capsys.readouterr().out

    spy = Spy()
    fit(LineProgress(every_n_steps=1), spy, max_epochs=1, limit_train_batches=1)
    assert not lines(spy.out, "train") and not lines(spy.out, "val")
    assert len(lines(capsys.readouterr().out, "val")) == 1  # the bar does print the real validation


def test_a_disabled_bar_prints_nothing(capsys):
    bar = LineProgress(every_n_steps=1)
    bar.disable()
    fit(bar, max_epochs=1, limit_train_batches=2)
    assert not lines(capsys.readouterr().out, "train")
    bar.enable()
    fit(bar, max_epochs=1, limit_train_batches=2)
    assert len(lines(capsys.readouterr().out, "train")) == 2


@pytest.mark.parametrize(("seconds", "text"), [(5, "0m05s"), (65, "1m05s"), (3725, "1h02m05s")])
def test_durations_read_like_1m05s(seconds, text):
    assert format_duration(seconds) == text
