"""Progress for the command line: bars on a terminal, plain lines in a log or a pipe.

A redirected log gets no carriage returns, cursor codes or bars left open, only lines a person can read
afterwards: a line per tenth of a phase, a step line per tenth of a method's run (loss terms, seconds per
step, time left), and a line per candidate of its selection.
"""

from __future__ import annotations

import sys

from tqdm import tqdm

from .methods import CandidateScored, CandidateSelected, ReferenceScored, StepEvent
from .runs.evaluator import format_seconds


def interactive() -> bool:
    """Whether a person watches a terminal: bars then; plain lines for a log or a pipe, where a bar's
    carriage returns and cursor codes are noise and an unfinished one stays on the page."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class _Bar:
    """A tqdm bar that appears on the first update, when the total is known, and closes once it is full."""

    def __init__(self, desc: str, unit: str):
        self.desc, self.unit, self.bar = desc, unit, None

    def set(self, done: int, total: int | None = None, **postfix: str) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.desc, unit=self.unit)
        if postfix:
            self.bar.set_postfix(postfix)
        self.bar.update(done - self.bar.n)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None  # a later update starts a new bar where this one ended


class _Lines:
    """The same progress as plain lines: one per tenth of the total, and one at the end."""

    def __init__(self, desc: str, unit: str):
        self.desc, self.unit, self.last_tenth = desc, unit, -1

    def set(self, done: int, total: int | None = None, **postfix: str) -> None:
        tenth = 10 * done // total if total else 0
        if tenth > self.last_tenth:
            self.last_tenth = tenth
            extra = "".join(f", {k} {v}" for k, v in postfix.items())
            print(f"{self.desc}: {done}/{total or '?'} {self.unit}s{extra}", flush=True)

    def close(self) -> None:
        pass


def progress_display(desc: str, unit: str) -> _Bar | _Lines:
    return _Bar(desc, unit) if interactive() else _Lines(desc, unit)


def say(line: str) -> None:
    print(f"  {line}", flush=True)


class EventLines:
    """A method's events as progress lines for logs: a step line every tenth of the run (with the loss terms,
    seconds per step and time left), and one line per candidate scored in the selection phase."""

    def __init__(self, label: str):
        self.label, self.last_tenth = label, -1

    def __call__(self, event: object) -> None:
        if isinstance(event, CandidateScored):
            say(f"{self.label}: selection, candidate {event.candidate}/{event.candidates} (S after step "
                 f"{event.step}): holdout NDCG@10 {event.holdout_ndcg:.4f}")
        elif isinstance(event, CandidateSelected):
            kept = f"{event.kept}'s data, above every step's S" if event.kept else f"S after step {event.step}"
            say(f"{self.label}: kept {kept} (holdout NDCG@10 {event.holdout_ndcg:.4f})")
        elif isinstance(event, ReferenceScored):
            say(f"{self.label}: selection, {event.name}'s data as the bar to beat (kept if no S beats it): "
                f"holdout NDCG@10 "
                 f"{event.holdout_ndcg:.4f}")
        elif isinstance(event, StepEvent) and event.of:
            tenth = 10 * event.step // event.of
            if tenth > self.last_tenth:
                self.last_tenth = tenth
                per_step = event.seconds / max(event.step, 1)
                losses = ", ".join(f"{k} {v:.3f}" for k, v in event.losses().items())
                say(f"{self.label}: step {event.step}/{event.of}, {losses}; {per_step:.2f} s/step, "
                     f"{format_seconds(per_step * (event.of - event.step))} left")


    def close(self) -> None:
        pass


class _StepBar:
    """A method's steps as a bar, for a terminal; its selection of S after the last step as lines."""

    def __init__(self, label: str):
        self.bar, self.lines = _Bar(f"Distilling ({label})", "step"), EventLines(label)

    def __call__(self, event: object) -> None:
        if isinstance(event, StepEvent):
            self.bar.set(event.step, event.of, **{k: f"{v:.3f}" for k, v in event.losses().items()})
        else:
            self.bar.close()
            self.lines(event)

    def close(self) -> None:
        self.bar.close()


def method_progress(label: str) -> _StepBar | EventLines:
    """A method's events as a bar on a terminal, as lines in a log."""
    return _StepBar(label) if interactive() else EventLines(label)
