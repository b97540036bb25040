"""Learnable synthetic data for the gradient methods (FOSTER and bptt): the soft start, the sparse
parameterisation, and the two losses that both methods differentiate through.

S is n sequences of L positions. Each position holds logits over a fixed support of candidate items for
its input (`input_support` items: the real item and its nearest text neighbours) and for its label
(`label_support` items: the expert's top predictions). Softmax over a support gives the position's distribution, so S stays a valid
distribution whatever the optimiser does, and the cost follows the supports, not the catalogue M.
Symbols in brackets are those of ../shared/foster-method.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..core.data import PAD_ID
from ..core.model import TextSASRec
from ..core.synthetic import SyntheticData, expected_embeddings
from .coresets import check_selection
from .events import Checkpoint
from .expert import DistillContext
from .teacher import LabelConfig, holdout_labels, labelled_selection, selected_coreset

PACKING = ("auto", "on", "off")
INIT_LABELS = ("expert", "real")


@dataclass(frozen=True)
class SoftStartConfig(LabelConfig):
    """The start and schedule shared by FOSTER and bptt: real sequences with expert labels, made soft."""

    # Which real sequences S starts from (a coreset selector). Random users, drawn as the data is: a packed
    # start holds hundreds of them, whose popularity then matches the data's. K-Center spread them out and
    # scored less (0.0679 +- 0.0005 against 0.0689 +- 0.0005 at n = 20 on amazon_scientific), and lost to
    # `teacher` where popularity is strong (docs/distillation-notes.md, 2026-12-03, packed rows).
    init_selection: str = "random"
    # "on": each synthetic sequence starts as whole real sequences laid end to end; "off": one real sequence
    # left-padded to L; "auto": pack when the median training sequence fills less than half of L.
    init_packing: str = "auto"
    input_support: int = 8  # candidate items per input position (the K of an input support): the real item and its text neighbours
    # "expert": each label starts as the expert's top `label_support` predictions. "real": as the real next
    # item (logit init_scale) and its text neighbours (logit 0), the inputs' scheme: no expert knowledge in
    # the start (the weak start of the mechanism test, benchmarks/ablation.py's `weak` variants). Its
    # sequences come without their last item, the holdout's target.
    init_labels: str = "expert"
    init_scale: float = 4.0  # [c] logit of the real item at the start; the neighbours start at 0
    steps: int = 150
    subset_size: int = 512  # [N] uniformly sampled items per step; 0 = the full catalogue
    synthetic_lr: float = 0.01  # [gamma] Adam's step size for S's logits
    real_batch_size: int = 128  # real (input, next item) rows per step
    log_every: int = 10  # steps between StepEvents
    checkpoint_every: int = 100  # steps between Checkpoints of S (what a resume continues from)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_selection(self.init_selection, "init_selection")
        if self.init_packing not in PACKING:
            raise ValueError(f"init_packing must be 'auto', 'on' or 'off', not {self.init_packing!r}")
        if self.init_labels not in INIT_LABELS:
            raise ValueError(f"init_labels must be 'expert' or 'real', not {self.init_labels!r}")
        if self.steps < 1 or self.input_support < 1:
            raise ValueError("steps and input_support must be at least 1")


class SparseSynthetic(torch.nn.Module):
    """Learnable logits over fixed per-position item supports (inputs and labels)."""

    def __init__(self, init: SyntheticData, input_logits: torch.Tensor, label_logits: torch.Tensor):
        super().__init__()
        self.register_buffer("input_items", init.input_items)
        self.register_buffer("label_items", init.label_items)
        self.register_buffer("mask", init.mask)
        self.register_buffer("segments", init.segments)  # None unless the rows are packed
        self.input_logits = torch.nn.Parameter(input_logits)
        self.label_logits = torch.nn.Parameter(label_logits)

    def to_data(self) -> SyntheticData:
        """A snapshot of S: copies, so a candidate kept for the holdout selection never shares a tensor with
        the S that goes on changing (on the CPU, .cpu() alone would return the same tensor)."""
        with torch.no_grad():
            return SyntheticData(self.input_items.cpu().clone(), F.softmax(self.input_logits, -1).cpu(),
                                 self.label_items.cpu().clone(), F.softmax(self.label_logits, -1).cpu(),
                                 self.mask.cpu().clone(),
                                 None if self.segments is None else self.segments.cpu().clone())

    def label_entropy(self) -> float:
        """Mean entropy (nats) of the label distributions at real positions."""
        with torch.no_grad():
            log_p = F.log_softmax(self.label_logits, -1)[self.mask]
            return float(-(log_p.exp() * log_p).sum(-1).mean())


def packs(context: DistillContext, init_packing: str) -> bool:
    """Whether the start lays real sequences end to end (init_packing "on", or "auto" on short sequences)."""
    if init_packing != "auto":
        return init_packing == "on"
    return float(np.median([len(s) for s in context.train])) < context.model_cfg.max_len / 2


def soft_start(context: DistillContext, budget: int, config: SoftStartConfig) -> SyntheticData:
    """Real sequences whose input positions get their real item first and its nearest text neighbours after
    it as candidates; labels from the expert, or (init_labels "real") the real next item and its neighbours
    with the inputs' logits. The input probabilities are the real item's alone: `start_logits` makes them."""
    packed = packs(context, config.init_packing)
    if config.init_labels == "real":
        # Without each sequence's last item: a real-item label there would be the holdout's own target, and
        # the holdout that chooses S would score S on pairs it contains (notes, session 8).
        base = selected_coreset(context, budget, config.init_selection, config.seed, packed, drop_last=True)
        label_items = text_neighbours(context, base.label_items[..., 0], config.label_support)
        logits = torch.zeros(label_items.shape)
        logits[..., 0] = config.init_scale
        label_probs = torch.softmax(logits, -1)
    else:
        # The expert's labels: S is updated against its trajectory and chosen on the holdout; the method
        # relabels what it hands out (`teacher.handed_out`).
        base = labelled_selection(context, budget, holdout_labels(config), config.init_selection, packed=packed)
        label_items, label_probs = base.label_items, base.label_probs
    neighbours = text_neighbours(context, base.input_items[..., 0], config.input_support)
    return replace(base, input_items=neighbours, label_items=label_items, label_probs=label_probs)


def text_neighbours(context: DistillContext, items: torch.Tensor, k: int) -> torch.Tensor:
    """(..., k) candidates of each item: itself first, then its nearest items by text embedding."""
    k = max(1, min(k, context.num_items))
    text = F.normalize(context.text_embeddings, dim=-1)
    neighbours = (text[items] @ text.T).topk(k, dim=-1).indices
    neighbours[..., 0] = items
    return neighbours


def start_logits(start: SyntheticData, init_scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(input logits, label logits) of the start: c on the real item, 0 on its neighbours; log label probs."""
    input_logits = torch.zeros(start.input_items.shape)
    input_logits[..., 0] = init_scale
    return input_logits, start.label_probs.clamp(min=1e-8).log()


def resume_state(context: DistillContext, budget: int,
                 resume: Checkpoint) -> tuple[int, SyntheticData, torch.Tensor, torch.Tensor]:
    """(first step, S, input logits, label logits) to continue from a checkpoint of S taken after its step."""
    data = resume.synthetic
    if data.num_sequences != budget:
        raise ValueError(f"the checkpoint holds {data.num_sequences} sequences, not the run's budget of {budget}.")
    if int(max(data.input_items.max(), data.label_items.max())) >= context.num_items:
        raise ValueError("the checkpoint names items this dataset does not have: resume it on the run's own dataset.")
    # log(softmax(z)) differs from z by a constant per row, so the softmax (what S is) is restored exactly.
    logits = [probs.float().clamp(min=1e-12).log() for probs in (data.input_probs, data.label_probs)]
    return resume.step + 1, data, logits[0], logits[1]


def starting_point(context: DistillContext, budget: int, config: SoftStartConfig, resume: Checkpoint | None,
                   noise: float = 0.0, generator: torch.Generator | None = None) -> tuple[int, SparseSynthetic]:
    """(first step, learnable S): the soft start (with `noise` on its input logits), or a checkpoint's S."""
    if resume is not None:
        first_step, start, input_logits, label_logits = resume_state(context, budget, resume)
        return first_step, SparseSynthetic(start, input_logits, label_logits)
    start = soft_start(context, budget, config)
    input_logits, label_logits = start_logits(start, config.init_scale)
    if noise:
        input_logits += noise * torch.randn(input_logits.shape, generator=generator)
    return 1, SparseSynthetic(start, input_logits, label_logits)


def synthetic_loss(net: TextSASRec, syn: SparseSynthetic, subset: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """[L_syn] Soft inputs as expected embeddings, cross-entropy against soft labels, softmax over V_s.

    `subset` is V_s, sorted, holding every support item; `table` holds its item embeddings in that order."""
    pos_in = torch.searchsorted(subset, syn.input_items)
    pos_lab = torch.searchsorted(subset, syn.label_items)
    tokens = expected_embeddings(pos_in, F.softmax(syn.input_logits, -1), table)
    hidden = net.forward_tokens(tokens, syn.mask, syn.segments)
    log_probs = F.log_softmax(hidden[syn.mask] @ table.T, -1)
    p_lab = F.softmax(syn.label_logits, -1)[syn.mask]
    return -(p_lab * log_probs.gather(-1, pos_lab[syn.mask])).sum(-1).mean()


def real_loss(net: TextSASRec, seqs: torch.Tensor, targets: torch.Tensor, subset: torch.Tensor,
              table: torch.Tensor) -> torch.Tensor:
    """[L_real] Next-item cross-entropy on real rows with the softmax over V_s (which holds the targets)."""
    real = targets != PAD_ID
    # Inputs are embedded from their own ids only, so a step never touches the whole catalogue.
    input_ids = torch.unique(seqs[seqs != PAD_ID])
    hidden = net(seqs, item_table=net.item_embeddings(input_ids), table_items=input_ids)[real]
    return F.cross_entropy(hidden @ table.T, torch.searchsorted(subset, targets[real]))
