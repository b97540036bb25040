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
        "First result in about two minutes on a 2-core CPU: a 10-epoch expert, 40 FOSTER steps (S after steps 0, "
        "20 and 40 scored on the training holdout against teacher, by quick 30-epoch students), one student of "
        "at most 100 epochs, and a 10-epoch full-data reference. Numbers are indicative, not paper-grade.",
        distill={"steps": 40, "log_every": 2, "checkpoint_every": 20, "reset_every": 20, "select_every": 20,
                 "select_epochs": 30},
        student={"seeds": (0,), "epochs": 100, "patience": 30, "eval_every": 5},
        expert={"epochs": 10, "patience": 5},
    ),
    "standard": Preset(
        f"The library defaults: a fully trained expert, {FosterConfig().steps} FOSTER steps with selection on the "
        "training holdout, three students per run. Tens of minutes on a CPU for MovieLens (the expert and "
        "reference are cached).",
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
