"""The background job runner: one job at a time through a file lock, reattachable state, stop, failures."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from foster_core.runs.jobs import Job, JobQueue, JobSpec, default_threads
from foster_core.runs.queue_lock import QueueLock


def coreset_spec(folder, **changes) -> JobSpec:
    spec = dict(dataset=str(folder), methods=["random"], budgets=[4], expert={"epochs": 2},
                student={"seeds": [0], "epochs": 3, "eval_every": 1}, model={"hidden": 16, "blocks": 1, "heads": 1},
                reference=False, threads=1)
    return JobSpec(**{**spec, **changes})


def test_a_job_runs_in_a_worker_and_records_its_runs_in_the_store(tmp_path, tiny_folder):
    queue = JobQueue(tmp_path / "runs")
    job = queue.submit(coreset_spec(tiny_folder, reference=True))
    state = queue.wait(job, timeout=180)
    assert state["status"] == "finished", job.log
    runs = {queue.store.get(r).config["method"]: queue.store.get(r) for r in job.run_ids}
    assert set(runs) == {"random", "full"}
    assert runs["random"].results["test"]["ndcg@10"]["mean"] >= 0
    assert runs["random"].config["job"] == job.id and runs["random"].config["dataset_spec"] == str(tiny_folder)
    assert queue.active() == [] and queue.jobs()[0].id == job.id
    assert "finished: encoding item texts" in job.log  # the worker's log says where the time went


def test_a_ladder_job_trains_the_reference_first_and_stops_a_method_once_the_rule_is_met(tmp_path, tiny_folder):
    # 40 users of 8 items: 20 real sequences hold far more than a quarter of the training positions, so
    # random stops at its first rung whatever its students score, and n=30 never runs.
    queue = JobQueue(tmp_path / "runs")
    job = queue.submit(coreset_spec(tiny_folder, budgets=[20, 30], ladder=True, reference=True))
    state = queue.wait(job, timeout=180)
    assert state["status"] == "finished", job.log
    runs = [queue.store.get(r) for r in job.run_ids]
    assert [(r.config["method"], r.config.get("budget")) for r in runs] == [("full", None), ("random", 20)]
    assert state["ladder_stopped"]["random"]["budget"] == 20
    assert "training positions" in state["ladder_stopped"]["random"]["reason"] or "95%" in \
        state["ladder_stopped"]["random"]["reason"]
    assert state["total_runs"] == 2 and state["done_runs"] == 2
    assert "random stops climbing at n=20" in job.log


def test_a_reference_must_hold_every_architecture_the_students_have(tmp_path):
    queue = JobQueue(tmp_path / "runs")
    config = {"dataset": "d", "model": {}, "expert": {}, "student": {"seeds": [0]}}
    two = queue.store.create("full", config)
    two.write_results({"test": {}, "by_architecture": {"sasrec": {"test": {}}, "gru4rec": {"test": {}}}})
    one = queue.store.create("full", config)
    one.write_results({"test": {}, "architecture": "id-sasrec"})  # results of one architecture
    assert queue.store.find_reference(config).id == two.id  # the default architecture
    assert queue.store.find_reference(config, architectures=("id-sasrec",)).id == one.id
    assert queue.store.find_reference(config, architectures=("sasrec", "gru4rec")).id == two.id
    # No one run holds both: a job with these students trains its reference anew.
    assert queue.store.find_reference(config, architectures=("sasrec", "id-sasrec")) is None


def test_a_second_job_waits_behind_the_holder_of_the_queue_and_can_be_cancelled(tmp_path, tiny_folder):
    queue = JobQueue(tmp_path / "runs")
    holder = queue.submit(coreset_spec(tiny_folder), start=False)
    with QueueLock(queue.root, holder):  # this test process plays the job that is working
        waiting = queue.submit(coreset_spec(tiny_folder))
        for _ in range(200):
            if waiting.state.get("message", "").startswith("waiting"):
                break
            os.sched_yield()
            time.sleep(0.1)
        assert waiting.status == "queued"
        assert queue.waiting_message(waiting) == f"queued behind job {holder.id}: one run at a time on this machine"
        waiting.request_stop(queue.store)
        state = queue.wait(waiting, timeout=60)
    assert state["status"] == "stopped" and waiting.run_ids == []


def test_a_worker_that_died_reads_as_interrupted(tmp_path):
    job = Job(tmp_path / "job")
    job.path.mkdir()
    (job.path / "job.json").write_text(json.dumps({"dataset": "x", "methods": ["random"], "budgets": [1]}))
    job.update(status="running", pid=2**22 + 12345)  # no such process
    assert job.status == "interrupted"


def test_bad_input_fails_the_job_with_one_line_and_keeps_the_traceback_in_the_log(tmp_path, tiny_folder):
    queue = JobQueue(tmp_path / "runs")
    job = queue.submit(coreset_spec(tiny_folder, budgets=[10_000], cache_dir=str(tmp_path / "cache")))
    state = queue.wait(job, timeout=180)
    assert state["status"] == "failed" and "budget" in state["message"].lower()
    assert "Traceback" in job.log
    assert not (tmp_path / "cache" / "experts").exists()  # refused before training an expert
    with pytest.raises(ValueError):
        queue.submit(coreset_spec(tiny_folder, methods=[]))
    with pytest.raises(ValueError, match="needs the full-data reference"):
        queue.submit(coreset_spec(tiny_folder, ladder=True, reference=False))


def test_a_worker_uses_every_core_up_to_eight_unless_told(monkeypatch):
    monkeypatch.delenv("FOSTER_JOB_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert default_threads() == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 32)
    assert default_threads() == 8
    monkeypatch.setenv("FOSTER_JOB_THREADS", "3")
    assert default_threads() == 3


def test_a_worker_lowers_its_own_priority():
    # In a child process, so the test run itself keeps its priority.
    code = ("import os; from foster_core.runs.jobs import lower_priority; before = os.nice(0); "
            "lower_priority(4); print(os.nice(0) - before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert int(out.stdout.strip()) == min(os.nice(0) + 4, 19) - os.nice(0)
