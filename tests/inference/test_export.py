"""`intentfusion.inference.export` (`python -m intentfusion.export`, `intentfusion-export`): the self-contained
directory, reloading it (no training code), ONNX parity and int8 quantization (skipped without onnx / onnxruntime),
and the CLI's errors (one line, exit code 1)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from intentfusion.errors import CheckpointError, ConfigError
from intentfusion.export import export, main
from intentfusion.inference import Predictor
from intentfusion.utils.hardware import torch_threads

from .test_predictor import ODD, active_parts_checkpoint, best_checkpoint

HAS_ONNX = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime", "onnxscript"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny model, busy 2-core machine: threads only cost
    yield
    torch.set_num_threads(threads)


def fails(capsys, *args: str) -> str:
    """`main(args)` ends the process with exit code 1 and one `error:` line on stderr; returns that line."""
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    err = capsys.readouterr().err
    assert exited.value.code == 1 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture(scope="module")
def source(tiny_run, tmp_path_factory) -> tuple[Path, Path]:
    """(checkpoint with the BiLSTM branch and fusion switched on, the training run's metrics.json)."""
    out, _ = tiny_run
    ckpt = active_parts_checkpoint(best_checkpoint(tiny_run), tmp_path_factory.mktemp("active") / "active.ckpt")
    return ckpt, out / "metrics.json"


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory) -> tuple[Path, dict]:
    """One export of the active-parts checkpoint, with ONNX + int8 when the onnx extra is installed."""
    ckpt, metrics = source
    out = tmp_path_factory.mktemp("export") / "model"
    fallbacks = {"action": {"threshold": 0.6, "fallback": "request_more_info"}}
    report = export(ckpt, out, onnx=HAS_ONNX, quantize=HAS_ONNX, fuse=HAS_ONNX, fallbacks=fallbacks,
                    metrics=str(metrics), log=lambda *_: None)
    return out, report


def test_directory_is_self_contained_and_pickle_free(exported) -> None:
    out, _ = exported
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"encoder/config.json", "encoder/model.safetensors", "encoder/tokenizer.json", "heads.safetensors",
            "labels.json", "temperatures.json", "intentfusion.json", "README.md", "export_report.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl"))]
    config = json.loads((out / "intentfusion.json").read_text())
    assert config["active_parts"] == {"bilstm": True, "fusion": True}
    assert config["max_length"] == 128 and config["net"]["pooling"] == "mean" and config["net"]["peft"] is None
    assert config["net"]["label_names"] == json.loads((out / "labels.json").read_text())
    assert config["fallbacks"] == {"action": {"threshold": 0.6, "fallback": "request_more_info"}}
    assert list(json.loads((out / "labels.json").read_text())) == ["intent", "urgency", "sentiment", "action"]
    from safetensors import safe_open

    with safe_open(str(out / "heads.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert {"heads.intent.linear.weight", "bilstm.gate", "fusion.maps.intent__from__sentiment.weight"} <= keys
    assert not any(k.startswith("encoder.") for k in keys)
    card = (out / "README.md").read_text()
    assert "| test | intent |" in card and "## Usage" in card  # the training run's metrics made it in


def test_reloaded_export_predicts_exactly_like_the_checkpoint(exported, source, tiny_run) -> None:
    out, _ = exported
    ckpt, _ = source
    texts = [*ODD, "", "stop\x00 charging me twice", "a" * 50_000]
    from_ckpt = Predictor.from_checkpoint(ckpt, fallbacks={"action": {"threshold": 0.6,
                                                                      "fallback": "request_more_info"}})
    from_export = Predictor.from_export(out)  # its fallbacks come from the export
    assert from_export.predict(texts, return_distribution=True) == from_ckpt.predict(texts, return_distribution=True)
    a, b = from_ckpt.logits(texts), from_export.logits(texts)
    assert all(torch.equal(a[t], b[t]) for t in a)


def test_an_export_of_format_version_2_still_loads(exported, tmp_path) -> None:
    """Version 2 wrote the network's settings at the top level of `intentfusion.json` (no `net`)."""
    import shutil

    out, _ = exported
    old = tmp_path / "v2"
    shutil.copytree(out, old)
    config = json.loads((old / "intentfusion.json").read_text())
    net = config.pop("net")
    active = config["active_parts"]
    config.update(format_version=2, task_types=net["task_types"], token_head=net["token_head"],
                  pooling=net["pooling"], bilstm=net["bilstm"] if active["bilstm"] else None,
                  fusion_pairs=net["fusion_pairs"] if active["fusion"] else None)
    (old / "intentfusion.json").write_text(json.dumps(config))
    texts = [*ODD, "where is my order?"]
    a, b = Predictor.from_export(out).logits(texts), Predictor.from_export(old).logits(texts)
    assert all(torch.equal(a[t], b[t]) for t in a)


def test_loading_an_export_imports_no_training_code(exported) -> None:
    out, _ = exported
    code = f"""
import sys
from intentfusion.inference import Predictor
p = Predictor.from_export({str(out)!r})
assert p.predict_one("where is my parcel")["predictions"]["intent"]["label"]
blocked = {{"lightning", "pytorch_lightning", "hydra", "torchmetrics"}}
training = sorted({{m.split(".")[0] for m in sys.modules}} & blocked)
print("training modules:", training)
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("training modules: []"), done.stdout


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (onnx, onnxruntime, onnxscript) is not installed")
def test_onnx_matches_pytorch_with_dynamic_batch_and_sequence(exported) -> None:
    out, report = exported
    parity = report["onnx"]["parity"]
    assert parity["max_abs_diff"] < 1e-4 and parity["label_agreement"] == 1.0
    assert "test" in report["eval_data"]
    torch_predictor = Predictor.from_export(out)
    texts = [*ODD, "refund " * 100, "short", "a somewhat longer message about a late delivery"]
    reference = torch_predictor.logits(texts)
    for batch_size in (1, 4, 64):  # batch 1 to many, sequences of 3 to 64 tokens
        onnx_predictor = Predictor.from_export(out, runtime="onnx", batch_size=batch_size)
        logits = onnx_predictor.logits(texts)
        for task, ref in reference.items():
            assert (logits[task] - ref).abs().max() < 1e-4
        assert onnx_predictor.predict(texts)[0]["predictions"].keys() == set(reference)


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (onnx, onnxruntime, onnxscript) is not installed")
def test_int8_quantization_reports_its_accuracy_delta(exported) -> None:
    out, report = exported
    int8 = report["onnx-int8"]
    assert int8["size_mb"] < int8["fp32_size_mb"]
    accuracy = int8["accuracy"]
    assert set(accuracy["delta"]) == {"intent", "urgency", "sentiment", "action"}
    for task, delta in accuracy["delta"].items():
        assert delta == pytest.approx(accuracy["runtime"][task] - accuracy["torch"][task])
    assert "int8 accuracy" in (out / "README.md").read_text()
    result = Predictor.from_export(out, runtime="onnx-int8").predict_one("I was charged twice")
    assert set(result["predictions"]) == {"intent", "urgency", "sentiment", "action"}


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (onnx, onnxruntime, onnxscript) is not installed")
def test_fused_graphs_fuse_attention_and_match_pytorch(exported) -> None:
    out, report = exported
    fused = report["onnx-fused"]
    assert fused["fused_operators"].get("SkipLayerNormalization")
    assert fused["parity"]["max_abs_diff"] < 1e-4 and fused["parity"]["label_agreement"] == 1.0
    assert set(report["onnx-int8-fused"]["accuracy"]["delta"]) == {"intent", "urgency", "sentiment", "action"}
    import onnx

    layers = json.loads((out / "encoder" / "config.json").read_text())["num_hidden_layers"]
    ops = [node.op_type for node in onnx.load(str(out / "model.fused.onnx")).graph.node]
    assert ops.count("Attention") == layers == fused["fused_operators"]["Attention"]  # one fused op per layer
    texts = [*ODD, "refund " * 100, "short", "a somewhat longer message about a late delivery"]
    reference = Predictor.from_export(out).logits(texts)
    for batch_size in (1, 64):
        logits = Predictor.from_export(out, runtime="onnx-fused", batch_size=batch_size).logits(texts)
        assert all((logits[task] - ref).abs().max() < 1e-4 for task, ref in reference.items())
    int8 = Predictor.from_export(out, runtime="onnx-int8-fused").predict_one("I was charged twice")
    assert set(int8["predictions"]) == {"intent", "urgency", "sentiment", "action"}
    card = (out / "README.md").read_text()
    assert "`model.int8.fused.onnx`" in card and "| `onnx-int8-fused` |" in card


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (onnx, onnxruntime, onnxscript) is not installed")
def test_runtime_auto_runs_the_fastest_runtime_measured_at_export(exported) -> None:
    out, report = exported
    measured = json.loads((out / "intentfusion.json").read_text())["runtimes"]
    assert set(measured) == {"torch", "onnx", "onnx-int8", "onnx-fused", "onnx-int8-fused"}
    assert measured == report["runtimes"] and all(r["msgs_per_s"] > 0 for r in measured.values())
    assert all(r["texts"] >= 50 for r in measured.values())  # the tiny run's test split, not the built-in samples
    eligible = {k: r["msgs_per_s"] for k, r in measured.items() if r["accuracy_drop"] <= 0.005}
    predictor = Predictor.from_export(out, runtime="auto")
    assert predictor.info["runtime"] == max(eligible, key=eligible.get)
    assert predictor.info["runtime_choice"].startswith("auto")
    assert Predictor.from_export(out, runtime="auto", compile=True).info["runtime"] == "torch"
    assert Predictor.from_export(out, runtime="auto", precision="bf16").info["runtime"] == "torch"  # ONNX runs fp32


@pytest.mark.skipif(not HAS_ONNX, reason="the onnx extra (onnx, onnxruntime, onnxscript) is not installed")
def test_onnx_predictor_runs_its_torch_work_on_one_thread(exported) -> None:
    """With an ONNX runtime the predictor's torch work runs on one thread (torch's and onnxruntime's thread pools
    on the same cores wait on each other), and torch's setting is back after the call; the torch runtime keeps it."""
    out, _ = exported
    seen: list[int] = []
    with torch_threads(2):
        for runtime, expected in (("onnx", 1), ("onnx-int8-fused", 1), ("torch", 2)):
            predictor = Predictor.from_export(out, runtime=runtime)
            run = predictor.runner
            predictor.runner = lambda ids, mask, run=run: (seen.append(torch.get_num_threads()), run(ids, mask))[1]
            labels = predictor.predict(["I was charged twice", "where is my order"])
            assert len(labels) == 2 and seen[-1] == expected and torch.get_num_threads() == 2


def test_fastest_runtime_keeps_the_accuracy_and_needs_the_file(tmp_path, monkeypatch) -> None:
    from intentfusion.inference import runtimes as module
    from intentfusion.inference.runtimes import fastest_runtime

    monkeypatch.setattr(module, "has_onnxruntime", lambda: True)
    record = {"texts": 540, "label_agreement": 1.0}
    runtimes = {"torch": {**record, "msgs_per_s": 100.0, "accuracy_drop": 0.0},
                "onnx": {**record, "msgs_per_s": 150.0, "accuracy_drop": 0.0},
                "onnx-int8": {**record, "msgs_per_s": 300.0, "accuracy_drop": 0.004, "label_agreement": 0.97},
                "onnx-int8-fused": {**record, "msgs_per_s": 400.0, "accuracy_drop": 0.02, "label_agreement": 0.9},
                "onnx-fused": {"msgs_per_s": 999.0}}  # an incomplete record (no accuracy, no text count): never
    config = {"runtimes": runtimes}
    for name in ("model.onnx", "model.int8.onnx", "model.int8.fused.onnx", "model.fused.onnx"):
        (tmp_path / name).write_bytes(b"")
    assert fastest_runtime(tmp_path, config) == "onnx-int8"  # int8-fused is faster but loses 2 points
    assert fastest_runtime(tmp_path, config, max_accuracy_drop=0.05) == "onnx-int8-fused"
    (tmp_path / "model.int8.onnx").unlink()
    assert fastest_runtime(tmp_path, config) == "onnx"  # its file is gone
    runtimes["onnx"] = {**record, "msgs_per_s": 150.0, "accuracy_drop": None, "label_agreement": 0.98}  # no labels
    assert fastest_runtime(tmp_path, config) == "torch"  # 2 % of the labels differ
    runtimes["onnx"] = {**record, "msgs_per_s": 150.0, "accuracy_drop": 0.0, "texts": 7}  # the built-in samples
    assert fastest_runtime(tmp_path, config) == "torch"
    assert fastest_runtime(tmp_path, {}) == "torch"  # an export without measurements
    runtimes["onnx"]["texts"] = 540
    monkeypatch.setattr(module, "has_onnxruntime", lambda: False)
    assert fastest_runtime(tmp_path, config) == "torch"  # no onnxruntime installed


def test_cli_writes_an_export_and_reports_bad_requests(tiny_run, tmp_path, capsys) -> None:
    ckpt = best_checkpoint(tiny_run)
    out = tmp_path / "cli"
    assert main([f"ckpt_path={ckpt}", f"out={out}"]) == 0
    config = json.loads((out / "intentfusion.json").read_text())
    assert config["active_parts"] == {"bilstm": False, "fusion": False} and config["onnx"] is None
    assert "Best validation score" in (out / "README.md").read_text()  # metrics.json found above the checkpoint
    capsys.readouterr()
    err = fails(capsys, f"ckpt_path={ckpt}", f"out={out}")
    assert f"out={out}: exists and is not empty; expected a new or empty directory, or overwrite=true" in err
    assert "error: ckpt_path: missing required option; expected ckpt_path=" in fails(capsys, f"out={out}")
    err = fails(capsys, f"ckpt_path={ckpt}", f"out={out}", "onxx=true")
    assert err.startswith("error: onxx: unknown option; expected one of [") and "'onnx'" in err
    assert "error: onnx=maybe: str value; expected true or false" in fails(capsys, f"ckpt_path={ckpt}", f"out={out}",
                                                                          "onnx=maybe")
    err = fails(capsys, f"ckpt_path={tmp_path / 'nope.ckpt'}", f"out={tmp_path / 'x'}")
    assert f"ckpt_path={tmp_path / 'nope.ckpt'}: no such checkpoint file" in err
    assert not (tmp_path / "x").exists()
    with pytest.raises(FileNotFoundError, match="not an intentfusion export"):
        Predictor.from_export(tmp_path)
    with pytest.raises(FileNotFoundError, match="model.onnx: no such file; expected an export made with onnx=true"):
        Predictor.from_export(out, runtime="onnx")
    with pytest.raises(ConfigError, match="compile: compile=True with runtime='onnx'; expected runtime=torch"):
        Predictor.from_export(out, runtime="onnx", compile=True)
    (out / "encoder" / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(CheckpointError, match=r"pickle files \['pytorch_model.bin'\]; expected an export's weights as"):
        Predictor.from_export(out)


def test_python_m_intentfusion_export_still_runs(tmp_path) -> None:
    """The old module path is a shim: usage with exit code 0, a missing checkpoint as one line with exit code 1."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "intentfusion.export", "--help"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0 and "| `ckpt_path` | required |" in done.stdout, done.stderr[-3000:]
    missing = tmp_path / "missing.ckpt"
    command = [sys.executable, "-m", "intentfusion.export", f"ckpt_path={missing}", f"out={tmp_path / 'x'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1 and done.stderr.startswith(f"error: ckpt_path={missing}: no such checkpoint file")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
