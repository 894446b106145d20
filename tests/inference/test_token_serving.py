"""Serving token tasks: `TokenTask.decode` (word tags -> character-offset entities), the Predictor's
`"entities"`, the export (heads, task types, ONNX with dynamic batch x sequence, parity on token logits and
entities), the predict CLI's JSON lines and the demo app. A tiny bookings model trained for a few seconds."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import lightning as L
import pytest
import torch

from intentfusion.data.alignment import subword_to_word, word_spans
from intentfusion.data.batching import pad_batch
from intentfusion.data.encoding import encode_texts
from intentfusion.data.slots import bio_to_spans
from intentfusion.export import export
from intentfusion.inference import Predictor
from intentfusion.inference.export import accuracy
from intentfusion.inference.text import sanitize
from intentfusion.models.module import MultiTaskModule
from intentfusion.tasks import TextContext, TokenTask
from tests.models.test_token_tasks import TINY, _dm

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
EPOCHS = 6
LABELS = ["O", "B-city", "B-time", "I-city", "I-time"]
ODD = [
    "book a table in  paris at 7 pm",  # double space
    "Book a table in São Paulo, at noon!",  # accents, punctuation glued to words
    "  book a table in new york\tat 9:30 tomorrow  ",  # leading / trailing blanks, a tab
    "book a table in berlin 😀 at noon",
    "book a table in paris\x00 at 7 pm",  # a control character: removed before tokenizing
    "",
    "   ",
    "cancel my table please",
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model, busy machine
    yield
    torch.set_num_threads(threads)


def _train(cache_dir: Path, ckpt: Path, token_head: dict | None = None):
    """(datamodule, the trained module in eval mode, its checkpoint): `EPOCHS` epochs of 48 bookings, ~2 s."""
    from intentfusion.phases.callback import PhaseCallback

    dm = _dm(cache_dir)
    torch.manual_seed(0)
    module = MultiTaskModule(  # as tests/models/test_token_tasks.py's `_module`, trained long enough to tag
        backbone={"name_or_path": TINY}, label_names=dm.label_names, task_types=dm.task_types,
        optim={"lr": 3e-3, "epochs": EPOCHS, "weight_decay": 0.0}, token_head=token_head,
        phases={"schedule": [{"name": "full", "epochs": EPOCHS, "backbone": "all"}]}, cache_dir=str(dm.cache_dir),
    )
    trainer = L.Trainer(accelerator="cpu", max_epochs=EPOCHS, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[PhaseCallback()],
                        num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    module.run_config = {"data": {"max_length": dm.max_length}}  # what `Predictor.from_checkpoint` reads
    trainer.save_checkpoint(ckpt)
    return dm, module.eval(), ckpt


@pytest.fixture(scope="module")
def trained(cache_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    return _train(cache_dir, tmp_path_factory.mktemp("token_ckpt") / "slots.ckpt")


@pytest.fixture(scope="module")
def predictor(trained) -> Predictor:
    return Predictor.from_checkpoint(trained[2])


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("token_export") / "model"
    return out, export(trained[2], out, onnx=HAS_ONNX, log=lambda *_: None)


def _decode(module, ids: list[int], offsets, text: str) -> list[dict]:
    """Evaluation-side decoding of one text: the training module's own logits through `decode_text`."""
    input_ids, mask = pad_batch([ids], 1)
    with torch.no_grad():
        logits = module(input_ids, mask)["slots"][0]
    spans = word_spans(text)
    context = TextContext(text, spans, subword_to_word(offsets, spans))
    return module.net.heads["slots"].decode([logits], [context])[0]


def _spans(result: dict) -> list[tuple]:
    return [(e["label"], e["start"], e["end"], e["text"]) for e in result["entities"]["slots"]]


# ------------------------------------------------------------------------------------------ decode
def test_decode_groups_the_first_subword_tags_as_bio_to_spans_does() -> None:
    head = TokenTask(LABELS, hidden_size=4)
    text = "fly  to new york, at 7 pm rome"
    spans = word_spans(text)  # fly to new york, at 7 pm rome
    tags = ["O", "O", "B-city", "I-city", "O", "I-time", "I-time", "I-city"]  # orphan I-time, type switch
    words: list[int | None] = [None]
    for w in range(len(spans)):
        words += [w, w]  # two subwords a word; the second one's logits must not matter
    words.append(None)
    logits = torch.full((len(words), len(LABELS)), -4.0)
    for position, w in enumerate(words):
        if w is not None:
            first = words.index(w) == position
            logits[position, LABELS.index(tags[w]) if first else 0] = 4.0 if first else 9.0
    logits[words.index(3), LABELS.index("O")] = 3.5  # `york`: I-city, but less sure
    entities = head.decode([logits], [TextContext(text, spans, words)], 2.0)[0]
    expected = bio_to_spans(text, tags, repair=True)
    expected[0]["end"] -= 1  # the comma glued to `york` is no part of the city
    assert [{k: e[k] for k in ("label", "start", "end")} for e in entities] == expected
    assert [e["text"] for e in entities] == ["new york", "7 pm", "rome"]
    assert all(text[e["start"] : e["end"]] == e["text"] for e in entities)
    probs = (logits / 2.0).softmax(-1)
    york, new = probs[words.index(3), LABELS.index("I-city")], probs[words.index(2), LABELS.index("B-city")]
    assert entities[0]["confidence"] == pytest.approx(float(min(york, new)))  # the least sure word
    # words without a subword (cut by truncation) are in no entity
    assert head.decode([logits[:5]], [TextContext(text, spans, words[:5])])[0] == []


def test_decode_with_a_crf_uses_its_viterbi_path() -> None:
    head = TokenTask(LABELS, hidden_size=4, crf=True).eval()
    text = "paris at noon"
    spans = word_spans(text)
    words = [None, 0, 1, 2, None]
    logits = torch.randn(5, len(LABELS), generator=torch.Generator().manual_seed(3))
    logits[1, LABELS.index("I-city")] = 6.0  # an argmax I-city at the start: the CRF may not start with I-
    positions = torch.tensor([[False, True, True, True, False]])
    tags = [LABELS[i] for i in head.predict(logits[None], positions)[0, 1:4].tolist()]
    expected = bio_to_spans(text, tags)  # a valid BIO sequence: no repair needed
    entities = head.decode([logits], [TextContext(text, spans, words)])[0]
    assert [{k: e[k] for k in ("label", "start", "end")} for e in entities] == expected


# ------------------------------------------------------------------------------------------ the Predictor
def test_predictor_entities_equal_the_modules_own_decoding_on_the_test_split(trained, predictor) -> None:
    dm, module, _ = trained
    test = dm.splits["test"]
    encoded = encode_texts(dm.tokenizer, list(test.texts), dm.max_length, offsets=True)
    assert encoded.ids == [row.tolist() for row in test.input_ids]  # the tokenization the test split was built with
    expected = []
    for batch in dm.test_dataloader()[0]:  # the module's logits on the datamodule's own (padded) test batches
        with torch.no_grad():
            logits = module(batch["input_ids"], batch["attention_mask"])["slots"]
        for row, i in zip(logits, batch["idx"].tolist(), strict=True):
            text, ids = test.texts[i], test.input_ids[i]
            spans = word_spans(text)
            words = subword_to_word(encoded.offsets[i], spans)
            decoded = module.net.heads["slots"].decode([row[: len(ids)]], [TextContext(text, spans, words)])[0]
            expected.append((i, decoded))
    results = predictor.predict(test.texts)
    mine = [results[i]["entities"]["slots"] for i, _ in expected]
    theirs = [entities for _, entities in expected]
    assert [[(e["label"], e["start"], e["end"]) for e in r] for r in mine] == [
        [(e["label"], e["start"], e["end"]) for e in r] for r in theirs]
    for a, b in zip(mine, theirs, strict=True):
        assert [e["confidence"] for e in a] == pytest.approx([e["confidence"] for e in b], abs=1e-5)
    assert sum(len(r) for r in mine) >= 6  # the model tags cities and times: the comparison is not vacuous
    assert set(results[0]) == {"predictions", "entities", "flags"} and set(results[0]["predictions"]) == {"intent"}


def test_entities_are_character_spans_of_the_text_as_sent(trained, predictor) -> None:
    dm, module, _ = trained
    results = predictor.predict(ODD)
    for text, result in zip(ODD, results, strict=True):
        for entity in result["entities"]["slots"]:
            assert text[entity["start"] : entity["end"]] == entity["text"], (text, entity)
            assert set(entity) == {"label", "text", "start", "end", "confidence"} and 0 < entity["confidence"] <= 1
        clean = sanitize(text)[0]
        if not clean.strip():
            assert result["entities"] == {"slots": []} and "empty" in result["flags"]
            continue
        encoded = encode_texts(dm.tokenizer, [clean], dm.max_length, offsets=True)
        expected = _decode(module, encoded.ids[0], encoded.offsets[0], clean)
        if clean == text:
            assert _spans(result) == [(e["label"], e["start"], e["end"], e["text"]) for e in expected]
        else:  # found in the cleaned text, mapped back: the same words, the removed character inside the span
            assert [e["text"].replace("\x00", "") for e in result["entities"]["slots"]] == [e["text"] for e in expected]
            assert "control_characters_removed" in result["flags"]
    assert any(result["entities"]["slots"] for result in results[:4])
    assert [e["label"] for e in predictor.predict_one("book a table in paris at noon")["entities"]["slots"]] == [
        "city", "time"]
    assert predictor.predict([]) == []


def test_logits_of_a_token_task_are_per_text_real_positions(predictor) -> None:
    texts = ["book a table in paris at 7 pm", "cancel", ""]
    logits = predictor.logits(texts)
    ids, _ = predictor.tokenize(texts)
    assert logits["intent"].shape == (3, 2)
    assert [tuple(row.shape) for row in logits["slots"]] == [(len(i), len(LABELS)) for i in ids]
    alone = predictor.logits(texts[1:2])["slots"][0]  # no padding effect
    torch.testing.assert_close(alone, logits["slots"][1], atol=1e-5, rtol=0)


def test_a_fallback_on_a_token_task_is_refused(trained) -> None:
    with pytest.raises(ValueError, match="have no single label"):
        Predictor.from_checkpoint(trained[2], fallbacks={"slots": {"threshold": 0.5, "fallback": "O"}})


def test_token_accuracy_of_the_export_check_matches_the_modules(trained, predictor) -> None:
    dm, module, _ = trained
    test = dm.splits["test"]
    got = accuracy(predictor.logits(test.texts), test.labels, module.net.heads)
    right = total = 0
    for batch in dm.test_dataloader()[0]:
        with torch.no_grad():
            pred = module(batch["input_ids"], batch["attention_mask"])["slots"].argmax(-1)
        gold = batch["labels"]["slots"]
        keep = gold != -100
        right, total = right + int((pred[keep] == gold[keep]).sum()), total + int(keep.sum())
    assert got["slots"] == pytest.approx(right / total)


# ------------------------------------------------------------------------------------------ export / ONNX
def test_export_carries_the_token_head_and_gives_the_same_entities(trained, predictor, exported) -> None:
    out, report = exported
    config = json.loads((out / "intentfusion.json").read_text())
    assert config["net"]["task_types"] == {"intent": "sequence", "slots": "token"}
    from safetensors import safe_open

    with safe_open(str(out / "heads.safetensors"), "pt") as f:
        assert {"heads.slots.linear.weight", "heads.slots.linear.bias"} <= set(f.keys())
    reference = predictor.predict(ODD)
    assert [_spans(r) for r in Predictor.from_export(out).predict(ODD)] == [_spans(r) for r in reference]
    if not HAS_ONNX:
        pytest.skip("onnx / onnxruntime / onnxscript not installed")
    parity = report["onnx"]["parity"]
    assert parity["tasks"]["slots"]["max_abs_diff"] < 1e-4 and parity["tasks"]["slots"]["label_agreement"] == 1.0
    assert parity["entity_agreement"] == 1.0 and parity["tasks"]["slots"]["entity_agreement"] == 1.0
    onnx = Predictor.from_export(out, runtime="onnx").predict(ODD)  # batch and sequence lengths of its own
    assert [_spans(r) for r in onnx] == [_spans(r) for r in reference]
    for a, b in zip(onnx, reference, strict=True):
        assert [e["confidence"] for e in a["entities"]["slots"]] == pytest.approx(
            [e["confidence"] for e in b["entities"]["slots"]], abs=1e-4)
    import onnx as onnx_lib

    graph = onnx_lib.load(str(out / "model.onnx")).graph
    dims = {o.name: [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim] for o in graph.output}
    assert isinstance(dims["slots"][0], str) and isinstance(dims["slots"][1], str)  # dynamic batch, sequence
    assert dims["slots"][2] == len(LABELS) and isinstance(dims["intent"][0], str)
    assert "identical entities" in (out / "README.md").read_text()


@pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime / onnxscript not installed")
def test_the_legacy_exporter_gives_token_outputs_dynamic_sequence_axes(trained, tmp_path) -> None:
    report = export(trained[2], tmp_path / "legacy", onnx=True, exporter="legacy", log=lambda *_: None)
    assert report["onnx"]["parity"]["entity_agreement"] == 1.0
    assert report["onnx"]["parity"]["tasks"]["slots"]["max_abs_diff"] < 1e-4


@pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime / onnxscript not installed")
def test_a_crf_head_decodes_the_same_entities_in_every_runtime(cache_dir: Path, tmp_path: Path) -> None:
    dm, module, ckpt = _train(cache_dir, tmp_path / "crf.ckpt", token_head={"crf": True})
    reference = Predictor.from_checkpoint(ckpt)
    assert reference.heads["slots"] is not None and reference.heads["slots"].crf is not None
    texts = ODD + list(dm.splits["test"].texts)
    results = reference.predict(texts)
    text = dm.splits["test"].texts[0]  # the module's own Viterbi decoding
    encoded = encode_texts(dm.tokenizer, [text], dm.max_length, offsets=True)
    assert _spans(results[len(ODD)]) == [(e["label"], e["start"], e["end"], e["text"])
                                         for e in _decode(module, encoded.ids[0], encoded.offsets[0], text)]
    report = export(ckpt, tmp_path / "crf", onnx=True, fuse=True, exporter="legacy", log=lambda *_: None)
    assert report["onnx"]["parity"]["entity_agreement"] == 1.0
    assert report["onnx-fused"]["parity"]["entity_agreement"] == 1.0  # token logits through the fused attention
    for runtime in ("onnx", "onnx-fused"):
        onnx = Predictor.from_export(tmp_path / "crf", runtime=runtime)
        assert onnx.heads["slots"].crf is not None  # its transitions, read from heads.safetensors
        torch.testing.assert_close(onnx.heads["slots"].crf.transitions, module.net.heads["slots"].crf.transitions)
        assert [_spans(r) for r in onnx.predict(texts)] == [_spans(r) for r in results]
    assert any(_spans(r) for r in results)


@pytest.mark.skipif(not HAS_ONNX, reason="onnx / onnxruntime / onnxscript not installed")
def test_a_bilstm_mlp_head_exports_with_the_default_exporter(cache_dir: Path, tmp_path: Path) -> None:
    dm, _, ckpt = _train(cache_dir, tmp_path / "lstm.ckpt", token_head={"layer": "bilstm_mlp"})
    report = export(ckpt, tmp_path / "lstm", onnx=True, log=lambda *_: None)  # dynamo: the LSTM runs unpacked
    assert report["onnx"]["parity"]["entity_agreement"] == 1.0
    assert report["onnx"]["parity"]["tasks"]["slots"]["max_abs_diff"] < 1e-4


# ------------------------------------------------------------------------------------------ CLI and app
def test_predict_cli_writes_the_entities(exported, tmp_path) -> None:
    from intentfusion.inference.predict_cli import main

    out, _ = exported
    (tmp_path / "in.txt").write_text("book a table in  paris at noon\n\ncancel my table please\n", encoding="utf-8")
    assert main([f"model={out}", f"input={tmp_path / 'in.txt'}", f"out={tmp_path / 'out.jsonl'}",
                 "progress=false"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [set(r["entities"]) for r in rows] == [{"slots"}] * 3 and rows[1]["entities"]["slots"] == []
    for row in rows:
        for entity in row["entities"]["slots"]:
            assert row["text"][entity["start"] : entity["end"]] == entity["text"]


def test_the_demo_app_returns_and_shows_entities(predictor) -> None:
    from fastapi.testclient import TestClient

    from intentfusion.inference.app import create_app

    client = TestClient(create_app(predictor))
    assert client.get("/api/info").json()["task_types"] == {"intent": "sequence", "slots": "token"}
    result = client.post("/predict", json={"text": "book a table in paris at noon"}).json()["results"][0]
    assert [e["text"] for e in result["entities"]["slots"]] == ["paris", "noon"]
    page = client.get("/").text
    assert "renderEntities" in page and "mark .tag" in page
