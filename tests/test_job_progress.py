"""A job's progress as the Distill page tells it, on hand-made job states: runs counted with the full-data
reference, every phase with its count and time left, the phases to come estimated from the job's own
measured phases, plain words for real-data runs, and what the worker's phase tracker writes."""

import copy

import pytest

from foster_core.analysis.job_progress import finished_text, job_progress
from foster_core.analysis.progress import run_progress
from foster_core.app import forms
from foster_core.methods import get_method
from foster_core.methods.events import CandidateScored, ReferenceScored, StepEvent
from foster_core.core.training import TrainConfig
from foster_core.runs.evaluator import EpochReporter
from foster_core.runs.job_phases import PhaseTracker, ReportingRun, quick_students
from foster_core.runs.jobs import JobQueue, JobSpec
from foster_core.runs.run_store import RunStore


# A quick job by hand (not the preset, whose numbers may change): 40 steps, candidates at 0, 20 and 40.
DISTILL = {"steps": 40, "log_every": 2, "checkpoint_every": 20, "reset_every": 20, "select_every": 20,
           "select_epochs": 30}


def quick_spec(**changes) -> JobSpec:
    """foster then random at n=20, one student, a 10-epoch expert and the reference."""
    values = dict(dataset="movielens", methods=["foster", "random"], budgets=[20], distill=DISTILL,
                  student={"seeds": [0], "epochs": 100}, expert={"epochs": 10}, reference=True, preset="quick")
    return JobSpec(**{**values, **changes})


def phase(name, label, done, total, elapsed, pair=None, unit="", since=1000.0):
    return {"name": name, "label": label, "pair": pair, "done": done, "total": total, "unit": unit,
            "elapsed": elapsed, "since": since}


def timing(name, pair, done, total, seconds):
    return {"name": name, "pair": pair, "done": done, "total": total, "unit": "", "seconds": seconds}


EXPERT_EPOCHS, STEPS = 10, 40
QUICK = quick_students(get_method("foster").config(DISTILL))


def test_the_quick_students_are_one_per_candidate_and_one_for_teacher():
    config = get_method("foster").config(dict(steps=40, select_every=20))
    assert quick_students(config) == 3 + 1  # steps 0, 20 and 40, and teacher
    assert quick_students(get_method("foster").config(dict(steps=45, select_every=20))) == 4 + 1  # 0, 20, 40, 45
    assert quick_students(get_method("foster").config(dict(steps=40, select_every=0))) == 0
    assert quick_students(get_method("random").config({})) == 0


def test_runs_done_count_the_full_data_reference():
    spec = quick_spec()
    state = {"status": "running", "total_runs": 3, "done_runs": 2, "reference": "to train",
             "phase": phase("reference", "full-data reference: training on all the training data", 4,
                            EXPERT_EPOCHS, 8.0, unit="epochs")}
    progress = job_progress(spec, state, now=1008.0)
    assert progress.runs_text() == "runs done: 2 of 3"
    assert "synthetic" not in progress.phase.text()
    assert progress.phase.fraction == pytest.approx(4 / EXPERT_EPOCHS)
    # 2 s per epoch so far; early stopping may end it sooner, so the time left is an upper bound.
    assert progress.phase.left == pytest.approx(2.0 * (EXPERT_EPOCHS - 4))
    assert progress.phase.text() == ("full-data reference: training on all the training data — epoch 4 of at most "
                                     f"{EXPERT_EPOCHS} · about 12 s left at most")
    assert progress.to_come == []
    finished = job_progress(spec, {**state, "status": "finished", "done_runs": 3, "phase": None})
    assert finished_text(finished, ["foster n=20", "random n=20", "full data"]).startswith("Finished: 3 of 3 run(s)")
    # Submitted before the worker knew whether it can reuse a reference: counted as one to train.
    assert job_progress(spec, {"status": "queued"}).runs_text() == "runs done: 0 of 3"
    reused = job_progress(spec, {"status": "finished", "total_runs": 2, "done_runs": 2, "reference": "reused"})
    assert reused.runs_text() == "runs done: 2 of 2 · full-data reference reused from an earlier run"
    assert "reused" in finished_text(reused, [])


def test_the_last_step_is_followed_by_the_phases_still_to_come():
    spec = quick_spec()
    measured = [timing("encode", None, 5162, 5162, 60.0), timing("expert", None, EXPERT_EPOCHS, EXPERT_EPOCHS, 40.0),
                timing("distill", 0, 0, None, 2.0)]
    state = {"status": "running", "total_runs": 3, "done_runs": 0, "reference": "to train", "timings": measured,
             "phase": phase("steps", "foster n=20: distillation steps", STEPS, STEPS, 60.0, pair=0, unit="steps")}
    progress = job_progress(spec, state, now=1060.0)
    assert progress.phase.left == 0.0
    labels = [label for label, _ in progress.to_come]
    assert labels == [f"foster n=20: {QUICK} quick students on held-out training data", "foster n=20: 1 student",
                      "random n=20: start", "random n=20: 1 student", "full-data reference"]
    estimates = dict(progress.to_come)
    # The reference from the expert's pace (4 s an epoch), at most its epochs; the rest not measured yet.
    assert estimates["full-data reference"] == pytest.approx(4.0 * EXPERT_EPOCHS)
    assert estimates["foster n=20: 1 student"] is None
    # random picks real sequences: its start, never measured before it runs, takes a few seconds.
    assert estimates["random n=20: start"] == pytest.approx(5.0)
    # Each phase to come once: with its estimate, or among those not estimated yet (the 5 s of random's start
    # and the 0 s left of the steps count in the time left).
    assert progress.then_text() == (
        f"Then: random n=20: start (a few seconds), full-data reference (about {4 * EXPERT_EPOCHS} s) · about "
        f"{4 * EXPERT_EPOCHS + 5} s left for the part estimated so far; not estimated yet: foster n=20: {QUICK} "
        "quick students on held-out training data, foster n=20: 1 student, random n=20: 1 student")
    for label in labels:
        assert progress.then_text().count(label) == 1, label
    # Nothing estimated: the phases once, under one heading.
    none_known = job_progress(spec, {**state, "timings": [], "reference": "off", "total_runs": 2}, now=1060.0)
    assert none_known.then_text() == ("Then: random n=20: start (a few seconds) · a few seconds left for the part "
                                      f"estimated so far; not estimated yet: foster n=20: {QUICK} quick students on "
                                      "held-out training data, foster n=20: 1 student, random n=20: 1 student")
    only_unknown = job_progress(quick_spec(methods=["foster"], reference=False),
                                {**state, "timings": [], "reference": "off", "total_runs": 1}, now=1060.0)
    assert only_unknown.then_text() == (f"Then (not estimated yet): foster n=20: {QUICK} quick students on held-out "
                                        "training data, foster n=20: 1 student")


def test_a_runs_students_are_estimated_from_its_quick_students_before_any_student_was_measured():
    spec = quick_spec()
    state = {"status": "running", "total_runs": 3, "done_runs": 0, "reference": "to train", "timings": [],
             "phase": phase("select", "foster n=20: scoring", 2, QUICK, 20.0, pair=0, unit="quick students")}
    estimates = dict(job_progress(spec, state, now=1020.0).to_come)
    # 10 s a quick student of 30 epochs; the student has 100 epochs at most: 10 * 100 / 30.
    assert estimates["foster n=20: 1 student"] == pytest.approx(10.0 * 100 / 30)
    assert estimates["random n=20: 1 student"] == pytest.approx(10.0 * 100 / 30)  # same budget
    assert estimates["random n=20: start"] == pytest.approx(5.0) and estimates["full-data reference"] is None


def test_later_phases_are_estimated_from_the_jobs_own_measured_phases():
    spec = quick_spec()
    measured = [timing("expert", None, 10, EXPERT_EPOCHS, 30.0), timing("distill", 0, 0, None, 2.0),
                timing("steps", 0, STEPS, STEPS, 40.0), timing("select", 0, QUICK, QUICK, 20.0),
                timing("students", 0, 1, 1, 12.0), timing("distill", 1, 0, None, 0.5)]
    state = {"status": "running", "total_runs": 3, "done_runs": 1, "reference": "to train", "timings": measured,
             "phase": phase("students", "random n=20: evaluating with fresh students", 0, 1, 0.0, pair=1,
                            unit="students")}
    progress = job_progress(spec, state, now=1005.0)
    # No student of this run done yet: foster's student at the same budget took 12 s; 5 s have passed.
    assert progress.phase.left == pytest.approx(7.0)
    assert progress.to_come == [("full-data reference", pytest.approx(30.0 / 10 * EXPERT_EPOCHS))]
    assert progress.left == pytest.approx(7.0 + 3.0 * EXPERT_EPOCHS)
    assert progress.then_text().endswith(f"left in all") and "not known" not in progress.then_text()
    # The encoding phase: its pace so far gives its time left; before its first batch, elapsed time only.
    encoding = {"status": "preparing", "phase": phase("encode", "encoding item texts", 1000, 5000, 10.0,
                                                      unit="item texts")}
    view = job_progress(spec, encoding, now=1010.0).phase
    assert view.left == pytest.approx(40.0)
    assert view.text() == "encoding item texts — 1000 of 5000 item texts · about 40 s left"
    started = job_progress(spec, {"status": "preparing", "phase": phase("encode", "encoding item texts", 0, 5000, 0.0,
                                                                     unit="item texts")},
                           now=1003.0).phase
    assert started.left is None
    assert started.text().endswith("· 3 s so far · time left: after the first item text finishes")


def test_a_phase_before_its_first_unit_says_its_time_left_or_when_it_will_be_known():
    spec = quick_spec()
    # The first quick students of the job: nothing measured predicts them, so the page says when it will.
    scoring = {"status": "running", "timings": [timing("steps", 0, STEPS, STEPS, 40.0)],
               "phase": phase("select", "foster n=20: scoring the synthetic data on held-out training data", 0, QUICK,
                              1.0, pair=0, unit="quick students")}
    view = job_progress(spec, scoring, now=1001.0).phase
    assert view.left is None
    assert view.text() == (f"foster n=20: scoring the synthetic data on held-out training data — 0 of {QUICK} quick "
                           "students · 1 s so far · time left: after the first quick student finishes")
    # The run's first student: from its quick students' pace (10 s each, 30 epochs against the student's 100).
    evaluating = {"status": "running", "timings": [timing("select", 0, QUICK, QUICK, 10.0 * QUICK)],
                  "phase": phase("students", "foster n=20: evaluating with fresh students", 0, 1, 10.0, pair=0,
                                 unit="students")}
    view = job_progress(spec, evaluating, now=1010.0).phase
    assert view.left == pytest.approx(10.0 * 100 / 30 - 10.0)
    assert view.text().endswith("— 0 of 1 students · about 23 s left")
    # A coreset's start, unmeasured: a few seconds; a start nothing predicts says so rather than only "so far".
    picking = {"status": "running", "phase": phase("distill", "random n=20: distilling", 0, None, 1.0, pair=1)}
    assert job_progress(spec, picking, now=1001.0).phase.text() == "random n=20: distilling · a few seconds left"
    starting = {"status": "running", "phase": phase("distill", "foster n=20: distilling", 0, None, 1.0, pair=0)}
    assert job_progress(spec, starting, now=1001.0).phase.text() == \
        "foster n=20: distilling · 1 s so far · time left: not estimated for this part"


def test_a_real_data_run_is_never_said_to_train_on_synthetic_data(tmp_path):
    store = RunStore(tmp_path)
    full = store.create("full", {"budget": None})
    full.set_status("running", "training on the full training split", phase="evaluate")
    assert "synthetic" not in run_progress(full).text and "full-data" in run_progress(full).text
    foster = store.create("foster", {"budget": 5})
    foster.set_status("running", "evaluating with fresh students", phase="evaluate")
    assert "synthetic data" in run_progress(foster).text


def test_a_ladder_trains_its_reference_first_and_drops_the_budgets_above_a_stopped_method():
    spec = quick_spec(methods=["random", "kcenter"], budgets=[10, 20, 50], ladder=True)
    measured = [timing("encode", None, 5162, 5162, 60.0), timing("expert", None, EXPERT_EPOCHS, EXPERT_EPOCHS, 40.0)]
    state = {"status": "running", "total_runs": 7, "done_runs": 0, "reference": "to train", "timings": measured,
             "phase": phase("reference", "full-data reference", 2, EXPERT_EPOCHS, 8.0, unit="epochs")}
    labels = [label for label, _ in job_progress(spec, state, now=1008.0).to_come]
    assert labels[:2] == ["random n=10: start", "random n=10: 1 student"]  # the reference is at work already
    assert "full-data reference" not in labels and len(labels) == 2 * 2 * 3
    # random stopped at n=20 (its students reached 95% of full data): its n=50 is no longer to come.
    stopped = {"random": {"budget": 20, "reason": "reached 95% of full-data NDCG@10 (0.96)"}}
    later = {**state, "total_runs": 6, "done_runs": 4, "ladder_stopped": stopped,
             "phase": phase("students", "kcenter n=20: 1 student", 0, 1, 1.0, pair=3)}
    assert [label for label, _ in job_progress(spec, later, now=1001.0).to_come] == [
        "kcenter n=50: start", "kcenter n=50: 1 student"]
    assert job_progress(spec, later).runs_text() == "runs done: 4 of 6"
    job = type("FakeJob", (), {"spec": spec, "state": {**later, "status": "stopped",
                                                       "started_pairs": [["full", None], ["random", 10],
                                                                         ["kcenter", 10], ["random", 20]]}})()
    assert forms.skipped_runs(job, None) == ["kcenter n=20", "kcenter n=50"]  # not random n=50: the ladder passed it
    assert forms.ladder_stop_lines(later) == ["random stopped climbing at n=20: reached 95% of full-data NDCG@10 (0.96)"]
    assert forms.budgets_text(spec).startswith("budget ladder 10, 20, 50 (each method until 95% of full data")
    assert forms.budgets_text(quick_spec()) == "budgets 20"


def test_a_deleted_run_still_counts_as_started_not_as_skipped(tmp_path):
    queue = JobQueue(tmp_path)
    job = queue.submit(quick_spec(), start=False)
    run = queue.store.create("foster", {"budget": 20})
    run.set_status("stopped", "stopped on request")
    job.update(status="stopped", run_ids=[run.id], started_pairs=[["foster", 20]])
    queue.store.delete(run.id)
    assert forms.skipped_runs(job, queue.store) == ["random n=20"]
    job.update(reference="to train")  # the reference it was to train never started either
    assert forms.skipped_runs(job, queue.store) == ["random n=20", "full-data reference"]


def test_the_charts_show_the_latest_run_with_curves_while_later_runs_work(tmp_path):
    store = RunStore(tmp_path)
    foster = store.create("foster", {"budget": 20})
    foster.append_history(StepEvent(2, 4, 0.1, {"loss_syn": 1.0}).to_record())
    random_run = store.create("random", {"budget": 20})
    full = store.create("full", {"budget": None})
    runs = [foster, random_run, full]
    assert forms.run_to_show(runs, "foster") == foster.id
    assert forms.run_to_show(runs, "foster", picked=random_run.id) == random_run.id
    assert forms.run_to_show(runs, "foster", picked="gone") == foster.id
    assert forms.run_to_show([random_run, full], "random") == random_run.id  # no curves: the main method's run
    assert forms.run_to_show([], "foster") is None
    foster.set_status("finished", "done")
    store.delete(foster.id)
    assert [r.id for r in forms.present_runs(store, [foster.id, random_run.id])] == [random_run.id]


def test_the_tracker_writes_each_phase_and_keeps_the_finished_ones_timings(tmp_path):
    writes, now = [], [0.0]
    tracker = PhaseTracker(lambda **state: writes.append(copy.deepcopy(state)), clock=lambda: now[0])
    tracker.start("encode", "encoding item texts", 100, "item texts")
    now[0] = 0.1
    tracker.on_encode(50, 100)  # the first unit done: written at once
    assert writes[-1]["phase"]["done"] == 50
    now[0] = 0.2
    tracker.on_encode(60, 100)  # too soon after the last write to write again
    assert writes[-1]["phase"]["done"] == 50
    now[0] = 2.0
    tracker.on_encode(100, 100)
    assert writes[-1]["phase"]["done"] == 100 and writes[-1]["phase"]["elapsed"] == 2.0
    tracker.start("expert", "training the expert", 10, "epochs")
    assert writes[-1]["timings"][0] == {"name": "encode", "pair": None, "done": 100, "total": 100,
                                        "unit": "item texts", "seconds": 2.0}
    tracker.on_expert_epoch({"epoch": 3, "seconds": 6.0, "loss": 1.0})
    assert tracker.phase["done"] == 3 and tracker.phase["elapsed"] == 6.0

    # A run: its steps, then after the last its quick students, each scored one counted.
    on_event = tracker.run_events(0, "foster n=5", quick=3)
    on_event(StepEvent(2, 4, 1.0))
    assert tracker.phase["name"] == "steps" and tracker.phase["done"] == 2
    on_event(StepEvent(4, 4, 2.0))
    assert tracker.phase["name"] == "select" and tracker.phase["total"] == 3 and tracker.phase["done"] == 0
    on_event(ReferenceScored("teacher", 0.03))
    on_event(CandidateScored(0, 4, 0.02, 1, 2))
    assert tracker.phase["done"] == 2

    # Its evaluation starts when the run says so; each student's line counts one.
    store = RunStore(tmp_path)
    started = []
    run = ReportingRun(store.create("foster", {"budget": 5}).path, on_evaluate=started.append)
    run.set_status("running", "evaluating with fresh students", phase="evaluate")
    assert [r.id for r in started] == [run.id]
    tracker.start("students", "foster n=5: evaluating with fresh students", 2, "students", 0)
    tracker.student_line("student 1/2: test NDCG@10 0.0100; training 1.0 s, evaluation 0.1 s")
    assert tracker.phase["done"] == 1

    # The reference counts epochs over its students, from their progress lines.
    tracker.start("reference", "full-data reference", 2 * 5, "epochs", None, epochs=5)
    lines = []  # the reference's epoch lines, as its students write them
    reporter = EpochReporter("full-data student 1/2", TrainConfig(epochs=5), lines.append)
    reporter({"epoch": 3, "loss": 7.1, "seconds": 6.0})
    tracker.reference_line(lines[-1])
    assert tracker.phase["done"] == 3
    tracker.reference_line("full-data student 1/2: test NDCG@10 0.0400; training 9.0 s, evaluation 1.0 s")
    tracker.reference_line("full-data student 2/2: epoch 1, loss 7.0000")
    assert tracker.phase["done"] == 5 + 1
    tracker.finish()
    assert [t["name"] for t in tracker.timings] == ["encode", "expert", "steps", "select", "students", "reference"]
    assert writes[-1]["phase"] is None


def test_the_tracker_logs_a_line_as_each_phase_starts_and_ends():
    now, lines = [0.0], []
    tracker = PhaseTracker(lambda **state: None, clock=lambda: now[0], log=lines.append)
    tracker.start("encode", "encoding item texts", 100, "item texts")
    now[0] = 2.5
    tracker.on_encode(100, 100)
    tracker.start("distill", "random n=5: selecting")
    tracker.finish()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "started: encoding item texts",
        "finished: encoding item texts (100 of 100 item texts in 2.5 s)",
        "started: random n=5: selecting",
        "finished: random n=5: selecting (in 0.0 s)"]



def test_the_labeller_is_a_phase_of_its_own_after_the_expert_only_when_the_labels_use_it():
    state = {"status": "running", "total_runs": 3, "done_runs": 0, "reference": "to train",
             "phase": phase("expert", "training the expert", 2, EXPERT_EPOCHS, 4.0, unit="epochs")}
    during_expert = job_progress(quick_spec(), state, now=1004.0)
    assert during_expert.to_come[0] == ("refitting the expert on the whole training split", None)
    holdout = quick_spec(distill={**DISTILL, "label_expert": "holdout"})
    assert all("refitting" not in label for label, _ in job_progress(holdout, state, now=1004.0).to_come)
    # At work: its epochs are known (the expert's best), so it has a count and a pace of its own.
    state["phase"] = phase("labeller", "refitting the expert on the whole training split", 3, 6, 9.0, unit="epochs")
    during_labeller = job_progress(quick_spec(), state, now=1009.0)
    assert during_labeller.phase.left == pytest.approx(3.0 * 3)
    assert all("refitting" not in label for label, _ in during_labeller.to_come)
    assert during_labeller.to_come[0][0].startswith("foster n=20")
