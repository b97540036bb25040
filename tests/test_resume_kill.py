"""Killed and crashed runs: SIGKILL the background worker at random moments during a FOSTER run; the store
stays loadable, the run reads as interrupted, it resumes from its last checkpoint of S (or is deleted), and a
diverging run (NaN loss) ends with a message instead of running on."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch
from conftest import random_text_embeddings

from foster_core.runs.evaluator import StudentConfig
from foster_core.runs.runner import run_method
from foster_core.methods import Checkpoint, StepEvent, get_method
from foster_core.methods import foster as foster_module
from foster_core.methods.sparse import resume_state
from foster_core.methods.expert import DistillContext
from foster_core.runs.jobs import JobQueue, JobSpec
from foster_core.core.model import ModelConfig
from foster_core.runs.resume import resume_spec
from foster_core.runs.run_store import RunStore
from foster_core.core.synthetic import SyntheticData
from foster_core.core.training import TrainConfig

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "reliability"
TINY_DISTILL = {"steps": 240, "log_every": 4, "checkpoint_every": 4, "select_every": 0, "subset_size": 0,
                "real_batch_size": 32, "reg_items": 32, "init_selection": "random", "device": "cpu"}


def foster_spec(folder: Path, cache: Path) -> JobSpec:
    return JobSpec(dataset=str(folder), methods=["foster"], budgets=[4], distill=dict(TINY_DISTILL),
                   student={"seeds": [0], "epochs": 3, "eval_every": 1}, expert={"epochs": 3},
                   model={"hidden": 16, "blocks": 1, "heads": 1}, reference=False, threads=1, cache_dir=str(cache))


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.02)


def _kill(job) -> None:
    pid = int((job.path / "worker.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: job.status == "interrupted", 30, "the killed job never read as interrupted")


def _store_is_whole(store: RunStore) -> None:
    for run in store.list():
        assert isinstance(run.config, dict) and run.config and isinstance(run.status, dict)
        assert isinstance(run.history, list)
        if run.latest_checkpoint():
            SyntheticData.load(run.latest_checkpoint())  # never a half-written checkpoint


def test_a_worker_killed_at_random_moments_leaves_an_interrupted_run_that_resumes_or_is_deleted(tmp_path,
                                                                                                 tiny_folder):
    rng = random.Random(int(os.environ.get("FOSTER_KILL_SEED", time.time_ns())))
    queue = JobQueue(tmp_path / "runs")
    cache = tmp_path / "cache"
    spec = foster_spec(tiny_folder, cache)
    kills, resumed_from = [], []

    job = queue.submit(spec)
    run_id = None
    for attempt in range(2):  # the second kill lands in a run that was resumed once already
        # A random moment after the run has made some progress (the first time: after its first checkpoint,
        # so that there is something to resume from); kills land before, during and after atomic writes.
        def progressed() -> bool:
            if not job.current_run_id:
                return False
            run = queue.store.get(job.current_run_id)
            if attempt == 0:
                return run.latest_checkpoint() is not None
            return len(run.history) > len(before)

        before = queue.store.get(run_id).history if run_id else []
        _wait_for(progressed, 240, f"no progress before kill {attempt + 1}: {job.log[-2000:]}")
        time.sleep(rng.uniform(0.0, 0.4))
        _kill(job)
        run_id = job.current_run_id
        run = queue.store.get(run_id)
        _store_is_whole(queue.store)
        assert run.status["status"] == "interrupted" and run.resumable()
        assert job.status == "interrupted" and queue.active() == []
        kills.append({"step_logged": max((r["step"] for r in run.history), default=0),
                      "checkpoint": run.latest_checkpoint().name if run.latest_checkpoint() else None})
        step = int(run.latest_checkpoint().stem.split("_")[-1])
        resumed_from.append(step)
        job = queue.submit(resume_spec(run, queue.store))  # what the app's Resume button submits
        assert job.spec.resume_run == run_id

    state = queue.wait(job, timeout=240)
    assert state["status"] == "finished", job.log[-3000:]
    run = queue.store.get(run_id)
    assert run.status["status"] == "finished" and run.status["resumes"] == 2
    assert run.results["test"]["ndcg@10"]["mean"] >= 0 and run.synthetic_path.is_file()
    steps = [r["step"] for r in run.history]
    assert steps == sorted(set(steps)) and steps[-1] == TINY_DISTILL["steps"]  # no step lost or counted twice
    assert not list(run.path.rglob(".*.tmp"))
    assert [r.id for r in queue.store.list()] == [run_id]  # resuming never made a second run

    # One more kill, then delete the interrupted run instead of resuming it.
    job = queue.submit(spec)
    _wait_for(lambda: job.current_run_id and queue.store.get(job.current_run_id).history, 240, job.log[-2000:])
    time.sleep(rng.uniform(0.0, 0.4))
    _kill(job)
    doomed = job.current_run_id
    kills.append({"deleted": doomed})
    assert queue.store.get(doomed).status["status"] == "interrupted"
    queue.store.delete(doomed)
    assert [r.id for r in queue.store.list()] == [run_id]
    _store_is_whole(queue.store)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "kills.json").write_text(json.dumps(
        {"kills_survived": len(kills), "resumed_from_steps": resumed_from, "kills": kills}, indent=2))


# ----------------------------------------------------------------------------- in-process: resume and NaN


@pytest.fixture
def tiny_context(cyclic_dataset, tmp_path):
    context = DistillContext(cyclic_dataset, random_text_embeddings(cyclic_dataset.num_items),
                             ModelConfig(hidden=16, blocks=1, heads=1), TrainConfig(epochs=3), cache_dir=tmp_path)
    context.expert()
    return context


STUDENT = StudentConfig(seeds=(0,), epochs=2, eval_every=1, device="cpu")


@pytest.mark.parametrize("method", ["foster", "bptt"])
def test_a_stopped_run_resumes_from_its_checkpoint_into_the_same_folder(tiny_context, tmp_path, method):
    store = RunStore(tmp_path / "runs")
    config = get_method(method).config(steps=12, log_every=2, checkpoint_every=4, select_every=0, subset_size=0,
                                       real_batch_size=16, unroll_steps=2, init_selection="random", device="cpu")
    seen = []

    def stop_after_step_six(event) -> None:
        seen.append(event)
        if isinstance(event, StepEvent) and event.step == 6:
            store.list()[0].request_stop()

    first = run_method(tiny_context, method, 4, config, STUDENT, store, on_event=stop_after_step_six)
    assert first.run.status["status"] == "stopped" and first.run.latest_checkpoint().name == "step_000004.safetensors"
    saved = SyntheticData.load(first.run.latest_checkpoint())
    restored = resume_state(tiny_context, 4, Checkpoint(4, saved))
    assert restored[0] == 5
    assert torch.allclose(torch.softmax(restored[2], -1), saved.input_probs, atol=1e-6)

    again = run_method(tiny_context, method, 4, config, STUDENT, resume_run=store.get(first.run.id))
    run = store.get(first.run.id)
    assert again.run.id == first.run.id and run.status["status"] == "finished" and run.status["resumed_from"] == 4
    assert [r["step"] for r in run.history] == [2, 4, 6, 8, 10, 12]
    assert run.results is not None and len(store.list()) == 1
    with pytest.raises(ValueError, match="only an interrupted, failed or stopped run"):
        run_method(tiny_context, method, 4, config, STUDENT, resume_run=run)


def test_coreset_runs_cannot_resume_and_say_so(tiny_context, tmp_path):
    store = RunStore(tmp_path / "runs")
    config = get_method("random").config(device="cpu")
    outcome = run_method(tiny_context, "random", 4, config, STUDENT, store)
    outcome.run.set_status("failed", "pretend")
    with pytest.raises(ValueError, match="random runs cannot be resumed"):
        run_method(tiny_context, "random", 4, config, STUDENT, resume_run=outcome.run)


def test_a_nan_loss_stops_the_run_with_a_message_instead_of_running_on(tiny_context, tmp_path, monkeypatch):
    real_loss = foster_module.real_loss
    calls = []

    def poisoned(*args, **kwargs):
        calls.append(1)
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if len(calls) >= 3 else loss

    monkeypatch.setattr(foster_module, "real_loss", poisoned)
    store = RunStore(tmp_path / "runs")
    config = get_method("foster").config(steps=10_000, log_every=1, select_every=0, subset_size=0,
                                         real_batch_size=16, init_selection="random", device="cpu")
    with pytest.raises(FloatingPointError, match="loss_real became nan at step 3"):
        run_method(tiny_context, "foster", 4, config, STUDENT, store)
    assert len(calls) == 3  # stopped at once, not after 10,000 steps
    [run] = store.list()
    assert run.status["status"] == "failed" and "diverged" in run.status["message"]
    assert run.resumable()
