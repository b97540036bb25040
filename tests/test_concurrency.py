"""Two sessions start a distillation each: both finish, neither overwrites the other, the second waits in the
machine-wide queue and the Distill page says so; the page's rerun time while a job works is measured."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from foster_core.runs.jobs import JobQueue, JobSpec
from foster_core.runs.run_store import RunStore

from conftest import cyclic_tables

ROOT = Path(__file__).resolve().parent.parent
DISTILL_PAGE = str(ROOT / "pages" / "1_Distill.py")
ARTIFACTS = ROOT / "test-artifacts" / "reliability"


@pytest.fixture
def studio(tmp_path, monkeypatch):
    interactions, items = cyclic_tables()
    (tmp_path / "tiny").mkdir()
    interactions.to_csv(tmp_path / "tiny" / "interactions.csv", index=False)
    items.to_csv(tmp_path / "tiny" / "items.csv", index=False)
    monkeypatch.setenv("FOSTER_DATASET", str(tmp_path / "tiny"))
    monkeypatch.setenv("FOSTER_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FOSTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FOSTER_JOB_THREADS", "1")
    return tmp_path


def foster_job(folder: Path, steps: int) -> JobSpec:
    return JobSpec(dataset=str(folder), methods=["foster"], budgets=[4],
                   distill={"steps": steps, "log_every": 5, "checkpoint_every": 50, "select_every": 0,
                            "subset_size": 0, "real_batch_size": 32, "init_selection": "random", "device": "cpu"},
                   student={"seeds": [0], "epochs": 3, "eval_every": 1}, expert={"epochs": 3},
                   model={"hidden": 16, "blocks": 1, "heads": 1}, reference=False, threads=1)


def test_two_sessions_each_start_a_distillation_both_finish_and_the_second_waits(studio):
    page = AppTest.from_file(DISTILL_PAGE, default_timeout=120).run()  # the first visit imports everything
    assert not page.exception
    first_session, second_session = JobQueue(studio / "runs"), JobQueue(studio / "runs")
    first = first_session.submit(foster_job(studio / "tiny", 400))
    second = second_session.submit(foster_job(studio / "tiny", 40))
    sessions = {first.id: first_session, second.id: second_session}
    deadline = time.monotonic() + 240
    while True:  # both workers start at once; whichever takes the queue first works, the other must wait
        working = [job for job in (first, second) if job.status in ("preparing", "running")]
        waiting = [job for job in (first, second) if job.status == "queued"
                   and sessions[job.id].waiting_message(job).startswith("queued behind")]
        if len(working) == 1 and len(waiting) == 1:
            break
        assert time.monotonic() < deadline and "finished" not in (first.status, second.status), (
            first.state, second.state, first.log[-2000:])
        time.sleep(0.02)
    [holder], [waiter] = working, waiting
    rerun_seconds = []
    for _ in range(5):
        started = time.perf_counter()
        page.run()
        rerun_seconds.append(time.perf_counter() - started)
    assert not page.exception
    assert any("queued behind" in info.value and "one run at a time" in info.value for info in page.info)

    for job, queue in ((first, first_session), (second, second_session)):
        assert queue.wait(job, timeout=240)["status"] == "finished", job.log[-3000:]
    store = RunStore(studio / "runs")
    [run_one], [run_two] = first.run_ids, second.run_ids
    assert run_one != run_two and len(store.list()) == 2
    one, two = store.get(run_one), store.get(run_two)
    assert one.config["job"] == first.id and two.config["job"] == second.id
    assert one.config["distill"]["steps"] == 400 and two.config["distill"]["steps"] == 40
    assert one.history[-1]["step"] == 400 and two.history[-1]["step"] == 40  # neither wrote into the other
    assert one.results and two.results
    # One at a time: the waiting job's run began only after the working job's run had finished.
    earlier, later = (one, two) if holder is first else (two, one)
    assert (earlier.path / "status.json").stat().st_mtime <= later.status["started"] + 0.01
    assert waiter.id != holder.id

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "concurrency.json").write_text(json.dumps({
        "concurrent_jobs": 2, "both_finished": True,
        "distill_page_rerun_seconds_with_a_job_running": {
            "median": round(statistics.median(rerun_seconds), 3), "max": round(max(rerun_seconds), 3),
            "reruns": len(rerun_seconds)}}, indent=2))


def test_the_distill_page_offers_resume_and_delete_for_an_interrupted_run(studio, monkeypatch):
    store = RunStore(studio / "runs")
    run = store.create("foster", {"budget": 4, "dataset": "tiny", "dataset_spec": str(studio / "tiny"),
                                  "distill": {"steps": 8}, "student": {"seeds": [0]}, "model": {}, "expert": {}})
    status = json.loads((run.path / "status.json").read_text())
    (run.path / "status.json").write_text(json.dumps({**status, "pid": 2**22 + 4321}))  # its worker is gone
    spawned = []
    monkeypatch.setattr(JobQueue, "_spawn", lambda self, job, spec: spawned.append(spec))
    page = AppTest.from_file(DISTILL_PAGE, default_timeout=120).run()
    assert not page.exception
    assert "Interrupted runs" in [h.value for h in page.subheader]
    page.button(key=f"resume_{run.id}").click().run()
    assert not page.exception
    [spec] = spawned
    assert spec.resume_run == run.id and spec.methods == ["foster"] and spec.dataset == str(studio / "tiny")
