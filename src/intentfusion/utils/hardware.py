"""What the machine runs fast: bf16 autocast pays only where the hardware has bf16 matrix units; torch's thread count
for a block (`torch_threads`)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch

# torch.cpu.get_capabilities() keys of the CPU's bf16 matrix units, and their names in messages
CPU_BF16_UNITS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16"}


def cpu_bf16_units() -> list[str]:
    """The bf16 matrix units this CPU has (`AMX-BF16`, `AVX512-BF16`); empty: bf16 is emulated, and slow."""
    capabilities = torch.cpu.get_capabilities()
    return [name for key, name in CPU_BF16_UNITS.items() if capabilities.get(key)]


def runs_bf16_natively(device: str | torch.device = "cpu") -> bool:
    """CUDA: `torch.cuda.is_bf16_supported()`; CPU: AVX512-BF16 or AMX-BF16 (else bf16 is emulated, and slow)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(cpu_bf16_units())


def auto_precision(accelerator: str = "cpu") -> tuple[str, str]:
    """What `trainer.precision=auto` trains in on `accelerator`, and why (for the log line).

    CPU: `bf16-mixed` where the CPU has bf16 matrix units (AMX-BF16 or AVX512-BF16), else `32-true` (bf16
    autocast is several times slower than fp32 there). GPU (`gpu`, `cuda`): `bf16-mixed` where CUDA supports
    bf16, else `16-mixed`. `auto` is the GPU when CUDA is available, else the CPU; any other accelerator: `32-true`.
    """
    kind = str(accelerator).lower()
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        units = cpu_bf16_units()
        return ("bf16-mixed", "/".join(units)) if units else ("32-true", "no AVX512-BF16/AMX on this CPU")
    if kind in ("gpu", "cuda"):
        if torch.cuda.is_available() and runs_bf16_natively("cuda"):
            return "bf16-mixed", "CUDA bf16"
        return "16-mixed", "no CUDA bf16"
    return "32-true", f"accelerator {accelerator}"


def is_emulated_bf16(precision: object, device: str | torch.device = "cpu") -> bool:
    """Whether `precision` asks for bf16 on a CPU/GPU that only emulates it."""
    device = torch.device(device)
    return str(precision).startswith("bf16") and device.type in ("cpu", "cuda") and not runs_bf16_natively(device)


def warn_if_slow_bf16(precision: object, device: str | torch.device = "cpu", where: str = "precision") -> bool:
    """Warn (and return True) when `precision` asks for bf16 on a device that only emulates it."""
    if not is_emulated_bf16(precision, device):
        return False
    device = torch.device(device)
    warnings.warn(
        f"{where}={precision}: this {device.type.upper()} has no native bf16 (no AVX512-BF16/AMX), so bf16 "
        "autocast runs several times slower than fp32 (MiniLM training 2.9x slower, see BENCHMARKS.md); "
        "use 32-true unless you need bf16 numerics",
        UserWarning,
        stacklevel=2,
    )
    return True


def serving_precision(trained: object, device: str | torch.device = "cpu") -> str:
    """What `precision="auto"` serves: the training run's precision, except bf16 on a device that only emulates
    it, which runs float32 (several times faster there, and no less accurate)."""
    return "32" if is_emulated_bf16(trained, device) else str(trained)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to `n` inside the block, restored after it (None: left as they are)."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
