"""`python -m intentfusion.export ckpt_path=... out=DIR [onnx=true] [quantize=true] ...` (also `intentfusion-export`):
the export job. The directory is written by `intentfusion.inference.export` (serving code: no Hydra, no Lightning);
this job adds what needs the training side, the checkpoint's evaluation split rebuilt from its run config, on which
each runtime's parity, accuracy delta and speed are measured. Options: `python -m intentfusion.export help`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import intentfusion.inference.export as export_package
from intentfusion.errors import CheckpointNotFoundError, exit_on_user_error
from intentfusion.inference.export import SAMPLE_TEXTS, EvalData, EvalSource
from intentfusion.utils.cli import parse_options, user_errors_from, wants_help

DEFAULTS: dict[str, Any] = {
    "ckpt_path": None,
    "out": None,
    "onnx": False,
    "quantize": False,
    "fuse": False,
    "runtimes": [],
    "exporter": "dynamo",
    "opset": None,
    "fallbacks": None,
    "metrics": None,
    "eval_split": "test",
    "cache_dir": None,
    "overwrite": False,
}
TYPES: dict[str, type] = {"ckpt_path": str, "out": str, "opset": int, "fallbacks": dict, "metrics": str,
                          "cache_dir": str, "runtimes": list}
USAGE = "python -m intentfusion.export ckpt_path=X.ckpt out=DIR"


def checkpoint_split(split: str = "test") -> EvalSource:
    """An `EvalSource` giving `split` of the checkpoint's own data (its run config's `data`, rebuilt with Hydra),
    texts and labels; the built-in sample texts when it cannot be rebuilt (no stored config, files missing, ...)."""

    def source(config: dict | None, label_names: dict[str, list[str]], task_types: dict[str, str]) -> EvalData:
        if not config or "data" not in config:
            return SAMPLE_TEXTS, None, "built-in sample texts (the checkpoint stores no data config)"
        try:
            import hydra

            datamodule = hydra.utils.instantiate(config["data"], label_names=label_names, task_types=task_types)
            datamodule.setup("test")
            data = datamodule.splits[split]
        except Exception as e:  # any failure to rebuild the data only costs the accuracy numbers
            reason = " ".join(str(e).split())
            return SAMPLE_TEXTS, None, f"built-in sample texts ({split!r} split unavailable: {reason})"
        return list(data.texts), data.labels, f"the checkpoint's {split!r} split ({len(data.texts)} texts)"

    return source


def export(ckpt_path: str | Path, out: str | Path, *, eval_split: str = "test", **options: Any) -> dict[str, Any]:
    """`intentfusion.inference.export.export` checked on `eval_split` of the checkpoint's data; returns the report."""
    return export_package.export(ckpt_path, out, eval_data=checkpoint_split(eval_split), **options)


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    """The command line: 0 on success; a user error ends the process with exit code 1 and one `error:` line."""
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_help(args):
        print(export_package.__doc__)
        return 0
    opts = parse_options(args, DEFAULTS, types=TYPES, required=("ckpt_path", "out"), usage=USAGE)
    ckpt = Path(opts.pop("ckpt_path"))
    if not ckpt.is_file():
        raise CheckpointNotFoundError(f"ckpt_path={ckpt}", "no such checkpoint file", "a .ckpt written by train.py")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with user_errors_from(ValueError, ImportError):  # bad fallbacks, not an intentfusion checkpoint, no onnx extra
        export(ckpt, opts.pop("out"), **opts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
