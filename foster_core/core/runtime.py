"""Device choice, numeric precision and seeding, shared by training, encoding, distillation and the CLI.

A device the user names explicitly is a promise: asking for CUDA on a machine without it is an error,
never a silent fall-back to the CPU (a run that was meant to take minutes would take hours unnoticed).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
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


def device_key(device: str) -> str:
    """How a device enters a cache key or a training's fingerprint: "auto" when `device` resolves to the kind
    of device "auto" picks here (the two train alike: one cache entry), else `device` itself."""
    try:
        if resolve_device(device).type == resolve_device("auto").type:
            return "auto"
    except ValueError:  # e.g. "cuda" on a machine without one: training will say so
        pass
    return device


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


class PeakMemory:
    """Peak memory of a block: CUDA allocator peak on a GPU, sampled resident set growth on the CPU."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.peak_mb = 0.0

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        else:
            self._base = _rss_mb()
            self._stop = threading.Event()
            self._peak = self._base
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._peak = max(self._peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_mb = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            self._stop.set()
            self._thread.join()
            self.peak_mb = max(self._peak, _rss_mb()) - self._base


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return 0.0
