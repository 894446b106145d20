"""What the machine runs fast: bf16 autocast pays only where the hardware has bf16 matrix units."""

from __future__ import annotations

import warnings

import torch


def runs_bf16_natively(device: str | torch.device = "cpu") -> bool:
    """CUDA: `torch.cuda.is_bf16_supported()`; CPU: AVX512-BF16 or AMX-BF16 (else bf16 is emulated, and slow)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


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
