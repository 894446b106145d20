"""`MultiTaskModule`: trains a `MultiTaskNet` (one shared encoder, a head per task) through a phase plan."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric

from intentfusion.errors import CheckpointError
from intentfusion.models.adapters import adapter_parameters, check_same_base
from intentfusion.models.backbone import embeddings, encoder_layers
from intentfusion.models.config import NetConfig
from intentfusion.models.net import MultiTaskNet, upgrade_state_dict
from intentfusion.objectives import ObjectiveInputs, build_objective
from intentfusion.phases.plan import PhasePlan, PhaseScheduler, PhaseState
from intentfusion.tasks import Features


class SplitMetrics(nn.Module):
    """The metrics of one split (or one metric group of it): each task type's collection, built once, and the
    exact match when some task type asks for it (`TaskType.exact_match`)."""

    def __init__(self, heads: nn.ModuleDict) -> None:
        super().__init__()
        self.tasks = nn.ModuleDict({task: head.metrics() for task, head in heads.items()})
        joint = any(head.exact_match for head in heads.values())
        self.exact_match = MeanMetric() if joint else None


class MultiTaskModule(L.LightningModule):
    """The training side of `MultiTaskNet`: phases, losses, metrics, optimizer groups, checkpoints.

    The network (`self.net`) holds every part from `__init__` on, so checkpoints always have the same keys; the
    phase callback only switches parts on and decides what trains (`set_phase`). All parameters are in the
    optimizer from the start, grouped by depth; the `PhaseScheduler` gates each group's LR (0 while frozen).

    ``class_weights`` (``{task: [weight per label]}``, e.g. `MultiTaskDataModule.class_weights`) weight that
    task's loss per class; when it is not given, the weights the datamodule computed (its ``class_weights``
    config) are taken over at `setup` and stored in the hyperparameters (so checkpoints keep them). Batches
    carry ``labels: {task: tensor}``; each head computes its own loss and metrics. Evaluation reports
    ``<split>/<task>/<metric>`` and, for batches with ``groups`` (several sources, or slices),
    ``<split>/<group>/<task>/<metric>`` over the group's examples labelled for the task; with a task type that
    asks for it (token, multilabel) also ``<split>/exact_match``, the share of utterances whose every label
    (intent and every slot) is right (a multilabel task's decided at the thresholds of the epoch before: they
    are chosen on validation at the end of the epoch). Training minimises the phase's objectives
    (`intentfusion.objectives`; default `supervised`: each task's loss, weighted by ``task_weights``).

    With ``peft`` (``{method: lora, r, alpha, dropout, target_modules}``, `intentfusion.models.adapters`) the
    encoder gets adapters before the optimizer is built; its base weights never train nor enter the optimizer,
    the layer groups hold the adapters of their layer, and checkpoints keep only what trains plus the base's
    identity (`base_identity`), checked on load.
    """

    def __init__(
        self,
        backbone: dict[str, Any],
        label_names: dict[str, list[str]],
        optim: dict[str, Any],
        phases: dict[str, Any],
        task_weights: dict[str, float] | None = None,
        head_dropout: float = 0.1,
        bilstm: dict[str, Any] | None = None,
        fusion: dict[str, Any] | None = None,
        cache_dir: str = ".cache",
        class_weights: dict[str, list[float]] | None = None,
        task_types: dict[str, str] | None = None,
        token_head: dict[str, Any] | None = None,
        peft: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # adapters before the optimizer exists (they freeze the base for good), the base's identity before them
        self.net = MultiTaskNet.from_config(NetConfig.from_hparams(self.hparams), cache_dir)
        self.base = self.net.base
        self.label_names = self.net.label_names
        self.tasks = self.net.tasks
        self.task_weights = {t: float((task_weights or {}).get(t, 1.0)) for t in self.tasks}
        self.set_class_weights(class_weights)
        # the encoder parameters a phase may train: the adapters under peft, else all of them
        self._trainable_ids = {id(p) for p in adapter_parameters(self.net.encoder)}
        # depth 0: task parts; 1..L: encoder layers from the top; L+1: embeddings
        self.backbone_groups: list[list[nn.Module]] = [[m] for m in reversed(encoder_layers(self.net.encoder))]
        self.backbone_groups.append([embeddings(self.net.encoder)])
        self.plan = PhasePlan.from_config(
            phases["schedule"],
            optim["epochs"],
            phases.get("layer_decay", 1.0),
            len(self.backbone_groups),
            defaults={"warmup_ratio": optim.get("warmup_ratio", 0.1)},
        )
        self.cache_features_when_frozen = bool(phases.get("cache_features", True))
        # per phase, its objectives and their weights (`intentfusion.objectives`), built once
        self.objectives = [
            [build_objective(spec, f"phases.schedule[{i}].objectives") for spec in phase.objectives]
            for i, phase in enumerate(self.plan.phases)
        ]
        self.phase_state: PhaseState | None = None
        self.feature_cache: torch.Tensor | None = None  # pooled features of the training set, by example index
        # metrics per (split, metric group or None): built once per split the datamodule has (`build_metrics`)
        self.metric_sets: dict[tuple[str, str | None], SplitMetrics] = {}
        self._metric_modules = nn.ModuleList()  # the same collections, registered: they move with the module
        self.confusion: dict[str, dict[str, torch.Tensor]] = {}  # split -> task -> the last epoch's (C, C) matrix

    # ----------------------------------------------------------------------------------------- phases
    @property
    def bilstm_active(self) -> bool:
        return self.net.bilstm_active

    @bilstm_active.setter
    def bilstm_active(self, value: bool) -> None:
        self.net.bilstm_active = bool(value)

    @property
    def fusion_active(self) -> bool:
        return self.net.fusion_active

    @fusion_active.setter
    def fusion_active(self, value: bool) -> None:
        self.net.fusion_active = bool(value)

    @property
    def uses_feature_cache(self) -> bool:
        """Whether the current phase trains on cached pooled features (frozen encoder, no BiLSTM, no head and no
        objective that reads token states)."""
        state = self.phase_state
        return (
            self.cache_features_when_frozen
            and state is not None
            and state.unfrozen_groups == 0
            and not self.bilstm_active
            and not self.net.reads_token_states
            and not any(objective.needs_token_states for objective, _ in self.objectives[state.index])
        )

    def encoder_parameters(self, modules: list[nn.Module] | None = None) -> list[nn.Parameter]:
        """The encoder's parameters that may train (adapters only under peft), of `modules` or of all of it."""
        params = [p for m in modules for p in m.parameters()] if modules is not None else self.net.encoder.parameters()
        return [p for p in params if id(p) in self._trainable_ids]

    def set_phase(self, state: PhaseState) -> None:
        """Apply a phase: trainable backbone groups, eval mode for frozen ones, active parts.

        Only `encoder_parameters()` change `requires_grad`: a peft base stays frozen whatever the phase."""
        self.phase_state = state
        self.bilstm_active, self.fusion_active = state.phase.bilstm, state.phase.fusion
        other = [p for p in self.encoder_parameters() if not self._in_groups(p)]
        for depth, modules in enumerate(self.backbone_groups, start=1):
            for p in self.encoder_parameters(modules):
                p.requires_grad_(depth <= state.unfrozen_groups)
        for p in other:  # parameters outside the layer groups (e.g. a final norm) train with the top group
            p.requires_grad_(state.unfrozen_groups > 0)
        self.net.bilstm.requires_grad_(self.bilstm_active)  # inactive parts are not trainable either
        self.net.fusion.requires_grad_(self.fusion_active)
        if not self.uses_feature_cache:
            self.feature_cache = None
        self.train(self.training)

    def _in_groups(self, param: nn.Parameter) -> bool:
        ids = getattr(self, "_group_param_ids", None)
        if ids is None:
            ids = {id(p) for mods in self.backbone_groups for m in mods for p in m.parameters()}
            self._group_param_ids = ids
        return id(param) in ids

    def train(self, mode: bool = True) -> MultiTaskModule:
        """Like `nn.Module.train`, but frozen backbone groups stay in eval mode (no dropout)."""
        super().train(mode)
        if mode and self.phase_state is not None:
            for depth, modules in enumerate(self.backbone_groups, start=1):
                if depth > self.phase_state.unfrozen_groups:
                    for module in modules:
                        module.eval()
        return self

    # ----------------------------------------------------------------------------------------- forward
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per task (`MultiTaskNet.forward`)."""
        return self.net(input_ids, attention_mask)

    def set_class_weights(self, class_weights: dict[str, list[float]] | None) -> None:
        """Per-class loss weights per task (tasks left out: unweighted); also kept in the hyperparameters."""
        for task, values in (class_weights or {}).items():
            if task not in self.label_names or len(values) != len(self.label_names[task]):
                expected = len(self.label_names.get(task, []))
                raise ValueError(
                    f"class_weights['{task}']: {len(values)} weight(s); expected one per label of a task "
                    f"({expected} for '{task}', tasks: {self.tasks})"
                )
        weights = {t: [float(v) for v in values] for t, values in (class_weights or {}).items()}
        for task, head in self.net.heads.items():
            head.set_class_weight(weights.get(task))
        self.hparams["class_weights"] = weights or None

    @property
    def class_weights(self) -> dict[str, torch.Tensor]:
        """The per-class loss weights of the tasks that have some."""
        return {t: h.class_weight for t, h in self.net.heads.items() if h.class_weight is not None}

    def setup(self, stage: str) -> None:
        """Take over the datamodule's class weights when none were given at construction; build the metrics of
        its evaluation splits and their metric groups."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        computed = getattr(datamodule, "class_weights", None)
        if computed and not self.class_weights:
            self.set_class_weights(computed)
        splits = getattr(datamodule, "splits", None) or {}
        wanted = ["val", *getattr(datamodule, "test_splits", [])]
        self.build_metrics({s: list(splits[s].groups) for s in wanted if s in splits})

    def build_metrics(self, splits: dict[str, list[str]]) -> None:
        """One `SplitMetrics` per split and per metric group of it (``{split: [group, ...]}``), once."""
        for split, groups in splits.items():
            for group in [None, *groups]:
                self._split_metrics(split, group)

    def _split_metrics(self, split: str, group: str | None) -> SplitMetrics:
        key = (split, group)
        if key not in self.metric_sets:  # a split the datamodule did not announce (a module driven by hand)
            metrics = SplitMetrics(self.net.heads).to(self.device)
            self.metric_sets[key] = metrics
            self._metric_modules.append(metrics)
        return self.metric_sets[key]

    def loss(
        self, logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, int]]:
        """(weighted sum of the per-task losses, loss per task, labelled examples per task).

        A task's loss is the sum of its (class-weighted) example losses over the examples labelled for it,
        divided by their number (0 when the batch has none): each head's `loss`.
        """
        total, parts, counts = 0.0, {}, {}
        for task, head in self.net.heads.items():
            summed, count = head.loss(logits[task], labels[task])
            parts[task] = summed / count.clamp(min=1)
            counts[task] = int(count)
            total = total + self.task_weights[task] * parts[task]
        return total, parts, counts

    # ----------------------------------------------------------------------------------------- steps
    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        """The weighted sum of the current phase's objectives (`supervised` by default) on one batch."""
        if self.uses_feature_cache and self.feature_cache is not None:
            features = Features(self.feature_cache[batch["idx"]].to(self.device))
        else:
            features = self.net.encode(batch["input_ids"], batch["attention_mask"])
        inputs = ObjectiveInputs(batch, features, self.net.classify(features))
        objectives = self.objectives[self.phase_state.index] if self.phase_state is not None else self.objectives[0]
        loss = 0.0
        for objective, weight in objectives:
            value, logged = objective(self, inputs)
            loss = loss + weight * value
            if len(objectives) > 1:
                self.log(f"train/{objective.name}/loss", value, batch_size=len(batch["idx"]))
            for name, (part, count) in logged.items():
                self.log(f"train/{name}", part, batch_size=count)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["idx"]))
        return loss

    def _eval_step(self, batch: dict[str, Any]) -> None:
        split = batch["split"]
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss, _, _ = self.loss(logits, batch["labels"])
        self.log(f"{split}/loss", loss, batch_size=batch["input_ids"].shape[0], add_dataloader_idx=False)
        groups = {None: None, **batch.get("groups", {})}  # None: the whole batch
        joint = any(head.exact_match for head in self.net.heads.values())
        labelled, right = {}, {}  # per task and example: labelled for it, entirely right (the exact match)
        for task, head in self.net.heads.items():
            gold = batch["labels"][task]
            labelled[task] = head.labelled(gold)
            if joint:
                right[task] = head.correct(logits[task], gold)
            for group, members in groups.items():
                rows = labelled[task] if members is None else labelled[task] & members
                if bool(rows.any()):  # a split or group without the task's labels (another source's) logs none
                    metrics = self._split_metrics(split, group).tasks[task]
                    metrics.update(*head.metric_inputs(logits[task][rows], gold[rows]))
        if joint:  # joint SLU: all of an utterance's labels right
            complete = torch.stack(list(labelled.values())).all(0)
            all_right = torch.stack(list(right.values())).all(0)
            for group, members in groups.items():
                rows = complete if members is None else complete & members
                if bool(rows.any()):
                    self._split_metrics(split, group).exact_match.update(all_right[rows].float())

    def on_validation_epoch_start(self) -> None:
        self.confusion.pop("val", None)

    def on_test_epoch_start(self) -> None:
        self.confusion.clear()

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch)

    def test_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._eval_step(batch)

    def _log_epoch_metrics(self) -> None:
        """Compute, log and reset every split's metrics as `<split>[/<group>]/<task>/<metric>`; `<split>/score`
        is the mean over tasks of each type's `score_metric` (macro-F1 of a sequence task, span F1 of a token
        task, micro-F1 of a multilabel one). On `val`, each type first makes its validation choices
        (`calibrate`: a multilabel task's thresholds) from the whole split. Non-scalar results (a confusion
        matrix) are kept in `confusion` for the phase artefacts, not logged.

        Group metrics (``<split>/<group>/<task>/...``) are logged too but do not enter the score.
        """
        scores: dict[str, list[float]] = {}
        for (split, group), metrics in sorted(self.metric_sets.items(), key=lambda kv: kv[0][1] is not None):
            prefix = split if group is None else f"{split}/{group}"
            for task, collection in metrics.tasks.items():
                head = self.net.heads[task]
                if not collection[next(iter(collection.keys()))].update_called:
                    continue
                if split == "val" and group is None:
                    head.calibrate(collection)
                for name, value in collection.compute().items():
                    if value.ndim:
                        if group is None:
                            self.confusion.setdefault(split, {})[task] = value.detach().cpu()
                        continue
                    self.log(f"{prefix}/{task}/{name}", value, add_dataloader_idx=False, sync_dist=False)
                    if name == head.score_metric and group is None:
                        scores.setdefault(split, []).append(float(value))
                collection.reset()
            if metrics.exact_match is not None:
                if metrics.exact_match.update_called:
                    self.log(f"{prefix}/exact_match", metrics.exact_match.compute(), add_dataloader_idx=False)
                metrics.exact_match.reset()
        for split, values in scores.items():
            self.log(f"{split}/score", sum(values) / len(values), add_dataloader_idx=False)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics()

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics()

    # ----------------------------------------------------------------------------------------- optim
    def param_groups(self) -> list[dict[str, Any]]:
        """Every parameter, grouped by depth (0 task parts, k backbone group) and by weight decay.

        Biases, norms and gates (`ndim < 2`) get no weight decay. Each group records its `depth`. A peft base's
        frozen weights are left out (its groups hold the adapters; a group without adapters is left out).
        """
        wd = float(self.hparams.optim.get("weight_decay", 0.0))
        by_depth: list[list[nn.Parameter]] = [[] for _ in range(len(self.backbone_groups) + 1)]
        for depth, modules in enumerate(self.backbone_groups, start=1):
            by_depth[depth] = self.encoder_parameters(modules)
        grouped = {id(p) for params in by_depth for p in params}
        by_depth[1] += [p for p in self.encoder_parameters() if id(p) not in grouped]
        by_depth[0] = [p for n, p in self.named_parameters() if not n.startswith("net.encoder.")]
        groups = []
        for depth, params in enumerate(by_depth):
            for decay in (True, False):
                chosen = [p for p in params if (p.ndim >= 2) == decay]
                if chosen:
                    name = "task_parts" if depth == 0 else f"backbone_top{depth}"
                    if depth == len(self.backbone_groups):
                        name = "embeddings"
                    groups.append(
                        {
                            "params": chosen,
                            "weight_decay": wd if decay else 0.0,
                            "depth": depth,
                            "name": name + ("" if decay else "_no_decay"),
                        }
                    )
        return groups

    def parameter_counts(self) -> dict[str, float]:
        """`model/trainable_params` (what the optimizer trains over the plan) and `model/total_params`."""
        trainable = sum(p.numel() for group in self.param_groups() for p in group["params"])
        return {"model/trainable_params": float(trainable),
                "model/total_params": float(sum(p.numel() for p in self.parameters()))}

    def configure_optimizers(self) -> dict[str, Any]:
        lr = float(self.hparams.optim["lr"])
        optimizer = None
        if self._grad_scaler() is None:  # fused: one kernel per step, ~4x faster than foreach on CPU
            try:
                optimizer = torch.optim.AdamW(self.param_groups(), lr=lr, fused=True)
            except RuntimeError:  # a device or dtype without a fused kernel
                pass
        if optimizer is None:  # fp16 with a grad scaler: Lightning cannot unscale a fused optimizer before clipping
            optimizer = torch.optim.AdamW(self.param_groups(), lr=lr, foreach=True)
        # the epoch length is set in `on_train_start`: asking for it here would load the train dataloader
        # before Lightning restores its mid-epoch position from a checkpoint
        scheduler = PhaseScheduler(optimizer, self.plan)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def _grad_scaler(self) -> Any:
        """The trainer's fp16 gradient scaler (None for bf16 / 32-bit, or without a trainer)."""
        return getattr(self._trainer.precision_plugin, "scaler", None) if self._trainer is not None else None

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """Clip a fused optimizer's gradients here: Lightning's mixed-precision plugin refuses to (it would have to
        unscale fp16 gradients first); without a grad scaler there is nothing to unscale. Others: Lightning's."""
        fused = getattr(optimizer, "_step_supports_amp_scaling", False)
        if not gradient_clip_val or not fused or self._grad_scaler() is not None:
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if gradient_clip_algorithm == "value":
            nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            nn.utils.clip_grad_norm_(params, gradient_clip_val)

    def on_train_start(self) -> None:
        steps_per_epoch = math.ceil(self.trainer.num_training_batches / self.trainer.accumulate_grad_batches)
        self.lr_schedulers().set_steps_per_epoch(steps_per_epoch)

    # ----------------------------------------------------------------------------------------- checkpoint
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Our state next to Lightning's; with adapters the frozen base weights are left out (`base` names them)."""
        checkpoint["intentfusion"] = {
            "bilstm_active": self.bilstm_active,
            "fusion_active": self.fusion_active,
            "label_names": self.label_names,
            "net_config": self.net.config.to_dict(),  # what rebuilds the network (`NetConfig`)
            "config": getattr(self, "run_config", None),  # the resolved training config (plain containers)
            "base": self.base,  # peft: {name_or_path, fingerprint} of the frozen base
        }
        if self.base is not None:
            kept = {f"net.{k}" for k in self.net.trained_state_dict()}
            checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in kept}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the active parts, refuse adapters of another base; checkpoints of before the one-network
        refactor get today's key names."""
        state = checkpoint.get("intentfusion", {})
        saved_base = state.get("base")
        if (saved_base is None) != (self.base is None):
            trained, now = ("with", "without") if saved_base is not None else ("without", "with")
            raise CheckpointError("ckpt_path", f"the checkpoint was trained {trained} adapters, this run is {now}",
                                  "the peft setting it was trained with (peft=lora or peft=none)")
        check_same_base(saved_base, self.base, "ckpt_path")
        self.bilstm_active = bool(state.get("bilstm_active", False))
        self.fusion_active = bool(state.get("fusion_active", False))
        if "state_dict" in checkpoint:
            checkpoint["state_dict"] = upgrade_state_dict(checkpoint["state_dict"], prefix="net.")

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """`nn.Module.load_state_dict`; a checkpoint without the frozen base weights (peft) takes this run's."""
        if self.base is not None:
            nets = {k.removeprefix("net."): v for k, v in state_dict.items() if k.startswith("net.")}
            state_dict = {**{f"net.{k}": v for k, v in self.net.with_base_weights(nets).items()}, **state_dict}
        return super().load_state_dict(state_dict, strict=strict, assign=assign)
