"""Typed records that a distiller reports while it works, and their form in a run's history file.

A method calls `on_event(event)` with one of these; the runner saves checkpoints, appends the others to
the run's `history.jsonl`, and the app and the CLI read them back with `event_from_record`. The JSON form
is the one run folders have always held, so old histories read as typed events too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

from ..core.synthetic import SyntheticData


@dataclass(frozen=True)
class StepEvent:
    """One logged optimisation step: the loss terms and schedule values at `step` of `of`."""

    step: int
    of: int
    seconds: float
    values: dict[str, float] = field(default_factory=dict)  # loss_real, loss_syn, lambda, ... (a loss curve each)
    subset: int = 0  # items in the step's subset V_s

    def to_record(self) -> dict:
        return {"step": self.step, "of": self.of, "seconds": self.seconds, **self.values, "subset": self.subset}

    def losses(self) -> dict[str, float]:
        return {k: v for k, v in self.values.items() if k.startswith("loss")}


@dataclass(frozen=True)
class Checkpoint:
    """S after `step`: saved to the run folder while the method works, and the point a resume starts from."""

    step: int
    synthetic: SyntheticData


@dataclass(frozen=True)
class CandidateScored:
    """During the selection after the last step: candidate S (taken at `step`) scored on the holdout."""

    step: int
    of: int
    holdout_ndcg: float
    candidate: int  # 1-based
    candidates: int

    def to_record(self) -> dict:
        return {"phase": "select", "step": self.step, "of": self.of, "holdout_ndcg@10": self.holdout_ndcg,
                "candidate": self.candidate, "candidates": self.candidates}


@dataclass(frozen=True)
class CandidateSelected:
    """The candidate kept: S as it was after `step`, or (`kept`, e.g. "teacher") that method's data, which
    scored above every candidate of S on the same holdout."""

    step: int
    of: int
    holdout_ndcg: float
    kept: str = ""

    def to_record(self) -> dict:
        record = {"phase": "selected", "step": self.step, "of": self.of, "holdout_ndcg@10": self.holdout_ndcg}
        return record | ({"kept": self.kept} if self.kept else {})


@dataclass(frozen=True)
class ReferenceScored:
    """During the selection: another method's synthetic data for the same budget (`name`, e.g. "teacher"),
    scored on the same holdout by the same quick student as the candidates: the bar to beat, and kept
    instead of S when it scores above every candidate (FosterConfig.teacher_candidate)."""

    name: str
    holdout_ndcg: float

    def to_record(self) -> dict:
        return {"phase": "reference", "name": self.name, "holdout_ndcg@10": self.holdout_ndcg}


Event = Union[StepEvent, Checkpoint, CandidateScored, CandidateSelected, ReferenceScored]
LoggedEvent = Union[StepEvent, CandidateScored, CandidateSelected, ReferenceScored]
EventCallback = Callable[[Event], None]
StopCheck = Callable[[], bool]


def kept_label(method: str, kept: object = "") -> str:
    """A run's method as every table and card names it: with the other method whose data its selection kept
    (CandidateSelected.kept), so no table credits that data to the method."""
    return f"{method} (kept {kept}'s data)" if isinstance(kept, str) and kept else method


_SCHEDULE = ("step", "of", "seconds", "subset")


def event_from_record(record: dict) -> LoggedEvent | None:
    """The typed event of one history line, or None for a line that is none of them."""
    phase = record.get("phase")
    if phase == "select":
        return CandidateScored(int(record["step"]), int(record.get("of") or 0), float(record["holdout_ndcg@10"]),
                               int(record.get("candidate", 0)), int(record.get("candidates", 0)))
    if phase == "selected":
        return CandidateSelected(int(record["step"]), int(record.get("of") or 0), float(record["holdout_ndcg@10"]),
                                 str(record.get("kept", "")))
    if phase == "reference":
        return ReferenceScored(str(record.get("name", "")), float(record["holdout_ndcg@10"]))
    if phase is not None or "step" not in record:
        return None
    values = {k: float(v) for k, v in record.items()
              if k not in _SCHEDULE and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return StepEvent(int(record["step"]), int(record.get("of") or 0), float(record.get("seconds", 0.0)), values,
                     int(record.get("subset", 0)))
