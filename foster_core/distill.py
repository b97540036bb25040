"""Distillation methods and coreset baselines behind one interface.

Every method is `distill(context, budget, config, callback) -> SyntheticData`: it gets the training split
(never validation or test items), a budget of n sequences, and returns synthetic data that one evaluator
(`benchmark.evaluate_synthetic`) trains fresh students on. Methods:

- coresets of real training sequences: `random`, `longest`, `kcenter`, `herding`;
- `teacher`: random real sequences whose labels are the expert's soft predictions (label distillation);
- `foster`: first-order penalty updates with item subset sampling, trajectory-anchored resets and the
  co-occurrence regulariser (see foster_method below and ../shared/foster-method.md);
- `bptt`: back-propagation through K unrolled inner steps, kept to compare time and memory per step.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call
from torch.nn.attention import SDPBackend, sdpa_kernel

from .atomic import atomic_write_json
from .data import PAD_ID, Dataset, Split, holdout_split, leave_one_out, pad_left
from .model import ModelConfig, TextSASRec
from .runtime import resolve_device, seed_everything
from .synthetic import SyntheticData
from .text_encoder import default_cache_dir
from .training import TrainConfig, load_checkpoint, next_item_pairs, save_checkpoint, train_on_sequences, train_on_soft

StepCallback = Callable[[dict], None]
StopCheck = Callable[[], bool]
SELECTIONS = ("random", "longest", "kcenter", "herding")


@dataclass(frozen=True)
class DistillConfig:
    seed: int = 0
    device: str = "auto"
    # Label distributions keep this many items (the expert's top predictions); 16 scored best of
    # 16/32/64 on the training split's holdout for both starts (docs/distillation-notes.md).
    label_support: int = 16
    # Which real sequences `teacher` (random, as the baseline is defined) and FOSTER start from:
    # random, longest, kcenter or herding.
    teacher_selection: str = "random"
    init_selection: str = "kcenter"
    # "on": FOSTER's L-position sequences start as whole real sequences laid end to end (packed_sequences)
    # instead of one real sequence left-padded to L; "auto" packs when the median training sequence fills
    # less than half of L (Amazon, median 4 training items: holdout NDCG@10 0.069 vs 0.056; MovieLens, whose
    # sequences mostly fill L, scored lower packed at n = 20; docs/distillation-notes.md).
    init_packing: str = "auto"
    # FOSTER (symbols of ../shared/foster-method.md in brackets)
    steps: int = 150
    subset_size: int = 512  # [N] uniformly sampled items per step; 0 = the full catalogue
    input_support: int = 8  # candidate items per input position
    init_scale: float = 4.0  # [c] logit of the real item at initialisation
    init_noise: float = 0.01
    learn_labels: bool = True  # labels are their own learnable distributions, started from the expert
    inner_steps: int = 1  # [K_in]
    inner_lr: float = 1e-3  # [alpha]
    outer_lr: float = 1e-3  # [beta]
    synthetic_lr: float = 0.01  # [gamma]; 0.05 made S worse than its start (docs/distillation-notes.md)
    lambda_start: float = 1.0  # [lambda_0]
    lambda_end: float = 10.0  # [lambda_max], reached linearly at the last step
    reset_every: int = 50  # [R] steps between trajectory resets; 0 = never
    reset_outer: bool = True  # reset theta along with theta_hat
    # How S is updated: "penalty" = the spec's first-order value-function penalty; "alignment" = ours:
    # align the inner model's synthetic-loss gradient with its real-loss gradient (per-layer cosine).
    s_update: str = "penalty"
    reg_weight: float = 0.1  # [mu] weight of L_r; 0 = off
    reg_neighbours: int = 10  # text neighbours per item in L_r
    reg_items: int = 512  # items sampled per step for L_r
    # Keep the best of S at steps 0, select_every, 2*select_every, ... by a quick student's NDCG@10 on the
    # training split's own holdout (each sequence's last training item); 0 = keep the last S.
    select_every: int = 50
    select_epochs: int = 100
    real_batch_size: int = 128
    log_every: int = 10
    checkpoint_every: int = 100
    # bptt
    unroll_steps: int = 5  # [K] inner steps back-propagated through
    unroll_lr: float = 0.01  # plain SGD inside the unroll

    def __post_init__(self) -> None:
        if self.init_packing not in ("auto", "on", "off"):
            raise ValueError(f"init_packing must be 'auto', 'on' or 'off', not {self.init_packing!r}")
        if self.s_update not in ("penalty", "alignment"):
            raise ValueError(f"s_update must be 'penalty' or 'alignment', not {self.s_update!r}")
        for name in ("teacher_selection", "init_selection"):
            if getattr(self, name) not in SELECTIONS:
                raise ValueError(f"{name} must be random, longest, kcenter or herding, not {getattr(self, name)!r}")
        if self.steps < 1 or self.label_support < 1 or self.input_support < 1:
            raise ValueError("steps, label_support and input_support must be at least 1")


# ----------------------------------------------------------------------------- context and expert


@dataclass
class DistillContext:
    """What every method may use: the training split, item text embeddings and an expert trained on it."""

    dataset: Dataset
    text_embeddings: torch.Tensor
    model_cfg: ModelConfig = field(default_factory=ModelConfig)
    expert_cfg: TrainConfig = field(default_factory=TrainConfig)
    cache_dir: Path | None = None
    split: Split = field(init=False)
    holdout: Split = field(init=False)
    _expert: TextSASRec | None = field(default=None, init=False, repr=False)
    _trajectory: list[Path] = field(default_factory=list, init=False, repr=False)
    expert_seconds: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.split = leave_one_out(self.dataset)
        self.holdout = holdout_split(self.split.train)

    @property
    def train(self) -> list[np.ndarray]:
        return self.split.train

    @property
    def num_items(self) -> int:
        return self.dataset.num_items

    def expert_key(self) -> str:
        digest = hashlib.sha256()
        # "holdout": the expert selects its epoch on the training split's holdout (older caches did not).
        expert_cfg = asdict(self.expert_cfg)
        # "auto" and the device it resolves to here train the same expert: one cache entry, keyed "auto".
        try:
            if resolve_device(expert_cfg["device"]).type == resolve_device("auto").type:
                expert_cfg["device"] = "auto"
        except ValueError:  # e.g. "cuda" on a machine without one: training will say so
            pass
        digest.update(json.dumps([asdict(self.model_cfg), expert_cfg, "holdout"], sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self.text_embeddings.numpy()).tobytes())
        for seq in self.train:
            digest.update(seq.tobytes() + b"|")
        # Cached full-data results, kept beside the expert, hold validation and test metrics.
        digest.update(self.split.valid_targets.tobytes() + self.split.test_targets.tobytes())
        return digest.hexdigest()[:24]

    def expert(self) -> TextSASRec:
        """The model trained on the training split, its epoch chosen on the training split's own holdout
        (never on validation), cached on disk."""
        if self._expert is None:
            self._load_or_train_expert()
        return self._expert

    def trajectory(self) -> list[Path]:
        """Checkpoints theta*_0..theta*_K of the expert's training, one per epoch."""
        if self._expert is None:
            self._load_or_train_expert()
        return self._trajectory

    def new_model(self) -> TextSASRec:
        return TextSASRec(self.text_embeddings, self.model_cfg)

    def expert_cached(self) -> bool:
        """Whether the expert is in memory or on disk already (asking for it would not train it)."""
        return self._expert is not None or (self.expert_folder() / "expert.json").is_file()

    def expert_folder(self) -> Path:
        return (self.cache_dir or default_cache_dir()) / "experts" / self.expert_key()

    def _load_or_train_expert(self) -> None:
        folder = self.expert_folder()
        meta_path = folder / "expert.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            model = load_checkpoint(self.new_model(), folder / "best.safetensors")
            self._trajectory = [folder / name for name in meta["trajectory"]]
            self.expert_seconds = meta["seconds"]
        else:
            with torch.enable_grad():  # callers may ask for the expert from inside torch.no_grad()
                result = train_on_sequences(self.text_embeddings, self.holdout.train, self.holdout, self.model_cfg,
                                            self.expert_cfg, checkpoint_dir=folder)
            model = result.model.cpu()
            save_checkpoint(model, folder / "best.safetensors")
            # The trajectory stops at the best epoch: later epochs were overfitting by the holdout's account.
            self._trajectory = result.checkpoints[: result.best_epoch + 1]
            self.expert_seconds = result.seconds
            atomic_write_json(meta_path, {"trajectory": [p.name for p in self._trajectory], "seconds": result.seconds,
                                          "best_epoch": result.best_epoch, "valid": result.best_valid})
        self._expert = model.to(resolve_device(self.expert_cfg.device)).eval()

    @torch.no_grad()
    def sequence_embeddings(self, indices: np.ndarray | None = None) -> torch.Tensor:
        """The expert's last hidden state for each training sequence (unit norm): a sequence's summary."""
        expert = self.expert()
        seqs = self.train if indices is None else [self.train[i] for i in indices]
        device = next(expert.parameters()).device
        out = []
        for start in range(0, len(seqs), 512):
            batch = torch.from_numpy(pad_left(seqs[start : start + 512], self.model_cfg.max_len)).to(device)
            out.append(expert(batch)[:, -1].cpu())
        return F.normalize(torch.cat(out), dim=-1)


def _usable_indices(train: list[np.ndarray]) -> np.ndarray:
    """Training sequences with at least one (input, next item) pair."""
    return np.array([i for i, s in enumerate(train) if len(s) >= 2])


def _usable(context: DistillContext) -> np.ndarray:
    return _usable_indices(context.train)


def usable_sequence_count(dataset: Dataset) -> int:
    """How many training sequences a distiller can use (a budget's upper bound), without an expert."""
    return len(_usable_indices(leave_one_out(dataset).train))


def check_budget(context: DistillContext, budget: int) -> None:
    available = len(_usable(context))
    if budget < 1:
        raise ValueError(f"budget must be at least 1 sequence (got {budget}).")
    if budget > available:
        raise ValueError(f"budget {budget} is more than the {available} usable training sequences.")


def _from_indices(context: DistillContext, indices: np.ndarray) -> SyntheticData:
    return SyntheticData.from_sequences([context.train[i] for i in indices], context.model_cfg.max_len - 1)


# ----------------------------------------------------------------------------- coreset baselines


def random_indices(context: DistillContext, count: int, config: DistillConfig) -> np.ndarray:
    return np.random.default_rng(config.seed).choice(_usable(context), count, replace=False)


def longest_indices(context: DistillContext, count: int, config: DistillConfig) -> np.ndarray:
    usable = _usable(context)
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


def kcenter_sequence_indices(context: DistillContext, count: int, config: DistillConfig) -> np.ndarray:
    """Greedy K-Center on the expert's sequence embeddings."""
    usable = _usable(context)
    return usable[kcenter_indices(context.sequence_embeddings(usable), count, config.seed)]


def herding_indices(context: DistillContext, count: int, config: DistillConfig) -> np.ndarray:
    """Herding: greedily pick sequences whose running mean embedding tracks the mean of all sequences."""
    usable = _usable(context)
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


# Each returns `count` usable training sequences in the order the method picks them.
SELECTORS: dict[str, Callable[[DistillContext, int, DistillConfig], np.ndarray]] = {
    "random": random_indices, "longest": longest_indices, "kcenter": kcenter_sequence_indices,
    "herding": herding_indices,
}


def _coreset(selection: str) -> Callable[..., SyntheticData]:
    def distill_coreset(context: DistillContext, budget: int, config: DistillConfig,
                        callback: StepCallback | None = None, should_stop: StopCheck | None = None) -> SyntheticData:
        return _from_indices(context, SELECTORS[selection](context, budget, config))
    distill_coreset.__name__ = f"distill_{selection}"
    distill_coreset.__doc__ = f"The first `budget` training sequences in {selection} order, as they are."
    return distill_coreset


def packs(context: DistillContext, config: DistillConfig) -> bool:
    """Whether FOSTER's start lays real sequences end to end (config.init_packing)."""
    if config.init_packing != "auto":
        return config.init_packing == "on"
    return float(np.median([len(s) for s in context.train])) < context.model_cfg.max_len / 2


def packed_sequences(context: DistillContext, budget: int, config: DistillConfig, selection: str) -> list[np.ndarray]:
    """`budget` synthetic sequences of up to max_len items, each whole real sequences laid end to end.

    Sequences are taken in the selection's order and each goes into the first sequence with room for all
    of it (first fit; none is cut). Short-sequence data (Amazon's median is 4 training items) would otherwise leave
    most of the L positions of a synthetic sequence empty.
    """
    capacity = context.model_cfg.max_len
    usable = _usable(context)
    count = min(len(usable), budget * capacity // 2)
    bins: list[list[np.ndarray]] = [[] for _ in range(budget)]
    room = np.full(budget, capacity)
    for index in SELECTORS[selection](context, count, config):
        seq = context.train[index][-capacity:]
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


@torch.no_grad()
def expert_labels(context: DistillContext, synthetic: SyntheticData, support: int) -> SyntheticData:
    """Replace the labels by the expert's next-item distributions (top `support` items, renormalised)."""
    expert = context.expert()
    device = next(expert.parameters()).device
    table = expert.item_embeddings()
    # Expected input embedding over each position's sparse support (one-hot inputs are the K = 1 case).
    tokens = (synthetic.input_probs.to(device).unsqueeze(-1) * table[synthetic.input_items.to(device)]).sum(-2)
    hidden = expert.forward_tokens(tokens, synthetic.mask.to(device))
    probs = F.softmax(expert.score(hidden, item_table=table), dim=-1)
    top = probs.topk(min(support, context.num_items), dim=-1)
    label_probs = (top.values / top.values.sum(-1, keepdim=True)).cpu()
    return SyntheticData(synthetic.input_items, synthetic.input_probs, top.indices.cpu(), label_probs, synthetic.mask)


def labelled_selection(context: DistillContext, budget: int, config: DistillConfig, selection: str,
                       packed: bool = False) -> SyntheticData:
    """Real sequences picked by a coreset method (laid end to end when `packed`), labels = the expert's
    soft predictions."""
    if packed:
        coreset = SyntheticData.from_sequences(packed_sequences(context, budget, config, selection),
                                               context.model_cfg.max_len - 1)
    else:
        coreset = METHODS[selection](context, budget, config)
    return expert_labels(context, coreset, config.label_support)


def distill_teacher(context: DistillContext, budget: int, config: DistillConfig, callback: StepCallback | None = None,
                    should_stop: StopCheck | None = None) -> SyntheticData:
    """Label distillation: real sequences (random by default), labels = the expert's soft predictions."""
    return labelled_selection(context, budget, config, config.teacher_selection)


# ----------------------------------------------------------------------------- FOSTER


class SparseSynthetic(torch.nn.Module):
    """Learnable logits over fixed per-position item supports (inputs and labels)."""

    def __init__(self, init: SyntheticData, input_logits: torch.Tensor, label_logits: torch.Tensor, learn_labels: bool):
        super().__init__()
        self.register_buffer("input_items", init.input_items)
        self.register_buffer("label_items", init.label_items)
        self.register_buffer("mask", init.mask)
        self.input_logits = torch.nn.Parameter(input_logits)
        self.label_logits = torch.nn.Parameter(label_logits, requires_grad=learn_labels)

    def to_data(self) -> SyntheticData:
        with torch.no_grad():
            return SyntheticData(self.input_items.cpu(), F.softmax(self.input_logits, -1).cpu(),
                                 self.label_items.cpu(), F.softmax(self.label_logits, -1).cpu(), self.mask.cpu())


def _init_foster(context: DistillContext, budget: int, config: DistillConfig) -> SyntheticData:
    """Real sequences; each input position gets its real item plus its nearest text neighbours as
    candidates; labels start from the expert's predictions."""
    base = labelled_selection(context, budget, config, config.init_selection, packed=packs(context, config))
    k = max(1, min(config.input_support, context.num_items))
    text = F.normalize(context.text_embeddings, dim=-1)
    real = base.input_items[..., 0]
    neighbours = (text[real] @ text.T).topk(k, dim=-1).indices  # (n, L, k); the item itself comes first
    neighbours[..., 0] = real
    return SyntheticData(neighbours, base.input_probs, base.label_items, base.label_probs, base.mask)


def holdout_score(context: DistillContext, synthetic: SyntheticData, config: DistillConfig) -> float:
    """NDCG@10 on the training split's holdout of a quick student trained on `synthetic` alone."""
    inputs, labels, mask = synthetic.dense(context.num_items)
    cfg = TrainConfig(epochs=config.select_epochs, batch_size=max(1, synthetic.num_sequences), lr=3e-3,
                      patience=max(10, config.select_epochs // 3), eval_every=5, seed=config.seed, device=config.device)
    result = train_on_soft(context.text_embeddings, inputs, labels, context.holdout, context.model_cfg, cfg, mask=mask)
    return float(result.best_valid["ndcg@10"])


def _label_entropy(syn: "SparseSynthetic") -> float:
    with torch.no_grad():
        log_p = F.log_softmax(syn.label_logits, -1)[syn.mask]
        return float(-(log_p.exp() * log_p).sum(-1).mean())


def _subset(real_targets: torch.Tensor, syn: SparseSynthetic, config: DistillConfig, num_items: int,
            generator: torch.Generator) -> torch.Tensor:
    """V_s: N uniform items, the real batch's targets and the synthetic supports, sorted and unique."""
    if config.subset_size <= 0:
        return torch.arange(num_items)
    uniform = torch.randint(num_items, (config.subset_size,), generator=generator)
    parts = [uniform, real_targets[real_targets != PAD_ID].cpu(), syn.input_items.flatten().cpu(),
             syn.label_items.flatten().cpu()]
    return torch.unique(torch.cat(parts))


def _synthetic_loss(net: TextSASRec, syn: SparseSynthetic, subset: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """L_syn: soft inputs as expected embeddings, cross-entropy against soft labels, softmax over V_s."""
    pos_in = torch.searchsorted(subset, syn.input_items)
    pos_lab = torch.searchsorted(subset, syn.label_items)
    p_in = F.softmax(syn.input_logits, -1)
    tokens = (p_in.unsqueeze(-1) * table[pos_in]).sum(-2)
    hidden = net.forward_tokens(tokens, syn.mask)
    log_probs = F.log_softmax(hidden[syn.mask] @ table.T, -1)
    p_lab = F.softmax(syn.label_logits, -1)[syn.mask]
    return -(p_lab * log_probs.gather(-1, pos_lab[syn.mask])).sum(-1).mean()


def _real_loss(net: TextSASRec, seqs: torch.Tensor, targets: torch.Tensor, subset: torch.Tensor,
               table: torch.Tensor) -> torch.Tensor:
    real = targets != PAD_ID
    # Inputs are embedded from their own ids only, so a step never touches the whole catalogue.
    input_ids = torch.unique(seqs[seqs != PAD_ID])
    hidden = net(seqs, item_table=net.item_embeddings(input_ids), table_items=input_ids)[real]
    return F.cross_entropy(hidden @ table.T, torch.searchsorted(subset, targets[real]))


def _cooccurrence_loss(syn: SparseSynthetic, text: torch.Tensor, config: DistillConfig,
                       generator: torch.Generator) -> torch.Tensor:
    """L_r: items with similar texts should be followed by similar items in S.

    For each input item u, q_u is the mass-weighted mean text embedding of what follows u (the label
    distribution at u's positions): a d_text-sized summary of row u of the next-item matrix Q, so the cost
    is O(support) rather than O(|V_s|^2). L_r = sum_uv A_uv ||q_u - q_v||^2 / sum_uv A_uv over sampled items
    and their top text neighbours (A = cosine similarity of texts).
    """
    mask = syn.mask
    p_in = F.softmax(syn.input_logits, -1)[mask]  # (P, K_in)
    p_lab = F.softmax(syn.label_logits, -1)[mask]  # (P, K_lab)
    next_text = (p_lab.unsqueeze(-1) * text[syn.label_items[mask]]).sum(-2)  # (P, D)
    items, inverse = torch.unique(syn.input_items[mask].flatten(), return_inverse=True)
    weights = p_in.flatten()
    mass = torch.zeros(len(items), device=weights.device).index_add(0, inverse, weights)
    summed = torch.zeros(len(items), text.shape[1], device=weights.device).index_add(
        0, inverse, weights.unsqueeze(-1) * next_text.repeat_interleave(p_in.shape[1], dim=0))
    active = mass > 1e-3
    items, q = items[active], summed[active] / mass[active].unsqueeze(-1)
    if len(items) > config.reg_items:
        pick = torch.randperm(len(items), generator=generator)[: config.reg_items].to(items.device)
        items, q = items[pick], q[pick]
    if len(items) < 2:
        return q.sum() * 0.0
    t = F.normalize(text[items], dim=-1)
    sim = (t @ t.T).fill_diagonal_(-1.0)
    k = min(config.reg_neighbours, len(items) - 1)
    a, nb = sim.topk(k, dim=-1)
    a = a.clamp(min=0.0)
    gaps = (q.unsqueeze(1) - q[nb]).pow(2).sum(-1)
    return (a * gaps).sum() / a.sum().clamp(min=1e-8)


def distill_foster(context: DistillContext, budget: int, config: DistillConfig, callback: StepCallback | None = None,
                   should_stop: StopCheck | None = None, *,
                   resume: tuple[int, SyntheticData] | None = None) -> SyntheticData:
    """First-order penalty updates of S, theta and theta_hat (foster-method.md, "One distillation step").

    With `s_update="alignment"` (ours), S instead follows the gradient-alignment term at theta_hat
    (`_alignment_gradient`); theta_hat, theta, the resets, the subsets and L_r stay as they are.
    `resume=(step, S)` continues a killed run after `step` from its checkpointed S: only S is restored;
    theta, theta_hat, the optimisers and the random stream start afresh from the trajectory.
    """
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    first_step = 1
    if resume is None:
        init = _init_foster(context, budget, config)
        input_logits = torch.full(init.input_items.shape, 0.0)
        input_logits[..., 0] = config.init_scale
        input_logits += config.init_noise * torch.randn(input_logits.shape, generator=generator)
        label_logits = init.label_probs.clamp(min=1e-8).log()
    else:
        first_step, init, input_logits, label_logits = _resume_state(context, budget, resume)
    syn = SparseSynthetic(init, input_logits, label_logits, config.learn_labels).to(device)
    syn_params = [p for p in syn.parameters() if p.requires_grad]

    trajectory = context.trajectory()
    theta, theta_hat = context.new_model().to(device), context.new_model().to(device)
    for net in (theta, theta_hat):
        load_checkpoint(net, trajectory[-1])
    opt_theta = torch.optim.Adam(theta.parameters(), lr=config.outer_lr)
    opt_hat = torch.optim.Adam(theta_hat.parameters(), lr=config.inner_lr)
    opt_syn = torch.optim.Adam(syn_params, lr=config.synthetic_lr)

    # Real batches come from the holdout's inputs, so the holdout that picks S stays unseen by S's updates.
    inputs, targets = (torch.from_numpy(a) for a in next_item_pairs(context.holdout.train, context.model_cfg.max_len))
    text = context.text_embeddings.to(device)
    candidates: list[tuple[int, SyntheticData]] = [(first_step - 1, syn.to_data())] if config.select_every else []
    started = time.perf_counter()
    for step in range(first_step, config.steps + 1):
        if should_stop and should_stop():
            break
        if config.reset_every and step % config.reset_every == 0:
            anchor = trajectory[int(torch.randint(len(trajectory), (1,), generator=generator))]
            load_checkpoint(theta_hat, anchor)
            opt_hat = torch.optim.Adam(theta_hat.parameters(), lr=config.inner_lr)
            if config.reset_outer:
                load_checkpoint(theta, anchor)
                opt_theta = torch.optim.Adam(theta.parameters(), lr=config.outer_lr)
        lam = config.lambda_start + (config.lambda_end - config.lambda_start) * (step - 1) / max(1, config.steps - 1)
        batch = torch.randint(len(inputs), (config.real_batch_size,), generator=generator)
        seqs, next_items = inputs[batch].to(device), targets[batch].to(device)
        subset = _subset(next_items, syn, config, context.num_items, generator).to(device)

        theta.train(), theta_hat.train()
        # Inner model: follow argmin L_syn (extra steps see S as a constant).
        for _ in range(config.inner_steps - 1):
            loss_hat = _synthetic_loss(theta_hat, syn, subset, theta_hat.item_embeddings(subset))
            opt_hat.zero_grad(set_to_none=True)
            grads = torch.autograd.grad(loss_hat, list(theta_hat.parameters()))
            for p, g in zip(theta_hat.parameters(), grads):
                p.grad = g
            opt_hat.step()
        hat_params = list(theta_hat.parameters())
        loss_hat = _synthetic_loss(theta_hat, syn, subset, theta_hat.item_embeddings(subset))
        g_hat = torch.autograd.grad(loss_hat, hat_params + syn_params)
        g_hat_params, g_hat_syn = g_hat[: len(hat_params)], g_hat[len(hat_params) :]

        theta_params = list(theta.parameters())
        table = theta.item_embeddings(subset)
        loss_syn = _synthetic_loss(theta, syn, subset, table)
        loss_real = _real_loss(theta, seqs, next_items, subset, table)
        if config.s_update == "penalty":
            g = torch.autograd.grad(loss_real + lam * loss_syn, theta_params + syn_params)
            g_theta, g_syn = g[: len(theta_params)], g[len(theta_params) :]
        else:  # alignment replaces the penalty's S-gradient; theta still follows its own objective
            g_theta = torch.autograd.grad(loss_real + lam * loss_syn, theta_params)
            g_syn, alignment = _alignment_gradient(theta_hat, syn, syn_params, seqs, next_items, subset)
            g_hat_syn = [torch.zeros_like(p) for p in syn_params]

        loss_reg = _cooccurrence_loss(syn, text, config, generator) if config.reg_weight > 0 else torch.zeros((), device=device)
        g_reg = (torch.autograd.grad(config.reg_weight * loss_reg, syn_params, allow_unused=True)
                 if config.reg_weight > 0 else [None] * len(syn_params))

        for params, grads, opt in ((hat_params, g_hat_params, opt_hat), (theta_params, g_theta, opt_theta)):
            for p, grad in zip(params, grads):
                p.grad = grad
            opt.step()
        for p, gs, gh, gr in zip(syn_params, g_syn, g_hat_syn, g_reg):
            p.grad = gs - lam * gh + (gr if gr is not None else 0.0)
        opt_syn.step()

        if callback and (step % config.log_every == 0 or step == config.steps):
            callback({
                "step": step, "of": config.steps, "seconds": time.perf_counter() - started,
                "loss_real": loss_real.item(), "loss_syn": loss_syn.item(), "loss_syn_inner": loss_hat.item(),
                "gap": (loss_syn - loss_hat).item(), "loss_reg": loss_reg.item(), "lambda": lam,
                "label_entropy": _label_entropy(syn),
                **({"alignment": alignment} if config.s_update == "alignment" else {}),
                "subset": int(len(subset)),
            })
        if callback and config.checkpoint_every and step % config.checkpoint_every == 0:
            callback({"checkpoint": syn.to_data(), "step": step})
        if config.select_every and (step % config.select_every == 0 or step == config.steps):
            candidates.append((step, syn.to_data()))
    if not candidates or (should_stop and should_stop()):
        return syn.to_data()
    return _select_on_holdout(context, candidates, config, callback)


def _select_on_holdout(context: DistillContext, candidates: list[tuple[int, SyntheticData]], config: DistillConfig,
                       callback: StepCallback | None) -> SyntheticData:
    """The candidate whose quick student scores best on the training split's holdout (ties: the earliest)."""
    scores = []
    for step, data in candidates:
        scores.append(holdout_score(context, data, config))
        if callback:  # "phase": "select" records are not loss curve points; "step" is the candidate's step
            callback({"phase": "select", "step": step, "of": config.steps, "holdout_ndcg@10": scores[-1],
                      "candidate": len(scores), "candidates": len(candidates)})
    best = int(np.argmax(scores))
    if callback:
        callback({"phase": "selected", "step": candidates[best][0], "of": config.steps,
                  "holdout_ndcg@10": scores[best]})
    return candidates[best][1]


def _alignment_gradient(net: TextSASRec, syn: SparseSynthetic, syn_params: list[torch.Tensor], seqs: torch.Tensor,
                        next_items: torch.Tensor, subset: torch.Tensor) -> tuple[list[torch.Tensor], float]:
    """Gradient w.r.t. S of sum over layers of (1 - cos(grad L_syn, grad L_real)) at the inner model.

    A step of the inner model on S then points where a step on real data would: the first-order Taylor
    term of L_real(theta_hat - alpha * grad L_syn). Needs one double backward (plain attention kernel).
    """
    params = [p for p in net.parameters() if p.requires_grad]
    with sdpa_kernel(SDPBackend.MATH):
        table = net.item_embeddings(subset)
        real_grads = torch.autograd.grad(_real_loss(net, seqs, next_items, subset, table), params)
        table = net.item_embeddings(subset)
        syn_grads = torch.autograd.grad(_synthetic_loss(net, syn, subset, table), params, create_graph=True)
        distance = sum(1 - F.cosine_similarity(gs.flatten(), gr.flatten(), dim=0)
                       for gs, gr in zip(syn_grads, real_grads) if gr.abs().sum() > 0)
        grads = torch.autograd.grad(distance, syn_params, allow_unused=True)
    grads = [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, syn_params)]
    return grads, float(distance.detach())


# ----------------------------------------------------------------------------- bi-level BPTT (for cost comparison)


def distill_bptt(context: DistillContext, budget: int, config: DistillConfig, callback: StepCallback | None = None,
                 should_stop: StopCheck | None = None, *,
                 resume: tuple[int, SyntheticData] | None = None) -> SyntheticData:
    """TD3/Farzi-style: unroll `unroll_steps` SGD steps on S from a trajectory checkpoint, back-propagate the
    real loss of the unrolled model into S. Memory grows with the unroll; kept to measure that.
    `resume=(step, S)` continues after `step` from a checkpointed S (the optimiser starts afresh)."""
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    first_step = 1
    if resume is None:
        init = _init_foster(context, budget, config)
        input_logits = torch.zeros(init.input_items.shape)
        input_logits[..., 0] = config.init_scale
        label_logits = init.label_probs.clamp(min=1e-8).log()
    else:
        first_step, init, input_logits, label_logits = _resume_state(context, budget, resume)
    syn = SparseSynthetic(init, input_logits, label_logits, config.learn_labels).to(device)
    syn_params = [p for p in syn.parameters() if p.requires_grad]
    opt_syn = torch.optim.Adam(syn_params, lr=config.synthetic_lr)
    trajectory = context.trajectory()
    net = context.new_model().to(device).train()
    inputs, targets = (torch.from_numpy(a) for a in next_item_pairs(context.train, context.model_cfg.max_len))
    started = time.perf_counter()
    for step in range(first_step, config.steps + 1):
        if should_stop and should_stop():
            break
        load_checkpoint(net, trajectory[int(torch.randint(len(trajectory), (1,), generator=generator))])
        params = {k: v.detach().requires_grad_(True) for k, v in net.named_parameters()}
        batch = torch.randint(len(inputs), (config.real_batch_size,), generator=generator)
        seqs, next_items = inputs[batch].to(device), targets[batch].to(device)
        subset = _subset(next_items, syn, config, context.num_items, generator).to(device)
        # Second-order gradients need the plain attention kernel (the fused ones have no double backward).
        with sdpa_kernel(SDPBackend.MATH):
            for _ in range(config.unroll_steps):
                loss = _with_params(net, params, _synthetic_loss, syn, subset)
                grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
                params = {k: v - config.unroll_lr * g for (k, v), g in zip(params.items(), grads)}
            outer = _with_params(net, params, _real_loss, seqs, next_items, subset)
            opt_syn.zero_grad(set_to_none=True)
            outer.backward(inputs=syn_params)
        opt_syn.step()
        if callback and (step % config.log_every == 0 or step == config.steps):
            callback({"step": step, "of": config.steps, "seconds": time.perf_counter() - started,
                      "loss_real": outer.item(), "loss_syn": loss.item(), "subset": int(len(subset))})
        if callback and config.checkpoint_every and step % config.checkpoint_every == 0:
            callback({"checkpoint": syn.to_data(), "step": step})
    return syn.to_data()


def _resume_state(context: DistillContext, budget: int, resume: tuple[int, SyntheticData]):
    """(first step, S, input logits, label logits) to continue from a checkpoint of S taken after `step`."""
    step, data = resume
    if data.num_sequences != budget:
        raise ValueError(f"the checkpoint holds {data.num_sequences} sequences, not the run's budget of {budget}.")
    if int(max(data.input_items.max(), data.label_items.max())) >= context.num_items:
        raise ValueError("the checkpoint names items this dataset does not have: resume it on the run's own dataset.")
    # log(softmax(z)) differs from z by a constant per row, so the softmax (what S is) is restored exactly.
    logits = [probs.float().clamp(min=1e-12).log() for probs in (data.input_probs, data.label_probs)]
    return step + 1, data, logits[0], logits[1]


class _LossWithParams(torch.nn.Module):
    """Lets torch.func.functional_call run a loss of `net` under substituted (unrolled) parameters."""

    def __init__(self, net: TextSASRec):
        super().__init__()
        self.net = net

    def forward(self, loss_fn: Callable, *args: object) -> torch.Tensor:
        subset = args[-1]
        return loss_fn(self.net, *args, self.net.item_embeddings(subset))


def _with_params(net: TextSASRec, params: dict[str, torch.Tensor], loss_fn: Callable, *args: object) -> torch.Tensor:
    wrapper = _LossWithParams(net)
    return functional_call(wrapper, {f"net.{k}": v for k, v in params.items()}, (loss_fn, *args), strict=False)


# ----------------------------------------------------------------------------- registry

Distiller = Callable[..., SyntheticData]
METHODS: dict[str, Distiller] = {
    **{selection: _coreset(selection) for selection in SELECTORS},
    "teacher": distill_teacher,
    "foster": distill_foster,
    "bptt": distill_bptt,
}


RESUMABLE = ("foster", "bptt")  # the methods that checkpoint S while they work


def distill(context: DistillContext, method: str, budget: int, config: DistillConfig | None = None,
            callback: StepCallback | None = None, should_stop: StopCheck | None = None, *,
            resume: tuple[int, SyntheticData] | None = None) -> SyntheticData:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    check_budget(context, budget)
    if resume is not None:
        if method not in RESUMABLE:
            raise ValueError(f"only {' and '.join(RESUMABLE)} runs can resume from a checkpoint, not {method!r}.")
        return METHODS[method](context, budget, config or DistillConfig(), callback, should_stop, resume=resume)
    return METHODS[method](context, budget, config or DistillConfig(), callback, should_stop)
