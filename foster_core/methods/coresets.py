"""Coreset baselines: real training sequences, picked four ways and used as they are.

Each selector returns `count` usable training sequences in the order it picks them. K-Center and herding
work on sequence embeddings: the coreset methods embed a sequence by its items' texts and so never train
the expert (`CORESET_SELECTORS`); `teacher`'s and FOSTER's starts, which train it anyway, use its
summaries of the sequences (`SELECTORS`). `packed_groups` groups picked sequences to lay end to end for data
whose sequences are short.
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


Embedder = Callable[[DistillContext, np.ndarray], torch.Tensor]  # (context, indices) -> unit rows, one each


def expert_summaries(context: DistillContext, indices: np.ndarray) -> torch.Tensor:
    """The expert's summaries of the sequences (trains the expert when it is not cached)."""
    return context.sequence_embeddings(indices)


def text_summaries(context: DistillContext, indices: np.ndarray) -> torch.Tensor:
    """The sequences' summaries from their items' texts alone: no expert is trained for them."""
    return context.text_sequence_embeddings(indices)


def kcenter_by(embed: Embedder) -> Selector:
    """Greedy K-Center on the usable sequences' embeddings from `embed`."""
    def kcenter_sequence_indices(context: DistillContext, count: int, seed: int) -> np.ndarray:
        usable = context.usable
        return usable[kcenter_indices(embed(context, usable), count, seed)]
    return kcenter_sequence_indices


def herding_by(embed: Embedder) -> Selector:
    """Herding on the usable sequences' embeddings from `embed`: greedily pick sequences whose running mean
    embedding tracks the mean of all sequences."""
    def herding_indices(context: DistillContext, count: int, seed: int) -> np.ndarray:
        usable = context.usable
        emb = embed(context, usable)
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
    return herding_indices


# The start selections of `teacher`, FOSTER and bptt (their `selection` / `init_selection`): those methods
# train the expert anyway, so K-Center and herding use its summaries of the sequences.
SELECTORS: dict[str, Selector] = {
    "random": random_indices, "longest": longest_indices, "kcenter": kcenter_by(expert_summaries),
    "herding": herding_by(expert_summaries),
}
SELECTIONS = tuple(SELECTORS)
# The coreset methods of the same names: no expert, so K-Center and herding use the sequences' texts.
CORESET_SELECTORS: dict[str, Selector] = {
    **SELECTORS, "kcenter": kcenter_by(text_summaries), "herding": herding_by(text_summaries),
}


def add_selector(name: str, selector: Selector) -> None:
    """Offer a selector defined in a method's own module (dealrec.py, goracs.py: they import this one) as a
    start for teacher and FOSTER. Those modules are imported with the package, before anyone reads SELECTIONS."""
    global SELECTIONS
    SELECTORS[name] = selector
    SELECTIONS = tuple(SELECTORS)


def check_selection(name: str, field_name: str) -> None:
    if name not in SELECTORS:
        raise ValueError(f"{field_name} must be {', '.join(SELECTIONS)}, not {name!r}")


def selected_sequences(context: DistillContext, selection: str, count: int, seed: int,
                       drop_last: bool = False, selectors: dict[str, Selector] = SELECTORS) -> SyntheticData:
    """The first `count` training sequences in the selection's order, as one-hot synthetic data (with
    `drop_last`, each without its last item: see `packed_groups`)."""
    return sequences_as_synthetic(context, selectors[selection](context, count, seed), drop_last)


def sequences_as_synthetic(context: DistillContext, indices: np.ndarray, drop_last: bool = False) -> SyntheticData:
    """Training sequences by index, as one-hot synthetic data (each without its last item with `drop_last`)."""
    return SyntheticData.from_sequences([_sequence(context, i, drop_last) for i in indices],
                                        context.model_cfg.max_len - 1)


def _sequence(context: DistillContext, index: int, drop_last: bool) -> np.ndarray:
    return context.train[index][:-1] if drop_last else context.train[index]


def packed_groups(context: DistillContext, budget: int, selection: str, seed: int,
                  drop_last: bool = False) -> list[list[np.ndarray]]:
    """`budget` groups of whole real sequences, each group at most L = max_len - 1 positions: the rows of a
    packed start. A sequence of m items fills m - 1 positions (its inputs; its last item is a label only),
    and its students read it apart from the others of its row (`SyntheticData.segments`), so a row holds as
    many positions as a real sequence of max_len items does.

    Sequences are taken in the selection's order and each goes into the first group with room for all
    of it (first fit; none is cut). Short-sequence data would otherwise leave most of the L positions of a
    synthetic sequence empty.

    `drop_last` takes each sequence without its last item, the target of the training split's holdout: data
    whose labels are real next items then never hands a student the holdout's own (prefix, target) pairs.
    """
    capacity = context.model_cfg.max_len - 1  # positions per row
    count = min(len(context.usable), budget * capacity)  # every candidate fills at least one position
    bins: list[list[np.ndarray]] = [[] for _ in range(budget)]
    room = np.full(budget, capacity)
    for index in SELECTORS[selection](context, count, seed):
        seq = _sequence(context, index, drop_last)[-(capacity + 1):]
        fits = np.flatnonzero(room >= len(seq) - 1)
        if len(seq) > 1 and len(fits):
            bins[fits[0]].append(seq)
            room[fits[0]] -= len(seq) - 1
        if room.max() < 1:
            break
    # Too few sequences to fill every row: an empty row means every sequence found room, and there are at
    # least `budget` of them, so some row holds two; the fullest rows give their last sequence away.
    for empty in [j for j in range(budget) if not bins[j]]:
        donor = max(range(budget), key=lambda j: len(bins[j]))
        bins[empty].append(bins[donor].pop())
    return bins


def _coreset_method(selection: str) -> Callable[..., SyntheticData]:
    def distill_coreset(context: DistillContext, budget: int, config: RunSettings,
                        on_event: EventCallback | None = None, should_stop: StopCheck | None = None,
                        resume: Checkpoint | None = None) -> SyntheticData:
        return selected_sequences(context, selection, budget, config.seed, selectors=CORESET_SELECTORS)
    distill_coreset.__name__ = f"distill_{selection}"
    distill_coreset.__doc__ = f"The first `budget` training sequences in {selection} order, as they are."
    return distill_coreset


_HELP = {
    "random": "real training sequences drawn uniformly at random",
    "longest": "the longest real training sequences",
    "kcenter": "real sequences spread out by greedy K-Center on their items' text embeddings",
    "herding": "real sequences whose mean text embedding tracks the mean of all sequences (herding)",
}
for _name in CORESET_SELECTORS:  # real sequences as they are: no expert, no trajectory
    register(MethodSpec(_name, _coreset_method(_name), RunSettings, help=_HELP[_name], needs_expert=False))
