"""A run's live progress, read from its folder: a progress fraction with ETA, its loss curves (with plain names
for the logged terms), and the quality on held-out training data of its candidates of the synthetic data
against their start and `teacher`. A job's progress over its phases lives in job_progress.py."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from ..methods.events import CandidateScored, CandidateSelected, LoggedEvent, ReferenceScored, StepEvent
from ..runs.run_store import FULL, Run


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
        if run.config.get("method") == FULL:
            return Progress(None, "training the full-data reference on all the training data", None, steps)
        return Progress(None, "evaluating: training fresh students on the synthetic data", None, steps)
    scored = [e for e in events if isinstance(e, CandidateScored)]
    if scored:
        return Progress(None, f"choosing the best checkpoint on held-out training data "
                              f"({scored[-1].candidate} of {scored[-1].candidates})", None, steps)
    if any(isinstance(e, ReferenceScored) for e in events):
        return Progress(None, "teacher scored on held-out training data; scoring the checkpoints of the synthetic "
                              "data", None, steps)
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


# What the page calls each logged term; the technical name stays in the help text.
TERM_LABELS: dict[str, str] = {
    "loss_real": "loss on real data",
    "loss_syn": "loss on the synthetic data",
    "loss_syn_inner": "inner model's loss on the synthetic data",
    "gap": "gap between the two losses",
    "loss_reg": "text-smoothness penalty",
    "lambda": "penalty weight",
    "label_entropy": "spread of the synthetic labels",
}


def term_label(term: str) -> str:
    """The plain name of a logged term (the term itself when it has none)."""
    return TERM_LABELS.get(term, term)


def term_help(term: str) -> str:
    """The one-line explanation of a logged term (a plain note for a term without one)."""
    return TERM_HELP.get(term, "a value the method logs at each step.")


def loss_frame(steps: list[StepEvent]) -> pd.DataFrame:
    """Long format (step, term, label, value) of every logged value, for one line per term; `label` is the
    term's plain name."""
    rows = [{"step": e.step, "term": k, "label": term_label(k), "value": v} for e in steps for k, v in e.values.items()]
    return pd.DataFrame(rows, columns=["step", "term", "label", "value"])


@dataclass
class HoldoutQuality:
    """What the Distill page's quality chart draws: each scored candidate of S, and the lines to compare it with."""

    points: pd.DataFrame  # step, holdout ndcg@10, candidate ("start" for step 0), selected (bool)
    start: float | None = None  # the candidate at step 0 (the soft start), when it was scored
    references: dict[str, float] = field(default_factory=dict)  # e.g. {"teacher": 0.031}
    note: str = ""  # why there is nothing to draw yet, when there is not
    kept_reference: str = ""  # the reference kept instead of every candidate of S (e.g. "teacher"), if one was

    @property
    def empty(self) -> bool:
        return self.points.empty and not self.references


QUALITY_HELP = ("Each point: NDCG@10 on held-out training data (each training sequence's last item, never the "
                "validation or test items) of a quick student trained on the synthetic data as it was at that "
                "step. Healthy: the checkpoints sit at or above the start line (distillation did not make the "
                "synthetic data worse), and teacher — real sequences with the expert's labels — is the bar to "
                "beat: when no checkpoint beats it, FOSTER keeps teacher's data. The axis starts at 0, so small "
                "differences look small.")


def holdout_quality(events: list[LoggedEvent], select_every: int | None = None,
                    status: str | None = None) -> HoldoutQuality:
    """The holdout NDCG@10 of every scored candidate of S, its start (step 0) and the references (teacher), from
    a run's typed events. `select_every` (the run's config) and its `status` say why a run has no scores."""
    scored = [e for e in events if isinstance(e, CandidateScored)]
    selected = next((e for e in events if isinstance(e, CandidateSelected)), None)
    kept_reference = selected.kept if selected else ""
    chosen = selected.step if selected and not kept_reference else None
    rows = [{"step": e.step, "holdout ndcg@10": e.holdout_ndcg, "candidate": "start" if e.step == 0 else "checkpoint",
             "selected": e.step == chosen} for e in scored]
    points = pd.DataFrame(rows, columns=["step", "holdout ndcg@10", "candidate", "selected"])
    start = next((e.holdout_ndcg for e in scored if e.step == 0), None)
    references = {e.name: e.holdout_ndcg for e in events if isinstance(e, ReferenceScored)}
    note = ""
    if not scored and not references:
        if select_every == 0:
            note = ("No quality scores on held-out training data: this run keeps its last synthetic data "
                    "(select_every = 0), so no quick student scored its checkpoints.")
        elif status == "running":
            note = ("Quality scores on held-out training data appear after the last step, when a quick student "
                    "scores teacher and then each checkpoint of the synthetic data.")
        elif status in ("stopped", "failed", "interrupted"):
            note = (f"No quality scores on held-out training data: the run {status} before its checkpoints were "
                    "scored.")
        else:
            note = "No quality scores on held-out training data were recorded for this run."
    return HoldoutQuality(points, start, references, note, kept_reference)


def run_holdout_quality(run: Run) -> HoldoutQuality | None:
    """holdout_quality of a run folder; None for a run whose method does not choose S on the holdout (its
    config has no select_every and it logged no scores), so the page draws nothing for it."""
    distill = run.config.get("distill") or {}
    events = run.events
    quality = holdout_quality(events, distill.get("select_every"), run.status.get("status"))
    if "select_every" not in distill and quality.empty:
        return None
    return quality
