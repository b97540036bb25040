"""Distill: pick a method and budget (or a budget sweep), start a background job, watch it live.

Everything per method comes from the method registry (foster_core.methods): the choices, their help, the
advanced settings (the main method's config fields), which runs draw loss curves and which can resume."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from foster_core.analysis.compare import compare_table, job_headline, run_title
from foster_core.analysis.job_progress import finished_text, job_progress
from foster_core.analysis.progress import (QUALITY_HELP, loss_frame, run_holdout_quality, run_progress,
                                           term_help, term_label)
from foster_core.app import forms
from foster_core.app.ui import (cached_dataset, cached_usable_count, current_dataset_spec, dataclass_inputs, job_queue,
                                run_store)
from foster_core.core.data import DataError
from foster_core.methods import get_method, method_names
from foster_core.runs.evaluator import format_seconds
from foster_core.runs.jobs import ACTIVE, default_threads
from foster_core.runs.presets import PRESETS, sweep_budgets
from foster_core.runs.resume import resume_spec
from foster_core.runs.run_store import RunNotFound

# Measured to the first FOSTER numbers on the bundled MovieLens with one worker thread (the preset's description
# has the phases).
PRESET_LABELS = {"quick": "Quick (indicative; first FOSTER numbers in about 3 min on a 2-core CPU, under 1 min "
                          "once cached)", "standard": "Standard (library defaults)"}

st.title("Distill")
st.write("Turn the real training sequences into a small synthetic set. The work runs in the background, one job at "
         "a time on this machine: you can leave this page, refresh the browser or open another tab and come back.")
queue, store = job_queue(), run_store()
spec = current_dataset_spec()


def show_job(job) -> None:
    """Status, runs done of all, the phase at work with its time left and what comes after it, the charts of
    one of the job's runs, and a Stop button."""
    state = job.state
    status = state.get("status")
    job_spec_ = job.spec
    progress = job_progress(job_spec_, state)
    st.markdown(f"**Job {job.id}** · {job_spec_.preset} preset · methods {', '.join(job_spec_.methods)} · "
                f"{forms.budgets_text(job_spec_)} · dataset `{job_spec_.dataset}`")
    for line in forms.ladder_stop_lines(state):
        st.caption(line)
    if status == "queued":
        st.info(queue.waiting_message(job))
    elif status in ("preparing", "running"):
        st.progress(progress.runs_done / max(progress.runs_total, 1), text=progress.runs_text())
        phase = progress.phase
        if phase is None:
            st.caption(f"{status}: {state.get('message', '')}")
        elif phase.fraction is not None:
            st.progress(phase.fraction, text=phase.text())
        else:
            st.caption(phase.text())
        if progress.then_text():
            st.caption(progress.then_text())
    elif status == "failed":
        st.error(f"The job failed: {state.get('message', '')}")
        with st.expander("Worker log"):
            st.code(job.log[-4000:] or "(empty)")
    elif status in ("stopped", "interrupted"):
        skipped = forms.skipped_runs(job, store)
        st.warning(f"{status}: {state.get('message', '')} · {progress.runs_text()}"
                   + (f" · {len(skipped)} queued run(s) were skipped: {', '.join(skipped)}" if skipped else ""))
    else:
        st.success(finished_text(progress, [run_title(m, b) for m, b in state.get("started_pairs", [])])
                   + " Headline numbers below; **Compare** has every metric and **Explore** the data.")
        show_headline(job, finished_only=False)
    if status in ACTIVE:
        show_headline(job, finished_only=True)  # the first method's numbers while the baselines still run
    show_job_runs(job, status in ACTIVE)
    if status in ACTIVE and st.button("Stop", key=f"stop_{job.id}", type="secondary"):
        job.request_stop(store)
        st.toast("Stop requested: the run stops at its next step.")


def remember_choice(widget_key: str, choice_key: str) -> None:
    st.session_state[choice_key] = st.session_state[widget_key]


def show_job_runs(job, active: bool) -> None:
    """The charts of one of the job's runs: by default the latest with loss curves, so FOSTER's curves and
    quality chart stay while the job's later runs work; a select box offers the others."""
    widget_key, choice_key = f"shown_run_{job.id}", f"shown_run_choice_{job.id}"
    runs = forms.present_runs(store, job.run_ids)
    run_id = forms.run_to_show(runs, job.spec.methods[0], st.session_state.get(choice_key))
    if run_id is None:
        return
    if len(runs) > 1:
        labels = {run.id: forms.run_label(run) for run in runs}
        st.session_state[widget_key] = run_id
        st.selectbox("Charts of run", list(labels), key=widget_key, format_func=labels.get,
                     on_change=remember_choice, args=(widget_key, choice_key),
                     help="The job's runs; it opens on the latest one with loss curves.")
    # A finished job shows charts only when the run has them (its headline table says the rest).
    if active or forms.has_loss_curves(store_method(run_id)):
        show_run(run_id, in_job=True)


def show_headline(job, finished_only: bool) -> None:
    """The job's headline numbers: of its finished runs so far, or of all its runs once it has ended."""
    if finished_only and not [r for r in job.run_ids if r != job.current_run_id]:
        return  # nothing done yet: no need to read the whole store every two seconds
    headline = job_headline(compare_table(store), job.run_ids, finished_only=finished_only)
    if headline.empty:
        return
    if finished_only:
        st.markdown("**Results so far**")
    st.dataframe(headline, hide_index=True, width="stretch", key=f"headline_{job.id}")
    st.caption("NDCG@10 on the test split: mean ± std over the students (one student has no spread); "
               "ratio to a recommender trained on all the real data (– until the full-data reference is trained); "
               "speed-up of training a student.")


def store_method(run_id: str):
    try:
        return store.get(run_id).config.get("method")
    except RunNotFound:
        return None


def show_run(run_id: str, in_job: bool = False) -> None:
    """One run's loss curves and quality chart, with its progress (in a job, the job's phase bar has it)."""
    try:
        run = store.get(run_id)
    except RunNotFound:
        return
    progress = run_progress(run)
    method = run.config.get("method")
    label = f"{run_title(method, run.config.get('budget'))}: {progress.text}"
    if in_job and run.status.get("status") != "running":  # the job's own lines say how it went
        label = f"{run_title(method, run.config.get('budget'))} · {run.status.get('status')}"
    if progress.eta_seconds is not None and not in_job:
        label += f" · about {format_seconds(progress.eta_seconds)} left"
    if progress.fraction is not None and not in_job:
        st.progress(min(max(progress.fraction, 0.0), 1.0), text=label)
    else:
        st.caption(label)
    frame = loss_frame(progress.steps)
    if not frame.empty:
        figure = px.line(frame, x="step", y="value", facet_col="label", facet_col_wrap=4, markers=True,
                         title=f"Loss terms of run {run.id}" + (" (live)" if run.status.get("status") == "running" else ""))
        figure.update_yaxes(matches=None, showticklabels=True, title=None)
        figure.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
        figure.update_layout(height=420, showlegend=False, margin=dict(t=60, b=10))
        st.plotly_chart(figure, width="stretch", key=f"loss_{run.id}")
        with st.expander("What the curves mean", expanded=False):
            st.markdown("\n".join(f"- **{term_label(term)}** (`{term}`): {term_help(term)}"
                                   for term in frame["term"].unique()))
    elif forms.method_spec(method) is not None and not forms.has_loss_curves(method):
        st.caption(f"{method} has no loss curve (it does not optimise synthetic data step by step), "
                   "only an evaluation.")
    show_quality(run)


QUALITY_TITLE = "Quality of the synthetic data on held-out training data"
CHECKPOINTS = "checkpoints of the synthetic data"
# Colour and dash of each reference line; an unknown reference gets the last.
REFERENCE_STYLE = {"start": ("#8c8c8c", "dash"), "teacher": ("#2a9d8f", "dot"), "other": ("#6c757d", "dashdot")}


def show_quality(run) -> None:
    """NDCG@10 on held-out training data of each scored checkpoint of the synthetic data, against its start and
    teacher (runs that choose their synthetic data this way). The axis starts at 0: a change of 0.0003 on
    0.028 is small, and looks it."""
    quality = run_holdout_quality(run)
    if quality is None:
        return
    if quality.empty:
        st.caption(quality.note)
        return
    points, figure = quality.points, go.Figure()
    steps = run.config.get("distill", {}).get("steps") or max(points["step"].max() if not points.empty else 1, 1)
    if not points.empty:
        figure.add_trace(go.Scatter(x=points["step"].tolist(), y=points["holdout ndcg@10"].tolist(),
                                    mode="lines+markers", name=CHECKPOINTS, marker=dict(size=9, color="#e4572e"),
                                    line=dict(color="#e4572e"), legendrank=2,
                                    hovertemplate="step %{x}: NDCG@10 %{y:.4f}<extra></extra>"))
    # The reference lines are traces across the steps rather than shapes, so the legend names them with their
    # scores (labels on the plot collide when the start and teacher score alike). Drawn after the checkpoints,
    # so a dashed line stays visible where the checkpoints' line runs along it; listed first in the legend.
    lines = ({"start": quality.start} if quality.start is not None else {}) | quality.references
    for name, value in lines.items():
        colour, dash = REFERENCE_STYLE.get(name, REFERENCE_STYLE["other"])
        figure.add_trace(go.Scatter(x=[0, steps], y=[value, value], mode="lines", name=f"{name} {value:.4f}",
                                    line=dict(color=colour, dash=dash, width=2), legendrank=1,
                                    hovertemplate=f"{name}: NDCG@10 {value:.4f}<extra></extra>"))
    if not points.empty:
        kept = points[points["selected"]]
        kept_x, kept_y = kept["step"].tolist(), kept["holdout ndcg@10"].tolist()
        if quality.kept_reference in quality.references:  # no step's S beat the reference: it was kept instead
            kept_x, kept_y = [steps], [quality.references[quality.kept_reference]]
        kept_what = f"{quality.kept_reference}'s data" if quality.kept_reference else "step %{x}"
        figure.add_trace(go.Scatter(x=kept_x, y=kept_y, mode="markers", name="kept",
                                    hovertemplate=f"kept: {kept_what}, NDCG@10 %{{y:.4f}}<extra></extra>",
                                    marker=dict(size=16, symbol="star", color="#1b4f9c")))
    figure.update_layout(height=320, margin=dict(t=50, b=10), xaxis_title="distillation step",
                         yaxis=dict(title="NDCG@10", rangemode="tozero"),
                         title=QUALITY_TITLE + (" (live)" if run.status.get("status") == "running" else ""),
                         legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"))
    st.plotly_chart(figure, width="stretch", key=f"quality_{run.id}")
    if quality.kept_reference:
        st.info(f"Kept {quality.kept_reference}'s data: it scored above every step's synthetic data on held-out "
                f"training data, so this run's data is {quality.kept_reference}'s (real training sequences "
                "labelled by the expert), not distilled sequences. The tables name it next to the method.")
    st.caption(QUALITY_HELP)


jobs = queue.jobs()
active = [job for job in jobs if job.status in ACTIVE]
shown = active or jobs[:1]  # the newest job stays visible after it ends, so its result is not lost


@st.fragment(run_every=2.0 if active else None)
def live_jobs() -> None:
    for job in shown:
        with st.container(border=True):
            show_job(job)
    # A job ended since the last full run: rerun the page so polling stops and the form refreshes.
    if active and not any(job.status in ACTIVE for job in shown):
        st.rerun()


if shown:
    st.subheader("Current job" if active else "Last job")
    live_jobs()
else:
    # No job from this app yet, but runs made elsewhere (the CLI's distill or bench) still have curves to show.
    latest = forms.run_to_show(sorted(store.list(), key=lambda r: r.id))
    if latest:
        st.subheader("Latest run")
        with st.container(border=True):
            show_run(latest)


def interrupted_runs() -> None:
    """Runs of resumable methods that ended without finishing: resume them from their last checkpoint, or delete
    them."""
    resumable = forms.resumable_runs(store)
    if not resumable:
        return
    st.subheader("Interrupted runs")
    st.caption(f"These {' and '.join(forms.resumable_method_names())} runs ended before finishing (the worker was "
               "killed, the run failed or was stopped). Resume continues from the last saved synthetic data in the "
               "same run folder; the recommender's and the optimisers' states start again from the expert's "
               "trajectory.")
    for run in resumable[:10]:
        left, mid, right = st.columns([6, 1, 1])
        left.markdown(f"`{run.id}` · {run.config.get('method')} n={run.config.get('budget')} · "
                      f"{forms.interrupted_note(run)}")
        if mid.button("Resume", key=f"resume_{run.id}", disabled=bool(active)):
            try:
                queue.submit(resume_spec(run, store))
            except (ValueError, DataError) as exc:
                st.error(f"Cannot resume {run.id}: {exc}")
            else:
                st.rerun()
        if right.button("Delete", key=f"delete_{run.id}"):
            store.delete(run.id)
            st.rerun()
    if active:
        st.caption("Resume is available once the current job has ended (one job at a time on this machine).")


interrupted_runs()

st.subheader("New job")
try:
    dataset = cached_dataset(spec)
except DataError as exc:
    st.error(str(exc))
    st.stop()
st.caption(f"Dataset: **{dataset.name}** ({dataset.num_users:,} users, {dataset.num_items:,} items). "
           "Change it on the Home page.")

preset_name = st.radio("Preset", list(PRESETS), horizontal=True, key="preset",
                       format_func=lambda p: PRESET_LABELS.get(p, p))
preset = PRESETS[preset_name]
st.caption(preset.description)
methods = method_names()
main = preset.methods[0] if preset.methods[0] in methods else methods[0]
left, mid, right = st.columns(3)
method = left.selectbox("Method", methods, index=methods.index(main), key="method", help=forms.methods_help())
baselines = mid.multiselect("Also run (same budget, for comparison)", [m for m in methods if m != method],
                            default=[m for m in preset.methods[1:] if m != method and m in methods], key="baselines")
# No min_value: a 0 typed here would otherwise be refused silently by the browser and the last value kept;
# parse_budgets says why it is refused, and Start is not offered.
budget = right.number_input("Budget (synthetic sequences)", value=preset.budgets[0], step=1, key="budget")
st.caption(get_method(method).help)
sweep = st.text_input("Budget sweep (optional): several budgets separated by commas, e.g. 10, 20, 50 — one click "
                      "runs every method at each; or `auto`, to climb until each method reaches 95% of full data",
                      key="sweep", help=forms.LADDER_HELP)

with st.expander("Advanced settings"):
    main_config = forms.main_method_config(method, preset)
    st.markdown(f"**{method}** ({type(main_config).__name__}; the other methods take the fields they share with it)")
    edited = dataclass_inputs(main_config, f"distill_{preset_name}_{method}", choices=forms.FIELD_CHOICES)
    st.markdown("**Evaluation students** (StudentConfig)")
    student_defaults, expert_defaults = preset.student_config(), preset.expert_config()
    s_left, s_mid, s_right = st.columns(3)
    seeds = s_left.number_input("students (seeds)", 1, 10, len(student_defaults.seeds), key=f"seeds_{preset_name}")
    student_epochs = s_mid.number_input("student epochs (max)", 1, 5000, student_defaults.epochs,
                                        key=f"student_epochs_{preset_name}")
    student_patience = s_right.number_input("student patience", 1, 5000, student_defaults.patience,
                                            key=f"student_patience_{preset_name}")
    architectures = st.multiselect(
        "student architectures", forms.architecture_names(), default=list(student_defaults.architectures),
        key=f"student_architectures_{preset_name}",
        help="Recommenders trained on the synthetic data (and on full data, for the reference); the first gives "
             "the headline numbers, and Compare shows each one against its own full-data training. "
             + forms.architecture_help())
    st.markdown("**Expert and full-data reference** (TrainConfig)")
    e_left, e_mid, e_right = st.columns(3)
    expert_epochs = e_left.number_input("expert epochs (max)", 1, 1000, expert_defaults.epochs,
                                        key=f"expert_epochs_{preset_name}")
    threads = e_mid.number_input("worker CPU threads", 1, 64, default_threads(), key="threads",
                                 help="Torch threads of the background worker. It runs at a lower priority, "
                                      "so the app stays responsive while it uses every core.")
    reference = e_right.checkbox("full-data reference", value=preset.reference, key=f"reference_{preset_name}",
                                 help="Train on all training data too (cached), for the ratio to full on Compare.")

run_list = [method] + list(baselines)
try:
    budgets, ladder = sweep_budgets(sweep, int(budget), cached_usable_count(spec))
    new_job = forms.checked_job_spec(
        spec, run_list, budgets, forms.shared_distill_values(preset, edited),
        forms.student_config(preset, seeds, student_epochs, student_patience, architectures),
        forms.expert_config(preset, expert_epochs), preset_name, int(threads), bool(reference), ladder)
except ValueError as exc:
    st.error(f"Check the settings: {exc}")
else:
    st.caption(forms.job_plan_text(run_list, budgets, bool(reference), ladder))
    if active:
        st.caption("A job is already working: a new one waits in the queue behind it.")
    if st.button("Start", type="primary", key="start"):
        queue.submit(new_job)
        st.rerun()
