"""Token-level (BIO) tasks through the datamodule, the network's token head and the training module: subword
labels in batches, no slot loss for examples without slots, span F1 in the score (tiny backbone)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.nn import functional as F

from intentfusion.data.datamodule import MultiTaskDataModule
from intentfusion.models.module import MultiTaskModule
from intentfusion.tasks import Features, TokenTask
from intentfusion.types import IGNORE_INDEX

TINY = "builtin:tiny-xlmr"
CITIES = ["paris", "berlin", "new york", "são paulo"]
TIMES = ["7 pm", "noon", "9:30 tomorrow"]


def _booking(i: int, rng: random.Random) -> dict:
    """`book a table in <city> at <time>` / `cancel my table`, with word-level BIO slots."""
    if i % 3 == 2:
        words, tags = ["cancel", "my", "table", "please"], ["O"] * 4
        return {"text": " ".join(words), "intent": "cancel", "slots": tags}
    city, time = rng.choice(CITIES).split(), rng.choice(TIMES).split()
    words = ["book", "a", "table", "in", *city, "at", *time]
    tags = ["O"] * 4 + ["B-city"] + ["I-city"] * (len(city) - 1) + ["O", "B-time"] + ["I-time"] * (len(time) - 1)
    return {"text": " ".join(words), "intent": "book", "slots": tags}


def _source(n: int = 48, seed: int = 0):
    rng = random.Random(seed)
    return lambda: {s: [_booking(i, rng) for i in range(k)] for s, k in (("train", n), ("val", 12), ("test", 12))}


def _moods():
    """A second source: intent only (no slot annotation at all)."""
    make = lambda n: [{"text": f"please cancel order {i}", "intent": "cancel"} for i in range(n)]  # noqa: E731
    return lambda: {"train": make(16), "val": make(4), "test": make(4)}


def bookings_jsonl(path: Path, n: int = 160) -> Path:
    """A JSONL file of bookings with character-span `entities` (double spaces, accents), as annotation tools
    export them."""
    rng = random.Random(0)
    rows = []
    for i in range(n):
        city, time = rng.choice(["paris", "new york", "são paulo", "berlin"]), rng.choice(["7 pm", "noon"])
        text = f"book a table in {city}  at {time}" if i % 3 else f"cancel my booking {i}"
        spans = [] if i % 3 == 0 else [
            {"start": text.index(city), "end": text.index(city) + len(city), "label": "city"},
            {"start": text.rindex(time), "end": text.rindex(time) + len(time), "label": "time"},
        ]
        rows.append({"text": text, "intent": "book" if i % 3 else "cancel", "entities": spans})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def jsonl_slot_overrides(path: Path) -> list[str]:
    """Overrides that train `tasks=intent_slots` on a `bookings_jsonl` file (tiny backbone, fast)."""
    return ["data=jsonl", f"data.source.train={path}", "tasks=intent_slots",
            "data.source.token_columns={slots: entities}", "data.source.token_format=spans",
            "data.source.label_columns=[intent]", "hparams.lr=3e-3", "hparams.batch_size=16", "trainer.precision=32"]


def _dm(cache_dir: Path, **kw) -> MultiTaskDataModule:
    args = dict(source=_source(), tasks=["intent", "slots"], task_types={"slots": "token"}, backbone=TINY,
                cache_dir=str(cache_dir), batch_size=8, seed=1, test_splits=["test"])
    dm = MultiTaskDataModule(**{**args, **kw})
    dm.setup()
    return dm


def test_token_labels_go_on_the_first_subword_of_each_word_in_every_batch(cache_dir: Path) -> None:
    dm = _dm(cache_dir)
    assert dm.label_names["slots"] == ["O", "B-city", "B-time", "I-city", "I-time"]
    words_seen = 0
    for batch in dm.train_dataloader():
        slots = batch["labels"]["slots"]
        assert slots.shape == batch["input_ids"].shape  # per subword, padded like the ids
        assert (slots[batch["attention_mask"] == 0] == IGNORE_INDEX).all()
        for row, idx in zip(slots, batch["idx"].tolist(), strict=True):
            record_words = dm.splits["train"].texts[idx].split()
            labelled = row[row != IGNORE_INDEX].tolist()
            assert len(labelled) == len(record_words)  # one label per word, none lost to subwords
            words_seen += len(labelled)
    assert words_seen > 48 * 4
    summary = dm.summary()
    assert summary["train"]["truncated_words"] == {"slots": 0}
    assert set(summary["train"]["labels"]["slots"]) == set(dm.label_names["slots"])


def test_truncated_words_are_counted(cache_dir: Path) -> None:
    dm = _dm(cache_dir, max_length=6)
    assert dm.summary()["train"]["truncated_words"]["slots"] > 0


def test_a_tag_count_that_differs_from_the_word_count_is_one_line(cache_dir: Path) -> None:
    def bad():
        splits = _source()()
        splits["val"][3]["slots"] = splits["val"][3]["slots"][:-1]
        return splits

    with pytest.raises(Exception, match=r"split 'val', example 3, task 'slots': \d+ tag\(s\) for \d+ word\(s\)"):
        _dm(cache_dir, source=bad)


def test_a_source_without_slots_adds_no_slot_loss(cache_dir: Path) -> None:
    dm = _dm(cache_dir, source=None, sources={"bookings": _source(), "moods": _moods()})
    module = _module(dm)
    for batch in dm.train_dataloader():
        if (batch["labels"]["slots"] == IGNORE_INDEX).all():  # a batch of the source without slots
            logits = module(batch["input_ids"], batch["attention_mask"])
            _, parts, counts = module.loss(logits, batch["labels"])
            assert counts["slots"] == 0 and float(parts["slots"]) == 0.0 and counts["intent"] > 0
            break
    else:
        pytest.fail("no batch from the source without slots")


def test_token_head_loss_is_cross_entropy_over_the_labelled_positions() -> None:
    head = TokenTask(["O", "B-x", "I-x"], hidden_size=8, dropout=0.0)
    states = torch.randn(2, 5, 8, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([[IGNORE_INDEX, 1, 2, 0, IGNORE_INDEX], [IGNORE_INDEX, 0, IGNORE_INDEX, IGNORE_INDEX, 1]])
    logits = head(Features(states.mean(1), states, torch.ones(2, 5)))
    summed, count = head.loss(logits, target)
    keep = target != IGNORE_INDEX
    assert int(count) == 5
    assert float(summed) == pytest.approx(float(F.cross_entropy(logits[keep], target[keep], reduction="sum")))
    with pytest.raises(ValueError, match="token states"):
        head(Features(states.mean(1)))


def _module(dm: MultiTaskDataModule, phases: str = "full", **kw) -> MultiTaskModule:
    schedule = {"full": [{"name": "full", "epochs": 2, "backbone": "all"}],
                "frozen": [{"name": "frozen", "epochs": 1, "backbone": "none"}]}[phases]
    torch.manual_seed(0)
    return MultiTaskModule(
        backbone={"name_or_path": TINY}, label_names=dm.label_names, task_types=dm.task_types,
        optim={"lr": 2e-3, "epochs": 2, "weight_decay": 0.0}, phases={"schedule": schedule},
        cache_dir=str(dm.cache_dir), fusion={"pairs": [["intent", "slots"]]}, **kw,
    )


def test_training_learns_the_slots_and_the_score_averages_span_f1_with_macro_f1(cache_dir: Path) -> None:
    from intentfusion.phases.callback import PhaseCallback

    dm = _dm(cache_dir)
    module = _module(dm)
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[PhaseCallback()],
                        num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert {"val/slots/f1", "val/slots/precision", "val/slots/recall", "val/slots/token_acc"} <= set(metrics)
    assert metrics["val/score"] == pytest.approx((metrics["val/slots/f1"] + metrics["val/intent/f1_macro"]) / 2)
    assert metrics["val/slots/token_acc"] > 0.5  # the tagging head learned something in 12 steps


def test_the_frozen_phase_turns_the_feature_cache_off_with_a_token_task_and_the_summary_says_so(cache_dir: Path
                                                                                               ) -> None:
    from intentfusion.phases.callback import PhaseCallback

    dm = _dm(cache_dir)
    module = _module(dm, phases="frozen")
    phases = PhaseCallback()
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[phases],
                        num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    assert module.phase_state.unfrozen_groups == 0 and not module.uses_feature_cache
    assert module.feature_cache is None and phases.rows[0]["feature_cache"] == "off (token task)"


def test_crf_decoding_never_emits_an_invalid_bio_sequence() -> None:
    labels = ["O", "B-city", "B-time", "I-city", "I-time"]
    head = TokenTask(labels, hidden_size=8, dropout=0.0, crf=True)
    g = torch.Generator().manual_seed(0)
    logits = 5 * torch.randn(64, 9, len(labels), generator=g)
    logits[..., 3:] += 4.0  # the argmax mostly picks I- tags: invalid almost everywhere
    positions = torch.rand(64, 9, generator=g) > 0.3
    paths = head.predict(logits, positions)
    invalid_argmax = 0
    for row, keep, raw in zip(paths, positions, logits.argmax(-1), strict=True):
        for tags, counter in ((row[keep].tolist(), None), (raw[keep].tolist(), "argmax")):
            prev = "O"
            for t in tags:
                tag = labels[t]
                ok = not tag.startswith("I-") or prev[2:] == tag[2:] and prev != "O"
                if counter is None:
                    assert ok, (tags, [labels[i] for i in tags])
                else:
                    invalid_argmax += not ok
                prev = tag
    assert invalid_argmax > 20  # the test would notice an unconstrained decoder


def test_crf_loss_is_the_negative_log_likelihood_of_the_word_tags() -> None:
    head = TokenTask(["O", "B-x", "I-x"], hidden_size=4, dropout=0.0, crf=True)
    logits = torch.randn(2, 6, 3, generator=torch.Generator().manual_seed(1))
    M = IGNORE_INDEX
    target = torch.tensor([[M, 1, M, 2, 0, M], [M, 0, 1, M, M, M]])
    summed, count = head.loss(logits, target)
    head._constrain()
    expected = -(head.crf(logits[:1, [1, 3, 4]], torch.tensor([[1, 2, 0]])) + head.crf(logits[1:, [1, 2]],
                                                                                         torch.tensor([[0, 1]])))
    assert int(count) == 5 and float(summed) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("options", [{"layer": "bilstm_mlp"}, {"crf": True}, {"layer": "bilstm_mlp", "crf": True}])
def test_other_token_heads_train_and_report_the_exact_match(cache_dir: Path, options: dict) -> None:
    from intentfusion.phases.callback import PhaseCallback

    dm = _dm(cache_dir)
    module = _module(dm, token_head=options)
    trainer = L.Trainer(accelerator="cpu", max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[PhaseCallback()],
                        num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    assert 0.0 <= metrics["val/exact_match"] <= 1.0 and metrics["val/slots/token_acc"] > 0.5


def test_intent_slot_fusion_is_an_exact_no_op_when_switched_on(cache_dir: Path) -> None:
    dm = _dm(cache_dir)
    module = _module(dm).eval()
    assert ("intent", "slots") in module.net.fusion.links and ("slots", "intent") in module.net.fusion.links
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        before = module(batch["input_ids"], batch["attention_mask"])
        module.fusion_active = True
        after = module(batch["input_ids"], batch["attention_mask"])
        for layer in module.net.fusion.maps.values():
            layer.weight.normal_()
        moved = module(batch["input_ids"], batch["attention_mask"])
    for task in before:
        assert torch.equal(before[task], after[task]), task
        assert not torch.allclose(before[task], moved[task]), task  # both directions do something once learned


def test_tags_only_outside_train_are_kept_at_the_end_so_their_spans_count_as_misses(cache_dir: Path) -> None:
    def rare():
        splits = _source()()
        record = splits["test"][0]
        record["text"], record["slots"] = "call ana now", ["O", "B-person", "O"]  # a tag train never has
        return splits

    dm = _dm(cache_dir, source=rare)
    assert dm.label_names["slots"] == ["O", "B-city", "B-time", "I-city", "I-time", "B-person"]
    assert dm.summary()["test"]["labels"]["slots"]["B-person"] == 1


@pytest.mark.parametrize("stop", ["trainer.max_epochs=1", "trainer.max_steps=21"])  # phase boundary; mid phase 2
def test_resume_with_a_token_task_equals_the_uninterrupted_run(cfg_factory, tmp_path: Path, stop: str) -> None:
    from intentfusion.train import train

    data = bookings_jsonl(tmp_path / "bookings.jsonl")
    common = [*jsonl_slot_overrides(data), "phases=five", "hparams.epochs=2", "trainer.deterministic=true",
              "test=false"]
    uninterrupted = cfg_factory(*common, name="whole")
    whole = train(uninterrupted)
    stopped = cfg_factory(*common, stop, name="stopped")
    train(stopped)
    last = Path(stopped.paths.output_dir) / "checkpoints" / "last.ckpt"
    resumed = cfg_factory(*common, f"ckpt_path={last}", name="resumed")
    metrics = train(resumed)
    expected, got = (torch.load(Path(c.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
                     for c in (uninterrupted, resumed))
    assert expected.keys() == got.keys() and any(k.startswith("net.heads.slots.") for k in got)
    for key in expected:
        assert torch.allclose(expected[key], got[key], atol=1e-6), key
    assert metrics["val/slots/f1"] == pytest.approx(whole["val/slots/f1"], abs=1e-6)
