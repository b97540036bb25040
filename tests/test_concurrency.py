"""Two sessions start a distillation each: both finish, neither overwrites the other, the second waits in the
machine-wide queue and the Distill page says so. The page's rerun time while jobs work is recorded in
test-artifacts (not asserted: it depends on the machine and its load).

Nothing here depends on timing: to look at the waiting job, the test pauses the worker that holds the queue
(SIGSTOP) and lets it go on afterwards (SIGCONT); the deadlines below only keep a broken run from hanging."""

from __future__ import annotations

import json
import os
import signal
import statistics
import time
from pathlib import Path
from typing import Callable, TypeVar

import pytest
from streamlit.testing.v1 import AppTest

from foster_core.methods import all_methods
from foster_core.runs.jobs import ACTIVE, JobQueue, JobSpec
from foster_core.runs.run_store import RunStore

from conftest import make_studio

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
DISTILL_PAGE = "app_pages/distill.py"
ARTIFACTS = ROOT / "test-artifacts" / "reliability"
T = TypeVar("T")


@pytest.fixture
def studio(tmp_path, monkeypatch):
    return make_studio(tmp_path, monkeypatch)


def open_distill() -> AppTest:
    """A visitor's session: app.py opens on Home, then the sidebar's Distill page."""
    page = AppTest.from_file(APP, default_timeout=120).run()
    page.switch_page(DISTILL_PAGE).run()
    assert not page.exception and page.title[0].value == "Distill"
    return page


def foster_job(folder: Path, steps: int) -> JobSpec:
    return JobSpec(dataset=str(folder), methods=["foster"], budgets=[4],
                   distill={"steps": steps, "log_every": 5, "checkpoint_every": 50, "select_every": 0,
                            "subset_size": 0, "real_batch_size": 32, "init_selection": "random", "device": "cpu"},
                   student={"seeds": [0], "epochs": 3, "eval_every": 1}, expert={"epochs": 3},
                   model={"hidden": 16, "blocks": 1, "heads": 1}, reference=False, threads=1)


def wait_for(found: Callable[[], T], what: str, timeout: float = 240) -> T:
    """Poll until `found()` is truthy; the timeout only stops a broken run from hanging the suite."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)
    return value


def test_two_sessions_each_start_a_distillation_both_finish_and_the_second_waits(studio):
    page = open_distill()  # the first visit imports everything
    first_session, second_session = JobQueue(studio / "runs"), JobQueue(studio / "runs")
    first = first_session.submit(foster_job(studio / "tiny", 400))
    second = second_session.submit(foster_job(studio / "tiny", 40))
    jobs = {first.id: first, second.id: second}
    sessions = {first.id: first_session, second.id: second_session}

    # Both workers start at once; whichever takes the queue first works. Pause it there.
    holding = wait_for(first_session.holder, "a worker to take the queue")
    os.kill(holding["pid"], signal.SIGSTOP)
    try:
        assert first_session.holder()["pid"] == holding["pid"]  # still the holder, now paused
        holder = jobs[holding["job"]]
        [waiter] = [job for job in jobs.values() if job.id != holder.id]
        # Active, and perhaps still "queued": the worker writes its holder file the moment it takes the lock and
        # its status a moment later, and the pause can fall between the two.
        assert holder.status in ACTIVE
        message = wait_for(lambda: waiter.status == "queued" and sessions[waiter.id].waiting_message(waiter),
                           "the other job to wait in the queue")
        assert message.startswith("queued behind")
        page.run()
        assert not page.exception
        assert any("queued behind" in info.value and "one run at a time" in info.value for info in page.info)
        assert "Current job" in [h.value for h in page.subheader]
    finally:
        os.kill(holding["pid"], signal.SIGCONT)

    rerun_seconds, reruns_with_a_job_working = [], 0
    for _ in range(5):  # recorded, not asserted
        working = any(job.status in ACTIVE for job in jobs.values())
        started = time.perf_counter()
        page.run()
        rerun_seconds.append(time.perf_counter() - started)
        reruns_with_a_job_working += working
        assert not page.exception

    for job, queue in ((first, first_session), (second, second_session)):
        assert queue.wait(job, timeout=240)["status"] == "finished", job.log[-3000:]
    store = RunStore(studio / "runs")
    [run_one], [run_two] = first.run_ids, second.run_ids
    assert run_one != run_two and len(store.list()) == 2
    one, two = store.get(run_one), store.get(run_two)
    assert one.config["job"] == first.id and two.config["job"] == second.id
    assert one.config["distill"]["steps"] == 400 and two.config["distill"]["steps"] == 40
    assert one.step_events[-1].step == 400 and two.step_events[-1].step == 40  # neither wrote into the other
    assert one.results and two.results
    # One at a time: the waiting job's run began only after the holding job's run had finished.
    earlier, later = (one, two) if holder is first else (two, one)
    assert (earlier.path / "status.json").stat().st_mtime <= later.status["started"] + 0.01

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "concurrency.json").write_text(json.dumps({
        "concurrent_jobs": 2, "both_finished": True,
        "distill_page_rerun_seconds_while_jobs_work": {
            "median": round(statistics.median(rerun_seconds), 3), "max": round(max(rerun_seconds), 3),
            "reruns": len(rerun_seconds), "reruns_with_a_job_working": reruns_with_a_job_working}}, indent=2))


def interrupted_run(store: RunStore, method: str, folder: Path):
    run = store.create(method, {"budget": 4, "dataset": "tiny", "dataset_spec": str(folder),
                                "distill": {"steps": 8}, "student": {"seeds": [0]}, "model": {}, "expert": {}})
    status = json.loads((run.path / "status.json").read_text())
    (run.path / "status.json").write_text(json.dumps({**status, "pid": 2**22 + 4321}))  # its worker is gone
    assert run.status["status"] == "interrupted"
    return run


def test_the_distill_page_offers_resume_and_delete_for_an_interrupted_run(studio, monkeypatch):
    store = RunStore(studio / "runs")
    run = interrupted_run(store, "foster", studio / "tiny")
    coreset = interrupted_run(store, "random", studio / "tiny")  # not resumable: nothing to continue from
    spawned = []
    monkeypatch.setattr(JobQueue, "_spawn", lambda self, job, spec: spawned.append(spec))
    page = open_distill()
    assert "Interrupted runs" in [h.value for h in page.subheader]
    resumable = " and ".join(spec.name for spec in all_methods() if spec.resumable)
    assert any(f"These {resumable} runs" in c.value for c in page.caption)
    keys = {b.key for b in page.button}
    assert {f"resume_{run.id}", f"delete_{run.id}"} <= keys
    assert f"resume_{coreset.id}" not in keys and f"delete_{coreset.id}" not in keys
    page.button(key=f"resume_{run.id}").click().run()
    assert not page.exception
    [spec] = spawned
    assert spec.resume_run == run.id and spec.methods == ["foster"] and spec.dataset == str(studio / "tiny")
