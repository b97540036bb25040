"""A run's live progress, read from its folder: a progress fraction with ETA, its loss curves, and the holdout
quality of its candidates of S against their start and `teacher`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from ..methods.events import CandidateScored, CandidateSelected, LoggedEvent, ReferenceScored, StepEvent
from ..runs.run_store import Run


@dataclass
class Progress:
    fraction: float | None  # None while no step count is known (coresets, evaluation)
    text: str
    eta_seconds: float | None = None
    steps: list[StepEvent] = field(default_factory=list)  # the loss-curve points so far


def run_progress(run: Run) -> Progress:
    status = run.status
    events = run.events
    steps = [e for e in events if isinstance(e, StepEvent)]
    state = status.get("status")
    if state != "running":
        return Progress(1.0 if state == "finished" else None, f"{state}: {status.get('message', '')}", None, steps)
    if status.get("phase") == "evaluate":
        return Progress(None, "evaluating: training fresh students on the synthetic data", None, steps)
    scored = [e for e in events if isinstance(e, CandidateScored)]
    if scored:
        return Progress(None, f"choosing the best checkpoint on the training holdout "
                              f"({scored[-1].candidate} of {scored[-1].candidates})", None, steps)
    if any(isinstance(e, ReferenceScored) for e in events):
        return Progress(None, "teacher scored on the training holdout; scoring the checkpoints of S", None, steps)
    if steps:
        last = steps[-1]
        eta = last.seconds / max(last.step, 1) * (last.of - last.step) if last.of else None
        return Progress(last.step / last.of if last.of else None, f"step {last.step} of {last.of}", eta, steps)
    started = status.get("started")
    elapsed = f" ({time.time() - started:.0f} s)" if isinstance(started, (int, float)) else ""
    return Progress(None, f"{status.get('message', 'starting')}{elapsed}", None, steps)


# One line per logged term: what it measures and what a healthy curve looks like (the Distill page's help).
TERM_HELP: dict[str, str] = {
    "loss_real": "next-item loss of the outer recommender on a batch of real sequences. It follows the "
                 "recommender's trajectory, which restarts at each reset, so it need not fall steadily; a healthy "
                 "run keeps it bounded rather than climbing without end.",
    "loss_syn": "loss of the outer recommender on the synthetic data. It jumps at every trajectory reset (the "
                "recommender restarts from a checkpoint of the expert's training) and falls between resets: expected.",
    "loss_syn_inner": "loss on the synthetic data of the inner recommender, trained on the synthetic data alone; "
                      "it should sit at or below loss_syn.",
    "gap": "loss_syn minus loss_syn_inner: how far the real-data recommender is from fitting the synthetic data "
           "as well as the inner one does. Near 0 and stable is healthy; the penalty pushes it down.",
    "loss_reg": "text-smoothness regulariser: items with similar texts should be followed by similar items. It "
                "should fall or stay flat.",
    "lambda": "penalty weight on the gap; it rises linearly over the steps by design (not a loss).",
    "label_entropy": "entropy of the synthetic next-item labels: how spread out they are. A slow decline means "
                     "the labels become more decisive; a collapse to 0 means one-hot labels.",
}


def term_help(term: str) -> str:
    """The one-line explanation of a logged term (a plain note for a term without one)."""
    return TERM_HELP.get(term, "a value the method logs at each step.")


def loss_frame(steps: list[StepEvent]) -> pd.DataFrame:
    """Long format (step, term, value) of every logged value, for one line per term."""
    rows = [{"step": e.step, "term": k, "value": v} for e in steps for k, v in e.values.items()]
    return pd.DataFrame(rows, columns=["step", "term", "value"])


@dataclass
class HoldoutQuality:
    """What the Distill page's quality chart draws: each scored candidate of S, and the lines to compare it with."""

    points: pd.DataFrame  # step, holdout ndcg@10, candidate ("start" for step 0), selected (bool)
    start: float | None = None  # the candidate at step 0 (the soft start), when it was scored
    references: dict[str, float] = field(default_factory=dict)  # e.g. {"teacher": 0.031}
    note: str = ""  # why there is nothing to draw yet, when there is not

    @property
    def empty(self) -> bool:
        return self.points.empty and not self.references


QUALITY_HELP = ("Healthy: the candidates sit at or above the start line (distillation did not make S worse), "
                "and teacher — real sequences with the expert's labels — is the bar to beat.")


def holdout_quality(events: list[LoggedEvent], select_every: int | None = None,
                    status: str | None = None) -> HoldoutQuality:
    """The holdout NDCG@10 of every scored candidate of S, its start (step 0) and the references (teacher), from
    a run's typed events. `select_every` (the run's config) and its `status` say why a run has no scores."""
    scored = [e for e in events if isinstance(e, CandidateScored)]
    chosen = next((e.step for e in events if isinstance(e, CandidateSelected)), None)
    rows = [{"step": e.step, "holdout ndcg@10": e.holdout_ndcg, "candidate": "start" if e.step == 0 else "checkpoint",
             "selected": e.step == chosen} for e in scored]
    points = pd.DataFrame(rows, columns=["step", "holdout ndcg@10", "candidate", "selected"])
    start = next((e.holdout_ndcg for e in scored if e.step == 0), None)
    references = {e.name: e.holdout_ndcg for e in events if isinstance(e, ReferenceScored)}
    note = ""
    if not scored and not references:
        if select_every == 0:
            note = ("No holdout scores: this run keeps its last synthetic data (select_every = 0, as in the quick "
                    "preset), so no quick student scored its checkpoints.")
        elif status == "running":
            note = ("Holdout scores appear after the last step, when a quick student scores teacher and then each "
                    "checkpoint of S on the training holdout.")
        elif status in ("stopped", "failed", "interrupted"):
            note = f"No holdout scores: the run {status} before its checkpoints were scored."
        else:
            note = "No holdout scores were recorded for this run."
    return HoldoutQuality(points, start, references, note)


def run_holdout_quality(run: Run) -> HoldoutQuality | None:
    """holdout_quality of a run folder; None for a run whose method does not choose S on the holdout (its
    config has no select_every and it logged no scores), so the page draws nothing for it."""
    distill = run.config.get("distill") or {}
    events = run.events
    quality = holdout_quality(events, distill.get("select_every"), run.status.get("status"))
    if "select_every" not in distill and quality.empty:
        return None
    return quality
