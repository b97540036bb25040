"""The Distill page on a hand-made job state (no training): FOSTER's loss curves and quality chart stay while
the job's later run works, the runs count the full-data reference, the phase at work shows its progress and
time left with the phases to come, and the charts speak plain words."""

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from foster_core.methods import CandidateScored, CandidateSelected, StepEvent
from foster_core.methods.events import ReferenceScored
from foster_core.runs.jobs import JobQueue, JobSpec

from conftest import make_studio

APP = str(Path(__file__).resolve().parent.parent / "app.py")
DISTILL = {"steps": 4, "select_every": 2, "select_epochs": 4, "log_every": 2}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    return make_studio(tmp_path, monkeypatch)


def open_distill() -> AppTest:
    app = AppTest.from_file(APP, default_timeout=120)
    app.run()
    app.switch_page("app_pages/distill.py").run()
    return app


def foster_history() -> list:
    return [StepEvent(2, 4, 0.1, {"loss_real": 2.0, "loss_syn": 1.5, "loss_syn_inner": 1.4}),
            StepEvent(4, 4, 0.2, {"loss_real": 1.9, "loss_syn": 1.2, "loss_syn_inner": 1.1}),
            ReferenceScored("teacher", 0.0285), CandidateScored(0, 4, 0.0280, 1, 3),
            CandidateScored(2, 4, 0.0283, 2, 3), CandidateScored(4, 4, 0.0281, 3, 3), CandidateSelected(2, 4, 0.0283)]


def working_job(root: Path):
    """A job whose foster run has finished and whose random run is training its student; this test process
    plays the worker (its pid is alive, so the job reads as running)."""
    queue = JobQueue(root / "runs")
    spec = JobSpec(dataset=str(root / "tiny"), methods=["foster", "random"], budgets=[5], distill=DISTILL,
                   student={"seeds": [0], "epochs": 10}, expert={"epochs": 2}, preset="quick")
    job = queue.submit(spec, start=False)
    setup = {"budget": 5, "dataset": "tiny", "job": job.id, "distill": DISTILL}
    foster = queue.store.create("foster", setup)
    for event in foster_history():
        foster.append_history(event.to_record())
    foster.set_status("finished", "done")
    random_run = queue.store.create("random", {**setup, "distill": {}})
    random_run.set_status("running", "evaluating with fresh students", phase="evaluate")
    timings = [{"name": "expert", "pair": None, "done": 2, "total": 2, "unit": "epochs", "seconds": 4.0},
               {"name": "students", "pair": 0, "done": 1, "total": 1, "unit": "students", "seconds": 30.0}]
    job.update(status="running", pid=os.getpid(), run_ids=[foster.id, random_run.id], current_run=random_run.id,
               done_runs=1, total_runs=3, reference="to train", started_pairs=[["foster", 5], ["random", 5]],
               timings=timings, phase={"name": "students", "label": "random n=5: evaluating with fresh students",
                                       "pair": 1, "done": 0, "total": 1, "unit": "students", "elapsed": 0.0})
    return job, foster, random_run


def chart_specs(app: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in app.get("plotly_chart")]


def test_fosters_charts_stay_while_the_jobs_later_run_works(tiny):
    job, foster, random_run = working_job(tiny)
    distill = open_distill()
    assert not distill.exception
    specs = chart_specs(distill)
    titles = [s["layout"]["title"]["text"] for s in specs]
    assert any(f"Loss terms of run {foster.id}" in t for t in titles), titles
    quality_title = "Quality of the synthetic data on held-out training data"
    [quality] = [s for s in specs if quality_title in s["layout"]["title"]["text"]]
    # The axis starts at 0: 0.0280 against 0.0283 must not look like a large change.
    assert quality["layout"]["yaxis"]["rangemode"] == "tozero"
    assert {t["name"] for t in quality["data"]} >= {"checkpoints of the synthetic data", "kept", "teacher 0.0285"}
    # Plain names for the loss terms, the technical ones in the help.
    [loss] = [s for s in specs if "Loss terms" in s["layout"]["title"]["text"]]
    facets = {a["text"] for a in loss["layout"]["annotations"]}
    assert "inner model's loss on the synthetic data" in facets and "loss_syn_inner" not in facets
    assert "(`loss_syn_inner`)" in " ".join(m.value for m in distill.markdown)

    # The job's progress: the reference counted, the phase at work with its estimate from foster's student.
    bars = [p.proto.text for p in distill.get("progress")]
    assert "runs done: 1 of 3" in bars
    assert any(b.startswith("random n=5: evaluating with fresh students — 0 of 1 students · about") for b in bars)
    # Each phase to come once; the reference from the expert's 2 s an epoch (2 epochs: a few seconds).
    [then] = [c.value for c in distill.caption if c.value.startswith("Then")]
    assert then == "Then: full-data reference (a few seconds) · about 34 s left in all"

    # The selector offers the job's runs; choosing the running one shows its state, and foster's charts come back.
    shown = distill.selectbox(key=f"shown_run_{job.id}")
    assert shown.value == foster.id and shown.options and len(shown.options) == 2
    shown.set_value(random_run.id).run()
    assert not distill.exception
    assert not any("Loss terms" in json.dumps(s["layout"].get("title")) for s in chart_specs(distill))
    assert distill.selectbox(key=f"shown_run_{job.id}").value == random_run.id  # the choice is kept
    distill.selectbox(key=f"shown_run_{job.id}").set_value(foster.id).run()
    assert any(f"Loss terms of run {foster.id}" in json.dumps(s["layout"]["title"]) for s in chart_specs(distill))


def test_a_stopped_job_whose_run_was_deleted_does_not_say_it_skipped_that_run(tiny):
    job, foster, random_run = working_job(tiny)
    random_run.set_status("stopped", "stopped on request")
    job.update(status="stopped", message="stopped on request", current_run=None, phase=None)
    JobQueue(tiny / "runs").store.delete(foster.id)
    distill = open_distill()
    assert not distill.exception
    warning = " ".join(w.value for w in distill.warning)
    # foster ran (its run was deleted since); only the reference never started.
    assert "stopped" in warning and warning.endswith("1 queued run(s) were skipped: full-data reference")


def test_a_run_that_kept_teacher_s_data_says_so_and_stars_the_teacher_line(tiny):
    job, foster, random_run = working_job(tiny)
    # Teacher's 0.0285 on the holdout beat every step's S (0.0280-0.0283): its data was kept.
    events = [*foster_history()[:-1], CandidateSelected(0, 4, 0.0285, kept="teacher")]
    (foster.path / "history.jsonl").write_text("".join(json.dumps(e.to_record()) + "\n" for e in events))
    distill = open_distill()
    assert not distill.exception
    assert any("Kept teacher's data" in i.value for i in distill.info)
    [quality] = [s for s in chart_specs(distill) if "held-out training data" in s["layout"]["title"]["text"]]
    [kept] = [t for t in quality["data"] if t["name"] == "kept"]
    assert kept["y"] == [0.0285] and kept["x"] == [4]  # on the teacher line, at the last step
    assert kept["hovertemplate"].startswith("kept: teacher's data")
