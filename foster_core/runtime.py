"""Device choice, numeric precision and seeding, shared by training, encoding, distillation and the CLI.

A device the user names explicitly is a promise: asking for CUDA on a machine without it is an error,
never a silent fall-back to the CPU (a run that was meant to take minutes would take hours unnoticed).
"""

from __future__ import annotations

import contextlib
import random
from typing import ContextManager

import numpy as np
import torch

PRECISIONS = ("fp32", "bf16")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' picks CUDA when present; an explicit 'cuda' without a GPU is an error worth seeing."""
    if isinstance(device, torch.device):
        device = str(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'.") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for, but no CUDA GPU is available (torch {torch.__version__}, "
                f"built for CUDA {torch.version.cuda or 'none'}); use 'auto' or 'cpu'."
            )
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ValueError(f"device={device!r} was asked for, but only {count} CUDA device(s) exist (0..{count - 1}).")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device={device!r} was asked for, but MPS is not available here; use 'auto' or 'cpu'.")
    return resolved


def check_precision(precision: str, device: torch.device | None = None) -> None:
    """'fp32' everywhere; 'bf16' (autocast) on CUDA only.

    bf16 autocast on the CPU is refused rather than ignored: on these CPUs it is slower than fp32, and it
    would change results without making anything faster, so a run asking for it has a mistake in it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "bf16" and device is not None and device.type != "cuda":
        raise ValueError(
            f"precision='bf16' needs a CUDA device (this run resolved to {device}); use precision='fp32' on the CPU."
        )


def autocast(device: torch.device, precision: str = "fp32") -> ContextManager:
    """The forward-pass context for a precision: nothing for fp32, bf16 autocast on CUDA.

    bf16 keeps fp32's exponent range, so no gradient scaler is needed; weights and optimiser state stay fp32.
    """
    check_precision(precision, device)
    if precision == "bf16":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that a wall-clock timer measures the work and not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
