"""A run's live progress, read from its folder: a progress fraction with ETA, and its loss curves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from ..methods.events import CandidateScored, StepEvent
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


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
