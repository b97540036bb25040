"""Background jobs for the app: distillation runs and budget sweeps in a worker process, one at a time.

A job is a list of (method, budget) runs on one dataset, plus (optionally) the full-data reference. The app
submits it and returns at once; a worker process (`python -m foster_core.runs.jobs <job folder>`) does the work
and writes everything through the run store, so any page, a refreshed browser or a second browser tab
reattaches by reading files:

    <runs dir>/.jobs/<job_id>/job.json     what was asked for (JobSpec)
    <runs dir>/.jobs/<job_id>/state.json   queued | preparing | running | finished | failed | stopped, run ids
    <runs dir>/.jobs/<job_id>/worker.log   the worker's stdout and stderr (tracebacks land here, not in the UI)
    <runs dir>/.jobs/<job_id>/STOP         present once a stop was asked for
    <runs dir>/.queue.lock                 held (flock) by the one job that is working
    <runs dir>/.queue_holder.json          which job holds it, so waiting jobs can say "queued behind ..."

Why one at a time: two torch jobs on a small CPU machine slow each other down roughly tenfold, so a second
job waits for the lock instead of competing. Why a process and not a thread: the app's script reruns on
every interaction, a process keeps its own torch thread settings, and its pid tells readers whether it is
still alive (a killed worker reads as "interrupted").
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import torch

from ..core.atomic import atomic_write_json, read_json_or
from ..core.config import from_dict, known_values, to_dict
from ..core.data import DataConfig
from ..core.loaders import load_dataset
from ..core.model import ModelConfig
from ..core.training import TrainConfig
from ..methods.registry import check_budget, get_method, needs_expert, needs_labeller
from .evaluator import StudentConfig
from .experiment import FULL, build_context, record_full_run
from .job_phases import PhaseTracker, ReportingRun, evaluation_phase, quick_students
from .ladder import results_stop
from .queue_lock import HOLDER_FILE, Cancelled, QueueLock
from .run_store import RUN_ID_PATTERN, Run, RunStore, process_alive, utc_timestamp
from .runner import run_config, run_method

JOBS_FOLDER = ".jobs"
THREADS_ENV = "FOSTER_JOB_THREADS"
ACTIVE = ("queued", "preparing", "running")
FINAL = ("finished", "failed", "stopped", "interrupted")


# The worker runs at this lower priority, so the app and the browser take a core whenever they need one.
WORKER_NICENESS = 10


def default_threads() -> int:
    """Torch threads for a worker: every core (at most 8). Keeping a core idle for the app halved a 2-core
    machine's speed; the worker's lower priority (WORKER_NICENESS) keeps the UI responsive instead."""
    if os.environ.get(THREADS_ENV, "").isdigit() and int(os.environ[THREADS_ENV]) > 0:
        return int(os.environ[THREADS_ENV])
    return max(1, min(os.cpu_count() or 1, 8))


@dataclass
class JobSpec:
    """A job: every (method, budget) pair, with plain-dict configs so the spec is JSON as it stands."""

    dataset: str  # a load_dataset spec: "movielens", a folder, ...
    methods: list[str]
    budgets: list[int]
    # Method config values shared by the job's methods: each method takes the fields its config has, and
    # its defaults for the rest (so one "seed" or "label_support" applies to every method that has one).
    distill: dict = field(default_factory=dict)
    student: dict = field(default_factory=dict)  # StudentConfig fields
    expert: dict = field(default_factory=dict)  # TrainConfig fields of the expert (and the full-data reference)
    model: dict = field(default_factory=dict)  # ModelConfig fields
    data: dict = field(default_factory=dict)  # DataConfig fields
    reference: bool = True  # also record the full-data reference (cached, so usually free after the first)
    # A budget ladder (runs/ladder.py): `budgets` are its rungs, and each method stops climbing once a run
    # of it reaches the ladder's share of full data or of the training positions (the reference comes first).
    ladder: bool = False
    preset: str = "custom"
    threads: int = 0  # 0 = default_threads()
    cache_dir: str | None = None  # None = FOSTER_CACHE_DIR or its default
    resume_run: str | None = None  # continue this interrupted run (foster/bptt) instead of starting a new one

    def pairs(self) -> list[tuple[str, int]]:
        return [(method, budget) for budget in self.budgets for method in self.methods]


@dataclass
class Job:
    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def spec(self) -> JobSpec:
        return from_dict(JobSpec, self._read("job.json", {}))

    @property
    def state(self) -> dict:
        """The worker's last word; 'interrupted' when it says it is working but its process is gone."""
        state = self._read("state.json", {"status": "queued", "message": "starting the worker"})
        pid = state.get("pid")
        if not isinstance(pid, int):
            try:
                pid = int((self.path / "worker.pid").read_text())
            except (OSError, ValueError):
                pid = None
        if state.get("status") in ACTIVE and isinstance(pid, int) and not process_alive(pid):
            state = {**state, "status": "interrupted", "message": "the worker ended without finishing"}
        return state

    @property
    def status(self) -> str:
        return self.state.get("status", "queued")

    @property
    def run_ids(self) -> list[str]:
        return list(self.state.get("run_ids", []))

    @property
    def current_run_id(self) -> str | None:
        return self.state.get("current_run")

    @property
    def log(self) -> str:
        try:
            return (self.path / "worker.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def request_stop(self, store: RunStore | None = None) -> None:
        """Stop the job: the current run stops at its next step, later runs are skipped, a queued job is dropped."""
        (self.path / "STOP").touch()
        if store is not None and self.current_run_id:
            try:
                store.get(self.current_run_id).request_stop()
            except KeyError:
                pass

    def stop_requested(self) -> bool:
        return (self.path / "STOP").exists()

    def update(self, **changes: object) -> None:
        state = self._read("state.json", {})
        state.update(changes, updated=utc_timestamp())
        atomic_write_json(self.path / "state.json", state)

    def _read(self, name: str, default):
        return read_json_or(self.path / name, default)


class JobQueue:
    """Submit jobs and find them again; the queue itself is a file lock, so it spans every process."""

    def __init__(self, runs_dir: str | Path | None = None):
        self.store = RunStore(runs_dir)
        self.root = self.store.root
        self.jobs_dir = self.root / JOBS_FOLDER

    def submit(self, spec: JobSpec, start: bool = True) -> Job:
        if not spec.methods or not spec.budgets:
            raise ValueError("a job needs at least one method and one budget")
        if spec.ladder and not spec.reference:
            raise ValueError("a budget ladder needs the full-data reference: its stop rule compares each run with it")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        job = Job(self.jobs_dir / f"{stamp}-{secrets.token_hex(3)}")
        job.path.mkdir()
        atomic_write_json(job.path / "job.json", to_dict(spec))
        # The full-data reference counts as a run until the worker finds one it can reuse.
        job.update(status="queued", message="starting the worker", run_ids=[], submitted=utc_timestamp(),
                   total_runs=len(spec.pairs()) + int(spec.reference), done_runs=0)
        if start:
            self._spawn(job, spec)
        return job

    def _spawn(self, job: Job, spec: JobSpec) -> None:
        threads = spec.threads or default_threads()
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
               FOSTER_RUNS_ENV: str(self.root.resolve())}
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        with open(job.path / "worker.log", "ab") as log:
            # A new session: the worker outlives the script run (and a browser refresh) that started it.
            process = subprocess.Popen([sys.executable, "-m", "foster_core.runs.jobs", str(job.path.resolve())],
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                       start_new_session=True)
        # Its own file: the worker may already be writing state.json, and this must not overwrite that.
        (job.path / "worker.pid").write_text(str(process.pid))

    def get(self, job_id: str) -> Job:
        if not RUN_ID_PATTERN.match(job_id or ""):
            raise KeyError(f"not a valid job id: {job_id!r}")
        path = self.jobs_dir / job_id
        if not (path / "job.json").is_file():
            raise KeyError(f"no job {job_id!r}")
        return Job(path)

    def jobs(self) -> list[Job]:
        if not self.jobs_dir.is_dir():
            return []
        found = [Job(p) for p in self.jobs_dir.iterdir() if (p / "job.json").is_file()]
        return sorted(found, key=lambda j: j.id, reverse=True)

    def active(self) -> list[Job]:
        """Jobs still queued or working, oldest first (the order they will run in, roughly)."""
        return [job for job in reversed(self.jobs()) if job.status in ACTIVE]

    def holder(self) -> dict | None:
        """The job that holds the queue now: {'job': id, 'pid': ..., 'run': current run id} or None."""
        try:
            holder = json.loads((self.root / HOLDER_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None
        if not process_alive(int(holder.get("pid", -1))):
            return None
        try:
            holder["run"] = self.get(holder["job"]).current_run_id
        except KeyError:
            pass
        return holder

    def waiting_message(self, job: Job) -> str:
        holder = self.holder()
        if holder and holder.get("job") != job.id:
            behind = f"run {holder['run']}" if holder.get("run") else f"job {holder['job']}"
            return f"queued behind {behind}: one run at a time on this machine"
        return job.state.get("message", "queued")

    def wait(self, job: Job, timeout: float = 600.0, poll: float = 0.5) -> dict:
        """Block until the job is no longer active (tests and scripts; the app polls instead)."""
        deadline = time.monotonic() + timeout
        while job.status in ACTIVE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job.id} still {job.status} after {timeout:.0f} s")
            time.sleep(poll)
        return job.state


FOSTER_RUNS_ENV = "FOSTER_RUNS_DIR"


class _JobRunStore(RunStore):
    """The run store, telling the job about each run the moment it is created (for live curves), and the
    phase tracker when its evaluation begins."""

    def __init__(self, root: Path, job: Job, on_evaluate: Callable[[Run], None] | None = None):
        super().__init__(root)
        self.job, self.on_evaluate = job, on_evaluate

    def create(self, method: str, config: dict) -> Run:
        run = super().create(method, {**config, "job": self.job.id, "preset": self.job.spec.preset,
                                          "dataset_spec": self.job.spec.dataset})
        self.started(run, "full-data reference" if method == FULL else f"{method}: distilling")
        return self.reporting(run)

    def started(self, run: Run, message: str) -> None:
        """Tell the job about a run it works on; the (method, budget) it started is kept in the job's own
        state, so a run deleted later is not mistaken for one the job skipped."""
        state = self.job.state
        started = list(state.get("started_pairs", [])) + [[run.config.get("method"), run.config.get("budget")]]
        run_ids = list(state.get("run_ids", []))
        self.job.update(current_run=run.id, run_ids=run_ids + [run.id] if run.id not in run_ids else run_ids,
                        started_pairs=started, status="running", message=message)

    def reporting(self, run: Run) -> Run:
        return ReportingRun(run.path, on_evaluate=self.on_evaluate)


@dataclass
class JobConfigs:
    """A job spec's plain dicts as config objects: the one place a job's JSON becomes configs."""

    methods: dict[str, Any]  # method name -> its config
    student: StudentConfig
    expert: TrainConfig
    model: ModelConfig
    data: DataConfig


def job_configs(spec: JobSpec) -> JobConfigs:
    return JobConfigs({m: get_method(m).config(spec.distill) for m in spec.methods},
                      from_dict(StudentConfig, spec.student), from_dict(TrainConfig, spec.expert),
                      from_dict(ModelConfig, spec.model), from_dict(DataConfig, spec.data))


def job_spec(dataset: str, methods: list[str], budgets: list[int], distill: dict, student: StudentConfig,
             expert: TrainConfig, preset: str = "custom", threads: int = 0, reference: bool = True,
             ladder: bool = False) -> JobSpec:
    """A JobSpec from config objects (`distill`: the shared method values, see JobSpec.distill). A ladder
    always has its reference: its stop rule needs it."""
    return JobSpec(dataset=dataset, methods=list(methods), budgets=[int(b) for b in budgets],
                   distill=known_values_for(methods, distill), student=to_dict(student), expert=to_dict(expert),
                   reference=reference or ladder, preset=preset, threads=threads, ladder=ladder)


def known_values_for(methods: list[str], values: dict) -> dict:
    """The entries of `values` that at least one of `methods` has in its config."""
    kept: dict = {}
    for method in methods:
        kept.update(known_values(get_method(method).config_class, values))
    return kept


def run_job(job: Job, runs_dir: Path) -> None:
    """The worker's body: wait for the queue, build the context once, run every pair, then the reference.
    A budget ladder (`spec.ladder`) trains or reuses the reference first, since its stop rule compares
    each run with full data, and stops climbing a method once a run of it meets that rule (runs/ladder.py).
    Each phase's progress goes to the job's state (job_phases.py), for the app's progress bars."""
    spec = job.spec
    torch.set_num_threads(spec.threads or default_threads())
    job.update(pid=os.getpid(), status="queued", message="waiting for the queue")
    tracker = PhaseTracker(job.update, log=lambda line: print(line, flush=True))
    try:
        with QueueLock(runs_dir, job):
            if job.stop_requested():
                raise Cancelled()
            configs = job_configs(spec)
            job.update(status="preparing", message="loading the dataset")
            dataset = load_dataset(spec.dataset, configs.data)
            job.update(message="encoding item texts (cached after the first time)")
            tracker.start("encode", "encoding item texts (cached after the first time)", len(dataset.item_texts),
                          "item texts")
            context = build_context(dataset, configs.model, configs.expert, cache_dir=spec.cache_dir,
                                    encode_progress=tracker.on_encode)
            for budget in spec.budgets:  # before minutes of expert training, not after
                check_budget(context, budget)
            pairs = spec.pairs()
            students = len(configs.student.seeds) * len(configs.student.architectures)
            titles = [f"{method} n={budget}" for method, budget in pairs]
            current = {"pair": None}
            store = _JobRunStore(runs_dir, job, lambda run: evaluation_phase(
                tracker, run, titles[current["pair"]] if current["pair"] is not None else "", current["pair"],
                students, configs.expert.epochs))
            # Whether this job trains the reference or reuses one: the run count says so from the start.
            reference = store.find_reference(run_config(context, FULL, None, None, configs.student),
                                             architectures=configs.student.architectures) if spec.reference else None
            train_reference = spec.reference and reference is None
            total = len(pairs) + int(train_reference)
            job.update(total_runs=total,
                       reference="to train" if train_reference else ("reused" if spec.reference else "off"))
            if needs_expert(spec.methods):  # methods that never use it do not train it
                job.update(message="training the expert recommender (cached after the first time)")
                tracker.start("expert", "training the expert recommender (cached after the first time)",
                              configs.expert.epochs, "epochs")
                context.on_expert_epoch = tracker.on_expert_epoch
                context.expert()
            if needs_labeller(spec.methods, spec.distill):
                tracker.start("labeller", "refitting the expert on the whole training split (cached after the first "
                              "time)", context.labeller_config().epochs, "epochs")
                context.labeller()
            done = 0

            def train_the_reference() -> dict:
                nonlocal done
                current["pair"] = None
                job.update(status="running", message="full-data reference (cached after the first time)")
                results = record_full_run(context, configs.student, store, progress=tracker.reference_line).results
                tracker.finish()
                done += 1
                job.update(done_runs=done, reference="trained")
                return results

            full = None
            if spec.ladder:
                full = train_the_reference() if train_reference else reference.results
            stopped: dict[str, dict] = {}  # method -> the budget where the ladder stopped it, and why
            for index, (method, budget) in enumerate(pairs):
                if method in stopped:
                    continue
                if job.stop_requested():
                    raise Cancelled()
                current["pair"] = index
                job.update(status="running", message=f"{method} n={budget} ({done + 1} of {total})",
                           done_runs=done)
                tracker.start("distill", f"{titles[index]}: distilling", None, "", index)
                on_event = tracker.run_events(index, titles[index], quick_students(configs.methods[method]))
                resume = None
                if spec.resume_run:  # the run exists already: tell the job about it as create() would
                    resumed = store.get(spec.resume_run)
                    job.update(run_ids=[], started_pairs=[])
                    store.started(resumed, f"{method}: resuming {resumed.id}")
                    resume = store.reporting(resumed)
                outcome = run_method(context, method, budget, configs.methods[method], configs.student, store,
                                     resume_run=resume, on_event=on_event, progress=tracker.student_line)
                done += 1
                reason = results_stop(outcome.results, full) if full and outcome.results else None
                if reason:
                    stopped[method] = {"budget": budget, "reason": reason}
                    total -= sum(1 for m, b in pairs[index + 1:] if m == method)
                    print(f"{method} stops climbing at n={budget}: {reason}", flush=True)
                    job.update(ladder_stopped=stopped, total_runs=total)
            tracker.finish()
            job.update(done_runs=done)
            if train_reference and not spec.ladder and not job.stop_requested():
                train_the_reference()
        tracker.finish()
        final = "stopped" if job.stop_requested() else "finished"
        job.update(status=final, message="stopped on request" if final == "stopped" else "done", current_run=None)
    except Cancelled:
        tracker.finish()
        job.update(status="stopped", message="stopped on request", current_run=None)
    except Exception as exc:  # the UI shows this one line; the traceback is in worker.log
        traceback.print_exc()
        tracker.finish()
        job.update(status="failed", message=f"{exc.__class__.__name__}: {exc}", current_run=None)


def lower_priority(increment: int) -> None:
    """Raise this process's niceness by `increment` where the system allows it (not on Windows)."""
    try:
        os.nice(increment)
    except (AttributeError, OSError):
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one FOSTER Studio job (started by the app).")
    parser.add_argument("job_folder")
    args = parser.parse_args(argv)
    job = Job(Path(args.job_folder))
    lower_priority(WORKER_NICENESS)
    run_job(job, job.path.parent.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
