"""Distillation methods behind one registry (registry.py); importing this package registers them all.

    coresets.py  random, longest, kcenter, herding: real training sequences as they are
    dealrec.py   DEALRec: real sequences by influence and effort scores, sampled across score strata
    goracs.py    GORACS: real sequences whose gradient distribution matches the data's (optimal transport)
    teacher.py   real sequences with the expert's soft labels (label distillation)
    foster.py    FOSTER: first-order penalty updates of soft synthetic sequences
    bptt.py      unrolled bi-level updates, for cost comparison
    expert.py    the expert and its trajectory (DistillContext), used by all of them
"""

# Each module registers its methods on import; this order is the registry's (and the default bench's) order.
from . import coresets, dealrec, goracs, teacher, foster, bptt  # noqa: F401,I001
from .events import (CandidateScored, CandidateSelected, Checkpoint, Event, ReferenceScored, StepEvent,
                     event_from_record)
from .expert import DistillContext
from .registry import MethodSpec, RunSettings, all_methods, check_budget, distill, get_method, method_names

__all__ = [
    "CandidateScored", "CandidateSelected", "Checkpoint", "DistillContext", "Event", "MethodSpec", "RunSettings",
    "ReferenceScored", "StepEvent", "all_methods", "check_budget", "distill", "event_from_record", "get_method", "method_names",
]
