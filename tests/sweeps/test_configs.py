"""Sweep configs: launchers, the Optuna search space and its resumable storage, the DDP CPU trainer."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.utils import get_class
from omegaconf import OmegaConf

from ..conftest import CONF


def _compose(*overrides: str, hydra: bool = True):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=["paths.output_dir=x", *overrides], return_hydra_config=hydra)


def test_default_launcher_is_basic_and_summary_callback_is_on() -> None:
    cfg = _compose()
    assert cfg.hydra.launcher._target_.endswith("BasicLauncher")
    assert cfg.hydra.callbacks.multirun_summary._target_ == "intentfusion.sweeps.summary.MultirunSummary"
    assert get_class(cfg.hydra.callbacks.multirun_summary._target_).__name__ == "MultirunSummary"


def test_joblib_and_submitit_launchers_compose_and_load() -> None:
    joblib = _compose("hydra/launcher=joblib").hydra.launcher
    assert joblib.n_jobs == 2 and get_class(joblib._target_).__name__ == "JoblibLauncher"
    slurm = _compose(
        "hydra/launcher=submitit_slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=30",
        "hydra.launcher.gpus_per_node=2",
        "hydra.launcher.tasks_per_node=2",
    ).hydra.launcher
    assert (slurm.partition, slurm.timeout_min, slurm.gpus_per_node) == ("gpu", 30, 2)
    assert get_class(slurm._target_).__name__ == "SlurmLauncher"
    assert _compose("hydra/launcher=submitit_slurm").hydra.launcher.gpus_per_node == 1  # one GPU per job


def test_optuna_search_space_and_a_storage_that_survives_reruns() -> None:
    cfg = _compose("hparams_search=optuna")
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.sampler._target_.endswith("TPESampler")
    assert sweeper.direction == "maximize" and cfg.optimized_metric == "best/val/score"
    assert set(sweeper.params) == {
        "hparams.lr",
        "hparams.batch_size",
        "model.head_dropout",
        "phases.layer_decay",
        "model.bilstm.hidden_size",
        "phases.schedule.1.epochs",
    }
    storage = OmegaConf.to_container(cfg.hydra, resolve=False)["sweeper"]["storage"]
    assert "${now:" not in storage and "sweep.dir" not in storage  # the same file on every rerun
    assert storage == "sqlite:///${paths.log_dir}/${task_name}/optuna/${hydra.sweeper.study_name}.db"
    assert sweeper.study_name == "intentfusion_train"


def test_optuna_lora_searches_the_adapters_in_its_own_study() -> None:
    cfg = _compose("hparams_search=optuna_lora")
    params = cfg.hydra.sweeper.params
    assert {"peft.r", "peft.alpha", "peft.dropout", "hparams.lr"} <= set(params) and cfg.peft.method == "lora"
    assert set(_compose("hparams_search=optuna").hydra.sweeper.params) < set(params)  # the rest of optuna's space
    assert cfg.hydra.sweeper.study_name == "intentfusion_train_lora"


def test_phase_two_epochs_override_a_list_element() -> None:
    cfg = _compose("phases.schedule.1.epochs=3", "hparams.epochs=1", hydra=False)
    assert cfg.phases.schedule[1].epochs == 3 and cfg.phases.schedule[1].name == "unfreeze"
    assert cfg.trainer.max_epochs == 1 + 3 + 1 + 1 + 1


def test_ddp_cpu_trainer() -> None:
    trainer = _compose("trainer=ddp_cpu", hydra=False).trainer
    assert (trainer.accelerator, trainer.devices) == ("cpu", 2)
    assert trainer.strategy.process_group_backend == "gloo" and trainer.strategy.find_unused_parameters
    assert trainer.use_distributed_sampler is False  # our batch sampler shards by rank
