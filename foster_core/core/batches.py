"""Mini-batches of real training rows for `training.fit`, optionally in length buckets (and sharded under torchrun)."""

from __future__ import annotations

from typing import Iterator

import torch

from . import distributed


def shuffled_batches(tensors: tuple[torch.Tensor, ...], batch_size: int, generator: torch.Generator,
                     lengths: torch.Tensor | None = None, chunk: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """Shuffled mini-batches of `tensors`' rows, every row once per epoch, in random batch order. With `lengths`:
    the shuffled rows in chunks of `chunk` batches' worth (0: all rows in one), each chunk sorted by length and
    cut into batches of about `batch_size` x the mean length real positions: many short rows, or few long
    ones (TrainConfig.bucket_by_length says why)."""
    order = torch.randperm(len(tensors[0]), generator=generator)
    if lengths is None:
        batches = list(order.split(batch_size))
    else:
        budget, batches = batch_size * float(lengths.float().mean()), []
        for rows in order.split(batch_size * chunk if chunk > 0 else len(order)):
            rows = rows[torch.argsort(lengths[rows], stable=True)]
            # A row joins the batch where its first position falls: equal rows give batches of batch_size rows.
            sizes = lengths[rows].double()
            batch_of = ((torch.cumsum(sizes, 0) - sizes) / budget).floor().long()
            batches += list(rows.split(torch.unique_consecutive(batch_of, return_counts=True)[1].tolist()))
        batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
    for index in batches:
        own = distributed.shard(index)  # under torchrun, this process's share of the batch
        if own is not None:
            yield tuple(t[own] for t in tensors)
