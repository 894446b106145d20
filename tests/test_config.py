"""`resolve_trainer_precision`: `trainer.precision=auto` becomes what the CPU runs natively before a
`Trainer` is built or the config recorded (train and evaluate); a value Lightning does not take is a `ConfigError`.
The data configs share one base (`conf/data/_datamodule.yaml`) and declare every datamodule key they set."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from lightning.pytorch.plugins.precision import MixedPrecision, Precision

from intentfusion.config import resolve_trainer_precision
from intentfusion.errors import ConfigError

from .utils.test_hardware import cpu_with


class Recorded(Exception):
    """Stops a run at the step under test."""


@pytest.mark.parametrize(
    ("capabilities", "expected", "line"),
    [({"amx_bf16": True}, "bf16-mixed", "auto -> bf16-mixed (AMX-BF16)"),
     ({"avx512_bf16": True}, "bf16-mixed", "auto -> bf16-mixed (AVX512-BF16)"),
     ({}, "32-true", "auto -> 32-true (no AVX512-BF16/AMX on this CPU)")],
)
def test_auto_on_the_cpu_trainer_resolves_to_what_the_cpu_runs_natively(
    cfg_factory, monkeypatch, capsys, capabilities: dict, expected: str, line: str
) -> None:
    cfg = cfg_factory("trainer.precision=auto")
    assert cfg.trainer.accelerator == "cpu"  # conf/trainer/cpu.yaml
    cpu_with(monkeypatch, **capabilities)
    assert resolve_trainer_precision(cfg.trainer) == expected
    assert cfg.trainer.precision == expected
    assert f"[intentfusion] trainer.precision: {line}" in capsys.readouterr().out

    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.precision == expected
    assert type(trainer.precision_plugin) is (MixedPrecision if expected == "bf16-mixed" else Precision)


@pytest.mark.parametrize("explicit", ["32-true", "bf16-mixed", 32])
def test_an_explicit_precision_is_kept_and_not_announced(cfg_factory, monkeypatch, capsys, explicit) -> None:
    cfg = cfg_factory(f"trainer.precision={explicit}")
    cpu_with(monkeypatch, amx_bf16=True)
    assert resolve_trainer_precision(cfg.trainer) == explicit and cfg.trainer.precision == explicit
    assert "trainer.precision" not in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["bogus", "bf17-mixed", "true"])
def test_a_precision_lightning_does_not_take_is_a_config_error(cfg_factory, bad: str) -> None:
    cfg = cfg_factory(f"trainer.precision={bad}")
    with pytest.raises(ConfigError, match=r"^trainer\.precision: .* is not a precision; expected auto or one of "
                                          r".*32-true.*bf16-mixed"):
        resolve_trainer_precision(cfg.trainer)


def test_train_records_the_resolved_precision(cfg_factory, monkeypatch) -> None:
    """What `train` writes into the run dir (and the checkpoint's `run_config`) carries the resolved value."""
    import intentfusion.train as train_module

    def record(cfg, out_dir=None) -> None:
        raise Recorded(cfg.trainer.precision)

    cpu_with(monkeypatch, avx512_bf16=True)
    monkeypatch.setattr(train_module, "print_config_tree", record)
    with pytest.raises(Recorded, match="^bf16-mixed$"):
        train_module.train(cfg_factory("trainer.precision=auto"))


def test_evaluate_resolves_auto_before_it_builds_a_trainer(cfg_factory, tmp_path, monkeypatch) -> None:
    import intentfusion.evaluate as evaluate_module

    cfg = cfg_factory(f"ckpt_path={tmp_path / 'run.ckpt'}", "trainer.precision=auto", config="evaluate")

    def load(ckpt) -> None:
        raise Recorded(cfg.trainer.precision)

    cpu_with(monkeypatch)
    monkeypatch.setattr(evaluate_module, "load_run_config", load)
    with pytest.raises(Recorded, match="^32-true$"):
        evaluate_module.evaluate_checkpoint(cfg, tmp_path / "run.ckpt", tmp_path / "eval", [])


DATA_CONFIGS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "data").glob("*.yaml")
                      if not p.stem.startswith("_"))


@pytest.mark.parametrize("data", DATA_CONFIGS)
def test_every_data_config_shares_the_datamodule_keys_and_declares_what_the_readme_documents(cfg_factory,
                                                                                           data: str) -> None:
    import inspect

    from intentfusion.data.datamodule import MultiTaskDataModule

    text = (Path(__file__).resolve().parents[1] / "conf" / "data" / f"{data}.yaml").read_text()
    assert "  - _datamodule" in text and "eval_batch_size" not in text  # the shared keys live in _datamodule.yaml
    cfg = cfg_factory(f"data={data}").data
    accepted = set(inspect.signature(MultiTaskDataModule).parameters)
    declared = {k for k in cfg if not k.startswith("_")}
    assert declared <= accepted, declared - accepted
    assert {"label_all_subwords", "slice_by", "class_weights", "weighted_sampling", "test_splits"} <= declared
