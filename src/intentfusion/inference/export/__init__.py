"""Export a checkpoint as a self-contained directory: `python -m intentfusion.export ckpt_path=... out=DIR` (also
`intentfusion-export ...`); from Python `intentfusion.export.export` (with the checkpoint's evaluation split) or
this package's `export` (serving code only: no Hydra, no Lightning; evaluation data given as an `EvalSource`).

Options (`key=value`, OmegaConf syntax; `help` prints this):

| key | default | what |
|---|---|---|
| `ckpt_path` | required | the `.ckpt` written by `train.py` (loaded with `weights_only=True`) |
| `out` | required | the export directory (written atomically; an existing one needs `overwrite=true`) |
| `onnx` | false | also `model.onnx`: the whole multi-task model, dynamic batch and sequence axes |
| `quantize` | false | also `model.int8.onnx`: onnxruntime dynamic int8 quantization (implies `onnx=true`) |
| `fuse` | false | also `model.fused.onnx` (+ `model.int8.fused.onnx` with `quantize`): transformer fusions |
| `runtimes` | [] | more registered runtimes to build and check by name (`intentfusion.inference.runtimes`) |
| `exporter` | dynamo | `dynamo` (`torch.onnx.export(dynamo=True)`, the supported path) or `legacy` (TorchScript) |
| `opset` | null | ONNX opset (null: the exporter's default) |
| `fallbacks` | null | default confidence fallbacks stored in the export (see below) |
| `metrics` | null | a `metrics.json` for the model card (null: found next to / above the checkpoint) |
| `eval_split` | test | split of the checkpoint's data for the ONNX checks: parity, accuracy deltas, msgs/s |
| `cache_dir` | null | where builtin tiny backbones are looked for (null: the training run's) |
| `overwrite` | false | replace an existing `out` directory |

Fallbacks: `'fallbacks={action: {threshold: 0.7, fallback: request_more_info}}'` (quote it for the shell).

Exit status 0 on success; 1 with one `error: <where>: <what>; expected <what>` line on stderr for a bad option, a
missing checkpoint or an existing `out`.

The directory (everything a `Predictor.from_export` needs; no Hydra config, no pickles):

    encoder/            encoder + tokenizer, Hugging Face format (`save_pretrained`, safetensors); a LoRA
                        (peft) checkpoint's adapters are merged in (`merge_and_unload`), so it is a plain model
    heads.safetensors   task heads, and the BiLSTM branch / label fusion when the model uses them
    labels.json         {task: [label, ...]} (class index = position)
    temperatures.json   {task: T} fitted by evaluate.py (softmax(logits / T) is the calibrated confidence)
    intentfusion.json   format version, pooling, active parts, max_length, precision, fallbacks, provenance
    README.md           model card: tasks, labels, metrics, usage, each ONNX graph's parity, accuracy delta, msgs/s
    export_report.json  those ONNX numbers
    model.onnx, model.int8.onnx   with onnx=true / quantize=true
    model.fused.onnx, model.int8.fused.onnx   with fuse=true (/ and quantize=true)

ONNX: `torch.onnx.export(dynamo=True)` (torch.export + onnxscript) exports this model with torch 2.13, the
BiLSTM branch included (`OnnxGraph` runs it without packed sequences); the legacy TorchScript exporter works
too (and is ~10x faster to export) but is deprecated upstream. The parity check runs both runtimes on the
evaluation split and reports the max abs difference of the logits and the share of identical labels; for a token
task over each text's real token positions (its output is batch x sequence x tags, both axes dynamic), plus the
share of texts whose decoded entities are identical (`entity_agreement`). Every ONNX graph is checked that way
against PyTorch, with its accuracy delta where the split has labels and its messages per second at batch 32 on the
exporting machine; `intentfusion.json` `runtimes` records them, and `Predictor.from_export(runtime="auto")` runs the
fastest whose accuracy drop is at most half a point (measured on at least 50 texts; else it stays on PyTorch).

Fused graphs (`fuse=true`): `onnxruntime.transformers.optimizer` (one `Attention` op per layer, embedding and skip
LayerNorm, bias + GELU). Its patterns match the TorchScript export of transformers' eager attention, so the fused
graph is exported that way (the plain `model.onnx` keeps `exporter`); the report lists the fused operators.
The fused `Attention` reads the raw (batch, sequence) attention mask, so any padding side works.

Modules: `onnx` (ONNX export plain and fused, int8 quantization), `parity` (evaluation data, accuracy, logit
comparison), `card` (the model card), `bundle` (the `export` function writing the directory). The command line
is `intentfusion.export`.
"""

from intentfusion.inference.export.bundle import export
from intentfusion.inference.export.card import find_metrics, model_card
from intentfusion.inference.export.onnx import ExportError, export_onnx, fuse_onnx, quantize_onnx
from intentfusion.inference.export.parity import (
    SAMPLE_TEXTS,
    EvalData,
    EvalSource,
    accuracy,
    compare,
    entity_agreement,
    sample_texts,
)

__all__ = [
    "SAMPLE_TEXTS",
    "EvalData",
    "EvalSource",
    "ExportError",
    "accuracy",
    "compare",
    "entity_agreement",
    "export",
    "export_onnx",
    "fuse_onnx",
    "find_metrics",
    "model_card",
    "quantize_onnx",
    "sample_texts",
]
