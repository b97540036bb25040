"""`goracs`: GORACS' optimal-transport coreset selection, one whole training sequence per pick.

From Mei, Chen, Yu, Liang and Yang, "GORACS: Group-level Optimal Transport-guided Coreset Selection for
LLM-based Recommender Systems" (KDD 2025, arXiv 2506.04015).

What is the paper's:

- **A proxy objective (POO)** for the intractable test loss of a model fine-tuned on the coreset: an
  optimal-transport distance between the coreset's distribution and the target data's, computed on
  representations that carry gradient information, so that the bound prefers subsets whose gradients
  both cover the data and help lower the loss. No model is retrained during selection.
- **Group-level selection** (the subset is judged as a whole, not sample by sample) with a two-stage
  **initialisation-then-refinement** algorithm (ITRA): a fast greedy start, then local swaps that lower
  the proxy objective.

What is ours (this project's adaptation; the paper's exact bound and solver are not reproduced):

- **The unit** is one whole training sequence (the project's `Selector`).
- **Gradient embeddings** are DEALRec's module primitive (`dealrec.sequence_gradients`): the expert's
  last-layer loss gradient of each sequence, randomly projected. The expert (trained on the training
  split, `context.expert()`) stands in for the fine-tuned model.
- **The target distribution** is the full data: every usable training sequence's gradient direction
  (unit length), summarised by spherical k-means prototypes fitted on a uniform subsample, each weighted by
  the share of sequences it holds.
- **Useful gradients**: u(s) = g_s . g_hold, the first-order drop of the loss on the training split's
  holdout pairs (each sequence's last prefix and next item, which the expert never trained on) after a
  step on s; scaled to [0, 1] by its 99th percentile.
- **One cost for both stages**: c(s, j) = 1 - cos(g_s, prototype j) + beta (1 - u(s)). With uniform
  masses 1/n on the picks (how a student sees them), the useful-gradient term adds beta times the picks'
  mean (1 - u) to the transport cost: one objective J(S) = OT_eps(uniform(S), target).
- **Initialisation**: greedy facility location, the OT cost with free masses on the picks (each
  prototype sent to its cheapest pick): monotone submodular, so greedy is within 1 - 1/e of the best. A
  sequence identical to a pick adds nothing and is never picked while a different one is left.
- **Refinement**: up to `refine_rounds` swaps, each replacing the pick whose mass travels farthest by the
  cheapest server of one of the worst-served prototypes, kept only when the entropic OT (log-domain
  Sinkhorn, batched over the trial swaps) goes down. Skipped above `refine_up_to` picks (packing asks for
  hundreds; the greedy order is then the answer).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.synthetic import SyntheticData
from .coresets import add_selector, sequences_as_synthetic
from .dealrec import sequence_gradients
from .events import Checkpoint, EventCallback, StopCheck
from .expert import DistillContext
from .registry import MethodSpec, RunSettings, register

_SAME = 1e-4  # unit gradient directions closer than this are the same sequence (up to float noise)
_TRIAL_CELLS = 2 ** 22  # (trial, pick, prototype) cells one batched Sinkhorn call holds


@dataclass(frozen=True)
class GORACSConfig(RunSettings):
    gradient_dim: int = 256  # numbers a sequence's projected gradient keeps
    prototypes: int = 256  # k-means prototypes of the target distribution (at least the budget)
    target_sample: int = 8192  # sequences the prototypes and the holdout gradient are computed on
    utility_weight: float = 0.2  # [beta] transport cost added for a gradient that does not help the holdout
    sinkhorn_eps: float = 0.05  # [epsilon] entropic regularisation, in units of the cost
    refine_rounds: int = 10  # swaps tried by the refinement (each only kept if the OT cost falls)
    refine_up_to: int = 100  # budgets above this keep the greedy picks

    def __post_init__(self) -> None:
        for name in ("gradient_dim", "prototypes", "target_sample"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1.")
        if self.sinkhorn_eps <= 0:
            raise ValueError("sinkhorn_eps must be positive.")
        if self.utility_weight < 0 or self.refine_rounds < 0:
            raise ValueError("utility_weight and refine_rounds must be 0 or more.")


def spherical_kmeans(points: torch.Tensor, k: int, seed: int,
                     iterations: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(centres, weights) of k-means on unit rows by cosine: unit centres, each weighted by its share of
    the rows; empty clusters are dropped. Starts from k distinct random rows."""
    generator = torch.Generator().manual_seed(seed)
    centres = points[torch.randperm(len(points), generator=generator)[: min(k, len(points))]].clone()
    for _ in range(iterations):
        assign = (points @ centres.T).argmax(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, points)
        filled = torch.bincount(assign, minlength=len(centres)) > 0
        centres[filled] = F.normalize(sums[filled], dim=1)
    counts = torch.bincount((points @ centres.T).argmax(1), minlength=len(centres))
    kept = counts > 0
    return centres[kept], counts[kept].float() / len(points)


def sinkhorn_plans(cost: torch.Tensor, target: torch.Tensor, eps: float, iterations: int = 200) -> torch.Tensor:
    """Entropic OT plans (..., n, K) from uniform masses 1/n on the rows of each (..., n, K) cost to `target`
    (K positive weights summing to 1), by log-domain Sinkhorn; the columns' masses are exact."""
    log_rows = torch.full(cost.shape[:-1], -float(np.log(cost.shape[-2])), dtype=cost.dtype)
    log_cols = target.log().expand(cost.shape[:-2] + target.shape)
    f, g = torch.zeros_like(log_rows), torch.zeros_like(log_cols)
    for _ in range(iterations):
        f = eps * (log_rows - torch.logsumexp((g[..., None, :] - cost) / eps, dim=-1))
        g = eps * (log_cols - torch.logsumexp((f[..., :, None] - cost) / eps, dim=-2))
    return torch.exp((f[..., :, None] + g[..., None, :] - cost) / eps)


def transport_cost(cost: torch.Tensor, target: torch.Tensor, eps: float) -> torch.Tensor:
    """<plan, cost> for each (..., n, K) cost: J(S) when the rows are the picks'."""
    return (sinkhorn_plans(cost, target, eps) * cost).sum((-2, -1))


def greedy_transport(cost: torch.Tensor, weights: torch.Tensor, directions: torch.Tensor, count: int) -> list[int]:
    """`count` rows by greedy facility location: each pick lowers sum_j w_j min_{s in S} cost[s, j] the most.
    Rows identical to a pick (in `directions`) are skipped while others are left; once no row lowers the
    cost, the row farthest from every pick comes next (as K-Center)."""
    served = torch.full((cost.shape[1],), float(cost.max()) + 1.0)
    gap = torch.full((len(cost),), float("inf"))  # each row's distance to its nearest pick
    available = torch.ones(len(cost), dtype=torch.bool)
    picks: list[int] = []
    for _ in range(count):
        eligible = available & (gap > _SAME)
        if not bool(eligible.any()):
            eligible = available  # only copies of picks are left
        gain = ((served - cost).clamp(min=0) * weights).sum(1)
        gain[~eligible] = -1.0
        pick = int(gain.argmax())
        if float(gain[pick]) <= 0:
            pick = int(gap.masked_fill(~eligible, -1.0).argmax())
        picks.append(pick)
        available[pick] = False
        served = torch.minimum(served, cost[pick])
        gap = torch.minimum(gap, (directions - directions[pick]).norm(dim=1))
    return picks


def refine_swaps(cost: torch.Tensor, weights: torch.Tensor, directions: torch.Tensor, picks: list[int],
                 rounds: int, eps: float, worst_prototypes: int = 32) -> list[int]:
    """Local search on J(S) = OT_eps(uniform(S), target): swap the pick whose mass travels farthest for a
    better server of a badly served prototype, while that lowers J."""
    picks = list(picks)
    current = float(transport_cost(cost[picks], weights, eps))
    for _ in range(rounds):
        plan = sinkhorn_plans(cost[picks], weights, eps)
        worst = int(((plan * cost[picks]).sum(1) / plan.sum(1)).argmax())
        kept = [p for i, p in enumerate(picks) if i != worst]
        # A candidate must differ from every pick that stays (and from the one it replaces).
        exact = "donot_use_mm_for_euclid_dist"  # the mm shortcut leaves ~1e-3 where the distance is 0
        far = torch.cdist(directions, directions[picks], compute_mode=exact).min(1).values > _SAME
        far[picks] = False
        badly_served = ((plan * cost[picks]).sum(0) / weights).topk(min(worst_prototypes, len(weights))).indices
        candidates = cost[:, badly_served].masked_fill(~far[:, None], float("inf")).argmin(0).unique()
        candidates = candidates[far[candidates]]
        if len(candidates) == 0:
            break
        trials = cost[picks].expand(len(candidates), -1, -1).clone()
        trials[:, worst] = cost[candidates]
        chunk = max(1, _TRIAL_CELLS // trials[0].numel())
        values = torch.cat([transport_cost(trials[i : i + chunk], weights, eps) for i in range(0, len(trials), chunk)])
        best = int(values.argmin())
        if float(values[best]) >= current - 1e-9:
            break
        picks = kept[:worst] + [int(candidates[best])] + kept[worst:]
        current = float(values[best])
    return picks


def goracs_costs(context: DistillContext, config: GORACSConfig,
                 count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(cost (N, K), prototype weights (K,), gradient directions (N, dim)) over `context.usable`."""
    expert = context.expert()
    sequences = [context.train[i] for i in context.usable]
    max_len = context.model_cfg.max_len
    gradients, _ = sequence_gradients(expert, sequences, max_len, config.gradient_dim, config.seed)
    rng = np.random.default_rng(config.seed)
    sample = np.sort(rng.choice(len(sequences), min(len(sequences), config.target_sample), replace=False))
    holdout, _ = sequence_gradients(expert, [sequences[i] for i in sample], max_len, config.gradient_dim,
                                    config.seed, last_only=True)
    usefulness = gradients @ holdout.mean(0)
    scale = float(torch.quantile(usefulness, 0.99))
    useful = (usefulness / scale).clamp(0, 1) if scale > 0 else torch.zeros_like(usefulness)
    directions = F.normalize(gradients, dim=1)
    prototypes = max(config.prototypes, count)  # fewer prototypes than picks would leave picks with nothing to serve
    centres, weights = spherical_kmeans(directions[torch.from_numpy(sample)], prototypes, config.seed)
    cost = 1.0 - directions @ centres.T + config.utility_weight * (1.0 - useful)[:, None]
    return cost, weights, directions


def goracs_indices(context: DistillContext, count: int, seed: int, config: GORACSConfig | None = None) -> np.ndarray:
    """`count` usable training sequences by GORACS: greedy OT start, then Sinkhorn-checked swaps."""
    config = GORACSConfig(seed=seed) if config is None else config
    cost, weights, directions = goracs_costs(context, config, count)
    picks = greedy_transport(cost, weights, directions, count)
    if count <= config.refine_up_to:
        picks = refine_swaps(cost, weights, directions, picks, config.refine_rounds, config.sinkhorn_eps)
    return context.usable[np.array(picks, dtype=np.int64)]


def distill_goracs(context: DistillContext, budget: int, config: GORACSConfig,
                   on_event: EventCallback | None = None, should_stop: StopCheck | None = None,
                   resume: Checkpoint | None = None) -> SyntheticData:
    """The `budget` training sequences GORACS picks, as they are (one-hot inputs and next items)."""
    return sequences_as_synthetic(context, goracs_indices(context, budget, config.seed, config))


add_selector("goracs", goracs_indices)
register(MethodSpec("goracs", distill_goracs, GORACSConfig,
                    help="real sequences picked by GORACS: their gradient distribution matches the training "
                         "data's by optimal transport, useful gradients preferred (arXiv 2506.04015)",
                    needs_expert=True))
