"""`python -m bench.data_child DATA.parquet CACHE_DIR RESULT.json`: one `MultiTaskDataModule.setup` on a parquet
file through ``data=hf`` (MiniLM tokenizer, intent + slots, a test_noisy copy), timed; its JSON goes to RESULT."""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path


def main(data: str, cache_dir: str, result: str) -> None:
    from intentfusion.data.datamodule import MultiTaskDataModule
    from intentfusion.data.sources import load_source
    from intentfusion.models.backbone import minilm_path

    source = partial(load_source, loader="hf", path=data, label_columns={"intent": "intent"},
                     token_columns={"slots": "tags"}, noise={"test_p": 1.0, "seed": 1234})
    dm = MultiTaskDataModule(source, ["intent", "slots"], str(minilm_path()), cache_dir=cache_dir,
                             task_types={"slots": "token"}, cache=True, test_splits=["test", "test_noisy"])
    start = time.perf_counter()
    dm.setup()
    seconds = time.perf_counter() - start
    batch = next(iter(dm.train_dataloader()))  # the data is usable, not just loaded
    size = sum(f.stat().st_size for f in Path(cache_dir, "encoded").rglob("*") if f.is_file())
    out = {"setup_seconds": seconds, "examples": {k: len(v) for k, v in dm.splits.items()},
           "batch": list(batch["input_ids"].shape), "cache_mb": size / 2**20}
    Path(result).write_text(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:4])
