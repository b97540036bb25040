"""`teacher`: label distillation. Real sequences (random by default) whose labels are the expert's soft
next-item predictions; `expert_labels` is also how FOSTER's start gets its labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from ..core.synthetic import SyntheticData, expected_embeddings
from .coresets import check_selection, packed_sequences, selected_sequences
from .events import Checkpoint, EventCallback, StopCheck
from .expert import DistillContext
from .registry import MethodSpec, RunSettings, register


@dataclass(frozen=True)
class LabelConfig(RunSettings):
    """Label distributions keep this many of the expert's top predictions, renormalised."""

    label_support: int = 16

    def __post_init__(self) -> None:
        if self.label_support < 1:
            raise ValueError("label_support must be at least 1")


@dataclass(frozen=True)
class TeacherConfig(LabelConfig):
    selection: str = "random"  # which real sequences get the expert's labels (random = the baseline as defined)
    RENAMED: ClassVar[dict[str, str]] = {"teacher_selection": "selection"}  # its name in run folders before 12/2026

    def __post_init__(self) -> None:
        super().__post_init__()
        check_selection(self.selection, "selection")


@torch.no_grad()
def expert_labels(context: DistillContext, synthetic: SyntheticData, support: int) -> SyntheticData:
    """Replace the labels by the expert's next-item distributions (top `support` items, renormalised)."""
    expert = context.expert()
    device = next(expert.parameters()).device
    table = expert.item_embeddings()
    # One-hot inputs are the K = 1 case of the expected embedding over each position's sparse support.
    tokens = expected_embeddings(synthetic.input_items.to(device), synthetic.input_probs.to(device), table)
    hidden = expert.forward_tokens(tokens, synthetic.mask.to(device))
    probs = F.softmax(expert.score(hidden, item_table=table), dim=-1)
    top = probs.topk(min(support, context.num_items), dim=-1)
    label_probs = (top.values / top.values.sum(-1, keepdim=True)).cpu()
    return SyntheticData(synthetic.input_items, synthetic.input_probs, top.indices.cpu(), label_probs, synthetic.mask)


def labelled_selection(context: DistillContext, budget: int, config: LabelConfig, selection: str,
                       packed: bool = False) -> SyntheticData:
    """Real sequences picked by a coreset selector (laid end to end when `packed`), labels = the expert's
    soft predictions."""
    return expert_labels(context, selected_coreset(context, budget, selection, config.seed, packed),
                         config.label_support)


def selected_coreset(context: DistillContext, budget: int, selection: str, seed: int,
                     packed: bool = False, drop_last: bool = False) -> SyntheticData:
    """Real sequences picked by a coreset selector (laid end to end when `packed`; each without its last
    item with `drop_last`), as one-hot synthetic data: each position's real item and its real next item."""
    if packed:
        return SyntheticData.from_sequences(packed_sequences(context, budget, selection, seed, drop_last),
                                            context.model_cfg.max_len - 1)
    return selected_sequences(context, selection, budget, seed, drop_last)


def distill_teacher(context: DistillContext, budget: int, config: TeacherConfig,
                    on_event: EventCallback | None = None, should_stop: StopCheck | None = None,
                    resume: Checkpoint | None = None) -> SyntheticData:
    """Label distillation: real sequences (random by default), labels = the expert's soft predictions."""
    return labelled_selection(context, budget, config, config.selection)


register(MethodSpec("teacher", distill_teacher, TeacherConfig,
                    help="random real sequences labelled with the expert's top soft predictions (label distillation)"))
