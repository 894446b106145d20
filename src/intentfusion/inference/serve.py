"""Demo page + JSON API: `python -m intentfusion.inference.serve export_dir=DIR` (then open http://127.0.0.1:8000);
also `intentfusion-serve ...` and `python -m intentfusion.serve ...`.

Options (`key=value`; `help` prints this): `export_dir=DIR` or `ckpt_path=FILE` (one of them), `host` (127.0.0.1:
loopback only; anything else is your decision), `port` (8000), `runtime` (exports only: torch | onnx | onnx-int8 |
onnx-fused | onnx-int8-fused | auto, see `Predictor.from_export`), `batch_size` (32), `max_body_kb` (256),
`max_texts` (256), `fallbacks` (default: the export's, e.g.
`'fallbacks={action: {threshold: 0.7, fallback: request_more_info}}'`), `compile` (false; true: torch.compile the
torch runtime, warmed up on the example messages before the server starts).

A bad option or a missing export / checkpoint ends the process before the server starts, with exit code 1 and one
`error: <where>: <what>; expected <what>` line on stderr.

Endpoints (the app is `intentfusion.inference.app.create_app`):

* `GET /` - one static HTML page (no external assets): a text box, example messages (typos, ALL CAPS, slang,
  several languages, emoji), per-task labels with calibrated-confidence bars, and the recommended action
  coloured by routing (escalate red, request info amber, auto-resolve green).
* `POST /predict` - `{"texts": [...]}` or `{"text": "..."}` (+ optional `"return_distribution": true`) ->
  `{"results": [{"predictions": {task: {"label", "confidence", ...}}, "flags": [...]}, ...]}`. Errors are
  `{"detail": "<what is wrong>"}`: 413 body over `max_body_kb` or more than `max_texts` texts, 415 not JSON
  content, 400 malformed JSON, 422 a well-formed body of the wrong shape (naming the field / index).
* `GET /api/info` - tasks, labels, examples, limits, model provenance; `GET /healthz`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from intentfusion.errors import CheckpointNotFoundError, ConfigError, exit_on_user_error
from intentfusion.utils.cli import parse_options, user_errors_from, wants_help

DEFAULTS: dict[str, Any] = {
    "export_dir": None,
    "ckpt_path": None,
    "host": "127.0.0.1",
    "port": 8000,
    "runtime": "torch",
    "batch_size": 32,
    "max_body_kb": 256,
    "max_texts": 256,
    "fallbacks": None,
    "compile": False,
}
TYPES: dict[str, type] = {"export_dir": str, "ckpt_path": str, "fallbacks": dict}


def load_predictor(opts: dict[str, Any]) -> Any:
    """The `Predictor` the options name (checked to exist first), warmed up when `compile=true`."""
    if bool(opts["export_dir"]) == bool(opts["ckpt_path"]):
        given = "both given" if opts["export_dir"] else "neither given"
        raise ConfigError("export_dir / ckpt_path", given, "exactly one of export_dir=DIR or ckpt_path=FILE")
    if opts["export_dir"] and not Path(opts["export_dir"]).is_dir():
        raise CheckpointNotFoundError(f"export_dir={opts['export_dir']}", "no such export directory",
                                      "a directory written by python -m intentfusion.export")
    if opts["ckpt_path"] and not Path(opts["ckpt_path"]).is_file():
        raise CheckpointNotFoundError(f"ckpt_path={opts['ckpt_path']}", "no such checkpoint file",
                                      "a .ckpt written by train.py")
    from transformers.utils import logging as hf_logging

    from intentfusion.inference.app import EXAMPLES
    from intentfusion.inference.predictor import Predictor

    hf_logging.disable_progress_bar()
    common = {"batch_size": opts["batch_size"], "fallbacks": opts["fallbacks"], "compile": opts["compile"]}
    with user_errors_from(ValueError, ImportError, TypeError):  # bad runtime / fallbacks, no onnx extra, ...
        if opts["export_dir"]:
            predictor = Predictor.from_export(opts["export_dir"], runtime=opts["runtime"], **common)
        else:
            predictor = Predictor.from_checkpoint(opts["ckpt_path"], **common)
        if opts["compile"]:  # compile both shape classes now, not on the first visitor's request
            predictor.predict([example["text"] for example in EXAMPLES])
            predictor.predict_one(EXAMPLES[0]["text"])
    return predictor


@exit_on_user_error
def main(argv: list[str] | None = None) -> int:
    """`python -m intentfusion.inference.serve export_dir=DIR [port=8000] [host=127.0.0.1] ...`: serves until
    stopped (then 0); a user error ends the process with exit code 1 and one `error:` line on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    if wants_help(args):
        print(__doc__)
        return 0
    opts = parse_options(args, DEFAULTS, types=TYPES)
    predictor = load_predictor(opts)
    import uvicorn

    from intentfusion.inference.app import create_app

    app = create_app(predictor, max_body_bytes=opts["max_body_kb"] * 1024, max_texts=opts["max_texts"])
    if opts["host"] not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: listening on {opts['host']}, not only on loopback", file=sys.stderr)
    print(f"intentfusion demo: http://{opts['host']}:{opts['port']}/  ({predictor})", file=sys.stderr)
    uvicorn.run(app, host=opts["host"], port=opts["port"], log_level="info")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
