"""Tests for intentfusion.models.backbone (all offline; no hub access)."""

from __future__ import annotations

import random
import socket
import time
from pathlib import Path

import pytest
import torch

from intentfusion.models import backbone as B

SAMPLE = ["héllo wörld ¿qué?", "Book a flight to Paris, please. My order #123 never arrived!"]

CORPUS = [
    "book a flight to paris please",
    "cancel my order, it never arrived",
    "I need help urgently with my account password",
    "where is my package? it is late again",
    "refund the money for order #48501 please",
    "quiero reservar una mesa para dos personas mañana",
    "necesito ayuda con mi pedido, la factura está mal",
    "¿por qué me cobraron dos veces? hola buenos días",
    "Je ne peux lire aucune vidéo, l'écran reste noir.",
    "Können Sie mir das Geld erstatten? Der Artikel ist kaputt.",
] * 20

TINY = {
    "xlmr": ("XLMRobertaModel", "XLMRobertaTokenizer", "encoder"),
    "distilbert": ("DistilBertModel", "DistilBertTokenizer", "transformer"),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Every test runs offline and with a fresh hub-reachability cache unless it says otherwise."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(B, "_hub_reachability", {})


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {arch: B.build_tiny_backbone(root / arch, CORPUS, arch=arch) for arch in TINY}


def _assert_one_line_error(err: B.BackboneUnavailableError, name: str) -> None:
    msg = str(err)
    assert "\n" not in msg and "\r" not in msg
    assert name in msg
    assert "backbone.name_or_path" in msg
    assert err.__cause__ is not None or "does not exist" in msg


def _no_network(monkeypatch) -> list[str]:
    """Make any DNS lookup / socket connect fail and record it."""
    calls: list[str] = []

    def getaddrinfo(host, *args, **kwargs):
        calls.append(f"getaddrinfo {host}")
        raise socket.gaierror("network disabled in test")

    def connect(self, address):
        calls.append(f"connect {address}")
        raise OSError("network disabled in test")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return calls


# ----------------------------------------------------------------------------------------------- minilm


def test_minilm_loads_offline(tmp_path):
    path = B.resolve_backbone("builtin:minilm", tmp_path)
    assert Path(path) == B.minilm_path() and (B.minilm_path() / "config.json").is_file()

    model = B.load_encoder(path)
    tok = B.load_tokenizer(path)
    assert type(model).__name__ == "BertModel"
    assert model.config.hidden_size == 384
    layers = B.encoder_layers(model)
    assert len(layers) == 6 and layers is model.encoder.layer
    assert B.embeddings(model) is model.embeddings

    batch = tok(SAMPLE, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**batch).last_hidden_state
    assert out.shape == (2, batch["input_ids"].shape[1], 384)


def test_local_dir_never_touches_network(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    calls = _no_network(monkeypatch)
    path = str(B.minilm_path())
    assert B.load_tokenizer(path) is not None
    assert B.load_encoder(path) is not None
    with pytest.raises(B.BackboneUnavailableError):
        B.load_encoder("/definitely/not/a/model/dir")
    assert calls == [] and B._hub_reachability == {}


# ------------------------------------------------------------------------------------------ tiny backbones


@pytest.mark.parametrize("arch", list(TINY))
def test_tiny_backbone_loads_and_runs(tiny_dirs, arch):
    model_cls, tok_cls, owner = TINY[arch]
    path = str(tiny_dirs[arch])
    tok = B.load_tokenizer(path)
    model = B.load_encoder(path).eval()
    assert type(model).__name__ == model_cls and type(tok).__name__ == tok_cls
    assert model.config.hidden_size == 32 and model.config.num_attention_heads == 2
    assert model.config.vocab_size == len(tok)
    assert tok.model_max_length == 128
    assert tok.pad_token_id == model.config.pad_token_id

    layers = B.encoder_layers(model)
    assert isinstance(layers, torch.nn.ModuleList) and len(layers) == 4
    assert layers is getattr(model, owner).layer
    assert B.embeddings(model) is model.embeddings

    batch = tok(SAMPLE, padding=True, truncation=True, return_tensors="pt")
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.max() < model.config.vocab_size
    assert (ids[mask == 0] == tok.pad_token_id).all() and (mask == 0).any()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert out.shape == (2, ids.shape[1], 32) and torch.isfinite(out).all()

    # special tokens frame the sequence; accented / Spanish text is not all-unk
    first = tok("héllo wörld ¿qué?")["input_ids"]
    assert first[0] == tok.cls_token_id and first[-1] == tok.sep_token_id
    body = first[1:-1]
    assert body and sum(i == tok.unk_token_id for i in body) == 0

    # truncation to model_max_length and the position table cope with the longest input
    long = tok(["word " * 400], truncation=True, return_tensors="pt")
    assert long["input_ids"].shape[1] == 128
    with torch.no_grad():
        model(**long)


def test_tiny_xlmr_special_ids_match_xlmr(tiny_dirs):
    tok = B.load_tokenizer(str(tiny_dirs["xlmr"]))
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    ids = tok("héllo wörld ¿qué?")["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "héllo wörld ¿qué?"


def test_gradient_checkpointing(tiny_dirs):
    path = str(tiny_dirs["xlmr"])
    assert not B.load_encoder(path).is_activation_checkpointing
    model = B.load_encoder(path, gradient_checkpointing=True).train()
    assert model.is_activation_checkpointing
    tok = B.load_tokenizer(path)
    model(**tok(SAMPLE, padding=True, return_tensors="pt")).last_hidden_state.sum().backward()
    assert model.embeddings.word_embeddings.weight.grad is not None


def _many_word_types_corpus() -> list[str]:
    """~3000 pseudo-word types: enough that the Unigram EM prunes rare chars, which is where the Rust
    trainer's hash-order non-determinism shows up (the plain CORPUS is too small to exercise it)."""
    rng = random.Random(0)
    syllables = ["ka", "lo", "mi", "ré", "tu", "sa", "ne", "bo", "çi", "pa", "qué", "ün", "da", "fe", "go"]
    words = ["".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(3000)]
    return [
        " ".join(rng.choice(words[: rng.randint(50, 3000)]) for _ in range(rng.randint(4, 14))) for _ in range(1500)
    ]


@pytest.mark.parametrize("arch", list(TINY))
def test_build_is_deterministic(tmp_path, arch):
    corpus = _many_word_types_corpus()
    dirs = [B.build_tiny_backbone(tmp_path / str(i), corpus, arch=arch, vocab_size=500) for i in range(3)]
    for name in ("tokenizer.json", "tokenizer_config.json", "config.json", "model.safetensors"):
        assert len({(d / name).read_bytes() for d in dirs}) == 1, name
    sa, sb = (B.load_encoder(str(d)).state_dict() for d in dirs[:2])
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_small_vocab_size_is_raised_to_the_alphabet(tmp_path):
    path = B.build_tiny_backbone(tmp_path / "small", CORPUS, arch="xlmr", vocab_size=10)
    tok = B.load_tokenizer(str(path))
    assert len(tok) > 100 and tok.unk_token_id not in tok("héllo wörld ¿qué?")["input_ids"]


def test_build_keeps_existing_and_cleans_up(tmp_path, tiny_dirs):
    import shutil

    out = tmp_path / "shared"
    shutil.copytree(tiny_dirs["distilbert"], out)  # "another process won the race"
    marker = out / "winner.txt"
    marker.write_text("first")
    assert B.build_tiny_backbone(out, CORPUS, arch="distilbert") == out
    assert marker.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]  # no temp dirs left behind

    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "something").write_text("x")
    with pytest.raises(FileExistsError):
        B.build_tiny_backbone(junk, CORPUS, arch="xlmr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk", "shared"]

    with pytest.raises(ValueError):
        B.build_tiny_backbone(tmp_path / "x", CORPUS, arch="gpt2")


def test_resolve_builds_once_then_cache_hit(tmp_path, monkeypatch):
    calls = []

    def corpus():
        calls.append(1)
        return CORPUS

    first = B.resolve_backbone("builtin:tiny-xlmr", tmp_path, corpus=corpus)
    assert Path(first).parent == tmp_path and calls == [1]
    mtime = (Path(first) / "model.safetensors").stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("cache hit expected, but build_tiny_backbone was called")

    monkeypatch.setattr(B, "build_tiny_backbone", no_rebuild)
    t0 = time.perf_counter()
    assert B.resolve_backbone("builtin:tiny-xlmr", tmp_path, corpus=corpus) == first
    assert time.perf_counter() - t0 < 0.1
    assert calls == [1] and (Path(first) / "model.safetensors").stat().st_mtime_ns == mtime

    # distinct archs get distinct dirs; other names pass through unchanged
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    other = B.resolve_backbone("builtin:tiny-distilbert", tmp_path, corpus=lambda: CORPUS)
    assert other != first
    assert B.resolve_backbone("xlm-roberta-base", tmp_path) == "xlm-roberta-base"
    assert B.resolve_backbone("/some/local/dir", tmp_path) == "/some/local/dir"


def test_resolve_builds_from_the_support_corpus_by_default(tmp_path, monkeypatch):
    """Without a corpus a tiny backbone is built from the one it names (`TINY_CORPUS`), not a toy one."""
    monkeypatch.setattr(B, "TINY_CORPUS", "tests.models.test_backbone:_counted_corpus")
    _CALLS.clear()
    B.resolve_backbone("builtin:tiny-distilbert", tmp_path / "toy")
    assert _CALLS == [1]  # the named corpus is imported only when a build is needed ...
    B.resolve_backbone("builtin:tiny-distilbert", tmp_path / "toy")
    assert _CALLS == [1]  # ... and not on a cache hit

    monkeypatch.undo()
    path = B.resolve_backbone("builtin:tiny-distilbert", tmp_path / "support")
    tok = B.load_tokenizer(path)
    assert len(tok) > 500  # trained on the generated support corpus
    assert B.load_encoder(path).config.vocab_size == len(tok)


_CALLS: list[int] = []


def _counted_corpus() -> list[str]:
    _CALLS.append(1)
    return CORPUS


# ----------------------------------------------------------------------------------------------- failures


def test_missing_hub_model_offline_fails_fast():
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache("xlm-roberta-base", "config.json"), str):
        pytest.skip("xlm-roberta-base is in the local HF cache here")
    for load in (B.load_tokenizer, B.load_encoder):
        t0 = time.perf_counter()
        with pytest.raises(B.BackboneUnavailableError) as info:
            load("xlm-roberta-base")
        assert time.perf_counter() - t0 < 5
        _assert_one_line_error(info.value, "xlm-roberta-base")
        assert "offline" in str(info.value)


def test_missing_local_path(tmp_path, monkeypatch):
    calls = _no_network(monkeypatch)
    missing = str(tmp_path / "no" / "such" / "model")
    for load in (B.load_tokenizer, B.load_encoder):
        with pytest.raises(B.BackboneUnavailableError) as info:
            load(missing)
        _assert_one_line_error(info.value, missing)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(B.BackboneUnavailableError) as info:
        B.load_encoder(str(empty))
    _assert_one_line_error(info.value, str(empty))
    assert calls == []


class _HangingSession:
    def head(self, url, timeout=None):
        time.sleep(30)  # a DNS lookup / connect that never answers


class _RefusingSession:
    def head(self, url, timeout=None):
        raise OSError("connection refused")


class _AnsweringSession:
    def head(self, url, timeout=None):
        return object()


@pytest.mark.parametrize("session", [_HangingSession, _RefusingSession])
def test_unreachable_hub_without_offline_env_fails_fast(monkeypatch, session):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.get_session", lambda: session())
    monkeypatch.setattr(B, "_HUB_PROBE_TIMEOUT_S", 0.3)
    name = "intentfusion-tests/no-such-model"
    t0 = time.perf_counter()
    for load in (B.load_tokenizer, B.load_encoder):
        with pytest.raises(B.BackboneUnavailableError) as info:
            load(name)
        _assert_one_line_error(info.value, name)
        assert "unreachable" in str(info.value)
    assert time.perf_counter() - t0 < 3  # one probe (cached), no retries


def test_reachable_hub_loads_online(monkeypatch):
    import transformers

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.get_session", lambda: _AnsweringSession())
    seen = {}

    def fake_from_pretrained(name, **kwargs):
        seen.update(kwargs, name=name)
        raise OSError("repo not found")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", fake_from_pretrained)
    with pytest.raises(B.BackboneUnavailableError) as info:
        B.load_tokenizer("org/model")
    assert seen == {"name": "org/model", "local_files_only": False}
    _assert_one_line_error(info.value, "org/model")


def test_structure_helpers_reject_unknown_modules():
    with pytest.raises(TypeError):
        B.encoder_layers(torch.nn.Linear(2, 2))
    with pytest.raises(TypeError):
        B.embeddings(torch.nn.Linear(2, 2))
