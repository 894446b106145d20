"""The one user-error path: exit code 1, one stderr line `error: <where>: <what>; expected <what>`, no traceback.

The cases run the jobs that `train.py` / `evaluate.py` run (`intentfusion.cli.run_train` / `run_evaluate`) on
composed configs, in process; one case runs `train.py` itself to show that Hydra adds nothing to the line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import open_dict

from intentfusion.cli import run_evaluate, run_train
from intentfusion.errors import ConfigError, DataError, UserError, exit_on_user_error, user_error_of

from .conftest import ROOT

ROWS = ["text,intent", *(f"where is my order number {i},order_status" for i in range(12)),
        *(f"please cancel my plan {i},cancel" for i in range(12))]


def _error_line(capsys: pytest.CaptureFixture, run, cfg) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run(cfg)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("error: ")
    return lines[0]


def _csv(tmp_path: Path, name: str, rows: list[str] | bytes) -> Path:
    path = tmp_path / name
    if isinstance(rows, bytes):
        path.write_bytes(rows)
    else:
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def _csv_cfg(cfg_factory, train: Path, *overrides: str):
    return cfg_factory("data=csv", f"data.source.train={train}", "tasks=intent_only", "debug=fdr", *overrides)


def test_a_malformed_csv_row_names_its_file_and_line(cfg_factory, tmp_path, capsys) -> None:
    bad = _csv(tmp_path, "bad.csv", [*ROWS[:3], "just one field", *ROWS[3:]])
    line = _error_line(capsys, run_train, _csv_cfg(cfg_factory, bad))
    assert f"{bad}:4: 1 field(s); expected 2" in line


def test_non_utf8_bytes_name_their_file_and_line(cfg_factory, tmp_path, capsys) -> None:
    text = "\n".join(ROWS).encode()
    bad = _csv(tmp_path, "latin1.csv", text.replace(b"please cancel my plan 3", b"caf\xe9 cancel my plan 3"))
    line = _error_line(capsys, run_train, _csv_cfg(cfg_factory, bad))
    assert f"{bad}:" in line and "undecodable bytes" in line and "expected UTF-8" in line


def test_a_missing_column_names_the_file_and_the_key(cfg_factory, tmp_path, capsys) -> None:
    train = _csv(tmp_path, "train.csv", ROWS)
    line = _error_line(capsys, run_train, _csv_cfg(cfg_factory, train, "data.source.text_column=body"))
    assert f"{train}: column 'body' (text_column) not found" in line and "expected" in line


def test_an_unseen_test_label_names_the_split_and_the_label(cfg_factory, tmp_path, capsys) -> None:
    train = _csv(tmp_path, "train.csv", ROWS)
    test = _csv(tmp_path, "test.csv", ["text,intent", "my card was stolen,card_stolen", "where is it,order_status"])
    line = _error_line(capsys, run_train, _csv_cfg(cfg_factory, train, f"data.source.test={test}"))
    assert "card_stolen" in line and "expected" in line


def test_a_non_numeric_learning_rate_names_the_key(cfg_factory, capsys) -> None:
    line = _error_line(capsys, run_train, cfg_factory("hparams.lr=abc", "debug=fdr"))
    assert line == "error: hparams.lr: 'abc' is not valid; expected a number > 0, e.g. 3e-5"


def test_an_unknown_precision_names_the_key_for_train_and_evaluate(cfg_factory, tmp_path, capsys) -> None:
    line = _error_line(capsys, run_train, cfg_factory("trainer.precision=bogus", "debug=fdr"))
    assert line.startswith("error: trainer.precision: 'bogus' is not a precision; expected auto or one of ")
    assert "32-true" in line and "bf16-mixed" in line
    cfg = cfg_factory(f"ckpt_path={tmp_path / 'run.ckpt'}", "trainer.precision=bf17", config="evaluate")
    assert _error_line(capsys, run_evaluate, cfg).startswith("error: trainer.precision: 'bf17' is not a precision")


def test_an_unknown_key_in_a_phase_file_names_the_phase_and_the_key(cfg_factory, capsys) -> None:
    cfg = cfg_factory("debug=fdr")
    with open_dict(cfg):
        cfg.phases.schedule[0]["unfreez_per_epoch"] = 2  # a typo, as in a hand-written phase file
    line = _error_line(capsys, run_train, cfg)  # raised inside hydra.utils.instantiate, which wraps it
    assert "phases.schedule[0]" in line and "unfreez_per_epoch" in line


def test_a_missing_checkpoint_for_evaluate_names_the_path(cfg_factory, tmp_path, capsys) -> None:
    missing = tmp_path / "nope.ckpt"
    cfg = cfg_factory(f"ckpt_path={missing}", config="evaluate")
    line = _error_line(capsys, run_evaluate, cfg)
    assert line == f"error: ckpt_path={missing}: no such checkpoint file; expected a .ckpt written by train.py"


def test_bugs_keep_their_traceback_and_user_errors_are_found_behind_wrappers() -> None:
    @exit_on_user_error
    def buggy() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        buggy()
    try:
        try:
            raise DataError("data.x", "bad", "good")
        except DataError as inner:
            raise RuntimeError("Error in call to target") from inner
    except RuntimeError as outer:
        assert isinstance(user_error_of(outer), DataError)
    assert str(ConfigError("hparams.lr", "'abc' is not valid", "a number")) == (
        "hparams.lr: 'abc' is not valid; expected a number"
    )
    assert issubclass(ConfigError, UserError) and issubclass(DataError, UserError)


def test_train_py_prints_only_the_error_line(tmp_path) -> None:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "hparams.lr=abc", "logger=none", f"paths.output_dir={tmp_path}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 1
    expected = "error: hparams.lr: 'abc' is not valid; expected a number > 0, e.g. 3e-5"
    assert proc.stderr.strip().splitlines() == [expected]
