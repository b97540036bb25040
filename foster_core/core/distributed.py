"""Training on several processes: PyTorch DistributedDataParallel under `torchrun`.

    torchrun --nproc_per_node 2 -m foster_core train --dataset movielens

`torchrun` starts N copies of the command and tells each its place (RANK, WORLD_SIZE, LOCAL_RANK and the
rendezvous address, in the environment). `start` joins them into one process group: gloo on the CPU,
NCCL on GPUs (one GPU per process, by LOCAL_RANK). Training (`training.fit`) then splits every
mini-batch between the processes and averages their gradients (DDP), so N processes take the same
optimiser steps as one process with the same batch size and learning rate, and reach the same quality
within the seed spread; each process computes 1/N of every batch. Validation users are split between
them too, and their metrics averaged, so every process makes the same early-stopping decision.

Everything else runs once: the first process (rank 0) alone writes checkpoints, caches and reports. The
others wait where it writes a shared cache (`main_first`). Multi-node runs need the cache and checkpoint
folders on a file system every node sees (see the README).

Without torchrun (no WORLD_SIZE, or 1) every function here is a no-op for one process.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Callable, Iterator

import torch
import torch.distributed as dist

BatchLoss = Callable[[torch.nn.Module, tuple[torch.Tensor, ...]], torch.Tensor]


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether this process belongs to a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """The process that writes files and reports (the only one without torchrun)."""
    return rank() == 0


def start(device: str = "auto") -> bool:
    """Join the process group torchrun set up, when it did: gloo on the CPU, NCCL when this run trains on
    CUDA. True when this process now trains with others."""
    if not launched() or active():
        return active()
    if not dist.is_available():
        raise RuntimeError("this PyTorch build has no torch.distributed; run one process")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    # A long first epoch or an encoding on rank 0 must not time the others out (the default is 30 min).
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=6))
    return True


def stop() -> None:
    """Leave the process group (every process calls it at the same point): later training runs alone."""
    if active():
        dist.barrier()
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """This process's GPU when several processes train on CUDA (one each, by LOCAL_RANK)."""
    if active() and device.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. encodes item texts into the shared cache); the others run it
    after, when it finds the cache written."""
    if not active():
        yield
        return
    if not is_main():
        dist.barrier()
    yield
    if is_main():
        dist.barrier()


class _LossOf(torch.nn.Module):
    """A model and its batch loss as one module, so DDP sees the whole step's forward pass (a batch loss
    calls several of the model's methods, not only its forward)."""

    def __init__(self, model: torch.nn.Module, batch_loss: BatchLoss):
        super().__init__()
        self.model, self.batch_loss = model, batch_loss

    def forward(self, *batch: torch.Tensor) -> torch.Tensor:
        return self.batch_loss(self.model, batch)


def step_loss(model: torch.nn.Module, batch_loss: BatchLoss, device: torch.device) -> Callable[..., torch.Tensor]:
    """`loss(*batch)` for a training step: `batch_loss(model, batch)`, wrapped in DistributedDataParallel
    when several processes train, so that backward averages their gradients."""
    module = _LossOf(model, batch_loss)
    if not active():
        return module
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def shard(index: torch.Tensor) -> torch.Tensor | None:
    """This process's rows of a mini-batch (every N-th, from its rank), or None when the batch has fewer
    rows than processes (every process skips it alike, so their steps stay in step)."""
    if not active():
        return index
    if len(index) < world_size():
        return None
    return index[rank() :: world_size()]


def _on_backend(tensor: torch.Tensor) -> torch.Tensor:
    """NCCL reduces CUDA tensors only; gloo takes CPU tensors."""
    if dist.get_backend() == "nccl":
        return tensor.to(torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))))
    return tensor


def mean_over_processes(values: dict[str, float], weight: float) -> dict[str, float]:
    """Each value averaged over the processes, weighted by `weight` (e.g. each one's number of users): the
    metrics of all validation users, from each process's metrics on its own share of them."""
    if not active():
        return values
    keys = sorted(values)
    totals = _on_backend(torch.tensor([values[k] * weight for k in keys] + [weight], dtype=torch.float64))
    dist.all_reduce(totals)
    totals = totals.cpu()
    return {k: float(totals[i] / totals[-1]) for i, k in enumerate(keys)}


def any_process(flag: bool) -> bool:
    """True on every process when it is true on any: decisions that read a process's own clock (a time
    limit) must be taken together, or one process would wait for the others' next step forever."""
    if not active():
        return flag
    value = _on_backend(torch.tensor([1.0 if flag else 0.0]))
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)
