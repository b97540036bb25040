"""`teacher`: label distillation. Real sequences (random by default) whose labels are the expert's soft
next-item predictions; `expert_labels` is also how FOSTER's start gets its labels."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..core.data import PAD_ID
from ..core.synthetic import SyntheticData, expected_embeddings
from .coresets import check_selection, packed_groups, selected_sequences
from .events import Checkpoint, EventCallback, StopCheck
from .expert import DistillContext
from .registry import MethodSpec, RunSettings, register


LABEL_EXPERTS = ("refit", "holdout")


@dataclass(frozen=True)
class LabelConfig(RunSettings):
    """How the expert's next-item predictions become label distributions (`teacher`, FOSTER's start and
    bptt's alike): softmax of the expert's scores / `label_temperature`, cut to the top `label_support`
    items and renormalised. (Leaving out each position's prefix, the items evaluation masks, scored lower on
    the training holdout on MovieLens and amazon_scientific: docs/distillation-notes.md, 2026-12-03. It stays
    a measurement option of `label_distributions`, for benchmarks/labels.py, not a setting.)"""

    label_support: int = 16
    label_temperature: float = 1.0
    # Which model labels the data a method hands out: "refit", the expert refit on the whole training split
    # (`DistillContext.labeller`), or "holdout", the expert itself, which never trains on the holdout's
    # targets (each user's most recent training item). What a method scores on the holdout is labelled by
    # the expert either way.
    label_expert: str = "refit"

    def __post_init__(self) -> None:
        if self.label_support < 1:
            raise ValueError("label_support must be at least 1")
        if self.label_expert not in LABEL_EXPERTS:
            raise ValueError(f"label_expert must be one of {', '.join(LABEL_EXPERTS)}, not {self.label_expert!r}")
        if not self.label_temperature > 0:
            raise ValueError(f"label_temperature must be positive, not {self.label_temperature}")

    @property
    def uses_labeller(self) -> bool:
        """Whether the data handed out is labelled by the expert's refit (`DistillContext.labeller`)."""
        return self.label_expert == "refit"


def label_settings(config: LabelConfig) -> dict:
    """The label fields of `config` (and its seed and device): what makes `teacher`'s labels the same as a
    method's own, e.g. FOSTER's reference line on the holdout."""
    return {f.name: getattr(config, f.name) for f in fields(LabelConfig)}


@dataclass(frozen=True)
class TeacherConfig(LabelConfig):
    selection: str = "random"  # which real sequences get the expert's labels (random = the baseline as defined)
    RENAMED: ClassVar[dict[str, str]] = {"teacher_selection": "selection"}  # its name in run folders before 12/2026

    def __post_init__(self) -> None:
        super().__post_init__()
        check_selection(self.selection, "selection")


def prefix_items(synthetic: SyntheticData) -> torch.Tensor:
    """(n, L) the item each position shows a student: its most probable input item (the item itself for
    one-hot inputs), PAD_ID at padding."""
    top = synthetic.input_items.gather(-1, synthetic.input_probs.argmax(-1, keepdim=True)).squeeze(-1)
    return torch.where(synthetic.mask, top, torch.full_like(top, PAD_ID))


def label_distributions(scores: torch.Tensor, inputs: torch.Tensor, config: LabelConfig,
                        exclude_prefix: bool = False,
                        segments: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(label items, label probs), each (n, L, K): the labels `config` makes of scores (n, L, M) at
    positions whose input items are `inputs` (n, L; PAD_ID = padding), in rows packed as `segments` says.

    softmax(scores / label_temperature), with `exclude_prefix` over the items outside each position's
    prefix (the inputs of its own sequence up to and including its own), cut to the top K items and
    renormalised: the softmax over those K logits. K is label_support, or fewer where the prefix leaves
    fewer items; a position whose prefix holds the whole catalogue keeps every item (nothing would be left
    to label)."""
    logits = scores.float() / config.label_temperature
    num_items = logits.shape[-1]
    left = num_items
    if exclude_prefix:
        logits = logits.clone()
        seen = torch.zeros(logits.shape[0], num_items, dtype=torch.bool, device=logits.device)
        rows = torch.arange(logits.shape[0], device=logits.device)
        for t in range(logits.shape[1]):
            if segments is not None and t > 0:  # a packed row's next sequence starts with an empty prefix
                seen[segments[:, t] != segments[:, t - 1]] = False
            real = inputs[:, t] != PAD_ID
            seen[rows[real], inputs[real, t]] = True
            hide = seen & (seen.sum(-1, keepdim=True) < num_items)
            logits[:, t].masked_fill_(hide, -float("inf"))
            left = min(left, num_items - int(hide.sum(-1).max()))
    top = F.softmax(logits, dim=-1).topk(min(config.label_support, left), dim=-1)
    return top.indices, top.values / top.values.sum(-1, keepdim=True)


@torch.no_grad()
def expert_labels(context: DistillContext, synthetic: SyntheticData, config: LabelConfig,
                  exclude_prefix: bool = False) -> SyntheticData:
    """Replace the labels by the next-item distributions of `config.label_expert` (the expert, or its refit
    on the whole training split), made by `label_distributions`."""
    expert = context.labeller() if config.uses_labeller else context.expert()
    device = next(expert.parameters()).device
    table = expert.item_embeddings()
    # One-hot inputs are the K = 1 case of the expected embedding over each position's sparse support.
    tokens = expected_embeddings(synthetic.input_items.to(device), synthetic.input_probs.to(device), table)
    segments = None if synthetic.segments is None else synthetic.segments.to(device)
    hidden = expert.forward_tokens(tokens, synthetic.mask.to(device), segments)
    items, probs = label_distributions(expert.score(hidden, item_table=table), prefix_items(synthetic).to(device), config,
                                       exclude_prefix, segments)
    return replace(synthetic, label_items=items.cpu(), label_probs=probs.cpu())


def holdout_labels(config: LabelConfig) -> LabelConfig:
    """`config` with the expert as the labeller: labels for data that the holdout will score, since the
    refit learned the holdout's targets (a student on data it labelled would be scored on pairs it taught)."""
    return replace(config, label_expert="holdout")


def handed_out(context: DistillContext, synthetic: SyntheticData, config: LabelConfig) -> SyntheticData:
    """Data chosen on the holdout's terms (the expert's labels), labelled for handing out: relabelled by the
    refit expert (`DistillContext.labeller`) on its own inputs when `config.label_expert` is "refit"."""
    return expert_labels(context, synthetic, config) if config.uses_labeller else synthetic


def labelled_selection(context: DistillContext, budget: int, config: LabelConfig, selection: str,
                       packed: bool = False) -> SyntheticData:
    """Real sequences picked by a coreset selector (laid end to end when `packed`), labels = the expert's
    soft predictions; in a packed row each sequence's are made from its own items alone (`segments`)."""
    return expert_labels(context, selected_coreset(context, budget, selection, config.seed, packed), config)


def selected_coreset(context: DistillContext, budget: int, selection: str, seed: int,
                     packed: bool = False, drop_last: bool = False) -> SyntheticData:
    """Real sequences picked by a coreset selector (laid end to end when `packed`; each without its last
    item with `drop_last`), as one-hot synthetic data: each position's real item and its real next item."""
    if packed:
        return packed_coreset(context, budget, selection, seed, drop_last)
    return selected_sequences(context, selection, budget, seed, drop_last)


def packed_coreset(context: DistillContext, budget: int, selection: str, seed: int,
                   drop_last: bool = False) -> SyntheticData:
    """`packed_groups` as `budget` synthetic sequences: each real sequence becomes its own row, and the rows
    of a group are laid end to end, numbered in `segments`. No position asks for the next user's first
    item, and the expert and the students read each user apart from the users before it (labels made on
    the packed rows as one sequence scored 0.0631 against 0.0649 at n = 20 on amazon_scientific;
    docs/distillation-notes.md, 2026-12-03)."""
    groups = packed_groups(context, budget, selection, seed, drop_last)
    rows = SyntheticData.from_sequences([seq for group in groups for seq in group], context.model_cfg.max_len - 1)
    return rows.packed([len(group) for group in groups])


def distill_teacher(context: DistillContext, budget: int, config: TeacherConfig,
                    on_event: EventCallback | None = None, should_stop: StopCheck | None = None,
                    resume: Checkpoint | None = None) -> SyntheticData:
    """Label distillation: real sequences (random by default), labels = the expert's soft predictions."""
    return labelled_selection(context, budget, config, config.selection)


register(MethodSpec("teacher", distill_teacher, TeacherConfig,
                    help="random real sequences labelled with the expert's top soft predictions (label distillation)"))
