"""What a job's worker writes about the phase it is in, so the app can show progress and time left for each.

A job works through these phases, in this order (analysis/job_progress.py reads them back):

    encode     item texts through the text encoder       done / total = texts
    expert     the expert recommender's epochs            done / total = epochs (early stopping may end it sooner)
    steps      a run's distillation steps                 done / total = steps
    distill    a run of a method without steps (a coreset): no count
    select     the quick students that score candidates of the synthetic data on held-out training data
    students   the fresh students that evaluate a run     done / total = students
    reference  the full-data reference's students          done / total = epochs (early stopping may end it sooner)

The job's state.json holds the current one under "phase" and the finished ones under "timings" (their
seconds and counts), from which the app estimates the phases still to come.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..methods.events import CandidateScored, Event, ReferenceScored, StepEvent
from .run_store import FULL, Run

# The reference's students report each epoch as a line (evaluator.EpochReporter: "<label>: epoch 3, loss ..."),
# then their test score ("<label> 1/1: test NDCG@10 ...").
EPOCH_LINE = re.compile(r": epoch (\d+),")
STUDENT_DONE = ": test NDCG@10"
# Seconds between two writes of the same phase's progress (a phase change is always written at once).
WRITE_EVERY = 0.5


def quick_students(config: Any) -> int:
    """How many quick students score a run's candidates on held-out training data: one per candidate (the
    start, every `select_every` steps and the last step) plus one for teacher's data; 0 without selection."""
    every, steps = getattr(config, "select_every", 0), getattr(config, "steps", 0)
    if not every or not steps:
        return 0
    candidates = 1 + len({s for s in range(1, steps + 1) if s % every == 0 or s == steps})
    return candidates + (1 if getattr(config, "teacher_candidate", False) else 0)


class PhaseTracker:
    """Writes the job's current phase through `write` (Job.update) and keeps the finished ones' timings."""

    def __init__(self, write: Callable[..., None], clock: Callable[[], float] = time.monotonic,
                 log: Callable[[str], None] | None = None):
        # `log` gets one line as each phase starts and ends: the worker's log then tells where the time went.
        self.write, self.clock, self.log = write, clock, log
        self.timings: list[dict] = []
        self.phase: dict | None = None
        self._started = 0.0
        self._written = 0.0

    def start(self, name: str, label: str, total: int | None = None, unit: str = "", pair: int | None = None,
              **extra: Any) -> None:
        self.finish()
        self._started = self.clock()
        self.phase = {"name": name, "label": label, "pair": pair, "done": 0, "total": total, "unit": unit,
                      "elapsed": 0.0, "since": time.time(), **extra}
        if self.log:
            self.log(f"{time.strftime('%H:%M:%S')} started: {label}")
        self._write(force=True)

    def advance(self, done: int, total: int | None = None, elapsed: float | None = None) -> None:
        """The phase has `done` of its units done; `elapsed` is its own measure of seconds, when it has one."""
        if self.phase is None:
            return
        first = self.phase["done"] == 0  # written at once: the page's pace and time left start from it
        self.phase["done"] = int(done)
        if total is not None:
            self.phase["total"] = int(total)
        self.phase["elapsed"] = float(elapsed if elapsed is not None else self.clock() - self._started)
        self._write(force=first or (self.phase["total"] is not None and done >= self.phase["total"]))

    def finish(self) -> None:
        """The current phase has ended: its seconds join the timings."""
        if self.phase is None:
            return
        seconds = max(self.clock() - self._started, self.phase["elapsed"])
        self.timings.append({k: self.phase[k] for k in ("name", "pair", "done", "total", "unit")}
                            | {"seconds": round(seconds, 3)})
        if self.log:
            count = f"{self.phase['done']} of {self.phase['total']} {self.phase['unit']} " if self.phase["total"] else ""
            self.log(f"{time.strftime('%H:%M:%S')} finished: {self.phase['label']} ({count}in {seconds:.1f} s)")
        self.phase = None
        self.write(phase=None, timings=self.timings)

    def _write(self, force: bool) -> None:
        now = self.clock()
        if force or now - self._written >= WRITE_EVERY:
            self._written = now
            self.write(phase=self.phase, timings=self.timings)

    # ------------------------------------------------------------------ callbacks for the library's hooks

    def on_encode(self, done: int, total: int) -> None:
        self.advance(done, total)

    def on_expert_epoch(self, record: dict) -> None:
        self.advance(int(record["epoch"]), elapsed=float(record.get("seconds", 0.0)))

    def run_events(self, pair: int, run_title: str, quick: int) -> Callable[[Event], None]:
        """The on_event of a run: steps advance its steps phase; after the last step come its quick students
        (when it selects on held-out training data), each scored one advancing them."""
        def on_event(event: Event) -> None:
            name = (self.phase or {}).get("name")
            if isinstance(event, StepEvent):
                if name != "steps":
                    self.start("steps", f"{run_title}: distillation steps", event.of, "steps", pair)
                self.advance(event.step, event.of)
                if event.step >= event.of and quick:
                    self.start("select", f"{run_title}: scoring the synthetic data on held-out training data",
                               quick, "quick students", pair)
            elif isinstance(event, (ReferenceScored, CandidateScored)):
                if name != "select":
                    self.start("select", f"{run_title}: scoring the synthetic data on held-out training data",
                               quick or None, "quick students", pair)
                self.advance(self.phase["done"] + 1)
        return on_event

    def student_line(self, line: str) -> None:
        """A run's students report one line each, when trained."""
        if self.phase is not None and self.phase["name"] == "students":
            self.advance(self.phase["done"] + 1)

    def reference_line(self, line: str) -> None:
        """The reference's students report each epoch and then their test score; the phase counts epochs
        over all its students (a student that stops early counts as all its epochs once it has reported)."""
        if self.phase is None or self.phase["name"] != "reference":
            return
        epochs, finished = self.phase["epochs"], self.phase.get("students_done", 0)
        match = EPOCH_LINE.search(line)
        if match:
            self.advance(finished * epochs + int(match.group(1)))
        elif STUDENT_DONE in line:
            self.phase["students_done"] = finished + 1
            self.advance((finished + 1) * epochs)


@dataclass
class ReportingRun(Run):
    """A run that calls `on_evaluate(run)` when it starts its evaluation (status phase "evaluate"): the moment
    a run's students, or the reference's, begin."""

    on_evaluate: Callable[[Run], None] | None = field(default=None, repr=False, compare=False)

    def set_status(self, status: str, message: str = "", **extra: object) -> None:
        super().set_status(status, message, **extra)
        if self.on_evaluate and status == "running" and extra.get("phase") == "evaluate":
            self.on_evaluate(self)


def evaluation_phase(tracker: PhaseTracker, run: Run, title: str, pair: int | None, students: int,
                     reference_epochs: int) -> None:
    """Start the phase of a run's evaluation: its students, or the reference's epochs for the full-data run."""
    if run.config.get("method") == FULL:
        tracker.start("reference", "full-data reference: training on all the training data",
                      reference_epochs * students, "epochs", None, epochs=reference_epochs)
    else:
        tracker.start("students", f"{title}: evaluating with fresh students", students, "students", pair)
