"""`warn_if_slow_bf16`: bf16 autocast on a CPU that only emulates bf16 is flagged; fp32 and native bf16 are not."""

from __future__ import annotations

import warnings

import pytest
import torch

from intentfusion.utils.hardware import runs_bf16_natively, serving_precision, warn_if_slow_bf16


def cpu_with(monkeypatch, **capabilities: bool) -> None:
    base = {"avx512_bf16": False, "amx_bf16": False, "avx2": True}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {**base, **capabilities})


def test_bf16_on_a_cpu_without_bf16_units_warns_with_the_fix(monkeypatch) -> None:
    cpu_with(monkeypatch)
    assert not runs_bf16_natively("cpu")
    with pytest.warns(UserWarning, match=r"trainer\.precision=bf16-mixed: this CPU has no native bf16.*use 32-true"):
        assert warn_if_slow_bf16("bf16-mixed", "cpu", "trainer.precision")


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_native_bf16_and_fp32_are_not_flagged(monkeypatch, flag: str) -> None:
    cpu_with(monkeypatch, **{flag: True})
    assert runs_bf16_natively("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_if_slow_bf16("bf16-mixed", "cpu")
        cpu_with(monkeypatch)
        assert not warn_if_slow_bf16("32-true", "cpu") and not warn_if_slow_bf16("32", "cpu")


@pytest.mark.parametrize(
    ("trained", "native", "served"),
    [("bf16-mixed", False, "32"), ("bf16-mixed", True, "bf16-mixed"), ("32-true", False, "32-true"),
     ("16-mixed", False, "16-mixed")],
)
def test_serving_precision_runs_fp32_where_bf16_is_only_emulated(monkeypatch, trained, native, served) -> None:
    cpu_with(monkeypatch, amx_bf16=native)
    assert serving_precision(trained, "cpu") == served
