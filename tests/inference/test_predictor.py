"""`Predictor` on the session's tiny checkpoint: the test-time predictions, input order, calibrated confidences,
fallbacks, and every kind of bad input a user can send."""

from __future__ import annotations

import json
import random
import re
import shutil
import warnings
from contextlib import nullcontext
from pathlib import Path

import hydra
import pytest
import torch

from intentfusion.data.batching import pad_batch
from intentfusion.errors import CheckpointNotFoundError
from intentfusion.evaluation.suite import collect_outputs
from intentfusion.inference import CONTROL_CHARS, EMPTY, TRUNCATED, Predictor
from intentfusion.models.module import MultiTaskModule
from intentfusion.models.net import MultiTaskNet

ODD = ["hi", "WHERE IS MY ORDER??? 😡😡", "¿dónde está mi pedido? 我的订单 где мой заказ", "refund pls " * 30, "x"]


def best_checkpoint(tiny_run) -> Path:
    out, _ = tiny_run
    return Path(json.loads((out / "metrics.json").read_text())["checkpoint"])


def active_parts_checkpoint(src: Path, dst: Path) -> Path:
    """A copy of `src` whose BiLSTM branch and label fusion are switched on with non-zero weights (a trained
    BiLSTM gate and fusion maps start at zero, which would hide any mistake in those parts)."""
    checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    generator = torch.Generator().manual_seed(0)
    state = checkpoint["state_dict"]
    for key in [k for k in state if k == "net.bilstm.gate" or k.startswith("net.fusion.")]:
        state[key] = 0.5 * torch.randn(state[key].shape, generator=generator)
    checkpoint["intentfusion"].update(bilstm_active=True, fusion_active=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, dst)
    return dst


def lightning_outputs(ckpt: Path, split: str) -> tuple[list[str], dict[str, torch.Tensor], MultiTaskModule]:
    """Texts and logits of a split exactly as evaluate.py computes them (Lightning module + data module)."""
    model = MultiTaskModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    config = torch.load(ckpt, map_location="cpu", weights_only=True)["intentfusion"]["config"]
    datamodule = hydra.utils.instantiate(config["data"], label_names=model.label_names)
    datamodule.setup("test")
    outputs = collect_outputs(model, datamodule._loader(split, train=False), nullcontext)
    return datamodule.splits[split].texts, outputs["logits"], model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and lose a lot to them on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ckpt(tiny_run) -> Path:
    return best_checkpoint(tiny_run)


@pytest.fixture(scope="module")
def predictor(ckpt) -> Predictor:
    return Predictor.from_checkpoint(ckpt)


def labels_of(results: list[dict]) -> list[dict[str, str]]:
    return [{t: p["label"] for t, p in r["predictions"].items()} for r in results]


# ================================================================================= fidelity
@pytest.mark.parametrize("split", ["test", "test_noisy"])
def test_predictions_equal_the_test_time_predictions(predictor, ckpt, split) -> None:
    texts, logits, model = lightning_outputs(ckpt, split)
    results = predictor.predict(texts)
    for task, names in model.label_names.items():
        expected = [names[i] for i in logits[task].argmax(-1).tolist()]
        assert [r["predictions"][task]["label"] for r in results] == expected
    mine = predictor.logits(texts)
    for task in model.label_names:
        torch.testing.assert_close(mine[task], logits[task], atol=1e-5, rtol=0)
    assert predictor.max_length == 128  # read from the checkpoint's stored data config


def test_active_bilstm_and_fusion_match_the_lightning_module(ckpt, tmp_path) -> None:
    active = active_parts_checkpoint(ckpt, tmp_path / "active.ckpt")
    texts, logits, model = lightning_outputs(active, "test")
    assert model.bilstm_active and model.fusion_active
    mine = Predictor.from_checkpoint(active).logits(texts)
    plain = Predictor.from_checkpoint(ckpt).logits(texts)
    for task in model.label_names:
        torch.testing.assert_close(mine[task], logits[task], atol=1e-5, rtol=0)
    assert any((mine[t] - plain[t]).abs().max() > 1e-2 for t in model.label_names)  # the parts do something


def test_the_predictor_runs_the_training_modules_network_on_the_same_batch(predictor, ckpt) -> None:
    model = MultiTaskModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    assert type(predictor.runner.net) is type(model.net) is MultiTaskNet  # one network definition
    input_ids, mask = pad_batch(predictor.tokenize(ODD[:4] + ["where is my order?"])[0], predictor.pad_id)
    with torch.inference_mode():
        expected = model(input_ids, mask)
    got = predictor.runner(input_ids, mask)
    for task in model.label_names:
        torch.testing.assert_close(got[task], expected[task], atol=1e-6, rtol=0)


def legacy_checkpoint(src: Path, dst: Path) -> Path:
    """A copy of `src` as written before the one-network refactor: key names `encoder.*`, `heads.<t>.1.*`, and
    no `net_config` (the network is rebuilt from the module's hyperparameters)."""
    checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    del checkpoint["intentfusion"]["net_config"]
    checkpoint["state_dict"] = {
        re.sub(r"^(heads\.[^.]+)\.linear\.", r"\1.1.", k.removeprefix("net.")): v
        for k, v in checkpoint["state_dict"].items()
    }
    torch.save(checkpoint, dst)
    return dst


def test_checkpoints_with_the_old_key_names_still_load(predictor, ckpt, tmp_path) -> None:
    old = legacy_checkpoint(ckpt, tmp_path / "old.ckpt")
    keys = torch.load(old, map_location="cpu", weights_only=True)["state_dict"].keys()
    assert "heads.intent.1.weight" in keys and not any(k.startswith("net.") for k in keys)
    module = MultiTaskModule.load_from_checkpoint(old, map_location="cpu", weights_only=True)
    current = MultiTaskModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    for key, value in current.state_dict().items():
        assert torch.equal(module.state_dict()[key], value), key
    texts = [*ODD, "where is my order?"]
    mine, expected = Predictor.from_checkpoint(old).logits(texts), predictor.logits(texts)
    for task in predictor.tasks:
        assert torch.equal(mine[task], expected[task])


def test_results_come_back_in_input_order(predictor, ckpt) -> None:
    texts = [*ODD, *(f"my order {i} " * (i % 7 + 1) for i in range(20))]
    random.Random(0).shuffle(texts)
    small = Predictor.from_checkpoint(ckpt, batch_size=3)  # many batches, each sorted by length
    batched = small.predict(texts)
    one_by_one = [predictor.predict_one(t) for t in texts]
    assert labels_of(batched) == labels_of(one_by_one)
    for a, b in zip(batched, one_by_one, strict=True):
        for task in predictor.tasks:
            assert a["predictions"][task]["confidence"] == pytest.approx(b["predictions"][task]["confidence"],
                                                                         abs=1e-5)
    assert labels_of(small.predict(texts[::-1])) == labels_of(batched)[::-1]
    assert predictor.predict([]) == []


# ================================================================================= calibration, fallbacks
def test_confidence_uses_the_temperatures_next_to_the_checkpoint(ckpt, predictor, tmp_path) -> None:
    copy = tmp_path / "run" / ckpt.name
    copy.parent.mkdir()
    shutil.copy(ckpt, copy)
    (copy.parent / "temperatures.json").write_text(json.dumps({"intent": 2.5, "action": 0.5}))
    calibrated = Predictor.from_checkpoint(copy)
    texts = ODD
    logits = predictor.logits(texts)
    results = calibrated.predict(texts, return_distribution=True)
    for i, result in enumerate(results):
        for task, temperature in (("intent", 2.5), ("action", 0.5), ("urgency", 1.0)):
            probs = (logits[task][i] / temperature).softmax(-1)
            entry = result["predictions"][task]
            assert entry["label"] == predictor.label_names[task][int(logits[task][i].argmax())]
            assert entry["confidence"] == pytest.approx(float(probs.max()), abs=1e-6)
            assert list(entry["distribution"]) == predictor.label_names[task]
            assert sum(entry["distribution"].values()) == pytest.approx(1.0, abs=1e-5)


def test_threshold_fallbacks_are_flagged(ckpt) -> None:
    always = Predictor.from_checkpoint(ckpt, fallbacks={"action": {"threshold": 1.0, "fallback": "request_more_info"}})
    never = Predictor.from_checkpoint(ckpt, fallbacks={"action": {"threshold": 0.0, "fallback": "request_more_info"}})
    for result, plain in zip(always.predict(ODD), never.predict(ODD), strict=True):
        action = result["predictions"]["action"]
        assert action["fallback"] is True and action["label"] == "request_more_info"
        assert action["model_label"] == plain["predictions"]["action"]["label"]
        kept = plain["predictions"]["action"]
        assert kept["fallback"] is False and "model_label" not in kept
        assert "fallback" not in result["predictions"]["intent"]  # only tasks with a rule carry the flag
    for bad, message in [
        ({"nope": {"threshold": 0.5, "fallback": "x"}}, "unknown task 'nope'"),
        ({"action": {"threshold": 1.5, "fallback": "x"}}, "threshold must be a number in"),
        ({"action": {"threshold": 0.5}}, "must be {'threshold'"),
        ({"action": {"threshold": 0.5, "fallback": ""}}, "non-empty label"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("{", r"\{")):
            Predictor.from_checkpoint(ckpt, fallbacks=bad)


# ================================================================================= what users send
def test_empty_and_whitespace_only_texts_have_a_defined_flagged_output(predictor, ckpt) -> None:
    results = predictor.predict(["", "   ", "\n\t ", "ok", "\x00\x07"], return_distribution=True)
    for i in (0, 1, 2, 4):
        assert EMPTY in results[i]["flags"]
        assert all(p == {"label": None, "confidence": 0.0, "distribution": None}
                   for p in results[i]["predictions"].values())
    assert results[3]["flags"] == [] and results[3]["predictions"]["intent"]["label"] in predictor.label_names["intent"]
    assert CONTROL_CHARS in results[4]["flags"]
    rule = {"action": {"threshold": 0.5, "fallback": "request_more_info"}}
    fallback = Predictor.from_checkpoint(ckpt, fallbacks=rule)
    action = fallback.predict_one(" ")["predictions"]["action"]
    assert action == {"label": "request_more_info", "confidence": 0.0, "fallback": True}


def test_very_long_messages_are_cut_before_tokenizing_and_flagged(predictor) -> None:
    long = "my parcel never arrived and nobody answers " * 2500  # ~110k characters
    result = predictor.predict_one(long)
    assert TRUNCATED in result["flags"]
    # the model saw the first max_length tokens, exactly as for a text cut at max_chars
    assert result["predictions"] == predictor.predict_one(long[: predictor.max_chars])["predictions"]
    ids, truncated = predictor.tokenize([long])
    assert len(ids[0]) == predictor.max_length and truncated == [True]
    assert ids[0][-1] == predictor.tokenizer.eos_token_id  # truncation keeps the closing special token
    # a long run of whitespace is not cut away from the words after it
    padded = " " * 100_000 + "I want a refund"
    result = predictor.predict_one(padded)
    assert TRUNCATED not in result["flags"] and EMPTY not in result["flags"]
    assert result["predictions"] == predictor.predict_one("I want a refund")["predictions"]
    # just over the token budget, short in characters: truncated too
    assert TRUNCATED in predictor.predict_one("refund " * 200)["flags"]


def test_emoji_mixed_scripts_and_control_characters(predictor) -> None:
    texts = [
        "😀🔥👍🏽👨‍👩‍👧",
        "¿dónde está mi pedido? 我的订单 где мой заказ مرحبا",
        "wo ist mein paket",
        "\ud800 lone surrogate",
    ]
    results = predictor.predict(texts)
    assert [r["flags"] for r in results[:3]] == [[], [], []]
    assert results[3]["flags"] == [CONTROL_CHARS]
    for result in results:
        for task, p in result["predictions"].items():
            assert p["label"] in predictor.label_names[task] and 0 < p["confidence"] <= 1
    dirty = predictor.predict_one("where\x00 is my\x1b order\x7f\u0085")
    assert dirty["flags"] == [CONTROL_CHARS]
    assert dirty["predictions"] == predictor.predict_one("where is my order\u0085")["predictions"]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        ("just one string", "use predict_one"),
        (["fine", None], r"texts\[1\] is NoneType, expected str"),
        (["a", "b", 3], r"texts\[2\] is int, expected str"),
        ([b"bytes"], r"texts\[0\] is bytes"),
        (42, "got int"),
    ],
)
def test_non_strings_raise_a_type_error_naming_the_index(predictor, texts, message) -> None:
    with pytest.raises(TypeError, match=message):
        predictor.predict(texts)


def test_predict_one_rejects_non_strings(predictor) -> None:
    with pytest.raises(TypeError, match="text is list, expected str"):
        predictor.predict_one(["a"])


def test_bf16_on_a_cpu_that_emulates_it_warns(ckpt, monkeypatch) -> None:
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": False})
    with pytest.warns(UserWarning, match="Predictor precision=bf16: this CPU has no native bf16"):
        predictor = Predictor.from_checkpoint(ckpt, precision="bf16")
    assert predictor.info["precision"] == "bf16"


def bf16_checkpoint(src: Path, dst: Path) -> Path:
    """A copy of `src` that says it was trained with `trainer.precision=bf16-mixed`."""
    checkpoint = torch.load(src, map_location="cpu", weights_only=True)
    checkpoint["intentfusion"]["config"]["trainer"]["precision"] = "bf16-mixed"
    torch.save(checkpoint, dst)
    return dst


def test_auto_precision_serves_a_bf16_run_in_fp32_where_bf16_is_emulated(ckpt, tmp_path, monkeypatch) -> None:
    bf16 = bf16_checkpoint(ckpt, tmp_path / "bf16.ckpt")
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": False, "amx_bf16": False})
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*native bf16")  # nothing to warn about: auto chose fp32
        emulated = Predictor.from_checkpoint(bf16)
    assert emulated.info["precision"] == "32" and emulated.runner.autocast is None
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True, "amx_bf16": False})
    native = Predictor.from_checkpoint(bf16)
    assert native.info["precision"] == "bf16-mixed" and native.runner.autocast is torch.bfloat16


def test_compiled_predictor_gives_the_eager_logits(predictor, ckpt) -> None:
    texts = ["where is my order", "CANCEL MY ACCOUNT NOW 😡", "hola, no puedo entrar en mi cuenta", "refund " * 9]
    compiled = Predictor.from_checkpoint(ckpt, compile=True, batch_size=2)
    assert compiled.info["compiled"] and not predictor.info["compiled"]
    eager = predictor.logits(texts)
    for batch in (texts, texts[:1]):  # batches of several, then of one (a second graph)
        mine = compiled.logits(batch)
        for task in predictor.tasks:
            torch.testing.assert_close(mine[task], eager[task][: len(batch)], atol=1e-4, rtol=1e-4)
    assert labels_of(compiled.predict(texts)) == labels_of(predictor.predict(texts))


def test_the_calibration_is_an_explicit_input_and_the_predictor_says_which(ckpt, predictor, tmp_path) -> None:
    copy = tmp_path / "run" / ckpt.name
    copy.parent.mkdir()
    shutil.copy(ckpt, copy)
    plain = Predictor.from_checkpoint(copy)  # no temperatures.json beside it yet
    assert plain.info["calibration"].startswith("none (no ") and plain.temperatures["intent"] == 1.0
    (copy.parent / "temperatures.json").write_text(json.dumps({"intent": 2.5}))
    beside = Predictor.from_checkpoint(copy)
    assert beside.info["calibration"] == str(copy.parent / "temperatures.json") and beside.temperatures["intent"] == 2.5
    off = Predictor.from_checkpoint(copy, temperatures=None)
    assert off.info["calibration"].startswith("none") and off.temperatures["intent"] == 1.0
    given = Predictor.from_checkpoint(copy, temperatures={"intent": 0.5, "unknown": 3.0})
    assert given.info["calibration"] == "given" and given.temperatures["intent"] == 0.5
    logits = predictor.logits(["where is my order"])["intent"][0]
    confidence = off.predict_one("where is my order")["predictions"]["intent"]["confidence"]
    assert confidence == pytest.approx(float(logits.softmax(-1).max()), abs=1e-6)
    with pytest.raises(CheckpointNotFoundError, match="temperatures=nope.json"):
        Predictor.from_checkpoint(copy, temperatures="nope.json")
