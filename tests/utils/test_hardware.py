"""`warn_if_slow_bf16`: bf16 autocast on a CPU that only emulates bf16 is flagged; fp32 and native bf16 are not.
`auto_precision`: `trainer.precision=auto` trains in bf16-mixed where the CPU has AMX/AVX512-BF16, in fp32 elsewhere.
`torch_threads`: torch's intra-op threads for a block, restored after it."""

from __future__ import annotations

import warnings

import pytest
import torch

from intentfusion.utils.hardware import (
    auto_precision,
    runs_bf16_natively,
    serving_precision,
    torch_threads,
    warn_if_slow_bf16,
)


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


@pytest.mark.parametrize(
    ("capabilities", "unit"),
    [({"amx_bf16": True}, "AMX-BF16"), ({"avx512_bf16": True}, "AVX512-BF16"),
     ({"amx_bf16": True, "avx512_bf16": True}, "AMX-BF16/AVX512-BF16")],
)
def test_auto_trains_bf16_on_a_cpu_with_bf16_units(monkeypatch, capabilities: dict, unit: str) -> None:
    cpu_with(monkeypatch, **capabilities)
    assert auto_precision("cpu") == ("bf16-mixed", unit)


def test_auto_trains_fp32_on_a_cpu_without_bf16_units(monkeypatch) -> None:
    cpu_with(monkeypatch, avx512f=True)  # AVX512 without its BF16 extension still emulates bf16
    assert auto_precision("cpu") == ("32-true", "no AVX512-BF16/AMX on this CPU")


@pytest.mark.parametrize(("cuda_bf16", "expected"), [(True, "bf16-mixed"), (False, "16-mixed")])
@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "auto"])
def test_auto_on_a_gpu_is_bf16_where_cuda_has_it_else_fp16(monkeypatch, cuda_bf16, expected, accelerator) -> None:
    cpu_with(monkeypatch, amx_bf16=not cuda_bf16)  # the CPU's units do not decide for a GPU trainer
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: cuda_bf16)
    assert auto_precision(accelerator)[0] == expected


@pytest.mark.parametrize("native", [False, True])
def test_accelerator_auto_without_cuda_follows_the_cpu(monkeypatch, native: bool) -> None:
    cpu_with(monkeypatch, avx512_bf16=native)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert auto_precision("auto")[0] == ("bf16-mixed" if native else "32-true")
    assert auto_precision("mps")[0] == "32-true"


def test_torch_threads_sets_them_for_the_block_and_restores_them_after_an_error() -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(before + 1):
        assert torch.get_num_threads() == before + 1
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
