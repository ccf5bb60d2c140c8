"""Which device SAM 2 runs on: ``auto`` picks CUDA, else MPS where it works, else the CPU."""

from __future__ import annotations

import torch

from sam2vol.errors import InputError


def mps_works() -> bool:
    """Whether MPS is there and runs what SAM 2 needs (bfloat16 memories: macOS 14 or later)."""
    mps = getattr(torch.backends, "mps", None)
    if mps is None or not mps.is_available():
        return False
    try:
        x = torch.ones(2, 2, device="mps", dtype=torch.bfloat16)
        return bool(((x @ x).float().sum() == 8).item())
    except (RuntimeError, TypeError):
        return False


def pick_device(device: str) -> torch.device:
    """``auto`` -> CUDA, else MPS where it works, else CPU; otherwise the named device (checked)."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_works():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"--device must be auto, cpu, cuda or mps, got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA device is available")
    if dev.type == "mps" and not mps_works():
        raise InputError(
            "--device mps: MPS is not available or cannot run bfloat16 (SAM 2 keeps its "
            "memories in bfloat16; that needs macOS 14 or later); use --device cpu"
        )
    if dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"--device must be auto, cpu, cuda or mps, got {device!r}")
    return dev
