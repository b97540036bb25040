"""Run one method as a run: distil, record everything in the run store, evaluate with the one evaluator.

The CLI, the app's background jobs, resume and the benchmark all run methods through `run_method`, so a
run folder looks the same whoever made it (see run_store.py for its files).
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..core.export import write_exports
from ..core.config import to_dict
from ..core.runtime import PeakMemory, resolve_device
from ..core.synthetic import SyntheticData
from ..methods.events import CandidateSelected, Checkpoint, Event, LoggedEvent, StepEvent
from ..methods.expert import DistillContext
from ..methods.registry import check_budget, distill, get_method
from .card import write_card
from .evaluator import StudentConfig, evaluate_synthetic
from .run_store import Run, RunStore


@dataclass
class RunOutcome:
    run: Run | None
    synthetic: SyntheticData | None
    results: dict | None
    distill_seconds: float = 0.0
    peak_mb: float = 0.0
    history: list[LoggedEvent] = field(default_factory=list)


def run_config(context: DistillContext, method: str, budget: int | None, config: Any, student: StudentConfig) -> dict:
    """What a run folder records of how it was made (config.json, beside the method, id and time)."""
    return {"budget": budget, "dataset": context.dataset.name, "distill": to_dict(config) if config else {},
            "student": to_dict(student), "model": to_dict(context.model_cfg), "expert": to_dict(context.expert_cfg),
            "data": to_dict(context.dataset.config)}


def run_method(
    context: DistillContext,
    method: str,
    budget: int,
    config: Any = None,
    student: StudentConfig | None = None,
    store: RunStore | None = None,
    evaluate: bool = True,
    on_event: Callable[[Event], None] | None = None,
    resume_run: Run | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunOutcome:
    """Distil with one method, record everything in the run store (when given), evaluate with students.

    `config` is the method's own config (default: its defaults). With `resume_run` (an interrupted run of a
    resumable method), continue that run in its own folder from its latest checkpoint of S; without a
    checkpoint it starts over there. `progress` receives a line per trained student."""
    spec = get_method(method)
    config = config or spec.config()
    student = student or StudentConfig()
    check_budget(context, budget)  # a user mistake, not a failed run: no run folder for it
    resume = None
    if resume_run is not None:
        run = resume_run
        resume = resume_point(run)
        run.prepare_resume(resume.step if resume else 0)
    else:
        run = store.create(method, run_config(context, method, budget, config, student)) if store else None
    history: list[LoggedEvent] = []

    def record(event: Event) -> None:
        if isinstance(event, Checkpoint):
            if run:
                event.synthetic.save(run.checkpoint_dir / f"step_{event.step:06d}.safetensors")
            return
        check_finite(event)
        history.append(event)
        if run:
            run.append_history(event.to_record())
        if on_event:
            on_event(event)

    try:
        if spec.needs_expert:  # shared by all runs, so not part of a method's own cost; others never train it
            context.expert()
        if getattr(config, "uses_labeller", False):
            context.labeller()
        device = resolve_device(config.device)
        started = time.perf_counter()
        with PeakMemory(device) as memory:
            synthetic = distill(context, method, budget, config, record, run.stop_requested if run else None, resume)
        seconds = time.perf_counter() - started
        if run and run.stop_requested():
            synthetic.save(run.synthetic_path)
            run.set_status("stopped", "stopped on request; the synthetic data so far was saved")
            write_card(run)
            return RunOutcome(run, synthetic, None, seconds, memory.peak_mb, history)
        if run:
            synthetic.save(run.synthetic_path, {"method": method, "budget": str(budget)})
            write_exports(run.path, synthetic, context.dataset)
            run.set_status("running", "evaluating with fresh students", phase="evaluate")
        results = None
        if evaluate:
            results = evaluate_synthetic(context, synthetic, student, progress)
            results.update(method=method, budget=budget, distill_seconds=seconds, peak_mb=memory.peak_mb)
            # Whose data the run's selection kept when it is not the method's own (FOSTER keeps `teacher`'s
            # when that scores above every step's S): tables then say so next to the method's name.
            kept = next((e.kept for e in history if isinstance(e, CandidateSelected) and e.kept), None)
            if kept:
                results["kept"] = kept
            if run:
                run.write_results(results)
        if run:
            run.set_status("finished", "done")
            write_card(run)
        return RunOutcome(run, synthetic, results, seconds, memory.peak_mb, history)
    except Exception as exc:
        if run:
            run.set_status("failed", f"{exc.__class__.__name__}: {exc}", traceback=traceback.format_exc(limit=5))
        raise


def resume_point(run: Run) -> Checkpoint | None:
    """The run's latest checkpoint of S, or None when it was killed before its first one."""
    spec = get_method(str(run.config.get("method")))
    if not spec.resumable:
        raise ValueError(f"{spec.name} runs cannot be resumed (run {run.id}); start it again instead.")
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        return None
    return Checkpoint(run.checkpoint_step(checkpoint), SyntheticData.load(checkpoint))


def check_finite(event: LoggedEvent) -> None:
    """A loss that became NaN or infinite ends the run with a message instead of training on garbage."""
    losses = event.losses() if isinstance(event, StepEvent) else {}
    bad = [k for k, v in losses.items() if not np.isfinite(v)]
    if bad:
        raise FloatingPointError(
            f"{', '.join(bad)} became {losses[bad[0]]} at step {event.step}: the run diverged. Try a smaller "
            "synthetic_lr / outer_lr, or resume it from its last checkpoint.")
