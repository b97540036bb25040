"""Coreset baselines: real training sequences, picked four ways and used as they are.

Each selector returns `count` usable training sequences in the order it picks them; `teacher` and
FOSTER's start reuse the same selectors (`SELECTORS`), and `packed_sequences` lays picked sequences end
to end for data whose sequences are short.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..core.synthetic import SyntheticData
from .events import Checkpoint, EventCallback, StopCheck
from .expert import DistillContext
from .registry import MethodSpec, RunSettings, register

Selector = Callable[[DistillContext, int, int], np.ndarray]  # (context, count, seed) -> training indices


def random_indices(context: DistillContext, count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(context.usable, count, replace=False)


def longest_indices(context: DistillContext, count: int, seed: int) -> np.ndarray:
    usable = context.usable
    lengths = np.array([len(context.train[i]) for i in usable])
    return usable[np.argsort(-lengths, kind="stable")[:count]]


def kcenter_indices(embeddings: torch.Tensor, budget: int, seed: int = 0) -> list[int]:
    """Greedy K-Center: each pick is the row farthest from all picks so far; never the same row twice."""
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(embeddings)))]
    distance = torch.cdist(embeddings, embeddings[chosen]).squeeze(1)
    while len(chosen) < budget:
        distance[chosen] = -1.0  # duplicates of a pick are at distance 0 and must not be picked again
        nxt = int(distance.argmax())
        chosen.append(nxt)
        distance = torch.minimum(distance, torch.cdist(embeddings, embeddings[nxt : nxt + 1]).squeeze(1))
    return chosen


def kcenter_sequence_indices(context: DistillContext, count: int, seed: int) -> np.ndarray:
    """Greedy K-Center on the expert's sequence embeddings."""
    usable = context.usable
    return usable[kcenter_indices(context.sequence_embeddings(usable), count, seed)]


def herding_indices(context: DistillContext, count: int, seed: int) -> np.ndarray:
    """Herding: greedily pick sequences whose running mean embedding tracks the mean of all sequences."""
    usable = context.usable
    emb = context.sequence_embeddings(usable)
    target = emb.mean(0)
    total = torch.zeros_like(target)
    available = torch.ones(len(usable), dtype=torch.bool)
    chosen = []
    for k in range(1, count + 1):
        gap = ((total + emb) / k - target).norm(dim=1).masked_fill(~available, float("inf"))
        pick = int(gap.argmin())
        chosen.append(pick)
        available[pick] = False
        total += emb[pick]
    return usable[chosen]


SELECTORS: dict[str, Selector] = {
    "random": random_indices, "longest": longest_indices, "kcenter": kcenter_sequence_indices,
    "herding": herding_indices,
}
SELECTIONS = tuple(SELECTORS)


def check_selection(name: str, field_name: str) -> None:
    if name not in SELECTORS:
        raise ValueError(f"{field_name} must be {', '.join(SELECTIONS)}, not {name!r}")


def selected_sequences(context: DistillContext, selection: str, count: int, seed: int,
                       drop_last: bool = False) -> SyntheticData:
    """The first `count` training sequences in the selection's order, as one-hot synthetic data (with
    `drop_last`, each without its last item: see `packed_sequences`)."""
    indices = SELECTORS[selection](context, count, seed)
    return SyntheticData.from_sequences([_sequence(context, i, drop_last) for i in indices],
                                        context.model_cfg.max_len - 1)


def _sequence(context: DistillContext, index: int, drop_last: bool) -> np.ndarray:
    return context.train[index][:-1] if drop_last else context.train[index]


def packed_sequences(context: DistillContext, budget: int, selection: str, seed: int,
                     drop_last: bool = False) -> list[np.ndarray]:
    """`budget` synthetic sequences of up to max_len items, each whole real sequences laid end to end.

    Sequences are taken in the selection's order and each goes into the first sequence with room for all
    of it (first fit; none is cut). Short-sequence data would otherwise leave most of the L positions of a
    synthetic sequence empty.

    `drop_last` takes each sequence without its last item, the target of the training split's holdout: data
    whose labels are real next items then never hands a student the holdout's own (prefix, target) pairs.
    """
    capacity = context.model_cfg.max_len
    count = min(len(context.usable), budget * capacity // 2)
    bins: list[list[np.ndarray]] = [[] for _ in range(budget)]
    room = np.full(budget, capacity)
    for index in SELECTORS[selection](context, count, seed):
        seq = _sequence(context, index, drop_last)[-capacity:]
        fits = np.flatnonzero(room >= len(seq))
        if len(fits):
            bins[fits[0]].append(seq)
            room[fits[0]] -= len(seq)
        if room.max() < 2:
            break
    # Too few sequences to fill every row: an empty row means every sequence found room, and there are at
    # least `budget` of them, so some row holds two; the fullest rows give their last sequence away.
    for empty in [j for j in range(budget) if not bins[j]]:
        donor = max(range(budget), key=lambda j: len(bins[j]))
        bins[empty].append(bins[donor].pop())
    return [np.concatenate(parts) for parts in bins]


def _coreset_method(selection: str) -> Callable[..., SyntheticData]:
    def distill_coreset(context: DistillContext, budget: int, config: RunSettings,
                        on_event: EventCallback | None = None, should_stop: StopCheck | None = None,
                        resume: Checkpoint | None = None) -> SyntheticData:
        return selected_sequences(context, selection, budget, config.seed)
    distill_coreset.__name__ = f"distill_{selection}"
    distill_coreset.__doc__ = f"The first `budget` training sequences in {selection} order, as they are."
    return distill_coreset


_HELP = {
    "random": "real training sequences drawn uniformly at random",
    "longest": "the longest real training sequences",
    "kcenter": "real sequences spread out by greedy K-Center on the expert's sequence embeddings",
    "herding": "real sequences whose mean embedding tracks the mean of all sequences (herding)",
}
for _name in SELECTORS:
    register(MethodSpec(_name, _coreset_method(_name), RunSettings, help=_HELP[_name]))
