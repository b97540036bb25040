"""What the Distill page's form needs from the method registry, the presets and the run store, as plain
functions (no Streamlit here, so they are testable without the app).

Everything per method comes from the registry (`foster_core.methods`): the method list, its help, whether
it draws loss curves and whether its runs can be resumed. Nothing here names a method.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..analysis.compare import run_title
from ..core.architectures import architecture_names, get_architecture
from ..core.training import TrainConfig
from ..methods.coresets import SELECTIONS
from ..methods.registry import MethodSpec, all_methods, get_method, method_names
from ..methods.sparse import INIT_LABELS, PACKING
from ..runs.evaluator import StudentConfig
from ..runs.jobs import JobSpec, job_configs, job_spec
from ..runs.ladder import LADDER_WORD, STOP_POSITION_SHARE, STOP_RATIO, ladder_passed
from ..runs.presets import Preset
from ..runs.run_store import FULL, Run, RunNotFound, RunStore

DEVICES = ("auto", "cpu", "cuda")
LADDER_HELP = (f"Type `{LADDER_WORD}` for a budget ladder: 10, 20, 50, 100, 200, 500, ... sequences, each method "
               f"climbing until its students reach {STOP_RATIO:.0%} of full-data NDCG@10 or its synthetic data holds "
               f"{STOP_POSITION_SHARE:.0%} of the training positions. The full-data reference trains first (its stop "
               "rule needs it), and Compare's *How small can the data be?* then gives the smallest budget per "
               "method reaching 90% and 95%.")
# Config fields whose values come from a fixed list: drawn as select boxes, not free text.
FIELD_CHOICES: dict[str, list[str]] = {
    "init_selection": list(SELECTIONS), "selection": list(SELECTIONS), "init_packing": list(PACKING),
    "init_labels": list(INIT_LABELS), "device": list(DEVICES),
}


def method_spec(name: Any) -> MethodSpec | None:
    """The registered method of a run's recorded name; None for the full-data reference or an unknown name."""
    return get_method(name) if name in method_names() else None


def methods_help() -> str:
    """Every method's one-line help, as markdown (the method select box's tooltip)."""
    return "\n\n".join(f"**{spec.name}**: {spec.help}" for spec in all_methods())


def has_loss_curves(method: Any) -> bool:
    spec = method_spec(method)
    return bool(spec and spec.loss_curves)


def main_method_config(method: str, preset: Preset) -> Any:
    """The chosen main method's config with the preset's values: what the advanced settings start from."""
    return get_method(method).config(preset.distill)


def shared_distill_values(preset: Preset, edited: dict) -> dict:
    """The job's shared method values: the preset's, then the main method's edited fields over them (so a
    baseline whose fields the main method lacks still gets the preset's values)."""
    return {**preset.distill, **edited}


def student_config(preset: Preset, seeds: int, epochs: int, patience: int,
                   architectures: list[str] | None = None) -> StudentConfig:
    """The job's students: the preset's, with the page's seeds, epochs, patience and architectures (the first
    is the headline; none chosen is refused with StudentConfig's message)."""
    chosen = preset.student_config().architectures if architectures is None else tuple(architectures)
    return replace(preset.student_config(), seeds=tuple(range(int(seeds))), epochs=int(epochs), patience=int(patience),
                   architectures=chosen)


def architecture_help() -> str:
    """The student architectures' one-line descriptions, for the page's help."""
    return "; ".join(f"{name}: {get_architecture(name).help}" for name in architecture_names())


def expert_config(preset: Preset, epochs: int) -> TrainConfig:
    return replace(preset.expert_config(), epochs=int(epochs))


def checked_job_spec(dataset: str, methods: list[str], budgets: list[int], distill: dict, student: StudentConfig,
                     expert: TrainConfig, preset: str, threads: int, reference: bool, ladder: bool = False) -> JobSpec:
    """The job the Start button submits; ValueError (with the config's own message) when a method's config
    refuses the values, so the page can say so before anything starts."""
    spec = job_spec(dataset, methods, budgets, distill, student, expert, preset, threads, reference, ladder)
    job_configs(spec)  # builds every method's config from the shared values: their checks run here
    return spec


def present_runs(store: RunStore, run_ids: list[str]) -> list[Run]:
    """The runs of `run_ids` still in the store (a job's run may have been deleted since), in that order."""
    present = []
    for run_id in run_ids:
        try:
            present.append(store.get(run_id))
        except RunNotFound:
            continue
    return present


def run_to_show(runs: list[Run], main_method: str | None = None, picked: str | None = None) -> str | None:
    """The run of a job whose charts the Distill page draws: the one the visitor picked, else the latest with
    loss curves (so FOSTER's curves stay while the job's later runs work), else the main method's latest,
    else the latest."""
    ids = [run.id for run in runs]
    if picked in ids:
        return picked
    # From the latest back, reading a history only for methods that draw loss curves, and stopping at the first
    # that has some: the page reruns every 2 s while a job works, and a store holds many runs.
    for run in reversed(runs):
        if _draws_curves(run.config.get("method")) and run.step_events:
            return run.id
    main = [run.id for run in runs if main_method is not None and run.config.get("method") == main_method]
    return (main or ids or [None])[-1]


def _draws_curves(method: str | None) -> bool:
    return method in method_names() and get_method(method).loss_curves


def resumable_runs(store: RunStore) -> list[Run]:
    """Runs of resumable methods that ended without finishing (killed, failed or stopped)."""
    runs = []
    for run in store.list():
        spec = method_spec(run.config.get("method"))
        if spec and spec.resumable and run.resumable():
            runs.append(run)
    return runs


def resumable_method_names() -> list[str]:
    return [spec.name for spec in all_methods() if spec.resumable]


def resume_point(run: Run) -> str:
    checkpoint = run.latest_checkpoint()
    return f"from step {Run.checkpoint_step(checkpoint)}" if checkpoint else "from the start (no checkpoint yet)"


def interrupted_note(run: Run) -> str:
    """One sentence on an interrupted run that does not contradict itself: what was kept and where Resume
    starts (the run's own message may say the synthetic data was saved while no checkpoint exists yet)."""
    state = run.status.get("status")
    checkpoint = run.latest_checkpoint()
    what = "stopped on request" if state == "stopped" else (state or "ended")
    if checkpoint:
        step = Run.checkpoint_step(checkpoint)
        return f"{what} · checkpoint at step {step}: Resume continues from step {step}"
    kept = "its synthetic data so far can be explored and exported; " if run.synthetic_path.is_file() else ""
    return f"{what} before its first checkpoint · {kept}Resume starts again from step 0"


def skipped_runs(job, store: RunStore) -> list[str]:
    """The runs of a stopped job that never started, as 'method n=budget' (and the full-data reference it was
    to train). The job's state says which it started (a run deleted since still counts as started); older
    jobs are read from the store."""
    recorded = (getattr(job, "state", None) or {}).get("started_pairs")
    if recorded is not None:
        started = {(method, budget) for method, budget in recorded}
    else:
        started = set()
        for run_id in job.run_ids:
            try:
                config = store.get(run_id).config
            except RunNotFound:
                continue
            started.add((config.get("method"), config.get("budget")))
    stopped = ((getattr(job, "state", None) or {}).get("ladder_stopped")) or {}
    skipped = [run_title(method, budget) for method, budget in job.spec.pairs()
               if (method, budget) not in started and not ladder_passed(stopped, method, budget)]
    if recorded is not None and job.state.get("reference") == "to train" and not any(m == FULL for m, _ in started):
        skipped.append("full-data reference")
    return skipped


def browsing_order(runs: list[Run]) -> list[Run]:
    """Runs as Explore and Export offer them: finished first, methods with loss curves (those that optimise
    synthetic data) before the rest, newest first within each (the store lists newest first)."""
    return sorted(runs, key=lambda r: (r.status.get("status") != "finished",
                                       not has_loss_curves(r.config.get("method"))))


def run_label(run: Run, status: bool = True) -> str:
    """How a run is named in the select boxes: method and budget ('full data' for the reference), dataset,
    status, id."""
    middle = f" · {run.status.get('status')}" if status else ""
    title = run_title(run.config.get("method"), run.config.get("budget"))
    return f"{title} · {run.config.get('dataset')}{middle} · {run.id}"


def budgets_text(spec: JobSpec) -> str:
    """A job's budgets in words: the list, or the ladder's rungs with its stop rule."""
    budgets = ", ".join(map(str, spec.budgets))
    if not spec.ladder:
        return f"budgets {budgets}"
    return f"budget ladder {budgets} (each method until {STOP_RATIO:.0%} of full data or {STOP_POSITION_SHARE:.0%} " \
           "of the training positions)"


def job_plan_text(methods: list[str], budgets: list[int], reference: bool, ladder: bool) -> str:
    """What the Start button will run, in one line under the form."""
    if ladder:
        return (f"At most {len(methods) * len(budgets) + 1} run(s): the full-data reference first (reused when an "
                f"earlier job trained it), then {', '.join(methods)} at budgets {', '.join(map(str, budgets))}, each "
                f"method stopping once its students reach {STOP_RATIO:.0%} of full data or its data holds "
                f"{STOP_POSITION_SHARE:.0%} of the training positions")
    return (f"{len(methods) * len(budgets) + int(reference)} run(s): {', '.join(methods)} × budgets "
            f"{', '.join(map(str, budgets))}"
            + (" and the full-data reference (reused when an earlier job trained it)" if reference else ""))


def ladder_stop_lines(state: dict) -> list[str]:
    """One line per method a ladder job stopped climbing: where, and why."""
    return [f"{method} stopped climbing at n={stop['budget']}: {stop['reason']}"
            for method, stop in (state.get("ladder_stopped") or {}).items()]
