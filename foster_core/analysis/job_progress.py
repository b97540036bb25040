"""A job's progress as the Distill page tells it: runs done of all (the full-data reference counted), the phase
at work with its progress and time left, and the phases still to come with their time where this job's own
finished phases allow an estimate (runs/job_phases.py says what the worker writes).

Everything here reads a job's spec and state dict, so it is tested on hand-made states.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ..methods.registry import get_method, method_names, needs_expert, needs_labeller
from ..runs.evaluator import format_seconds
from ..runs.job_phases import quick_students
from ..runs.jobs import JobSpec, job_configs
from ..runs.ladder import ladder_passed
from .compare import run_title

REFERENCE_TITLE = "full-data reference"
# Phases whose total is an upper bound: early stopping may end them sooner.
BOUNDED = ("expert", "reference")
# Estimates this short read "a few seconds"; also the estimate of a coreset's start (it picks real sequences
# by their item texts' embeddings, already encoded), which no measure precedes.
FEW_SECONDS = 5.0


def about(seconds: float) -> str:
    """An estimate in words: "a few seconds" when short, else "about 1 min 32 s"."""
    return "a few seconds" if seconds <= FEW_SECONDS else f"about {format_seconds(seconds)}"


def one_of(unit: str) -> str:
    """One of a phase's units: "epochs" -> "epoch", "quick students" -> "quick student"."""
    return unit[:-1] if unit.endswith("s") else unit


@dataclass(frozen=True)
class Planned:
    """One phase of a job's plan: what it is, for which (method, budget) pair, how many units it has."""

    name: str
    pair: int | None
    label: str
    count: int | None = None


@dataclass
class PhaseView:
    label: str
    done: int
    total: int | None
    unit: str
    elapsed: float  # seconds in this phase so far
    left: float | None  # seconds left in it, when they can be estimated
    bounded: bool = False  # `total` (and so `left`) is an upper bound

    @property
    def fraction(self) -> float | None:
        return min(max(self.done / self.total, 0.0), 1.0) if self.total else None

    def text(self) -> str:
        if not self.total:
            counted = ""
        elif self.bounded:  # "epoch 3 of at most 10": early stopping may end it before the last
            counted = " — " + " ".join(filter(None, (one_of(self.unit), f"{self.done} of at most {self.total}")))
        else:
            counted = f" — {self.done} of {self.total} {self.unit}".rstrip()
        if self.left is not None:
            left = f" · {about(self.left)} left{' at most' if self.bounded else ''}"
        elif self.total:  # no unit done yet, and nothing measured that predicts this phase
            first = one_of(self.unit) or "unit"
            left = f" · {format_seconds(self.elapsed)} so far · time left: after the first {first} finishes"
        else:
            left = f" · {format_seconds(self.elapsed)} so far · time left: not estimated for this part"
        return f"{self.label}{counted}{left}"


@dataclass
class JobProgress:
    runs_done: int
    runs_total: int
    phase: PhaseView | None
    to_come: list[tuple[str, float | None]] = field(default_factory=list)  # (label, estimated seconds or None)
    reference: str = ""  # "to train", "trained", "reused", "off" or "" (a job from before this was recorded)

    @property
    def left(self) -> float | None:
        """Seconds left for the phase at work and every phase to come that has an estimate (None: none has)."""
        known = [s for _, s in self.to_come if s is not None]
        if self.phase is not None and self.phase.left is not None:
            known.append(self.phase.left)
        return sum(known) if known else None

    def runs_text(self) -> str:
        reused = " · full-data reference reused from an earlier run" if self.reference == "reused" else ""
        return f"runs done: {self.runs_done} of {self.runs_total}{reused}"

    def then_text(self) -> str:
        """The phases to come, in words, each with its time where this job's own measures allow an estimate,
        and the time left in all (or for the part that can be estimated)."""
        if not self.to_come:
            return ""
        # Each phase once: with its estimate, or among those not estimated yet.
        named = ", ".join(f"{label} ({about(s)})" for label, s in self.to_come if s is not None)
        unknown = ", ".join(label for label, s in self.to_come if s is None)
        if not unknown:
            return f"Then: {named} · {about(self.left)} left in all"
        if not named:
            return f"Then (not estimated yet): {unknown}"
        return f"Then: {named} · {about(self.left)} left for the part estimated so far; not estimated yet: {unknown}"


def plan(spec: JobSpec, configs: dict[str, Any], students: int, reference_epochs: int,
         train_reference: bool, stopped: dict | None = None) -> list[Planned]:
    """Every phase of a job, in the order the worker runs them. A budget ladder trains its reference before
    the runs, and skips the budgets above the one where it stopped a method (`stopped`: the job state's
    ladder_stopped, method -> {"budget", "reason"})."""
    phases = [Planned("encode", None, "encoding item texts")]
    if needs_expert(spec.methods):
        phases.append(Planned("expert", None, "training the expert", reference_epochs))
    if needs_labeller(spec.methods, spec.distill):  # its epochs are the expert's best: known once it starts
        phases.append(Planned("labeller", None, "refitting the expert on the whole training split", None))
    reference = [Planned("reference", None, REFERENCE_TITLE, reference_epochs * students)] if train_reference else []
    if spec.ladder:
        phases += reference
    for index, (method, budget) in enumerate(spec.pairs()):
        if ladder_passed(stopped, method, budget):
            continue
        title = run_title(method, budget)
        phases.append(Planned("distill", index, f"{title}: start", 1))
        config = configs[method]
        if method in method_names() and get_method(method).loss_curves:
            phases.append(Planned("steps", index, f"{title}: {config.steps} distillation steps", config.steps))
        quick = quick_students(config)
        if quick:
            phases.append(Planned("select", index, f"{title}: {quick} quick students on held-out training data",
                                  quick))
        phases.append(Planned("students", index, f"{title}: {students} student{'s' if students > 1 else ''}",
                              students))
    return phases if spec.ladder else phases + reference


def _same_kind(spec: JobSpec, a: dict, planned: Planned) -> bool:
    """Whether a measured phase `a` predicts `planned`: same phase, and for a run's phases the same budget (and
    the same method for its start and steps, whose cost is the method's own)."""
    if a.get("name") != planned.name:
        return False
    if planned.pair is None or a.get("pair") is None:
        return planned.pair is None and a.get("pair") is None
    pairs = spec.pairs()
    (method, budget), (other, other_budget) = pairs[planned.pair], pairs[a["pair"]]
    return budget == other_budget and (method == other or planned.name in ("select", "students"))


def _same_budget(spec: JobSpec, pair: int | None, other: int | None) -> bool:
    pairs = spec.pairs()
    return pair is not None and other is not None and pairs[pair][1] == pairs[other][1]


def estimate(spec: JobSpec, planned: Planned, measured: list[dict],
             student_per_quick: dict[int, float] | None = None) -> float | None:
    """Seconds a phase to come should take, from this job's measured phases of the same kind. Without one: a
    run's students from quick students at the same budget, scaled by their epoch budgets (`student_per_quick`:
    pair -> student epochs over quick-student epochs; both stop early, so a rough figure), and the reference
    from the expert's seconds per epoch (the same model on nearly the same sequences). None without a measure."""
    for timing in reversed(measured):
        if _same_kind(spec, timing, planned):
            if planned.name == "distill":
                return float(timing["seconds"])
            if timing.get("done") and planned.count:
                return timing["seconds"] / timing["done"] * planned.count
    if planned.name == "distill" and planned.pair is not None:
        method = spec.pairs()[planned.pair][0]
        if method in method_names() and not get_method(method).needs_expert:
            return FEW_SECONDS
    if planned.name == "students" and planned.count:
        for timing in reversed(measured):
            pair = timing.get("pair")
            if (timing.get("name") == "select" and timing.get("done") and pair in (student_per_quick or {})
                    and _same_budget(spec, pair, planned.pair)):
                return timing["seconds"] / timing["done"] * student_per_quick[pair] * planned.count
    if planned.name == "reference":
        expert = next((t for t in measured if t.get("name") == "expert" and t.get("done")), None)
        if expert and planned.count:
            return expert["seconds"] / expert["done"] * planned.count
    return None


def job_progress(spec: JobSpec, state: dict, now: float | None = None) -> JobProgress:
    """The job's counts, current phase and phases to come, from its spec and state (`now`: unix time, for
    the seconds a phase has been at work since the worker last wrote)."""
    pairs = spec.pairs()
    reference = state.get("reference", "")
    train_reference = reference in ("to train", "trained") or (not reference and spec.reference)
    total = state.get("total_runs", len(pairs) + int(train_reference))
    status = state.get("status")
    done = total if status == "finished" else min(int(state.get("done_runs", 0)), total)
    try:
        configs = job_configs(spec)
    except (ValueError, KeyError):  # a job of a method or setting this version does not know: counts only
        return JobProgress(done, total, None, [], reference)
    students = len(configs.student.seeds) * len(configs.student.architectures)
    phases = plan(spec, configs.methods, students, configs.expert.epochs, train_reference,
                  state.get("ladder_stopped"))
    measured = list(state.get("timings") or [])
    current = state.get("phase") or None
    if status not in ("queued", "preparing", "running") or current is None:
        return JobProgress(done, total, None, [], reference)
    ratios = {index: configs.student.epochs / configs.methods[method].select_epochs
              for index, (method, _) in enumerate(pairs) if getattr(configs.methods[method], "select_epochs", 0)}
    view = _phase_view(spec, current, measured, now, ratios)
    position = next((i for i, p in enumerate(phases)
                     if p.name == current.get("name") and p.pair == current.get("pair")), -1)
    # The phase at work measures its pace too, for the phases to come (its units so far, in their seconds).
    so_far = [{**current, "seconds": float(current.get("elapsed") or 0.0)}] if current.get("done") else []
    to_come = [(p.label, estimate(spec, p, measured + so_far, ratios)) for p in phases[position + 1:]]
    return JobProgress(done, total, view, to_come, reference)


def _phase_view(spec: JobSpec, current: dict, measured: list[dict], now: float | None,
                student_per_quick: dict[int, float]) -> PhaseView:
    """The phase at work: its count, and its time left from its own pace (or, before its first unit, from a
    measured phase of the same kind, or a run's students from its quick students' pace)."""
    name, phase_done, phase_total = current.get("name"), int(current.get("done") or 0), current.get("total")
    elapsed_at_write = float(current.get("elapsed") or 0.0)
    since = current.get("since")
    live = (now if now is not None else time.time()) - since if isinstance(since, (int, float)) else elapsed_at_write
    elapsed = max(elapsed_at_write, live)
    left = None
    if phase_total and phase_done > 0:
        # The pace up to the last unit, less the time spent on the next one since.
        remaining = max(phase_total - phase_done, 0)
        left = max(elapsed_at_write / phase_done * remaining - (elapsed - elapsed_at_write), 0.0)
    elif phase_total or name == "distill":
        planned = Planned(name, current.get("pair"), "", phase_total)
        expected = estimate(spec, planned, measured, student_per_quick)
        if expected is not None:
            left = max(expected - elapsed, 0.0)
    return PhaseView(current.get("label", name or ""), phase_done, phase_total, current.get("unit", ""), elapsed,
                     left, name in BOUNDED)


def finished_text(progress: JobProgress, run_titles: list[str]) -> str:
    """The banner of a finished job: how many runs, which, and whether the reference was reused."""
    reused = "; the full-data reference was reused from an earlier run" if progress.reference == "reused" else ""
    named = f" ({', '.join(run_titles)})" if run_titles else ""
    return f"Finished: {progress.runs_done} of {progress.runs_total} run(s){named}{reused}."
