"""`dealrec`: DEALRec's data pruning, one whole training sequence per pick.

From Lin et al., "Data-efficient Fine-tuning for LLM-based Recommendation" (SIGIR 2024, arXiv 2401.17197).

What is the paper's:

- **Influence score.** How much the empirical risk of a surrogate recommender (a SASRec trained on all the
  data) would rise if a sample were removed: (1/n) grad R^T H^-1 grad L(s) (an influence function). The
  paper computes H^-1 grad R once (the symmetric trick) by stochastic Hessian-vector products, so each
  sample then costs one gradient and one dot product.
- **Effort score.** The norm of the target model's (the LLM's) loss gradient on the sample, before
  fine-tuning: how hard the sample is for the model that will learn from it. It closes the gap between the
  surrogate and the target model.
- **Overall score.** The influence score plus lambda times the effort score.
- **Coverage-enhanced sample selection.** The score range is cut into K strata of equal width; the strata
  are visited from the smallest up, each gives min(its size, the budget left / the strata left) samples
  drawn at random, so that rare scores are kept and the budget still goes where the data are.

What is ours (this project's adaptation):

- **The unit** is one whole training sequence (the project's `Selector`), its loss the sum of the
  next-item cross-entropies at its positions (what a student trains on when it gets that sequence).
- **The surrogate** is the expert, the text-SASRec trained on the training split (`context.expert()`).
  **The target model** is a student before training: the expert trajectory's first checkpoint theta*_0,
  an untrained text-SASRec (the students start from random weights, as theta*_0 did).
- **Gradients** are last-layer gradients: each sequence's loss gradient with respect to the item
  embeddings that score the hidden state (the M x d output table, read as if untied), computed in batches
  from the softmax residual p - y, and randomly projected (Johnson-Lindenstrauss) to `gradient_dim`
  numbers: first along the item axis, then as a whole. `sequence_gradients` is this module's primitive;
  GORACS (goracs.py) uses it too.
- **The Hessian** in the projected space is the damped empirical Fisher (1/n) sum g g^T + delta I (as TRAK
  does), solved exactly once, instead of stochastic Hessian-vector products over all parameters.
- **The two scores are standardised** (z-scores) before `effort_weight` adds them, so lambda does not
  depend on the scale of the gradients.
- **Order of the picks.** The strata take turns (the first pick of every stratum, then the second, ...),
  so that any first k picks (as packing takes them) still spread over the score range; if the strata run
  short of the budget, random other sequences fill it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.data import PAD_ID, pad_left
from ..core.model import ItemTextModel
from ..core.synthetic import SyntheticData
from ..core.training import load_checkpoint
from .coresets import add_selector, sequences_as_synthetic
from .events import Checkpoint, EventCallback, StopCheck
from .expert import DistillContext
from .registry import MethodSpec, RunSettings, register

# Scores of this many (position, item) pairs are held at once: batches shrink as the catalogue grows.
_SCORES_PER_BATCH = 2 ** 23
_ITEM_ROWS = 32  # rows of the first, item-axis projection of a sequence's M x d gradient


@dataclass(frozen=True)
class DEALRecConfig(RunSettings):
    effort_weight: float = 0.5  # [lambda] weight of the (standardised) effort score
    strata: int = 10  # [K] equal-width score strata of the coverage-enhanced sampling
    gradient_dim: int = 256  # numbers a sequence's projected gradient keeps
    damping: float = 0.01  # [delta] added to the Fisher's diagonal, relative to its mean eigenvalue

    def __post_init__(self) -> None:
        if self.strata < 1:
            raise ValueError("strata must be at least 1 (the number of score ranges the budget is spread over).")
        if self.gradient_dim < 1:
            raise ValueError("gradient_dim must be at least 1.")
        if self.damping <= 0:
            raise ValueError("damping must be positive: it keeps the Fisher matrix invertible.")
        if self.effort_weight < 0:
            raise ValueError("effort_weight must be 0 or more.")


@torch.no_grad()
def sequence_gradients(model: ItemTextModel, sequences: list[np.ndarray], max_len: int, dim: int = 256,
                       seed: int = 0, last_only: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(gradients (N, dim), losses (N,)) of each sequence's summed next-item cross-entropy under `model`.

    The gradient is taken with respect to the output item table E (M x d) in scores h . e_v: per position
    (p - y) h^T, summed over the sequence, then projected by P (item axis, 32 rows) and R (to `dim`), both
    Gaussian with variance 1 / rows, so that projected norms and dot products estimate the true ones.
    `last_only` counts only each sequence's last next-item pair (a holdout pair: the prefix and its target).
    """
    device = next(model.parameters()).device
    table = model.item_embeddings()
    num_items, hidden_dim = table.shape
    generator = torch.Generator().manual_seed(seed)
    item_projection = (torch.randn(num_items, _ITEM_ROWS, generator=generator) / math.sqrt(_ITEM_ROWS)).to(device)
    flat_projection = (torch.randn(_ITEM_ROWS * hidden_dim, dim, generator=generator) / math.sqrt(dim)).to(device)
    inputs = torch.from_numpy(pad_left([s[:-1] for s in sequences], max_len))
    targets = torch.from_numpy(pad_left([s[1:] for s in sequences], max_len))
    if last_only:
        targets[:, :-1] = PAD_ID
    batch_size = max(1, _SCORES_PER_BATCH // (max_len * num_items))
    gradients, losses = [], []
    for start in range(0, len(sequences), batch_size):
        seqs, next_items = inputs[start : start + batch_size].to(device), targets[start : start + batch_size].to(device)
        real = next_items != PAD_ID
        hidden = model(seqs, item_table=table)[real]  # (P, d): only real positions
        items = next_items[real]
        owner = torch.arange(len(seqs), device=device)[:, None].expand_as(real)[real]  # each position's sequence
        log_probs = F.log_softmax(hidden @ table.T, dim=-1)
        residual = log_probs.exp() @ item_projection - item_projection[items]  # P (p - y), (P, rows)
        per_position = (residual[:, :, None] * hidden[:, None, :]).flatten(1)
        summed = torch.zeros(len(seqs), per_position.shape[1], device=device).index_add_(0, owner, per_position)
        gradients.append((summed @ flat_projection).cpu())
        position_loss = -log_probs.gather(1, items[:, None]).squeeze(1)
        losses.append(torch.zeros(len(seqs), device=device).index_add_(0, owner, position_loss).cpu())
    return torch.cat(gradients), torch.cat(losses)


def initial_student(context: DistillContext) -> ItemTextModel:
    """theta*_0, the expert trajectory's untrained first checkpoint: the target model before it learns."""
    expert = context.expert()
    model = load_checkpoint(context.new_model(), context.trajectory()[0])
    return model.to(next(expert.parameters()).device).eval()


def influence_scores(gradients: torch.Tensor, damping: float) -> torch.Tensor:
    """(1/n) grad R^T H^-1 g_s for every row g_s, with grad R the mean row and H the damped empirical Fisher:
    how much the mean loss would rise if that sample were left out (first order)."""
    n, dim = gradients.shape
    grads = gradients.double()
    fisher = grads.T @ grads / n
    fisher += damping * max(float(fisher.diagonal().mean()), 1e-12) * torch.eye(dim, dtype=grads.dtype)
    direction = torch.linalg.solve(fisher, grads.mean(0))  # H^-1 grad R, once (the symmetric trick)
    return (grads @ direction / n).float()


def standardised(values: torch.Tensor) -> torch.Tensor:
    spread = values.std() if len(values) > 1 else torch.tensor(0.0)
    return (values - values.mean()) / spread if float(spread) > 0 else torch.zeros_like(values)


def score_strata(scores: np.ndarray, strata: int) -> np.ndarray:
    """Each score's stratum 0..strata-1: the score range cut into `strata` equal widths (the top edge is
    in the last stratum; equal scores all go to stratum 0)."""
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        return np.zeros(len(scores), dtype=np.int64)
    return np.minimum(((scores - low) / (high - low) * strata).astype(np.int64), strata - 1)


def coverage_sample(strata_of: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` distinct positions: strata from the smallest up, each min(its size, budget left // strata
    left) drawn at random; picks interleaved stratum by stratum (see the module's docstring)."""
    groups = [np.flatnonzero(strata_of == s) for s in np.unique(strata_of)]
    groups.sort(key=len)
    left, drawn = count, []
    for k, group in enumerate(groups):
        take = min(len(group), left // (len(groups) - k))
        drawn.append(rng.permutation(group)[:take])
        left -= take
    # Turns: the i-th pick of each stratum, strata in score order, for i = 0, 1, ...
    order = sorted(((i, int(strata_of[p]), int(p)) for part in drawn for i, p in enumerate(part)))
    picks = np.array([p for _, _, p in order], dtype=np.int64)
    if len(picks) < count:  # only when the strata hold fewer sequences than asked for after the floors
        rest = np.setdiff1d(np.arange(len(strata_of)), picks)
        picks = np.concatenate([picks, rng.permutation(rest)[: count - len(picks)]])
    return picks


def dealrec_scores(context: DistillContext, config: DEALRecConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(influence, effort) of every usable training sequence, in `context.usable` order."""
    sequences = [context.train[i] for i in context.usable]
    max_len = context.model_cfg.max_len
    surrogate, _ = sequence_gradients(context.expert(), sequences, max_len, config.gradient_dim, config.seed)
    target, _ = sequence_gradients(initial_student(context), sequences, max_len, config.gradient_dim, config.seed)
    return influence_scores(surrogate, config.damping), target.norm(dim=1)


def dealrec_indices(context: DistillContext, count: int, seed: int,
                    config: DEALRecConfig | None = None) -> np.ndarray:
    """`count` usable training sequences by DEALRec: influence + lambda * effort, sampled across strata."""
    config = DEALRecConfig(seed=seed) if config is None else config
    influence, effort = dealrec_scores(context, config)
    scores = (standardised(influence) + config.effort_weight * standardised(effort)).numpy()
    picks = coverage_sample(score_strata(scores, config.strata), count, np.random.default_rng(seed))
    return context.usable[picks]


def distill_dealrec(context: DistillContext, budget: int, config: DEALRecConfig,
                    on_event: EventCallback | None = None, should_stop: StopCheck | None = None,
                    resume: Checkpoint | None = None) -> SyntheticData:
    """The `budget` training sequences DEALRec picks, as they are (one-hot inputs and next items)."""
    return sequences_as_synthetic(context, dealrec_indices(context, budget, config.seed, config))


add_selector("dealrec", dealrec_indices)
register(MethodSpec("dealrec", distill_dealrec, DEALRecConfig,
                    help="real sequences picked by DEALRec: the expert's influence score plus an untrained "
                         "student's gradient norm, sampled across score strata (arXiv 2401.17197)",
                    needs_expert=True))
