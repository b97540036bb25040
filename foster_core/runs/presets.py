"""Presets: named starting points for a job's settings, as data (the Distill page offers them).

A preset holds plain values, not config objects: `distill` is the shared method values that every
method of the job takes where its config has the field (see jobs.JobSpec.distill), so one preset serves
FOSTER, bptt and the baselines alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..core.config import from_dict, to_dict
from ..core.training import TrainConfig
from ..methods.foster import FosterConfig
from .evaluator import StudentConfig
from .ladder import LADDER_WORD, ladder_budgets


@dataclass(frozen=True)
class Preset:
    description: str
    distill: dict = field(default_factory=dict)  # shared method values (JobSpec.distill); {} = the defaults
    student: dict = field(default_factory=dict)  # StudentConfig values
    expert: dict = field(default_factory=dict)  # TrainConfig values of the expert and the full-data reference
    budgets: tuple[int, ...] = (20,)
    methods: tuple[str, ...] = ("foster", "random")  # the first is the job's main method
    reference: bool = True

    def student_config(self) -> StudentConfig:
        return from_dict(StudentConfig, self.student)

    def expert_config(self) -> TrainConfig:
        return from_dict(TrainConfig, self.expert)


PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "Indicative numbers, not paper-grade. First FOSTER numbers after about 1 min 50 s on a fresh cache "
        "for the bundled MovieLens (measured on an idle 2-core machine: 43 s encoding its 9,066 item texts and "
        "38 s training the 4-epoch expert, both cached for later jobs), about 26 s once cached. It runs 20 "
        "FOSTER steps, scores the synthetic data at steps 0 and 20 on held-out training data against teacher "
        "with quick 20-epoch students (keeping teacher's data if it scores higher, as it did on MovieLens with "
        "this short expert), and evaluates with one student of at most 50 epochs; then random at the "
        "same budget and a 4-epoch full-data reference (the short expert and reference are undertrained). "
        "The short expert labels the data itself: no refit on the whole training split, which would take as "
        "long again.",
        distill={"steps": 20, "log_every": 2, "checkpoint_every": 10, "reset_every": 10, "select_every": 20,
                 "select_epochs": 20, "real_batch_size": 64, "label_expert": "holdout"},
        student={"seeds": (0,), "epochs": 50, "patience": 20, "eval_every": 5},
        expert={"epochs": 4, "patience": 2},
    ),
    "standard": Preset(
        f"The library defaults: a fully trained expert, {FosterConfig().steps} FOSTER steps with the synthetic "
        "data chosen on held-out training data, three students per run. Tens of minutes on a CPU for MovieLens "
        "(the expert and reference are cached).",
        distill={}, student=to_dict(StudentConfig()), expert={},
    ),
}


def parse_budgets(text: str, default: int, usable: int | None = None) -> list[int]:
    """The budgets typed into the sweep field ("10, 20, 50"; spaces or semicolons work too), or [default]
    when it is empty; each at least 1 and at most `usable` sequences."""
    budgets = []
    for part in re.split(r"[,;\s]+", text.strip()):
        if not part:
            continue
        try:
            budgets.append(int(part))
        except ValueError:
            raise ValueError(f"budgets are whole numbers separated by commas, e.g. 10, 20, 50 ({part!r} is not one)") from None
    budgets = sorted(set(budgets)) or [int(default)]
    if budgets[0] < 1:
        raise ValueError(f"a budget is a number of synthetic sequences, at least 1 (got {budgets[0]})")
    if usable is not None and budgets[-1] > usable:
        raise ValueError(f"budget {budgets[-1]} is more than the {usable} usable training sequences of this dataset")
    return budgets


def sweep_budgets(text: str, default: int, usable: int) -> tuple[list[int], bool]:
    """The budgets of the Distill page's sweep field and whether they are a budget ladder: `auto` asks for the
    ladder's rungs up to the usable sequences (runs/ladder.py), anything else goes through parse_budgets."""
    if text.strip().lower() == LADDER_WORD:
        return ladder_budgets(usable), True
    return parse_budgets(text, default, usable), False
