"""Data at scale: peak RSS, setup seconds and cache-hit seconds of `MultiTaskDataModule` at 50k / 500k / 1M
utterances (``--quick``: 5k / 20k), on synthetic MASSIVE-like data generated here (intent + BIO slots).

Each size is one parquet file read through ``data=hf`` (the same `load_dataset` call as a user's run) with the
MiniLM tokenizer, max_length 64, a `test_noisy` copy of the test split: once with an empty cache (load, noise,
tokenize, write the cache) and once more with the cache filled (read it). Every run is its own child process
(`bench/data_child.py`), so its peak RSS is its own.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

from bench.common import Context, Section, figure, ratio, run_child

SIZES = (50_000, 500_000, 1_000_000)
QUICK_SIZES = (5_000, 20_000)
INTENTS = 60
SLOT_TYPES = ("date", "time", "place_name", "person", "artist_name", "device_type", "food_type", "currency_name")


def synthetic(n: int, seed: int = 0) -> dict[str, list[Any]]:
    """``n`` utterances of 4-16 words from a 6,000-word vocabulary, one of 60 intents, 0-3 slots (1-3 words)."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "ru", "so", "ta", "vi", "de", "pa", "qu", "ze", "bo", "fi", "gu"]
    vocab = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(9000)})[:6000]
    texts, intents, tags = [], [], []
    for _ in range(n):
        words = rng.choices(vocab, k=rng.randint(4, 16))
        labels = ["O"] * len(words)
        for _ in range(rng.randint(0, 3)):
            start, size = rng.randrange(len(words)), rng.randint(1, 3)
            if all(t == "O" for t in labels[start : start + size]):
                kind = rng.choice(SLOT_TYPES)
                for k in range(start, min(start + size, len(words))):
                    labels[k] = ("B-" if k == start else "I-") + kind
        texts.append(" ".join(words))
        intents.append(f"intent_{rng.randrange(INTENTS):02d}")
        tags.append(labels)
    return {"text": texts, "intent": intents, "tags": tags}


def write_parquet(n: int, folder: Path) -> Path:
    """The synthetic data set of ``n`` utterances as one parquet file (written once per size)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"synthetic_{n}.parquet"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.table(synthetic(n)), path)
    return path


def run(ctx: Context) -> Section:
    figures, ratios = [], []
    data_dir = ctx.work_dir / "data_scale"
    for n in QUICK_SIZES if ctx.quick else SIZES:
        path = write_parquet(n, data_dir)
        cache = data_dir / f"cache_{n}"
        shutil.rmtree(cache, ignore_errors=True)
        runs = {}
        for kind in ("miss", "hit"):
            result = data_dir / f"result_{n}_{kind}.json"
            args = [ctx.python, "-m", "bench.data_child", str(path), str(cache), str(result)]
            runs[kind] = run_child(args, ctx, result_file=result, timeout=3600)
        setup = {"utterances": n, "data": "synthetic MASSIVE-like (intent + BIO slots), parquet via data=hf",
                 "tokenizer": "all-MiniLM-L6-v2", "max_length": 64, "threads": ctx.threads}
        command = runs["miss"].command
        miss = figure(f"data_setup_miss_{n}", f"setup, empty cache ({n:,} utterances)", "s",
                      [runs["miss"].result["setup_seconds"]], command=command, **setup)
        hit = figure(f"data_setup_hit_{n}", f"setup, cache hit ({n:,} utterances)", "s",
                     [runs["hit"].result["setup_seconds"]], command=command, **setup)
        figures += [
            miss,
            hit,
            figure(f"data_rss_miss_{n}", f"peak RSS, empty cache ({n:,} utterances)", "MB",
                   [runs["miss"].peak_rss_mb], command=command, **setup),
            figure(f"data_rss_hit_{n}", f"peak RSS, cache hit ({n:,} utterances)", "MB",
                   [runs["hit"].peak_rss_mb], command=command, **setup),
            figure(f"data_cache_mb_{n}", f"cache size on disk ({n:,} utterances)", "MB",
                   [runs["miss"].result["cache_mb"]], command=command, **setup),
        ]
        ratios.append(ratio(f"data_cache_speedup_{n}", f"setup seconds, empty cache / cache hit ({n:,})", miss, hit))
    notes = ["peak RSS is the whole child process (Python, torch, tokenizer included: ~0.6 GB before any data)"]
    return {"title": "Data at scale: setup and memory", "figures": figures, "ratios": ratios, "notes": notes}
