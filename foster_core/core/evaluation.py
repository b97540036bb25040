"""One evaluation protocol for every recommender: full ranking over all items, history masked.

For each user the scorer sees the input sequence and returns a score for every item in the catalogue.
Items already in the user's input history are removed from the ranking (score -inf), then the target's
rank is counted against all remaining items; no sampled negatives. Ties count against the target, so a
model that gives every item the same score scores zero. A target that is itself in the history (a repeat
purchase) is masked with it and counts as a miss.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .data import PAD_ID, Split, item_counts, pad_left

KS = (10, 20)
Scorer = Callable[[torch.Tensor], torch.Tensor]  # padded item ids (B, L) -> scores (B, M)


class NonFiniteScoresError(RuntimeError):
    """A model produced NaN or infinite scores; its metrics would be meaningless."""


def target_ranks(scores: torch.Tensor, targets: torch.Tensor, history: torch.Tensor | None = None) -> torch.Tensor:
    """0-based rank of each target among the items outside its user's history.

    `history` (B, H) holds each user's history item ids, left-padded with PAD_ID; repeats are allowed. The
    rank counts the items that score at least as high as the target (ties count against it), less the
    history items among them, so no (B, M) mask is built: a pass over the scores costs two reads of them
    (a row sum that catches NaN and inf, and one comparison), which matters at tens of thousands of users."""
    if not torch.isfinite(scores.sum(dim=1)).all():  # NaN or inf anywhere in a row makes its sum non-finite
        bad = int((~torch.isfinite(scores)).any(dim=1).sum())
        raise NonFiniteScoresError(f"{bad} of {scores.shape[0]} users got NaN or infinite scores; refusing to rank them.")
    scores = scores.float()  # bf16 scores from autocast would tie far more often
    target_scores = scores.gather(1, targets.view(-1, 1))
    # int32 counts: summing a bool tensor into the default int64 first copies it whole, 5x slower on the CPU.
    ranks = (scores >= target_scores).sum(dim=1, dtype=torch.int32).long() - 1
    if history is None or history.shape[1] == 0:
        return ranks
    history, _ = history.sort(dim=1)  # equal ids side by side, so each is counted once
    first = torch.ones_like(history, dtype=torch.bool)
    first[:, 1:] = history[:, 1:] != history[:, :-1]
    real = (history != PAD_ID) & first
    above = (scores.gather(1, history.clamp(min=0)) >= target_scores) & real
    ranks = ranks - above.sum(dim=1)
    # A target that is itself history (a repeat purchase) is masked with it: a miss.
    target_masked = ((history == targets.view(-1, 1)) & real).any(dim=1)
    return torch.where(target_masked, torch.full_like(ranks, scores.shape[1]), ranks)


def metrics_from_ranks(ranks: torch.Tensor | np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = ranks < k
        out[f"ndcg@{k}"] = float(torch.where(hit, 1.0 / torch.log2(ranks + 2.0), torch.zeros_like(ranks)).mean())
        out[f"recall@{k}"] = float(hit.double().mean())
    return out


def length_batches(lengths: np.ndarray, batch_size: int, positions: int) -> list[slice]:
    """Cuts of ascending `lengths` into batches of at most `batch_size` users and at most `positions` padded
    positions each (a batch pads to its longest, its last row), and never fewer than one user."""
    cuts, start = [], 0
    while start < len(lengths):
        end = start + 1
        while end < len(lengths) and end - start < batch_size and (end + 1 - start) * lengths[end] <= positions:
            end += 1
        cuts.append(slice(start, end))
        start = end
    return cuts


def user_ranks(
    scorer: Scorer,
    inputs: list[np.ndarray],
    targets: np.ndarray,
    num_items: int,
    max_len: int = 50,
    batch_size: int = 1024,
    device: torch.device | str = "cpu",
    positions: int = 16_384,
) -> torch.Tensor:
    """Each user's 0-based target rank (`target_ranks`), in the users' order: what every metric reads.

    Users are batched by length, each batch at most `batch_size` users and `positions` padded input
    positions: a batch pads to its longest user, so a fixed user count would let a few long histories pad
    a whole batch (a 1,000-user validation sample of amazon_scientific cost as much as all 8,442 users)."""
    ranks = torch.empty(len(inputs), dtype=torch.long)
    lengths = np.array([len(s) for s in inputs])
    order = np.argsort(lengths, kind="stable")
    for cut in length_batches(np.clip(lengths[order], 1, max_len), batch_size, positions):
        rows = order[cut]
        chunk = [inputs[i] for i in rows]
        seqs = torch.from_numpy(pad_left(chunk, min(max_len, max(1, max(len(s) for s in chunk))))).to(device)
        # The full history is masked, also any part older than the model's input window.
        history = torch.from_numpy(pad_left(chunk, max(1, max(len(s) for s in chunk)))).to(device)
        with torch.no_grad():
            scores = scorer(seqs)
        ranks[torch.from_numpy(rows)] = target_ranks(scores, torch.from_numpy(targets[rows]).to(device), history).cpu()
    return ranks


def evaluate_scorer(scorer: Scorer, inputs: list[np.ndarray], targets: np.ndarray, num_items: int, max_len: int = 50,
                    device: torch.device | str = "cpu", ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Metrics at each k in `ks` from every user's rank (`user_ranks`)."""
    return metrics_from_ranks(user_ranks(scorer, inputs, targets, num_items, max_len, device=device), ks)


def model_scorer(model: torch.nn.Module) -> Scorer:
    """Scores of every item after each sequence. The item table is computed once, for the whole pass, not
    twice per batch (inputs and scores): the model must not change while the scorer is in use."""
    with torch.no_grad():
        table = model.item_embeddings()

    def score(seqs: torch.Tensor) -> torch.Tensor:
        hidden = model.last_hidden(seqs, item_table=table)
        return model.score(hidden, item_table=table)

    return score


def popularity_scorer(train: list[np.ndarray], num_items: int) -> Scorer:
    """Scores every item by its count in the training split; ties broken by item id, like any stable sort."""
    counts = item_counts(train, num_items)
    order = np.argsort(-counts, kind="stable")
    scores = torch.empty(num_items)
    scores[torch.from_numpy(order)] = torch.arange(num_items, 0, -1, dtype=torch.float32)

    def score(seqs: torch.Tensor) -> torch.Tensor:
        return scores.to(seqs.device).expand(seqs.shape[0], -1)

    return score


def split_ranks(scorer: Scorer, split: Split, num_items: int, which: str = "test", max_len: int = 50,
                device: torch.device | str = "cpu") -> torch.Tensor:
    """Each user's target rank. Validation: input = training items, target = validation item. Test: input
    adds the validation item."""
    if which == "valid":
        return user_ranks(scorer, split.valid_inputs, split.valid_targets, num_items, max_len, device=device)
    if which == "test":
        return user_ranks(scorer, split.test_inputs, split.test_targets, num_items, max_len, device=device)
    raise ValueError(f"which must be 'valid' or 'test', not {which!r}")


def evaluate_split(
    scorer: Scorer, split: Split, num_items: int, which: str = "test", max_len: int = 50,
    device: torch.device | str = "cpu",
) -> dict[str, float]:
    return metrics_from_ranks(split_ranks(scorer, split, num_items, which, max_len, device))


def model_ranks(model: torch.nn.Module, split: Split, which: str = "test") -> torch.Tensor:
    """Each user's target rank under the model (in eval mode for the pass)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return split_ranks(model_scorer(model), split, model.num_items, which, model.cfg.max_len, device)
    finally:
        model.train(was_training)


def evaluate_model(model: torch.nn.Module, split: Split, which: str = "test") -> dict[str, float]:
    return metrics_from_ranks(model_ranks(model, split, which))
